"""The renderer of a parametrization's table (:class:`fanin.rules.parametrization.table.MupTable`):
plain text saying what the plan does and what it leaves to others, then one line per tensor and
per forward multiplier. Names from the model are shown literally (their escapes)."""

from __future__ import annotations

from fanin.rules.parametrization.table import MupTable, literal

__all__ = ["render_mup_text"]


def render_mup_text(table: MupTable) -> str:
    """The table's one-line ``repr``, its notes and overridden tensors, then a line per tensor
    (role, init, Adam and SGD learning-rate factors) and per forward multiplier."""
    lines = [repr(table)]
    lines += [f"  [{what}] {text}" for what, text in table.notes]
    for name, rule in table.overridden:
        lines.append(f"  [overridden] {literal(name)}: initialized by {literal(rule)}, not by {table.spec.kind}")
    lines.append("tensors (role, init, Adam/SGD learning-rate factor):")
    for r in table.rows:
        init = r.init if r.init is not None else "left to other rules"
        lines.append(
            f"  {literal(r.name)} {list(r.shape)} {r.role}: {init}; lr x{r.adam_lr:.6g} (Adam) x{r.sgd_lr:.6g} (SGD)"
        )
    if table.multipliers:
        lines.append("forward multipliers:")
        for x in table.multipliers:
            part = f" (first 1/{x.split} of the last dim)" if x.split > 1 else ""
            lines.append(f"  {literal(x.module)} {x.on}{part} x{x.factor:.6g} ({x.kind}): {x.equation}")
    return "\n".join(lines)
