"""Rules documents from TOML, JSON and dicts: the schema and its errors."""

import json
import os
import re

import pytest
import torch
from torch import nn

import fanin
from fanin.rules import RuleError, load_rules, rules_from_dict
from fanin.rules.load import MAX_FILE_BYTES

TOML = """
leftovers = "keep"
preset = "bert"

[[rules]]
name = "head.*"
init = "zeros"

[[rules]]
module = ["Linear", "Conv2d"]
role = "weight"
ndim = ">=2"
exclude = {name = "skip.*"}
init = {name = "kaiming_normal", args = {mode = "fan_out", nonlinearity = "relu"}}

[[rules]]
regex = 'norm\\.(weight|bias)'
init = "reset_parameters"
"""


def model():
    return nn.ModuleDict(
        {"body": nn.Linear(4, 4), "skip": nn.Linear(4, 4), "norm": nn.LayerNorm(4), "head": nn.Linear(4, 2)}
    )


def test_toml_document(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(TOML)
    rules = load_rules(path)
    assert rules.leftovers == "keep"
    assert [str(r) for r in rules][:3] == [
        "name='head.*' -> zeros",
        "module=Linear|Conv2d & role='weight' & ndim>=2 & ~name='skip.*' -> kaiming_normal(mode='fan_out', "
        "nonlinearity='relu')",
        r"name~'norm\\.(weight|bias)' -> reset_parameters",
    ]
    p = fanin.plan(model(), rules)
    assert [(e.name, e.rule_index) for e in p] == [
        ("body.weight", 1),
        ("body.bias", 5),
        ("skip.weight", 3),
        ("skip.bias", 5),
        ("norm.weight", 2),
        ("norm.bias", 2),
        ("head.weight", 0),
        ("head.bias", 0),
    ]  # rules 3.. are the bert preset's, appended after the file's


def test_json_document_with_a_table_of_globs(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": {"*.weight": "ones", "*.bias": "zeros"}}))
    m = nn.Linear(3, 2)
    fanin.apply(m, load_rules(path))
    assert torch.equal(m.weight, torch.ones(2, 3)) and torch.count_nonzero(m.bias) == 0


def test_ndim_forms_and_kind():
    r = rules_from_dict(
        {
            "rules": [
                {"name": "*", "ndim": "<2", "init": "zeros"},
                {"name": "*", "ndim": 2, "init": "ones"},
                {"role": "running_var", "kind": "buffer", "init": "ones"},
            ]
        }
    )
    assert [str(x.select) for x in r] == [
        "name='*' & ndim<=1",
        "name='*' & ndim=2",
        "role='running_var' & kind='buffer'",
    ]
    assert r[2].kind == "buffer"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"rules": [{"name": "*", "init": "zeros", "colour": "red"}]},
            "rules[0]: unknown key 'colour'. Accepted keys: exclude, init, kind, module, name, ndim, regex, role.",
        ),
        (
            {"rules": [{"name": "*"}]},
            "rules[0]: missing key 'init' (a scheme spec, 'keep', 'reset_parameters' or 'defaults:<framework>')",
        ),
        (
            {"rules": [{"init": "zeros"}]},
            'rules[0]: a rule needs at least one of module, name, ndim, regex, role (name = "*" matches all)',
        ),
        (
            {"rules": [{"name": "*", "ndim": "big", "init": "zeros"}]},
            "rules[0]: ndim must be an int or '>=n', '<=n', '>n', '<n', '==n', got ndim='big'",
        ),
        (
            {"rules": [{"module": 3, "init": "zeros"}]},
            "rules[0]: module must be a string or a list of strings, got module=3",
        ),
        (
            {"rules": [{"name": "*", "init": "kaimin_normal"}]},
            "rules[0]: init: Unknown scheme 'kaimin_normal'. Did you mean 'kaiming_normal'",
        ),
        ({"rules": [{"name": "*", "init": "defaults:pytorch"}]}, "rules[0]: init: Unknown framework 'pytorch'."),
        ({"rules": [{"role": "weights", "init": "zeros"}]}, "rules[0]: Unknown role 'weights'."),
        (
            {"rules": [{"name": "*", "exclude": "x", "init": "zeros"}]},
            "rules[0]: exclude must be a table of selector keys",
        ),
        (
            {"rules": "zeros", "leftovers": "keep"},
            "rules must be a list of rules or a table {glob = init}, got rules='zeros'",
        ),
        ({"rules": [], "leftovers": "drop"}, "leftovers: Unknown leftovers policy 'drop'."),
    ],
)
def test_schema_errors(doc, message):
    with pytest.raises(RuleError) as info:
        rules_from_dict(doc)
    assert str(info.value).startswith(message), str(info.value)


