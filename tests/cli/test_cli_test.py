"""`cep test [PATHS]` (SPEC §5, §7): one line per test, details for failures, a
closing count, exit 0 / 1 / 2."""

from __future__ import annotations

import pytest

from cep.cli.app import run

RULES = """
event page_view      { page: str }
event checkout_start { cart_value: float, items: int }

rule pricing_hesitation
  key customer_id
  match 3 page_view where page == "/pricing" as views
        then checkout_start as checkout
        then idle 90s
  emit chat_offer { cart_value: checkout.cart_value }

test fires
  given
    0s   page_view      { customer_id: "c1", page: "/pricing" }
    10s  page_view      { customer_id: "c1", page: "/pricing" }
    20s  page_view      { customer_id: "c1", page: "/pricing" }
    30s  checkout_start { customer_id: "c1", cart_value: 120.0, items: 2 }
  expect chat_offer { key: "c1", at: 2m, cart_value: 120.0 }
"""

FAILING = """
test stuck
  given
    0s   page_view      { customer_id: "c1", page: "/pricing" }
    10s  page_view      { customer_id: "c1", page: "/pricing" }
  expect chat_offer
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray cep.toml
    return tmp_path


def test_all_passing_prints_pass_lines_and_exits_0(workdir, capsys):
    (workdir / "r.cep").write_text(RULES)
    code = run(["test", "r.cep"])
    assert (code, capsys.readouterr().out) == (0, "PASS r.cep:12 fires\n1 passed, 0 failed\n")


def test_a_failure_shows_why_what_fired_and_where_each_run_is_and_exits_1(workdir, capsys):
    (workdir / "r.cep").write_text(RULES + FAILING)
    code = run(["test", "r.cep"])
    assert (code, capsys.readouterr().out.splitlines()) == (1, [
        "PASS r.cep:12 fires",
        "FAIL r.cep:20 stuck",
        "    line 24: expect chat_offer: chat_offer did not fire",
        "    fired: nothing",
        "    live runs after the last event:",
        '      pricing_hesitation key "c1": the run started at 0s is at step 1 of 3 '
        "(3 page_view where ... as views), which has taken 2",
        '      pricing_hesitation key "c1": the run started at 10s is at step 1 of 3 '
        "(3 page_view where ... as views), which has taken 1",
        "1 passed, 1 failed"])


def test_directories_are_searched_and_the_default_is_rules(workdir, capsys):
    (workdir / "rules" / "shop").mkdir(parents=True)
    (workdir / "rules" / "shop" / "r.cep").write_text(RULES)
    code = run(["test"])
    assert (code, capsys.readouterr().out.splitlines()[-1]) == (0, "1 passed, 0 failed")


def test_name_filter_runs_only_matching_tests(workdir, capsys):
    (workdir / "r.cep").write_text(RULES + FAILING)
    code = run(["test", "r.cep", "-k", "fire"])
    assert (code, capsys.readouterr().out) == (0, "PASS r.cep:12 fires\n1 passed, 0 failed\n")


def test_rule_errors_are_printed_and_exit_1(workdir, capsys):
    (workdir / "r.cep").write_text(RULES.replace("then idle 90s", "then idle"))  # a syntax error
    code = run(["test", "r.cep"])
    err = capsys.readouterr().err
    assert (code, "r.cep:" in err and "error" in err) == (1, True)


def test_a_missing_path_is_a_usage_error(workdir, capsys):
    code = run(["test", "nowhere.cep"])
    assert (code, "nowhere.cep" in capsys.readouterr().err) == (2, True)


def test_the_default_key_comes_from_cep_toml(workdir, capsys):
    (workdir / "cep.toml").write_text('[stream]\ndefault_key = "customer_id"\n')
    (workdir / "r.cep").write_text(RULES.replace("  key customer_id\n", ""))
    assert run(["test", "r.cep"]) == 0


def test_no_tests_is_said_and_is_not_a_failure(workdir, capsys):
    (workdir / "r.cep").write_text(RULES[: RULES.index("test fires")])
    code = run(["test", "r.cep"])
    out = capsys.readouterr()
    assert (code, out.out, "no tests found" in out.err) == (0, "0 passed, 0 failed\n", True)
