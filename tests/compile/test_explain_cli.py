"""`cep explain` exit codes: 0 with the NFA, 1 on rule errors, 2 on an unknown rule."""

from __future__ import annotations

from cep.cli.app import run

RULES = "rule login_then_transfer key customer_id match app_login as login then transfer_started as tx\n"


def test_explain_prints_the_rule(tmp_path, capsys):
    (tmp_path / "r.cep").write_text(RULES)
    code = run(["explain", str(tmp_path), "--rule", "login_then_transfer", "--format", "mermaid"])
    assert (code, capsys.readouterr().out.splitlines()[0]) == (0, "stateDiagram-v2")


def test_unknown_rule_is_a_usage_error_with_did_you_mean(tmp_path, capsys):
    (tmp_path / "r.cep").write_text(RULES)
    code = run(["explain", str(tmp_path), "--rule", "login_then_transfr"])
    assert (code, "did you mean 'login_then_transfer'?" in capsys.readouterr().err) == (2, True)


def test_rule_errors_exit_1_with_diagnostics(tmp_path, capsys):
    (tmp_path / "r.cep").write_text("rule r key c match A then B where x ==\n")
    code = run(["explain", str(tmp_path), "--rule", "r"])
    assert (code, "error:" in capsys.readouterr().err) == (1, True)
