"""The executor: the one check of the random source, the stream key, and values drawn from the key the entry holds."""

import dataclasses

import pytest
import torch

import fanin
from fanin.planning.executor import check_random_source, random_source, stream_key


@pytest.mark.parametrize(
    ("seed", "generator", "message"),
    [
        (-1, None, r"^seed must be None or an int in \[0, 2\*\*64\), got seed=-1 \(int\)$"),
        (True, None, r"^seed must be None or an int in \[0, 2\*\*64\), got seed=True \(bool\)$"),
        (2**64, None, r"^seed must be None or an int in \[0, 2\*\*64\), got seed=18446744073709551616 \(int\)$"),
        (
            None,
            5,
            r"^generator must be None or a torch.Generator \(for counter streams pass seed=int\), got "
            r"generator=5",
        ),
        (
            0,
            torch.Generator(),
            r"^pass seed= \(one counter stream per tensor\) or generator= .*not both; got seed=0 "
            r"and",
        ),
    ],
)
def test_one_check_of_the_random_source(seed, generator, message):
    with pytest.raises(TypeError, match=message):
        check_random_source(seed, generator)


@pytest.mark.parametrize("call", [fanin.plan, fanin.apply, fanin.materialize])
def test_plan_apply_and_materialize_refuse_a_bad_seed_with_the_same_message(call):
    with torch.device("meta" if call is fanin.materialize else "cpu"):
        model = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"^seed must be None or an int in \[0, 2\*\*64\), got seed='1' \(str\)$"):
        call(model, "torch", seed="1")


def test_capture_refuses_a_bad_seed_with_the_same_message():
    with pytest.raises(TypeError, match=r"^seed must be None or an int in \[0, 2\*\*64\), got seed=-3 \(int\)$"):
        fanin.capture(lambda: torch.nn.Linear(2, 2), seed=-3)


def test_the_stream_key_is_the_seed_and_the_canonical_name():
    assert stream_key(3, "_orig_mod.module.fc.weight") == (3, "fc.weight")
    assert stream_key(None, "fc.weight") is None


def test_values_are_drawn_from_the_key_the_entry_holds():
    model = torch.nn.Linear(4, 3)
    p = fanin.plan(model, {"weight": "normal", "bias": "zeros"}, seed=0)
    entry = p["weight"]
    assert entry.stream == (0, "weight")
    source = random_source(entry, None)
    assert (source.seed, source.name) == entry.stream
    # An entry carrying another key draws that key's values: the key is read, not rebuilt from the name.
    moved = dataclasses.replace(p, entries=(dataclasses.replace(entry, stream=(0, "other")), p["bias"]))
    fanin.apply(model, moved)
    expected = torch.empty(3, 4)
    fanin.get("normal")(expected, generator=fanin.Stream(0, "other"))
    assert torch.equal(model.weight, expected)
