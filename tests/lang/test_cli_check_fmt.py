"""`cep check` and `cep fmt` from the command line (in process)."""

from __future__ import annotations

import json

from cep.cli.app import run

GOOD = 'event page_view { page: str }\nrule r "d"\n  key customer_id\n  match page_view as p\n  emit out { page: p.page }\n'
BAD = GOOD.replace("match page_view", "match page_veiw") + "rule s key k match idle 1m then page_view\n"
WARN = 'rule w key k match page_view cooldown 1h\n'


def test_check_clean_directory_prints_summary_and_exits_0(tmp_path, capsys):
    (tmp_path / "a.cep").write_text(GOOD)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.cep").write_text(WARN + 'test t given 0s page_view { k: 1, page: "/" } expect w\n')
    assert run(["check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "2 files, 2 rules, 1 test: 0 errors, 1 warning"
    assert "b.cep:1:39: warning: rule 'w' has a cooldown but no 'emit'" in out


def test_check_reports_every_error_with_caret_and_exits_1(tmp_path, capsys):
    f = tmp_path / "bad.cep"
    f.write_text(BAD)
    assert run(["check", str(f)]) == 1
    out = capsys.readouterr().out
    assert f"{f}:4:9: error: unknown event type 'page_veiw'" in out
    assert "      |         ^^^^^^^^^" in out and "hint: did you mean 'page_view'?" in out
    assert f"{f}:6:20: error: a pattern cannot start with 'idle'" in out
    assert out.splitlines()[-1] == "1 file, 2 rules, 0 tests: 2 errors, 0 warnings"


def test_check_json_format(tmp_path, capsys):
    f = tmp_path / "bad.cep"
    f.write_text(BAD)
    assert run(["check", "--format", "json", str(f)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["files"], doc["rules"], doc["errors"]) == (1, 2, 2)
    assert doc["diagnostics"][0] == {"severity": "error", "path": str(f), "line": 4, "col": 9, "end_line": 4,
                                     "end_col": 18, "message": "unknown event type 'page_veiw'",
                                     "hint": "did you mean 'page_view'?"}


def test_check_uses_default_key_from_config(tmp_path, capsys, monkeypatch):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.cep").write_text("rule r match a\n")
    monkeypatch.chdir(tmp_path)
    assert run(["check"]) == 1
    capsys.readouterr()
    (tmp_path / "cep.toml").write_text('[stream]\ndefault_key = "customer_id"\n')
    assert run(["check"]) == 0
    (tmp_path / "cep.toml").write_text('[stream]\nbogus = 1\n')
    assert run(["check"]) == 2
    assert "unknown key" in capsys.readouterr().err


def test_missing_path_is_one_line_and_exit_2(tmp_path, capsys):
    assert run(["check", str(tmp_path / "nope.cep")]) == 2
    assert run(["fmt", str(tmp_path / "nope.cep")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cep check: {tmp_path / 'nope.cep'}: no such file or directory",
                   f"cep fmt: {tmp_path / 'nope.cep'}: no such file or directory"]


def test_fmt_check_prints_diff_and_exits_1_then_fmt_rewrites(tmp_path, capsys):
    f = tmp_path / "a.cep"
    messy = "rule r key k\n    match a then  b   # why\n"
    f.write_text(messy)
    assert run(["fmt", "--check", str(f)]) == 1
    out = capsys.readouterr().out
    assert "-    match a then  b   # why" in out and "+  match a" in out
    assert f.read_text() == messy
    assert run(["fmt", str(f)]) == 0
    assert f.read_text() == "rule r\n  key k\n  match a\n        then b  # why\n"
    assert run(["fmt", "--check", str(f)]) == 0


def test_fmt_leaves_a_broken_file_alone(tmp_path, capsys):
    f = tmp_path / "a.cep"
    f.write_text("rule r match a then\n")
    assert run(["fmt", str(f)]) == 1
    assert f.read_text() == "rule r match a then\n"
    assert "expected a step after 'then'" in capsys.readouterr().err


def test_help_has_an_example(capsys):
    for cmd in ("check", "fmt"):
        try:
            run([cmd, "--help"])
        except SystemExit as exc:
            assert exc.code == 0
        assert "Example:" in capsys.readouterr().out
