"""Philox4x32-10 (Salmon et al., SC11, "Parallel Random Numbers: As Easy as 1, 2, 3") and fanin's key.

Two implementations of the same bijection, tested against Random123's known-answer vectors:

* :func:`philox4x32_10` on Python ints, the executable form of the spec (docs/stream.md);
* :func:`philox4x32_10_torch` on int64 tensors that hold uint32 values. torch has no uint32
  arithmetic on every device, but an int64 product of two values below 2**32 wraps modulo
  2**64, so its low 64 bits (the full 32x32 product) are exact. This path runs on any device.

:func:`derive_key` turns (seed, name) into the Philox key and the stream word.
"""

from __future__ import annotations

import hashlib
import struct

import torch

__all__ = [
    "KEY_PERSON",
    "PHILOX_M0",
    "PHILOX_M1",
    "PHILOX_W0",
    "PHILOX_W1",
    "derive_key",
    "philox4x32_10",
    "philox4x32_10_torch",
]

# Random123 constants (philox.h): round multipliers and the Weyl key increments.
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
ROUNDS = 10
MASK32 = 0xFFFFFFFF

# BLAKE2b personalization: a new stream format version gets a new person string.
KEY_PERSON = b"fanin.v1"


def derive_key(seed: int, name: str) -> tuple[int, int, int, int]:
    """The Philox key and stream words of ``(seed, name)``: ``(k0, k1, s, reserved)``.

    ``BLAKE2b(u64le(seed) || utf8(name), digest_size=16, person=b"fanin.v1")`` read as four
    little-endian uint32 words d0..d3; the key is (d0, d1), ``s = d2`` goes into counter word 2,
    d3 is reserved.

    >>> [hex(w) for w in derive_key(0, "")] == [hex(w) for w in derive_key(0, "")]
    True
    """
    digest = hashlib.blake2b(struct.pack("<Q", seed) + name.encode("utf-8"), digest_size=16, person=KEY_PERSON).digest()
    return struct.unpack("<4I", digest)


def philox4x32_10(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, int, int, int]:
    """Philox4x32-10 of one 128-bit counter under a 64-bit key, on Python ints.

    Random123 known-answer vector (counter 0, key 0):

    >>> [f"{w:08x}" for w in philox4x32_10((0, 0, 0, 0), (0, 0))]
    ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    c0, c1, c2, c3 = (int(c) & MASK32 for c in counter)
    k0, k1 = (int(k) & MASK32 for k in key)
    for r in range(ROUNDS):
        if r:
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
        p0 = PHILOX_M0 * c0
        p1 = PHILOX_M1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0, p1 & MASK32, (p0 >> 32) ^ c3 ^ k1, p0 & MASK32)
    return c0, c1, c2, c3


def philox4x32_10_torch(
    c0: torch.Tensor, c1: torch.Tensor | int, c2: torch.Tensor | int, c3: torch.Tensor | int, key: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Philox4x32-10 elementwise over int64 tensors holding uint32 values (any device).

    ``c1``..``c3`` may be Python ints (broadcast). Returns four int64 tensors in [0, 2**32).

    >>> c = torch.zeros(1, dtype=torch.int64)
    >>> [f"{int(w):08x}" for w in philox4x32_10_torch(c, 0, 0, 0, (0, 0))]
    ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    k0, k1 = (int(k) & MASK32 for k in key)
    x0 = c0
    x1 = torch.as_tensor(c1, dtype=torch.int64, device=c0.device).expand_as(c0)
    x2 = torch.as_tensor(c2, dtype=torch.int64, device=c0.device).expand_as(c0)
    x3 = torch.as_tensor(c3, dtype=torch.int64, device=c0.device).expand_as(c0)
    for r in range(ROUNDS):
        if r:
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
        # int64 products wrap mod 2**64: the low 64 bits are the exact 32x32 product. The
        # arithmetic right shift of a "negative" product is undone by the mask.
        p0 = x0 * PHILOX_M0
        p1 = x2 * PHILOX_M1
        x0, x1, x2, x3 = (
            ((p1 >> 32) & MASK32) ^ x1 ^ k0,
            p1 & MASK32,
            ((p0 >> 32) & MASK32) ^ x3 ^ k1,
            p0 & MASK32,
        )
    return x0, x1, x2, x3
