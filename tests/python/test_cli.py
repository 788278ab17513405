"""The main job: `python -m flashhip check` checks every op and exits 0 when all agree."""

import json

from flashhip import cli


def test_check_on_cpu_passes_and_writes_json(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert cli.main(["check", "--device", "cpu", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    ops = {r["op"] for r in results}
    assert {"rmsnorm", "fused_add_rmsnorm", "layernorm", "rmsnorm_quant", "fused_add_rmsnorm_quant", "layernorm_quant", "rope", "rope_quantize_fp8 (MLA)",
            "moe_topk (DeepSeek-V3)", "moe_align_block_size", "moe_sum", "fp8_gemm K-contig.", "fp8_gemm M/N-contig.",
            "per_token_group_quant_fp8"} <= ops
    assert all(r["ok"] and r["rel_err"] <= r["limit"] for r in results)
    assert "all checks passed" in capsys.readouterr().out
