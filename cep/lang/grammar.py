"""Loads `grammar/cep.lark` once and hands out the parser."""

from __future__ import annotations

import functools
from pathlib import Path

import lark

GRAMMAR_PATH = Path(__file__).resolve().parents[2] / "grammar" / "cep.lark"


@functools.cache
def parser() -> lark.Lark:
    # LALR with the contextual lexer: fast, and a keyword is only reserved
    # where the grammar could take it.
    return lark.Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        # Building the LALR tables is a sixth of a short replay's start-up
        # (bench/PROFILE.md); lark caches them in the temp dir by grammar hash.
        cache=True,
    )