def test_top_level_key_error():
    with pytest.raises(
        RuleError, match=r"unknown top-level key 'rule' in a rules document. Accepted keys: leftovers, preset, rules."
    ):
        rules_from_dict({"rule": []})


def test_file_errors(tmp_path):
    with pytest.raises(RuleError, match=r"Rules files are .toml or .json, got path='r.yaml'"):
        load_rules("r.yaml")
    with pytest.raises(RuleError, match=r"Cannot read rules file '.*missing.toml': No such file or directory"):
        load_rules(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("rules = [")
    with pytest.raises(RuleError, match=r"Cannot parse rules file '.*bad.toml': "):
        load_rules(bad)
    arr = tmp_path / "arr.json"
    arr.write_text("[1]")
    with pytest.raises(RuleError, match=r"Rules file '.*arr.json' must hold a table/object, got list"):
        load_rules(arr)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"rules": [{"init": "zeros"}]}))
    with pytest.raises(RuleError, match=r".*wrong.json: rules\[0\]: a rule needs at least one of"):
        load_rules(wrong)


# --- strict and bounded reading -------------------------------------------------------------------


def test_json_duplicate_key_is_an_error(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"rules": [{"name": "*", "init": "zeros", "init": "ones"}]}')
    with pytest.raises(RuleError) as info:
        load_rules(path)
    assert str(info.value) == f"Cannot parse rules file {str(path)!r}: key 'init' given twice in one object"
    top = tmp_path / "dup_top.json"
    top.write_text('{"leftovers": "keep", "leftovers": "error", "rules": []}')
    with pytest.raises(RuleError, match=r"key 'leftovers' given twice in one object"):
        load_rules(top)
    table = tmp_path / "dup_table.json"
    table.write_text('{"rules": {"*.weight": "ones", "*.weight": "zeros"}}')
    with pytest.raises(RuleError, match=r"key '\*\.weight' given twice in one object"):
        load_rules(table)


