"""Philox4x32-10 against Random123's known-answer vectors, and fanin's key derivation."""

import hashlib
import struct

import pytest
import torch

from fanin.rng.philox import derive_key, philox4x32_10, philox4x32_10_torch

# Random123 tests/kat_vectors, philox4x32 10 rounds: (counter, key, expected output).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_python_philox_matches_random123(counter, key, expected):
    assert philox4x32_10(counter, key) == expected


def test_torch_philox_matches_random123_in_one_batch():
    ctr = [torch.tensor([c[i] for c, _, _ in KAT], dtype=torch.int64) for i in range(4)]
    for n, (_, key, expected) in enumerate(KAT):
        out = philox4x32_10_torch(ctr[0][n : n + 1], ctr[1][n : n + 1], ctr[2][n : n + 1], ctr[3][n : n + 1], key)
        assert tuple(int(w) for w in out) == expected


def test_torch_philox_equals_python_on_random_counters():
    g = torch.Generator().manual_seed(0)
    c = torch.randint(0, 2**32, (4, 500), generator=g, dtype=torch.int64)
    key = (0x12345678, 0x9ABCDEF0)
    out = torch.stack(philox4x32_10_torch(c[0], c[1], c[2], c[3], key))
    for j in range(0, 500, 37):
        assert tuple(out[:, j].tolist()) == philox4x32_10(tuple(c[:, j].tolist()), key)


def test_key_is_blake2b_of_seed_and_name_as_specified():
    digest = hashlib.blake2b(struct.pack("<Q", 5) + b"a.b", digest_size=16, person=b"fanin.v1").digest()
    assert derive_key(5, "a.b") == struct.unpack("<4I", digest)
    assert derive_key(5, "a.b") != derive_key(6, "a.b")
    assert derive_key(5, "a.b") != derive_key(5, "a.c")
