"""Test setup for the audit's tests on real models.

transformers and timm import torchvision whenever it is installed, and the registry's torchvision
is built for CUDA torch: its C ops fail to register beside the CPU torch (``operator
torchvision::nms does not exist``). Its two schemas that it registers fake kernels for at import
are declared before the first import (test setup only; a no-op where torchvision imports).
"""

import importlib
import importlib.util
import sys

import torch

_SCHEMAS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
            "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_LIBRARY = None


def import_torchvision():
    """``import torchvision``, declaring its op schemas first when its C library cannot."""
    global _LIBRARY
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    _LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS:
        _LIBRARY.define(schema)
    return importlib.import_module("torchvision")


def pytest_configure(config):
    if importlib.util.find_spec("torchvision") is not None:
        import_torchvision()