@pytest.mark.parametrize(
    "text",
    [
        '[[rules]]\nname = "*"\ninit = "zeros"\ninit = "ones"\n',
        'leftovers = "keep"\nleftovers = "error"\n',
        '[rules]\n"*.weight" = "ones"\n"*.weight" = "zeros"\n',
    ],
    ids=["rule-key", "top-level", "glob-table"],
)
def test_toml_duplicate_key_is_an_error(tmp_path, text):
    # tomllib refuses a key defined twice itself: checked here so that it stays so
    path = tmp_path / "dup.toml"
    path.write_text(text)
    with pytest.raises(
        RuleError, match=rf"^Cannot parse rules file {re.escape(repr(str(path)))}: Cannot overwrite a value"
    ):
        load_rules(path)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"preset": 5},
            "preset must be a preset name such as 'torch' or 'gpt2(n_layer=24)', or a list of them, got preset=5 (int)",
        ),
        (
            {"preset": ["torch", 5]},
            "preset must be a preset name such as 'torch' or 'gpt2(n_layer=24)', or a list of them, got "
            "preset=['torch', 5] (list)",
        ),
        ({"preset": "bret"}, "preset: Unknown preset 'bret'. Did you mean 'bert' or 'resnet'?"),
        (
            {"preset": ["torch", "gpt2(n_layer=2, std=nan)"]},
            "preset[1]: DepthScaledNormal needs a finite std > 0, got std=nan",
        ),
        (
            {"leftovers": 5, "rules": []},
            "leftovers: Unknown leftovers policy 5. Accepted: 'error', 'keep', 'reset_parameters'.",
        ),
        (
            {"rules": [{"name": "*", "kind": "buffers", "init": "zeros"}]},
            "rules[0]: kind: Unknown rule kind 'buffers'. Did you mean 'buffer'? Accepted: 'any', 'buffer', "
            "'parameter'.",
        ),
        (
            {"rules": [{"name": "*", "kind": 5, "init": "zeros"}]},
            "rules[0]: kind: Unknown rule kind 5. Accepted: 'any', 'buffer', 'parameter'.",
        ),
        ({"rules": ["zeros"]}, "rules[0]: a rule is a table/object with selector keys and init, got 'zeros' (str)"),
        (
            {"rules": [[{"name": "*"}]]},
            "rules[0]: a rule is a table/object with selector keys and init, got [{'name': '*'}] (list)",
        ),
        ({"rules": 5}, "rules must be a list of rules or a table {glob = init}, got rules=5 (int)"),
        ({"rules": [{"name": 5, "init": "zeros"}]}, "rules[0]: Name needs a non-empty str pattern, got pattern=5"),
        (
            {"rules": [{"regex": "(a)\\1", "init": "zeros"}]},
            "rules[0]: Name got an invalid regex pattern='(a)\\\\1': invalid escape sequence",
        ),
        ({"rules": [{"name": "*", "init": 5}]}, "rules[0]: init: A rule's init is a scheme spec"),
        ({"rules": [{"name": "*", "init": ["zeros"]}]}, "rules[0]: init: A rule's init is a scheme spec"),
        (
            {"rules": [{"name": "*", "init": {"name": "normal", "args": {"std": "x"}}}]},
            "rules[0]: init: normal: std must be a finite number, got std='x'",
        ),
        (
            {"rules": [{"name": "*", "init": {"name": "normal", "args": [1]}}]},
            "rules[0]: init: A scheme config's 'args' must be a dict, got args=[1]",
        ),
        ({"rules": [{"name": "*", "init": {"name": 5}}]}, "rules[0]: init: Unknown scheme 5."),
        (
            {"rules": [{"name": "*", "init": "normal(std=inf)"}]},
            "rules[0]: init: normal: std must be a finite number, got std=inf",
        ),
        (
            {"rules": [{"name": "*", "init": "normal(std=0.02, std=3.0)"}]},
            "rules[0]: init: Cannot read scheme spec 'normal(std=0.02, std=3.0)': argument 'std' given twice",
        ),
        ({"rules": [{"name": "*", "ndim": "<0", "init": "zeros"}]}, "rules[0]: no tensor has ndim <0"),
        ({"rules": [{"name": "*", "ndim": ">=99999", "init": "zeros"}]}, "rules[0]: ndim must be an int or '>=n'"),
        (
            {
                "rules": [
                    {
                        "name": "*",
                        "exclude": {"exclude": {"exclude": {"exclude": {"exclude": {"name": "x"}}}}},
                        "init": "zeros",
                    }
                ]
            },
            "rules[0].exclude.exclude.exclude.exclude: exclude tables nest at most 4 levels deep",
        ),
        (
            {"rules": [{"name": "x" * 5000, "init": "zeros"}]},
            "rules[0]: Name patterns are at most 1000 characters, got pattern='xxxx",
        ),
        ({"rules": {5: "zeros"}}, "rules[0]: the keys of a rules table are name globs, got 5 (int)"),
        ({"rules": [{"name": "*", "init": "zeros"}] * 1001}, "a rules document holds at most 1000 rules, got 1001"),
        (
            {"preset": ["bert"] * 500},
            "a rules document holds at most 1000 rules, its presets included; preset=['bert', 'bert',",
        ),
        (
            {"rules": [{"module": "M" * 1001, "init": "zeros"}]},
            "rules[0]: Module class names are at most 1000 characters, got 'MMMM",
        ),
    ],
)
def test_wrong_types_and_values_name_the_rule_and_what_is_accepted(doc, message):
    with pytest.raises(RuleError) as info:
        rules_from_dict(doc)
    assert str(info.value).startswith(message), str(info.value)
    assert len(str(info.value)) < 2000  # bad input is quoted as an excerpt (lists of accepted names may be long)


