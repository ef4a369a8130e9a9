"""Figures: the shared style (formats by suffix, atomic writes, labels safe from mathtext) and what
the depth and probe figures show (panels, clipped axis, labelled thresholds off the data, layer
names on integer ticks)."""

import math

import pytest
import torch

import fanin
import fanin.report.plot as plot
from fanin.diagnostics import DEMO_CONFIGS, run_depth_experiment
from fanin.report import depth_report, probe_plot, write_plot
from fanin.report.plot import FigureFormatError, figure, figure_format, plot_text


@pytest.fixture()
def captured(monkeypatch):
    """The figures drawn, kept instead of (and after) being written."""
    figures = []
    original = plot.save_figure

    def keep(fig, path):
        figures.append(fig)
        return original(fig, path)

    monkeypatch.setattr(plot, "save_figure", keep)
    return figures


@pytest.fixture(scope="module")
def demo_report():
    return depth_report(run_depth_experiment(c) for c in DEMO_CONFIGS)


def test_formats_by_suffix(tmp_path):
    assert [figure_format(f"x.{s}") for s in ("png", "SVG", "pdf")] == ["png", "svg", "pdf"]
    for bad in ("x.jpg", "x", "x.png.txt"):
        with pytest.raises(FigureFormatError, match=r"Unknown figure format .* Accepted: 'pdf', 'png', 'svg'"):
            figure_format(bad)
    with pytest.raises(FigureFormatError):
        with figure(tmp_path / "x.jpg"):
            raise AssertionError("the body must not run for a refused suffix")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_drawing_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.png"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), figure(path) as (_fig, axes):
        axes[0, 0].plot([1, 2])
        raise RuntimeError("drawing failed")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_plot_text_is_literal():
    assert plot_text("$x^2$\n") == "\\$x^2\\$\\n"
    assert plot_text("[bold]a") == "[bold]a"


def test_depth_figure_panels_and_thresholds(demo_report, captured, tmp_path):
    write_plot(demo_report, tmp_path / "depth.svg")
    fig = captured[-1]
    top, bottom = fig.axes[:2]
    assert top.get_yscale() == "log" and top.get_ylim() == pytest.approx((1e-6, 1e6))
    assert bottom.get_yscale() == "linear" and bottom.get_ylim()[0] == 0
    # the runs within the thresholds (the four that are neither exploding nor vanishing) get the linear panel
    assert len(bottom.get_lines()) == 4 and len(top.get_lines()) >= 6
    inside = [run for run in demo_report.runs if run.verdict != "exploding" and run.vanish_layer is None]
    top_of_bottom = bottom.get_ylim()[1]
    assert max(max(r.stds) for r in inside) <= top_of_bottom < 2  # they fill the panel, told apart
    # threshold labels sit in the right margin (x beyond the axes), where no data line is drawn
    labels = [t for t in top.texts if "exploding" in t.get_text() or "vanishing" in t.get_text()]
    assert len(labels) == 2 and all(t.xy[0] == 1.0 and t.xycoords[0] == "axes fraction" for t in labels)
    # one legend, below the axes, naming every run and its verdict
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == [f"{r.name} ({r.verdict}): {r.config.scheme}" for r in demo_report.runs]
    assert all(
        float(t.get_text().replace("−", "-")) == int(float(t.get_text().replace("−", "-")))
        for t in bottom.get_xticklabels()
        if t.get_text()
    )
    assert (tmp_path / "depth.svg").read_text().startswith("<?xml")


def test_depth_figure_for_a_report_without_stable_runs(captured, tmp_path):
    from fanin.diagnostics import DepthConfig

    report = depth_report(
        [run_depth_experiment(DepthConfig("huge", None, "normal(std=1e10)", depth=4, width=4, batch=2))]
    )
    write_plot(report, tmp_path / "d.pdf")
    assert len(captured[-1].axes) == 1 and (tmp_path / "d.pdf").read_bytes().startswith(b"%PDF")


def test_probe_figure_layer_names_on_integer_ticks(captured, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8))
    report = fanin.probe(model, torch.randn(4, 8), backward=True, label="$run$")
    probe_plot([report, report], tmp_path / "p.png")
    fig = captured[-1]
    activations, gradients = fig.axes[:2]
    fig.canvas.draw()
    ticks = gradients.get_xticks()
    assert list(ticks) == [0, 1, 2]
    assert [t.get_text() for t in gradients.get_xticklabels()] == ["0", "1", "2"]  # Sequential: names are indices
    assert "\\$run\\$ (stable)" in [t.get_text() for t in fig.legends[0].get_texts()]
    assert activations.get_yscale() == gradients.get_yscale() == "log"

    class Named(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Linear(8, 8)
            self.head = torch.nn.Linear(8, 2)

        def forward(self, x):
            return self.head(torch.relu(self.encoder(x)))

    named = fanin.probe(Named(), torch.randn(4, 8))
    probe_plot(named, tmp_path / "n.svg")
    fig = captured[-1]
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert labels == ["0 encoder", "1 head"]  # the default layers: the parameterized ones


def test_long_probes_get_a_subset_of_integer_ticks(captured, tmp_path):
    model = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(60)])
    report = fanin.probe(model, torch.randn(2, 4))
    probe_plot(report, tmp_path / "long.png")
    ax = captured[-1].axes[0]
    ticks = [t for t in ax.get_xticks() if 0 <= t < 60]
    assert 3 <= len(ticks) <= 25 and all(math.isclose(t, round(t)) for t in ticks)
