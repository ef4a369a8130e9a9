"""``calculate_gain``: PyTorch's table of recommended gains, value for value and error for error.

The table is a convention, not a measurement: ``tanh`` gets 5/3 and ``selu`` 3/4, while the gain
that keeps a unit-variance Gaussian at unit second moment is 1/sqrt(E[f(z)^2]) (about 1.593 for
tanh). :func:`fanin.gain` computes that exact value for any activation; this module only mirrors
torch so that code ported from ``torch.nn.init`` gives the same numbers.
"""

from __future__ import annotations

import math

__all__ = ["LINEAR_FNS", "TABLE_NONLINEARITIES", "calculate_gain"]

LINEAR_FNS = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
TABLE_NONLINEARITIES = (*LINEAR_FNS, "sigmoid", "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param: int | float | None = None) -> float:
    r"""Return the recommended gain value for the given nonlinearity function (PyTorch's table).

    ================= ====================================================
    nonlinearity      gain
    ================= ====================================================
    Linear / Identity :math:`1`
    Conv{1,2,3}D      :math:`1`
    Sigmoid           :math:`1`
    Tanh              :math:`\frac{5}{3}`
    ReLU              :math:`\sqrt{2}`
    Leaky Relu        :math:`\sqrt{\frac{2}{1 + \text{negative\_slope}^2}}`
    SELU              :math:`\frac{3}{4}`
    ================= ====================================================

    Identical to ``torch.nn.init.calculate_gain``: the same values (``1`` is the int 1), the same
    case-sensitive names and the same ``ValueError`` texts.

    Args:
        nonlinearity: The name of the nonlinearity (``"linear"``, ``"conv2d"``, ``"relu"``,
            ``"leaky_relu"``, ``"tanh"``, ...; case-sensitive).
        param: The negative slope for ``"leaky_relu"`` (``None``: 0.01); ignored otherwise.

    Returns:
        The gain.

    Raises:
        ValueError: ``nonlinearity`` is not in the table, or ``param`` is not a number.

    Examples:
        >>> calculate_gain("leaky_relu", 0.2)
        1.3867504905630728
        >>> calculate_gain("tanh")
        1.6666666666666667
    """
    if nonlinearity in LINEAR_FNS or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif (not isinstance(param, bool) and isinstance(param, int)) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        # torch's empirical value (pytorch/pytorch#50664, for issue #24991); the exact SELU gain is 1
        # for lecun-scaled weights.
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")
