"""Rules documents from TOML, JSON and dicts: the schema and its errors."""

import json

import pytest
import torch
from torch import nn

import fanin
from fanin.rules import RuleError, load_rules, rules_from_dict

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
    return nn.ModuleDict({"body": nn.Linear(4, 4), "skip": nn.Linear(4, 4), "norm": nn.LayerNorm(4), "head": nn.Linear(4, 2)})


def test_toml_document(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(TOML)
    rules = load_rules(path)
    assert rules.leftovers == "keep"
    assert [str(r) for r in rules][:3] == [
        "name='head.*' -> zeros",
        "module=Linear|Conv2d & role='weight' & ndim>=2 & ~name='skip.*' -> kaiming_normal(mode='fan_out', nonlinearity='relu')",
        r"name~'norm\\.(weight|bias)' -> reset_parameters",
    ]
    p = fanin.plan(model(), rules)
    assert [(e.name, e.rule_index) for e in p] == [
        ("body.weight", 1), ("body.bias", 5), ("skip.weight", 3), ("skip.bias", 5),
        ("norm.weight", 2), ("norm.bias", 2), ("head.weight", 0), ("head.bias", 0),
    ]  # rules 3.. are the bert preset's, appended after the file's


def test_json_document_with_a_table_of_globs(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": {"*.weight": "ones", "*.bias": "zeros"}}))
    m = nn.Linear(3, 2)
    fanin.apply(m, load_rules(path))
    assert torch.equal(m.weight, torch.ones(2, 3)) and torch.count_nonzero(m.bias) == 0


def test_ndim_forms_and_kind():
    r = rules_from_dict({"rules": [{"name": "*", "ndim": "<2", "init": "zeros"}, {"name": "*", "ndim": 2, "init": "ones"},
                                   {"role": "running_var", "kind": "buffer", "init": "ones"}]})
    assert [str(x.select) for x in r] == ["name='*' & ndim<=1", "name='*' & ndim=2", "role='running_var' & kind='buffer'"]
    assert r[2].kind == "buffer"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"rules": [{"name": "*", "init": "zeros", "colour": "red"}]}, "rules[0]: unknown key 'colour'. Accepted keys: exclude, init, kind, module, name, ndim, regex, role."),
        ({"rules": [{"name": "*"}]}, "rules[0]: missing key 'init' (a scheme spec, 'keep', 'reset_parameters' or 'defaults:<framework>')"),
        ({"rules": [{"init": "zeros"}]}, 'rules[0]: a rule needs at least one of module, name, ndim, regex, role (name = "*" matches all)'),
        ({"rules": [{"name": "*", "ndim": "big", "init": "zeros"}]}, "rules[0]: ndim must be an int or '>=n', '<=n', '>n', '<n', '==n', got ndim='big'"),
        ({"rules": [{"module": 3, "init": "zeros"}]}, "rules[0]: module must be a string or a list of strings, got module=3"),
        ({"rules": [{"name": "*", "init": "kaimin_normal"}]}, "rules[0]: Unknown scheme 'kaimin_normal'. Did you mean 'kaiming_normal'"),
        ({"rules": [{"name": "*", "init": "defaults:pytorch"}]}, "rules[0]: Unknown framework 'pytorch'."),
        ({"rules": [{"role": "weights", "init": "zeros"}]}, "rules[0]: Unknown role 'weights'."),
        ({"rules": [{"name": "*", "exclude": "x", "init": "zeros"}]}, "rules[0]: exclude must be a table of selector keys"),
        ({"rules": "zeros", "leftovers": "keep"}, "rules must be a list of rules or a table {glob = init}, got rules='zeros'"),
        ({"rules": [], "leftovers": "drop"}, "Unknown leftovers policy 'drop'."),
    ],
)
def test_schema_errors(doc, message):
    with pytest.raises(RuleError) as info:
        rules_from_dict(doc)
    assert str(info.value).startswith(message), str(info.value)


def test_top_level_key_error():
    with pytest.raises(RuleError, match=r"unknown top-level key 'rule' in a rules document. Accepted keys: leftovers, preset, rules."):
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
