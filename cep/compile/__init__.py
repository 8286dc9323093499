"""Resolved AST -> Program: the NFA of each rule, compiled predicates and indexes."""

from cep.compile.expr import MISSING
from cep.compile.program import CompiledRule, KeyGroup, Program, Step, StepKind, compile_rules, compile_ruleset

__all__ = ["MISSING", "CompiledRule", "KeyGroup", "Program", "Step", "StepKind", "compile_rules", "compile_ruleset"]
