"""Plans: what rules do to a model, resolved before anything is written, then executed.

- :mod:`~fanin.planning.matching`: the first rule that covers each tensor (the first step).
- :mod:`~fanin.planning.resolve`: :func:`plan`, each match resolved to one entry and checked (the second step).
- :mod:`~fanin.planning.records`: :class:`Plan` and :class:`PlanEntry`, plain data.
- :mod:`~fanin.planning.stats`: what a scheme draws at a tensor's shape, as the plan shows it.
- :mod:`~fanin.planning.guards`: what must hold before anything is written.
- :mod:`~fanin.planning.executor`: tensor access, the random source (the one seed/generator check, the
  stream key) and the new values.
- :mod:`~fanin.planning.applying`: :func:`apply`, atomically, in place.
- :mod:`~fanin.planning.materializing`: :func:`materialize`, a meta model made real.
- :mod:`~fanin.planning.capturing`: :func:`~fanin.planning.capturing.capture`, a plan read from a model's own init.
- :mod:`~fanin.planning.linting`: :func:`~fanin.planning.linting.lint`, the init bugs a plan would make.

>>> import torch
>>> from fanin.planning import apply
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
>>> record = apply(model, {"*.weight": "xavier_uniform", "*.bias": "zeros"}, seed=0)
>>> [e.name for e in record]
['0.weight', '0.bias', '2.weight', '2.bias']
"""

from fanin.planning.applying import apply
from fanin.planning.materializing import materialize
from fanin.planning.records import Plan, PlanEntry, PlanMismatchError
from fanin.planning.resolve import plan
from fanin.planning.stats import Statistics, scheme_statistics

__all__ = [
    "Plan",
    "PlanEntry",
    "PlanMismatchError",
    "Statistics",
    "apply",
    "materialize",
    "plan",
    "scheme_statistics",
]
