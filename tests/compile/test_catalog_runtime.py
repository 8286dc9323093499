"""SPEC §2 event catalog at run time, and §5 CSV cells typed through it."""

from __future__ import annotations

import pytest

from cep.compile.catalog import catalog_validator, csv_typer
from cep.lang import ast
from cep.lang.build import parse_text

CATALOG_TEXT = """
event add_to_cart { sku: str, price: float, qty: int, gift: bool?, tags: list?, meta: map?, extra: any }
event page_view   { page: str, referrer: str? }
event heartbeat
"""


def _catalog() -> dict[str, ast.EventDecl]:
    file, diagnostics = parse_text(CATALOG_TEXT, "catalog.cep")
    assert diagnostics == []
    return {item.name: item for item in file.items}


CART = {"sku": "A1", "price": 9.5, "qty": 2, "extra": "x"}


@pytest.mark.parametrize(
    ("type_name", "event"),
    [
        ("add_to_cart", CART),
        ("add_to_cart", {**CART, "price": 10}),  # an int fits a float field
        ("add_to_cart", {**CART, "gift": None, "tags": None, "meta": None}),  # optional may be null
        ("add_to_cart", {**CART, "gift": True, "tags": [1, "a"], "meta": {"k": 1}}),
        ("add_to_cart", {**CART, "extra": [1, {"a": None}]}),  # any takes every non-null value
        ("add_to_cart", {**CART, "undeclared": object()}),  # undeclared fields pass unchecked
        ("page_view", {"page": "/pricing"}),  # optional may be absent
        ("heartbeat", {"whatever": 1}),
        ("not_declared", {"page": 3}),  # undeclared types pass unchecked
    ],
)
def test_events_that_fit_their_declaration_pass(type_name, event):
    assert catalog_validator(_catalog())(type_name, event) is None


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({k: v for k, v in CART.items() if k != "price"},
         "field 'price' is missing; the catalog declares it on add_to_cart as float"),
        ({**CART, "price": "9.5"}, "field 'price' is a str; the catalog declares it on add_to_cart as float"),
        ({**CART, "qty": 2.0}, "field 'qty' is a float; the catalog declares it on add_to_cart as int"),
        ({**CART, "qty": True}, "field 'qty' is a bool; the catalog declares it on add_to_cart as int"),
        ({**CART, "price": False}, "field 'price' is a bool; the catalog declares it on add_to_cart as float"),
        ({**CART, "sku": None},
         "field 'sku' is null; the catalog declares it on add_to_cart as str, not optional (str?)"),
        ({**CART, "extra": None},
         "field 'extra' is null; the catalog declares it on add_to_cart as any, not optional (any?)"),
        ({**CART, "gift": "yes"}, "field 'gift' is a str; the catalog declares it on add_to_cart as bool"),
        ({**CART, "tags": {"a": 1}}, "field 'tags' is a map; the catalog declares it on add_to_cart as list"),
        ({**CART, "meta": [1]}, "field 'meta' is a list; the catalog declares it on add_to_cart as map"),
        ({**CART, "sku": 7}, "field 'sku' is an int; the catalog declares it on add_to_cart as str"),
    ],
)
def test_a_misfit_names_the_field_and_the_reason(event, reason):
    assert catalog_validator(_catalog())("add_to_cart", event) == reason


def test_an_empty_catalog_lets_everything_through():
    assert catalog_validator({})("add_to_cart", {}) is None


def test_csv_cells_of_declared_fields_take_the_declared_type():
    row = {"type": "add_to_cart", "sku": "A1", "price": "12.5", "qty": "3", "gift": "TRUE",
           "tags": '["a", 1]', "meta": '{"k": 2}', "extra": "7", "note": "12"}
    assert csv_typer(_catalog())("add_to_cart", row) == {
        "type": "add_to_cart", "sku": "A1", "price": 12.5, "qty": 3, "gift": True,
        "tags": ["a", 1], "meta": {"k": 2}, "extra": "7", "note": "12"}


def test_an_empty_csv_cell_is_a_missing_field():
    row = {"type": "page_view", "page": "/home", "referrer": "", "other": ""}
    assert csv_typer(_catalog())("page_view", row) == {"type": "page_view", "page": "/home"}


def test_csv_cells_of_undeclared_types_stay_text():
    assert csv_typer(_catalog())("mystery", {"price": "12.5"}) == {"price": "12.5"}


def test_a_csv_float_cell_reads_ints_and_leaves_the_result_a_float():
    assert csv_typer(_catalog())("add_to_cart", {"price": "1500"}) == {"price": 1500.0}


@pytest.mark.parametrize(
    ("column", "cell"),
    [("price", "abc"), ("price", "nan"), ("qty", "2.5"), ("gift", "maybe"), ("tags", "[1"), ("meta", "[1]")],
)
def test_an_unconvertible_csv_cell_stays_text_and_the_validator_rejects_it(column, cell):
    typed = csv_typer(_catalog())("add_to_cart", {**{k: str(v) for k, v in CART.items()}, column: cell})
    assert typed[column] == cell and catalog_validator(_catalog())("add_to_cart", typed) is not None


def test_a_typed_csv_row_passes_the_validator():
    row = {"sku": "A1", "price": "9.50", "qty": "2", "extra": "x", "gift": ""}
    cat = _catalog()
    assert catalog_validator(cat)("add_to_cart", csv_typer(cat)("add_to_cart", row)) is None
