"""The event catalog at run time (SPEC §2 "Event catalog", §5 CSV inputs).

- `catalog_validator(catalog)`: does an event of a declared type fit its
  declaration? None when it does, else one sentence naming the field and why.
- `csv_typer(catalog)`: CSV cells (and Redis hash entries) are text; the
  declared fields are converted to their declared types, so that
  `amount >= 1000` compares numbers.

Both are closures over tables built once, so the per-event cost is a dict
lookup and one isinstance per declared field.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import orjson

from cep.lang import ast

Validator = Callable[[str, dict], "str | None"]
Typer = Callable[["str | None", dict], dict]


def _fits(kind: str, value: object) -> bool:
    """Does a present, non-null JSON value fit a declared field type?"""
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return type(value) is int  # a bool is not an int (JSON true is not 1)
    if kind == "float":
        return type(value) is float or type(value) is int  # §2: an int fits a float field
    if kind == "bool":
        return type(value) is bool
    if kind == "list":
        return isinstance(value, list)
    if kind == "map":
        return isinstance(value, dict)
    if kind == "any":
        return True
    raise ValueError(f"unknown catalog field type {kind!r}")  # the checker admits only the seven


def json_type_name(value: object) -> str:
    """The catalog's name for a JSON value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def _article(word: str) -> str:
    return "an" if word[:1] in ("a", "i") else "a"


_Table = tuple[tuple[str, str, bool], ...]  # (field name, type, optional)


def catalog_validator(catalog: dict[str, ast.EventDecl]) -> Validator:
    """`validate(type_name, event) -> None | reason`. Undeclared types and
    fields not in the declaration pass unchecked (§1, §2)."""
    tables: dict[str, _Table] = {
        name: tuple((f.name, f.type, f.optional) for f in decl.fields) for name, decl in catalog.items()
    }
    for table in tables.values():
        for _, kind, _ in table:
            _fits(kind, None)  # fail at build time, not per event, on a type the checker let through

    def validate(type_name: str, event: dict) -> str | None:
        table = tables.get(type_name)
        if table is None:
            return None
        for name, kind, optional in table:
            if name not in event:
                if optional:
                    continue
                return f"field '{name}' is missing; the catalog declares it on {type_name} as {kind}"
            value = event[name]
            if value is None:
                if optional:
                    continue
                return (f"field '{name}' is null; the catalog declares it on {type_name} as {kind}, "
                        f"not optional ({kind}?)")
            if not _fits(kind, value):
                got = json_type_name(value)
                return f"field '{name}' is {_article(got)} {got}; the catalog declares it on {type_name} as {kind}"
        return None

    return validate


# -- CSV cells ---------------------------------------------------------------


def _cell_int(text: str) -> object:
    try:
        return int(text.strip())
    except ValueError:
        return text


def _cell_float(text: str) -> object:
    try:
        number = float(text.strip())
    except ValueError:
        return text
    # "nan"/"inf" are not JSON numbers; left as text, the validator names the field
    return number if math.isfinite(number) else text


def _cell_bool(text: str) -> object:
    lowered = text.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return text


def _cell_json(kind: type) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        return value if isinstance(value, kind) else text

    return convert


def _cell_text(text: str) -> object:
    return text


_CONVERT: dict[str, Callable[[str], object]] = {
    "str": _cell_text,
    "int": _cell_int,
    "float": _cell_float,
    "bool": _cell_bool,
    "list": _cell_json(list),
    "map": _cell_json(dict),
    "any": _cell_text,  # nothing says what it should be: the cell's text is the value
}


def csv_typer(catalog: dict[str, ast.EventDecl]) -> Typer:
    """`type_row(type_name, row) -> event`: a new dict in which an empty cell is
    a missing field (§5), the declared fields of a declared type hold their
    declared type, and every other column stays text. A cell that cannot be
    converted (`"abc"` for an int) stays text, so the catalog validator then
    dead-letters the event naming the field, rather than the value vanishing."""
    converters: dict[str, dict[str, Callable[[str], object]]] = {
        name: {f.name: _CONVERT[f.type] for f in decl.fields} for name, decl in catalog.items()
    }

    def type_row(type_name: str | None, row: dict) -> dict:
        convert = converters.get(type_name) if isinstance(type_name, str) else None
        out: dict = {}
        for column, cell in row.items():
            if cell is None or cell == "":
                continue
            if convert is not None and isinstance(cell, str):
                fn = convert.get(column)
                if fn is not None:
                    cell = fn(cell)
            out[column] = cell
        return out

    return type_row
