"""Every ```cep block in README.md and docs/*.md compiles, so the examples in
the docs never rot.

A block is a complete rule file unless its first line says otherwise:
- `# fragment` marks a piece that is not a file on its own (a lone step, an
  expression); it is not compiled.  Keep these few.
- `# rejected` marks an example of a mistake; it must produce at least one
  error, so the docs never show as wrong something cep accepts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cep.lang import load_text

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```cep[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            found.append((doc.name, text.count("\n", 0, m.start()) + 1, m.group(1)))
    return found


BLOCKS = _blocks()
COMPLETE = [b for b in BLOCKS if not b[2].lstrip().startswith(("# fragment", "# rejected"))]
REJECTED = [b for b in BLOCKS if b[2].lstrip().startswith("# rejected")]
FRAGMENTS = [b for b in BLOCKS if b[2].lstrip().startswith("# fragment")]


def _compile(text: str):
    # No default key: a doc example must show its key clause.
    return load_text(text, default_key=None)


def _errors(ruleset) -> list[str]:
    return [f"{d.span.line}:{d.span.col}: {d.message}" for d in ruleset.diagnostics if d.is_error]


@pytest.mark.parametrize("doc,line,text", COMPLETE, ids=[f"{d}:{n}" for d, n, _ in COMPLETE])
def test_doc_example_compiles(doc, line, text):
    assert _errors(_compile(text)) == []


@pytest.mark.parametrize("doc,line,text", REJECTED, ids=[f"{d}:{n}" for d, n, _ in REJECTED])
def test_doc_counter_example_is_rejected(doc, line, text):
    assert _errors(_compile(text)) != []


def test_docs_have_examples_and_few_fragments():
    # The language reference and the cookbook carry most of the examples;
    # fragments are the exception, not the way around compiling.
    assert len(COMPLETE) >= 20 and len(FRAGMENTS) <= len(COMPLETE) // 3


ITEM_START = re.compile(r"^(?=(?:rule|let|event|test)\s)", re.M)


def _items(text: str) -> dict[str, str]:
    """Top-level items of a rule file by their first line's 'kind name',
    whitespace-normalised and without comments."""
    items = {}
    for chunk in ITEM_START.split(text):
        body = " ".join(re.sub(r"#[^\n]*", "", chunk).split())
        if body:
            items[" ".join(body.split()[:2])] = body
    return items


def test_cookbook_shows_every_rule_of_the_pack_as_written_in_rules():
    pack: dict[str, str] = {}
    for path in sorted((ROOT / "rules").glob("*.cep")):
        pack.update(_items(path.read_text(encoding="utf-8")))
    shown: dict[str, str] = {}
    for doc, _, text in BLOCKS:
        if doc == "cookbook.md":
            shown.update(_items(text))
    pack_rules = {k: v for k, v in pack.items() if k.startswith("rule ")}
    assert {k: shown.get(k) for k in pack_rules} == pack_rules
