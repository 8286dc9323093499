"""The engine as the dataflow sees it: one object per process (`Env`) that
loads the rules once and hands out intakes, matchers and the routing table.

Kept apart from `dataflow.py` so the dataflow only speaks to these few
calls, and so another process (`--processes`) can rebuild the same Env from
the rule paths and settings alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from cep.engine.model import StreamSettings


class RuleErrors(Exception):
    """The rule files have errors: `ruleset` carries the diagnostics."""

    def __init__(self, ruleset):
        super().__init__("the rules have errors")
        self.ruleset = ruleset


@dataclass(frozen=True, slots=True)
class EnvSpec:
    """How to build an Env (picklable, for the other processes)."""

    rules: tuple[str, ...]
    default_key: str | None
    settings: StreamSettings
    max_runs_per_key: int = 1000


def load_program(rules: tuple[str, ...] | list[str], default_key: str | None):
    """(ruleset, program); raises RuleErrors when the rules do not check."""
    from cep.compile import compile_ruleset
    from cep.lang import load

    ruleset = load(list(rules), default_key=default_key)
    if ruleset.has_errors:
        raise RuleErrors(ruleset)
    return ruleset, compile_ruleset(ruleset)


def _group_types(program, group) -> frozenset | None:
    """The event types the rules of a key group can be affected by; None when
    one of them can be affected by every type (architecture: matched against)."""
    types: set = set()
    for index in group.rules:
        rule = program.rules[index]
        if rule.all_types:
            return None
        types |= rule.types
    return frozenset(types)


# catalog field type -> the exact Python types orjson gives that certainly fit it
_FITS = {"str": (str,), "int": (int,), "float": (float, int), "bool": (bool,), "list": (list,), "map": (dict,)}


def _field_check(field: str, kinds: frozenset | None):
    if kinds is None:
        return lambda event: event.get(field) is not None  # `any`, not optional: present and not null
    # missing reads as None: only an optional field's kinds hold NoneType
    return lambda event: type(event.get(field)) in kinds


def _all_checks(checks: list):
    if len(checks) == 1:
        return checks[0]
    return lambda event: all(check(event) for check in checks)


def catalog_checks(catalog: dict) -> dict:
    """type name -> `check(event) -> bool`, True only when the catalog
    validator would accept the event (§2: declared fields present with their
    types); a type without an entry needs no check (undeclared, or no declared
    fields). False means "ask the validator", which then words the verdict; so
    this only saves the validator's call for the events that fit, with a set
    lookup per declared field."""
    checkers: dict = {}
    for name, decl in catalog.items():
        checks: list | None = []
        for f in decl.fields:
            if f.type == "any":
                if not f.optional:
                    checks.append(_field_check(f.name, None))
                continue
            kinds = _FITS.get(f.type)
            if kinds is None:  # a field type this table does not know: always ask the validator
                checks = None
                break
            checks.append(_field_check(f.name, frozenset(kinds) | ({type(None)} if f.optional else frozenset())))
        if checks is None:
            checkers[name] = lambda event: False
        elif checks:
            checkers[name] = _all_checks(checks)
        # no declared fields: nothing to check, as for an undeclared type
    return checkers


def catalog_precheck(catalog: dict):
    """`fits(type_name, event) -> bool` over `catalog_checks`."""
    checkers = catalog_checks(catalog)

    def fits(type_name: str, event: dict) -> bool:
        check = checkers.get(type_name)
        return check is None or check(event)

    return fits


class Env:
    def __init__(self, spec: EnvSpec, ruleset=None, program=None):
        from cep.compile.catalog import catalog_validator, csv_typer
        from cep.engine.intake import field_getter

        if program is None:
            ruleset, program = load_program(spec.rules, spec.default_key)
        self.spec = spec
        self.ruleset = ruleset
        self.program = program
        self.settings = spec.settings
        self._validator = catalog_validator(ruleset.catalog) if ruleset.catalog else None
        self.validator = self._validator  # (type, event) -> None or the reason; None: no catalog
        self.catalog_checks = catalog_checks(ruleset.catalog) if ruleset.catalog else {}
        self.csv_typer = None
        if ruleset.catalog:
            typer = csv_typer(ruleset.catalog)
            type_column = spec.settings.type_field  # a CSV column name, taken whole

            def type_row(row: dict) -> dict:
                return typer(row.get(type_column), row)

            self.csv_typer = type_row
        self.type_of = field_getter(spec.settings.type_field)
        # [(group index, group, the event types it can use or None for every type)]
        self.groups = [(g.index, g.index, _group_types(program, g)) for g in program.key_groups]
        self.key_of = program.key_of

    def intake(self, partition: int, source: str):
        """The partition's Intake: `read(event, offset, raw)` -> (ts, event) or a
        DeadLetter; `watermark` and `max_ts` after the events so far."""
        from cep.engine.intake import Intake

        return Intake(self.settings, self._validator, partition=partition, source=source)

    def matcher(self):
        from cep.engine.matcher import Matcher

        return Matcher(self.program, max_runs_per_key=self.spec.max_runs_per_key,
                       type_field=self.settings.type_field)

    def restore_matcher(self, data: bytes):
        from cep.engine.matcher import Matcher

        return Matcher.restore(self.program, data)
