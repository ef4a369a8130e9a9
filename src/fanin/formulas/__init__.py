"""Pure math, no torch: fans by layout, gains, variance-scaling arithmetic."""

from fanin.formulas.fans import LAYOUTS, Fans, compute_fans, kernel_shape_from_torch
from fanin.formulas.gains import calculate_gain

__all__ = ["LAYOUTS", "Fans", "calculate_gain", "compute_fans", "kernel_shape_from_torch"]
