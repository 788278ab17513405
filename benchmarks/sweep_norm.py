"""Tuning sweep: flashhip's norm kernels at each FLASHHIP_NORM_THREADS_PER_ROW (threads per row
the launcher aims for), one process per value; a value written 256/rows also sets
FLASHHIP_NORM_GRID=rows (one block per row group instead of a resident grid walking the rows).
Prints one line per (op, shape) with the time at each value."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
values = sys.argv[1:] or ["64", "128", "256", "512"]
table = {}
for v in values:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        threads, _, grid = v.partition("/")
        env = dict(os.environ, FLASHHIP_NORM_THREADS_PER_ROW=threads, FLASHHIP_NORM_GRID=grid or "resident")
        subprocess.run([sys.executable, str(HERE / "bench_norm.py"), "--only-ours", "--out", str(out)], env=env,
                       check=True, capture_output=True)
        for r in json.loads(out.read_text())["records"]:
            table.setdefault((r["op"], r["shape"]), {})[v] = r["us"]
print("op/shape".ljust(40) + "".join(f"{v:>10}" for v in values))
for (op, shape), times in table.items():
    print(f"{op} {shape}".ljust(40) + "".join(f"{times.get(v, float('nan')):>10.2f}" for v in values))
