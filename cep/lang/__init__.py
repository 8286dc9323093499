"""The language front end: rule text -> checked, resolved `RuleSet`."""

from cep.lang.load import LoadError, load, load_sources, load_text, rule_files
from cep.lang.ruleset import RuleSet

__all__ = ["LoadError", "RuleSet", "load", "load_sources", "load_text", "rule_files"]