def test_hostile_values_are_quoted_as_an_excerpt(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(
        json.dumps({"rules": [{"name": "*", "init": {"name": "normal", "args": {"std": ["x"] * 100_000}}}]})
    )
    with pytest.raises(RuleError) as info:
        load_rules(path)
    assert (
        str(info.value)
        == f"{path}: rules[0]: init: normal: std must be a finite number, got std=['x', 'x', 'x', 'x', 'x', 'x', 'x', "
        f"'x', ...]"
    )


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_deep_nesting_is_a_rule_error(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    value = "[" * 50_000 + "]" * 50_000
    path.write_text(f'{{"rules": {value}}}' if suffix == ".json" else f"rules = {value}\n")
    with pytest.raises(RuleError, match=rf"^Cannot parse rules file .*deep\{suffix}': it nests too deeply$"):
        load_rules(path)


def test_files_that_are_not_regular_or_too_large(tmp_path):
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    with pytest.raises(RuleError, match=r"^Cannot read rules file '.*dir\.toml': it is a directory$"):
        load_rules(directory)
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)  # opening a FIFO with no writer would block forever: refused before open
    with pytest.raises(
        RuleError,
        match=r"^Cannot read rules file '.*pipe\.toml': it is not a regular file \(a FIFO, socket or device\)$",
    ):
        load_rules(fifo)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(RuleError, match=r"it is not a regular file"):
        load_rules(link)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(
        RuleError,
        match=rf"^Rules file '.*big\.toml' is {MAX_FILE_BYTES + 1} bytes; rules files are at most {MAX_FILE_BYTES} "
        rf"bytes$",
    ):
        load_rules(big)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe rules")
    with pytest.raises(RuleError, match=r"Cannot parse rules file '.*bin\.toml': 'utf-8' codec can't decode byte 0xff"):
        load_rules(binary)


def test_every_failure_of_a_hostile_file_is_a_rule_error(tmp_path):
    # What `fanin explain --rules FILE` catches: nothing else may escape from load_rules.
    cases = [
        "preset = 5",
        'preset = ["torch", 3]',
        "leftovers = 1",
        'kind = "x"',
        "rules = 3",
        "rules = [1, 2]",
        '[[rules]]\nname = "*"\nkind = "foo"\ninit = "zeros"',
        '[[rules]]\nname = "*"\ninit = 5',
        '[[rules]]\nname = "*"\ninit = {name = "keras.constant", args = {value = [[[[[[[[[[1]]]]]]]]]]}}',
        '[[rules]]\nname = "*"\ninit = {name = "normal", args = {std = nan}}',
        '[[rules]]\nname = "*"\ninit = {name = "normal", args = {std = 1e400}}',
        '[[rules]]\nregex = "(?=x)"\ninit = "zeros"',
        '[[rules]]\nmodule = [1]\ninit = "zeros"',
        '[[rules]]\nrole = {a = 1}\ninit = "zeros"',
        '[[rules]]\nndim = 1.5\ninit = "zeros"',
        '[[rules]]\nname = "*"\ninit = "gpt2"',
        'preset = "gpt2(n_layer=0)"',
        'preset = "' + "(" * 300 + '"',
        '[rules]\n"*" = {name = "normal", args = {std = 0.1}, extra = 1}',
    ]
    for i, text in enumerate(cases):
        path = tmp_path / f"case{i}.toml"
        path.write_text(text + "\n")
        with pytest.raises(RuleError) as info:
            load_rules(path)
        assert str(info.value).startswith(("Cannot", f"{path}: ", "Rules file")), (text, str(info.value))


def test_a_file_that_grows_after_its_size_is_checked(tmp_path, monkeypatch):
    import fanin.rules.load as load_module

    path = tmp_path / "grows.toml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 10))
    real = os.stat

    def small(p, *args, **kwargs):  # the size seen before the file grew
        st = real(p, *args, **kwargs)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 10, 0, 0, 0))

    monkeypatch.setattr(load_module.os, "stat", small)
    with pytest.raises(
        RuleError,
        match=rf"^Rules file '.*grows\.toml' is larger than {MAX_FILE_BYTES} bytes, the limit for rules files$",
    ):
        load_rules(path)


def test_a_bytes_path_is_refused():
    with pytest.raises(RuleError, match=r"^A rules file path is a str or os.PathLike, got b'r.toml'$"):
        load_rules(b"r.toml")  # type: ignore[arg-type]
