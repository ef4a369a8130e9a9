"""The audit's memory bound, measured in a fresh process: peak RSS at most 1.2x the largest tensor
in its own dtype plus a constant.

The child process imports fanin and torch and audits one small matrix (which loads scipy, numba's
compiled kernel and the candidate tables: the fixed cost), and reads its peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) as the baseline. It then fills one large tensor
in place (``torch.empty(...).normal_``: no temporary) and audits a state_dict holding it. The
bound checked is

    peak - baseline <= 1.2 * tensor bytes + CONSTANT

with CONSTANT = 32 MiB (measured: 4 MiB above the tensor for float32, 14 MiB for bfloat16 at
8192x4096, over a baseline of about 400 MiB for torch, scipy and numba): the fixed-size working
buffers the audit allocates whatever the tensor (a chunk of at most 2^20 values in float64, 8 MiB,
and its float32 copy; the 256x1024 float64 submatrix of the spectrum test and its Gram matrix,
2.5 MiB; the 8,192-value sample; numpy and torch allocator slack). The tensor itself is 1.0x of
the bound, so the audit's own use is at most 0.2x plus the constant: no float64 copy of the tensor
(which alone would be 2x for float32, 4x for bfloat16) fits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CONSTANT_MIB = 32
FACTOR = 1.2

CHILD = textwrap.dedent("""
    import json, resource, sys
    import torch
    import fanin

    rows, cols, dtype = int(sys.argv[1]), int(sys.argv[2]), getattr(torch, sys.argv[3])
    fanin.audit({"warm.weight": torch.empty(256, 512).normal_(0, 0.02)})
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    w = torch.empty(rows, cols, dtype=dtype).normal_(0, 0.02, generator=torch.Generator().manual_seed(0))
    report = fanin.audit({"big.weight": w})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_kib": base, "peak_kib": peak, "bytes": w.numel() * w.element_size(),
                      "label": report.records[0].inference.label}))
""")


@pytest.mark.parametrize(("rows", "cols", "dtype"), [(8192, 4096, "float32"), (8192, 4096, "bfloat16")])
def test_peak_memory_is_the_tensor_plus_a_constant(rows, cols, dtype):
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(rows), str(cols), dtype],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    used = (got["peak_kib"] - got["base_kib"]) * 1024
    assert got["label"] == "normal(std=0.02)"  # the audit ran to its answer
    assert used <= FACTOR * got["bytes"] + CONSTANT_MIB * 2**20, (used / 2**20, got["bytes"] / 2**20)
