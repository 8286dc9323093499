"""Half-broken rule files: parsing, checking and resolution only ever produce
positioned diagnostics, never another exception."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cep.lang import load_text
from cep.lang.fmt import fmt_File

import lang_strategies as S

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "rules").glob("*.cep"))]
SEEDS.append((ROOT / "tests" / "fixtures" / "fmt" / "pricing.in.cep").read_text(encoding="utf-8"))
TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|`[^`\n]*`|[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?[a-z]*|\.\.|[=!<>]=|\S|\s+')
EXTRA = ["then", "next", "where", "as", "(", ")", "{", "}", ",", "|", "0", "3..1", "0s", "not", "idle", "no",
         "optional", "any", "emit", "match", "key", "rule", "test", "given", "expect", '"x"', "==", "[", "]", ".",
         "`a b`", "matches", "count(", "first", "#", "\n", "until", "only", "-"]


def _assert_positioned(text: str):
    rs = load_text(text, path="fuzz.cep", default_key="customer_id")
    n_lines = max(1, text.count("\n") + 1)
    for d in rs.diagnostics:
        assert d.severity in ("error", "warning") and d.message
        assert 1 <= d.span.line <= n_lines + 1, d
        assert d.span.col >= 1, d


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(range(len(SEEDS))), st.lists(
    st.tuples(st.sampled_from(["delete", "insert", "swap"]), st.integers(0, 10**6), st.sampled_from(EXTRA),
              st.integers(0, 10**6)), min_size=1, max_size=4))
def test_mutated_rule_files_give_positioned_diagnostics_only(seed, mutations):
    tokens = TOKEN.findall(SEEDS[seed])
    for kind, i, extra, j in mutations:
        i %= len(tokens)
        if kind == "delete":
            del tokens[i]
        elif kind == "insert":
            tokens.insert(i, " " + extra + " ")
        else:
            j %= len(tokens)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        if not tokens:
            tokens = [" "]
    _assert_positioned("".join(tokens))


@settings(max_examples=80, deadline=None)
@given(S.files)
def test_generated_files_load_without_exceptions(file):
    # syntactically valid but semantically random: every check and the
    # resolution run over nonsense without raising
    _assert_positioned(fmt_File(file))


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('rule match then where {}()"`#.:,|0123456789abc\n')), max_size=80))
def test_random_text_gives_positioned_diagnostics_only(text):
    _assert_positioned(text)
