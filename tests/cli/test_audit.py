"""``fanin audit`` and ``fanin diff`` end to end through click's runner."""

import json
import os

import torch
from click.testing import CliRunner

from fanin.cli.main import main


def _save(path, seed, init=None):
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.LayerNorm(64))
    if init is not None:
        init(model[0].weight)
    save_file(model.state_dict(), str(path))
    return path


def test_audit_markdown_to_file(tmp_path):
    ckpt = _save(tmp_path / "m.safetensors", 0)
    out = tmp_path / "report.md"
    result = CliRunner().invoke(main, ["audit", str(ckpt), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("**4 tensors (2 uniform, 2 constant); freshly initialized.**")
    assert "| 0.weight | 64×32 | 32 / 64 |" in text
    assert "kaiming_uniform(a=sqrt(5)) [PyTorch's default for nn.Linear / nn.Conv weights]" in text
    assert f"wrote {out}" in result.output


def test_audit_json_and_plot(tmp_path):
    ckpt = _save(tmp_path / "m.safetensors", 0)
    png = tmp_path / "h.png"
    result = CliRunner().invoke(main, ["audit", str(ckpt), "--format", "json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    weight = next(r for r in data["records"] if r["name"] == "0.weight")
    assert weight["inference"]["matches"][0]["scheme"] == "kaiming_uniform(a=sqrt(5))"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_audit_unknown_tensor_and_malicious_file(tmp_path):
    ckpt = _save(tmp_path / "m.safetensors", 0)
    result = CliRunner().invoke(main, ["audit", str(ckpt), "--tensor", "0.wieght"])
    assert result.exit_code == 2
    assert "Unknown tensor '0.wieght'. Did you mean '0.weight'" in result.output

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    result = CliRunner().invoke(main, ["audit", str(tmp_path / "evil.pt")])
    assert result.exit_code == 1 and "Refusing to load" in result.output
    assert not (tmp_path / "pwned").exists()


def test_diff_one_line_first(tmp_path):
    a = _save(tmp_path / "a.safetensors", 0)
    b = _save(tmp_path / "b.safetensors", 1)
    c = _save(tmp_path / "c.safetensors", 1, lambda w: torch.nn.init.normal_(w, std=0.02))
    result = CliRunner().invoke(main, ["diff", str(a), str(b), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "**same architecture (4 tensors); same initialization scheme for all 4 tensors; values differ "
        "(different seeds).**")
    result = CliRunner().invoke(main, ["diff", str(a), str(c), "--format", "json"])
    data = json.loads(result.stdout)
    assert data["headline"].endswith("different initialization for 1 (0.weight)")


def test_table_output(tmp_path):
    ckpt = _save(tmp_path / "m.safetensors", 0)
    result = CliRunner().invoke(main, ["audit", str(ckpt)])
    assert result.exit_code == 0
    assert "freshly initialized" in result.stdout and "0.weight" in result.stdout


def test_plot_of_a_gate_blocked_uniform_draws_the_mixture(tmp_path):
    import numpy as np
    from scipy import stats

    import fanin
    from fanin.report.audit import _Mixture, write_audit_plot

    w = fanin.get("fanin.gate_uniform(bounds=[0.1, 0.25, 0.1, 0.05])")(torch.empty(64, 32), generator=torch.Generator().manual_seed(0))
    report = fanin.audit({"lstm.bias_like": w})
    png = write_audit_plot(report, tmp_path / "gates.png", values={"lstm.bias_like": w})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The density at 0 is the average of the four blocks' 1/(2 b_k); a zero block weighs in with 0.
    mix = _Mixture([stats.uniform(-b, 2 * b) for b in (0.1, 0.25, 0.1, 0.05)], 4)
    assert np.isclose(mix.pdf(0.0), (5 + 2 + 5 + 10) / 4)
    assert np.isclose(_Mixture([stats.uniform(-0.1, 0.2)], 2).pdf(0.0), 2.5)


def test_audit_of_an_import_path_builds_the_model_and_reports_bad_paths():
    ok = CliRunner().invoke(main, ["audit", "torch.nn:Identity", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    for spec, why in [
        ("no_such_module_xyz:make", "Cannot import 'no_such_module_xyz'"),
        ("torch.nn:NoSuchLayer", "Module 'torch.nn' has no attribute 'NoSuchLayer'"),
        ("math:pi", "'math:pi' is not callable"),
        ("builtins:dict", "returned dict, not a torch.nn.Module"),
    ]:
        result = CliRunner().invoke(main, ["audit", spec])
        assert result.exit_code == 2, result.output
        assert "Invalid value for SOURCE" in result.output
        assert why in result.output, result.output
