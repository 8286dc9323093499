"""The formatter: canonical layout, comments kept, idempotent, and every
generated AST survives a render/parse round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from cep.lang import ast
from cep.lang.build import parse_text
from cep.lang.fmt import fmt_File, format_text

import lang_strategies as S

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fmt"
RULES = Path(__file__).resolve().parents[2] / "rules"
CASES = sorted(FIXTURES.glob("*.in.cep"))


@pytest.mark.parametrize("src", CASES, ids=[c.name for c in CASES])
def test_fixture_formats_to_expected_layout(src):
    expected = src.with_name(src.name.replace(".in.cep", ".out.cep")).read_text(encoding="utf-8")
    got, diags = format_text(src.read_text(encoding="utf-8"))
    assert diags == []
    assert got == expected
    assert format_text(got)[0] == got


@pytest.mark.parametrize("path", sorted(RULES.glob("*.cep")), ids=lambda p: p.name)
def test_rule_pack_keeps_its_meaning_and_every_comment(path):
    text = path.read_text(encoding="utf-8")
    out, diags = format_text(text)
    before, after = parse_text(text)[0], parse_text(out)[0]
    assert diags == [] and before == after
    assert sorted(c.text for c in before.comments) == sorted(c.text for c in after.comments)
    assert format_text(out)[0] == out


def test_a_file_with_syntax_errors_is_not_formatted():
    out, diags = format_text("rule r match a then\n")
    assert out is None and diags[0].message.startswith("expected a step after 'then'")


def test_minimal_parentheses_follow_precedence():
    src = 'rule r key k match a where (x == 1 or y == 2) and not (z > 1) and (1 + 2) * 3 > -(p) and (a - (b - c)) > 0\n'
    out, _ = format_text(src)
    assert "where (x == 1 or y == 2) and not z > 1 and (1 + 2) * 3 > -p and a - (b - c) > 0" in out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(S.files)
def test_generated_asts_round_trip_through_the_formatter(file):
    text = fmt_File(file)
    parsed, diags = parse_text(text)
    assert diags == [], text
    assert parsed.items == file.items, text
    once = fmt_File(parsed, text)  # with positions: event runs aligned
    assert format_text(once)[0] == once


@settings(max_examples=100, deadline=None)
@given(S.files)
def test_formatting_is_idempotent_with_comments(file):
    text = fmt_File(file)
    lines = text.split("\n")[:-1]
    # a comment of its own before every line, and one trailing each item header
    commented = "\n".join(f"# c{i}\n{line}" if line and not line.startswith(" ") else line
                          for i, line in enumerate(lines)) + "\n"
    once, diags = format_text(commented)
    assert diags == []
    assert format_text(once)[0] == once
    assert sorted(c.text for c in parse_text(once)[0].comments) == \
        sorted(c.text for c in parse_text(commented)[0].comments)


def test_a_long_payload_is_written_one_field_a_line_and_reads_back_the_same():
    from cep.lang.build import parse_text
    from cep.lang.fmt import format_text

    fields = ", ".join(f"field_{i}: count(views)" for i in range(8))
    text = f"rule r\n  key customer_id\n  match 3 page_view as views\n  emit offer {{ {fields} }}\n"
    out, diags = format_text(text)
    assert not diags
    assert "  emit offer {\n    field_0: count(views),\n" in out and out.endswith("    field_7: count(views)\n  }\n")
    assert parse_text(out)[0] == parse_text(text)[0] and format_text(out)[0] == out


def test_the_rule_pack_is_in_canonical_layout():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cep = Path(sys.executable).with_name("cep")
    proc = subprocess.run([str(cep), "fmt", "--check", "rules/"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
