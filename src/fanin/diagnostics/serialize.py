"""Records as JSON-ready dicts, derived from their dataclass fields.

A record's ``to_dict`` is :func:`record_dict`: one entry per field, in the order the fields are
declared, each value made JSON-ready: a nested record by its own ``to_dict`` (or, without one, by
:func:`record_dict` with the same float encoding), a tuple or list as a list, a float through the
record's ``floats`` encoding (strict JSON has no NaN: :func:`nonfinite_as_string` keeps a
non-finite value recoverable, :func:`nonfinite_as_none` writes ``null``), anything else as it is.

What a field needs beyond that is declared on the field: ``field(metadata=json_rank(1))`` moves
it after the fields of rank 0 (the long per-layer lists go after the header they belong to), in
declaration order within a rank. A record may add a constant ``head`` (the format tag, first) and
``computed`` entries (properties, after the fields of rank 0).

>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True)
... class Run:
...     rows: tuple[float, ...] = field(metadata=json_rank(1))
...     name: str = "r"
>>> record_dict(Run((1.0, float("nan"))), head={"format": "run/1"}, computed={"n": 2})
{'format': 'run/1', 'name': 'r', 'n': 2, 'rows': [1.0, 'nan']}
>>> record_dict(Run((float("inf"),)), floats=nonfinite_as_none)["rows"]
[None]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["json_rank", "nonfinite_as_none", "nonfinite_as_string", "record_dict"]

_RANK = "json_rank"


def json_rank(rank: int) -> dict[str, int]:
    """Field metadata: the field's place in ``to_dict`` (0, the default: in declaration order;
    higher ranks after lower ones)."""
    return {_RANK: rank}


def nonfinite_as_string(value: float) -> float | str:
    """A finite float as it is; NaN and infinities as ``"nan"``, ``"inf"``, ``"-inf"`` (read back by ``float``)."""
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def nonfinite_as_none(value: float) -> float | None:
    """A finite float as it is; NaN and infinities as ``None`` (JSON ``null``)."""
    return value if math.isfinite(value) else None


def _json_ready(value: Any, floats: Callable[[float], Any]) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        return to_dict() if callable(to_dict) else record_dict(value, floats=floats)
    if isinstance(value, (tuple, list)):
        return [_json_ready(v, floats) for v in value]
    if isinstance(value, float):
        return floats(value)
    return value


def record_dict(
    record: Any,
    *,
    floats: Callable[[float], Any] = nonfinite_as_string,
    head: Mapping[str, Any] | None = None,
    computed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON-ready dict of the dataclass instance ``record`` (see the module): ``head``, then
    the fields of rank 0, then ``computed``, then the fields of higher ranks."""
    ranked = sorted(enumerate(dataclasses.fields(record)), key=lambda item: (item[1].metadata.get(_RANK, 0), item[0]))
    out: dict[str, Any] = dict(head or {})
    pending = dict(computed or {})
    for _, f in ranked:
        if pending and f.metadata.get(_RANK, 0) > 0:
            out.update({k: _json_ready(v, floats) for k, v in pending.items()})
            pending = {}
        out[f.name] = _json_ready(getattr(record, f.name), floats)
    out.update({k: _json_ready(v, floats) for k, v in pending.items()})
    return out
