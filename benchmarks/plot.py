"""Bar chart of a benchmark JSON: time of each implementation per (op, shape), with flashhip's
ratio to the best peer written above its bar. Usage: python benchmarks/plot.py results/x.json"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot_family(json_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(Path(json_path).read_text())
    if "records" not in data:  # not a benchmark file (e.g. the main job's check results)
        return
    if data["meta"]["family"] == "gemm":
        return plot_gemm(data, png_path)
    records = data["records"]
    groups = []
    for r in records:
        key = (r["op"], r["shape"], r["dtype"])
        if key not in groups:
            groups.append(key)
    impls = []
    for r in records:
        if r["impl"] not in impls:
            impls.append(r["impl"])
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(groups)), 5))
    width = 0.8 / len(impls)
    for j, impl in enumerate(impls):
        xs, ys = [], []
        for i, key in enumerate(groups):
            for r in records:
                if (r["op"], r["shape"], r["dtype"]) == key and r["impl"] == impl:
                    xs.append(i + j * width)
                    ys.append(r["us"])
        ax.bar(xs, ys, width, label=impl)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))])
    # Long shapes ("T=4096 E=256 k=8 block=64") one field a line, so neighbours do not overlap.
    ax.set_xticklabels([f"{op}\n" + (shape.replace(" ", "\n") if len(shape) > 14 else shape) for op, shape, _ in groups],
                       fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("time per call (us, log)")
    meta = data["meta"]
    ax.set_title(f"{meta['family']}: {meta['device']}, torch {meta['torch']}, commit {meta['commit']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    print(f"wrote {png_path}")


def plot_gemm(data: dict, png_path: Path) -> None:
    """bench_gemm.py: TFLOP/s per shape of ours in both layouts, cuBLASLt and bf16 matmul; bars of
    results with `correct: false` are hatched and marked "wrong" (`correct` is the run's rule,
    meta `correct_rule`: the Hopper bound on NVIDIA GPUs, the challenge's tolerance on CPU/AMD)."""
    import matplotlib.pyplot as plt

    records = [r for r in data["records"] if r["op"] in ("fp8_gemm", "fp8_gemm M/N-contig.", "fp8_gemm square")]
    shapes = list(dict.fromkeys(r["shape"] for r in records))
    series = [("flashhip K-contig.", lambda r: r["impl"] == "flashhip" and "M/N" not in r["op"]),
              ("flashhip M/N-contig.", lambda r: r["impl"] == "flashhip" and "M/N" in r["op"]),
              ("cuBLASLt", lambda r: r["impl"] == "cuBLASLt"),
              ("bf16 matmul", lambda r: r["impl"] == "bf16 matmul")]
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(shapes)), 5))
    width = 0.8 / len(series)
    for j, (label, match) in enumerate(series):
        for i, shape in enumerate(shapes):
            for r in records:
                if r["shape"] == shape and match(r) and r.get("TFLOPs") is not None:
                    wrong = r.get("correct") is False
                    ax.bar(i + j * width, r["TFLOPs"], width, color=f"C{j}", hatch="//" if wrong else None,
                           label=label if i == 0 or label not in ax.get_legend_handles_labels()[1] else None)
                    if wrong:
                        ax.text(i + j * width, r["TFLOPs"], "wrong", rotation=90, fontsize=6, ha="center", va="bottom")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(shapes))])
    ax.set_xticklabels([s.replace("x", "\nx", 1) for s in shapes], fontsize=7)
    ax.set_ylabel("TFLOP/s")
    meta = data["meta"]
    summary = meta.get("summary", {})
    ax.set_title(f"fp8 blockwise GEMM: {meta['device']}, torch {meta['torch']}, commit {meta['commit']}\n"
                 f"geomean vs cuBLASLt over the {summary.get('cublas_correct_shapes')} shapes it gets right "
                 f"{summary.get('geomean_x_cuBLASLt_k_contig_over_correct')}x "
                 f"(min {summary.get('min_x_cuBLASLt_k_contig_over_correct')}x); correct by "
                 f"{meta.get('correct_rule', 'challenge_tol').split(' ')[0]}",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    print(f"wrote {png_path}")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        p = Path(arg)
        plot_family(p, p.with_suffix(".png"))
