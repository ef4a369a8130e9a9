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
    assert text.startswith(
        "**4 tensors: 4 fresh (2 constant, 2 uniform); no evidence of training (family-wise level 0.01).**"
    )
    # the summary by role first, then the per-tensor table
    assert text.index("Summary by role:") < text.index("| tensor |") < text.index("- `0.weight`:")
    assert "| `0.weight` | 64×32 | float32 | 32 / 64 |" in text
    assert "`kaiming_uniform(a=sqrt(5))` (PyTorch's default for nn.Linear / nn.Conv weights)" in text
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


def test_diff_one_line_first_then_counts_and_exit_code(tmp_path):
    a = _save(tmp_path / "a.safetensors", 0)
    b = _save(tmp_path / "b.safetensors", 1)
    c = _save(tmp_path / "c.safetensors", 1, lambda w: torch.nn.init.normal_(w, std=0.02))
    result = CliRunner().invoke(main, ["diff", str(a), str(b), "--format", "markdown", "--exit-code"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "**same architecture (4 tensors); same initialization: 2 identical, 2 same distribution.**"
    assert lines[2].startswith("Counts: identical 2, equal within tolerance 0, same distribution 2, different 0")
    result = CliRunner().invoke(main, ["diff", str(a), str(c), "--format", "json", "--exit-code"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["headline"] == (
        "same architecture (4 tensors); different initialization for 1 of 4 (0.weight): "
        "2 identical, 1 same distribution, 1 different"
    )
    assert data["any_different"] and data["counts"]["different"] == 1 and data["alpha"] == 0.001
    row = next(t for t in data["tensors"] if t["name"] == "0.weight")
    assert row["test"] == "scale" and row["family_b"] == "normal" and row["p_value"] < 1e-6
    # without --exit-code the answer is in the report, not the status
    assert CliRunner().invoke(main, ["diff", str(a), str(c)]).exit_code == 0
    # a looser level can only find more; a level outside (0, 1) is a usage error
    loose = CliRunner().invoke(main, ["diff", str(a), str(b), "--alpha", "0.5", "--format", "json"])
    assert json.loads(loose.stdout)["alpha"] == 0.5
    bad = CliRunner().invoke(main, ["diff", str(a), str(b), "--alpha", "1"])
    assert bad.exit_code == 2 and "Invalid value for '--alpha'" in bad.output


def test_diff_of_different_architectures_exits_1(tmp_path):
    from safetensors.torch import save_file

    a = _save(tmp_path / "a.safetensors", 0)
    save_file({"0.weight": torch.zeros(3, 3)}, str(tmp_path / "small.safetensors"))
    result = CliRunner().invoke(main, ["diff", str(a), str(tmp_path / "small.safetensors"), "--exit-code"])
    assert result.exit_code == 1
    assert result.stdout.startswith("different architecture (3 only in a, 0 only in b, 1 reshaped; 0 compared)")


def test_table_output(tmp_path):
    ckpt = _save(tmp_path / "m.safetensors", 0)
    result = CliRunner().invoke(main, ["audit", str(ckpt)], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("4 tensors: 4 fresh (2 constant, 2 uniform); no evidence of training")
    assert out.index("Summary by role") < out.index("Tensors") and "0.weight" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    result = CliRunner().invoke(
        main, ["diff", str(ckpt), str(_save(tmp_path / "b.safetensors", 1))], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0 and max(len(line) for line in result.stdout.splitlines()) <= 80
    lines = result.stdout.splitlines()
    assert lines[0].startswith("same architecture (4 tensors); same initialization")
    assert "Counts: identical 2" in lines[2]


def test_model_specs_and_hugging_face_directories(tmp_path):
    from safetensors.torch import save_file

    # a built-in model and an import path with --arg, as explain/probe take them
    result = CliRunner().invoke(main, ["audit", "mlp", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"] == "Sequential"
    spec = ["torch.nn:Linear", "--arg", "in_features=16", "--arg", "out_features=8", "--format", "json"]
    data = json.loads(CliRunner().invoke(main, ["audit", *spec]).stdout)
    assert [r["name"] for r in data["records"]] == ["weight", "bias"]
    same = CliRunner().invoke(main, ["diff", "gpt", "gpt", "--exit-code", "--format", "json"])
    assert same.exit_code == 0 and json.loads(same.stdout)["tied"] == {"lm_head.weight": "wte.weight"}
    # a Hugging Face layout directory: model.safetensors beside config.json
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
    for name in ("hf_a", "hf_b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text('{"model_type": "toy"}')
        save_file(model.state_dict(), str(tmp_path / name / "model.safetensors"))
    audit = CliRunner().invoke(main, ["audit", str(tmp_path / "hf_a"), "--format", "json"])
    assert audit.exit_code == 0, audit.output
    assert {r["name"] for r in json.loads(audit.stdout)["records"]} == {"0.weight", "0.bias", "1.weight", "1.bias"}
    diff = CliRunner().invoke(main, ["diff", str(tmp_path / "hf_a"), str(tmp_path / "hf_b"), "--exit-code"])
    assert diff.exit_code == 0 and diff.stdout.startswith("same architecture (4 tensors); identical values")


def test_plot_names_what_it_leaves_out(tmp_path):
    ckpt = _save(tmp_path / "m.safetensors", 0)
    png = tmp_path / "all.png"
    result = CliRunner().invoke(main, ["audit", str(ckpt), "--plot", str(png), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = tmp_path / "one.svg"
    result = CliRunner().invoke(main, ["audit", str(ckpt), "--tensor", "1.weight", "--plot", str(one)])
    assert result.exit_code == 0, result.output
    assert "1.weight" in one.read_text() and "all 64 values 1" in one.read_text()


def test_plot_of_a_gate_blocked_uniform_draws_the_mixture(tmp_path):
    import numpy as np
    from scipy import stats

    import fanin
    from fanin.report.audit import _Mixture, write_audit_plot

    gates = fanin.get("fanin.gate_uniform(bounds=[0.1, 0.25, 0.1, 0.05])")
    w = gates(torch.empty(64, 32), generator=torch.Generator().manual_seed(0))
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


def test_layout_choices_are_the_sources_layouts():
    from fanin.auditing.sources import LAYOUTS

    for command in ("audit", "diff"):
        layout = next(p for p in main.commands[command].params if p.name == "layout")
        assert tuple(layout.type.choices) == LAYOUTS
