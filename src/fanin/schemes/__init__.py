"""Schemes: the registry, bound schemes, spec parsing and the checks every scheme shares."""

from fanin.schemes.registry import FAMILIES, SchemeEntry, list_schemes, lookup, register
from fanin.schemes.scheme import Scheme
from fanin.schemes.spec import get, parse_spec

__all__ = ["FAMILIES", "Scheme", "SchemeEntry", "get", "list_schemes", "lookup", "parse_spec", "register"]
