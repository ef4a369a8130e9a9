"""Report records and their renderers: records in :mod:`fanin.report.depth`, renderers beside.

A record is plain data (``to_dict()`` is its JSON form); a renderer turns a record into text
(:func:`render_table` for the terminal, :func:`render_markdown`, :func:`render_json`) or a
figure (:func:`write_plot`, PNG, SVG or PDF by suffix, needing the ``fanin[plot]`` extra). Each
takes a depth report (:mod:`fanin.report.depth`) or a probe report (its records in
:mod:`fanin.diagnostics.records`, re-exported here; rendered by :mod:`fanin.report.probe`).
Plans render with :mod:`fanin.report.plan`, audits with :mod:`fanin.report.audit`; the shared
pieces are :mod:`fanin.report.table` (tables that fit a width), :mod:`fanin.report.markdown`,
:mod:`fanin.report.text` (names rendered literally), :mod:`fanin.report.plot` (the figure style)
and :mod:`fanin.report.files` (atomic writes).
"""

from fanin.diagnostics.records import BlockStats, LayerStats, ParamStats, ProbeReport, UnhealthyModelError, load_report
from fanin.report.depth import SNAPSHOT_LAYERS, DepthReport, depth_report, snapshot_layers
from fanin.report.formats import render_gain, render_json, render_markdown, render_schemes
from fanin.report.plot import FIGURE_FORMATS, MissingExtraError, write_plot
from fanin.report.probe import probe_json, probe_markdown, probe_plot, probe_table, probe_text
from fanin.report.table import plain_text, render_table

__all__ = [
    "FIGURE_FORMATS",
    "SNAPSHOT_LAYERS",
    "BlockStats",
    "DepthReport",
    "LayerStats",
    "MissingExtraError",
    "ParamStats",
    "ProbeReport",
    "UnhealthyModelError",
    "depth_report",
    "load_report",
    "plain_text",
    "probe_json",
    "probe_markdown",
    "probe_plot",
    "probe_table",
    "probe_text",
    "render_gain",
    "render_json",
    "render_markdown",
    "render_schemes",
    "render_table",
    "snapshot_layers",
    "write_plot",
]
