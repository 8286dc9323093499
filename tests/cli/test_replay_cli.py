"""`cep replay` end to end: formats, dead letters, accounting, lateness,
workers and processes, exit codes (SPEC §3 rule 9/10, §4, §5)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

CEP = str(Path(sys.executable).parent / "cep")
T0 = 1_800_000_000_000

RULES = """
event page_view { page: str }
event purchase { amount: float }
event heartbeat { }

rule view_then_buy "a page view, then a purchase within an hour"
  key customer_id
  match page_view as view
    then purchase as buy
  within 1h
  emit bought { page: view.page, amount: buy.amount }

rule went_quiet "a page view, then nothing from the customer for 10 seconds"
  key customer_id
  match page_view as view
    then idle 10s
  emit quiet { page: view.page }
"""


def ev(t: float, etype: str, customer: str, **fields) -> dict:
    return {"type": etype, "ts": T0 + int(t * 1000), "customer_id": customer, **fields}


# ana buys, ben goes quiet, chen's purchase is too late for the hour; a stray event without a key
EVENTS = [
    ev(0, "page_view", "ana", page="/p"),
    ev(1, "page_view", "ben", page="/q"),
    ev(5, "purchase", "ana", amount=10.5),
    ev(6, "page_view", "chen", page="/r"),
    {"type": "page_view", "ts": T0 + 7000, "page": "/nokey"},
    ev(8, "heartbeat", "ana"),
    ev(4000, "purchase", "chen", amount=3.0),
]
EXPECTED = [
    {"rule": "view_then_buy", "output": "bought", "key": "ana", "start_ts": T0, "end_ts": T0 + 5000,
     "payload": {"page": "/p", "amount": 10.5}},
    {"rule": "went_quiet", "output": "quiet", "key": "ben", "start_ts": T0 + 1000, "end_ts": T0 + 11000,
     "payload": {"page": "/q"}},
    {"rule": "went_quiet", "output": "quiet", "key": "chen", "start_ts": T0 + 6000, "end_ts": T0 + 16000,
     "payload": {"page": "/r"}},
]


def cep(*args, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CEP, "replay", *map(str, args)], cwd=cwd, input=stdin, capture_output=True,
                          timeout=300)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def without_id(matches: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "match_id"} for m in matches]


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.cep"
    path.write_text(RULES)
    return path


def write_jsonl(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def write_csv(path: Path, events: list[dict]) -> Path:
    columns = ["customer_id", "type", "ts", "page", "amount"]
    lines = [",".join(columns)] + [",".join(str(e.get(c, "")) for c in columns) for e in events]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "csv", "csv.gz", "dir", "stdin"])
def test_every_input_format_gives_the_same_matches(tmp_path, rules, fmt):
    stdin = None
    if fmt == "jsonl":
        source = write_jsonl(tmp_path / "e.jsonl", EVENTS)
    elif fmt == "jsonl.gz":
        source = tmp_path / "e.jsonl.gz"
        with gzip.open(source, "wt") as fh:
            fh.writelines(json.dumps(e) + "\n" for e in EVENTS)
    elif fmt.startswith("csv"):
        source = write_csv(tmp_path / f"e.{fmt}", EVENTS)
    elif fmt == "dir":
        source = tmp_path / "events"
        source.mkdir()
        write_jsonl(source / "a.jsonl", EVENTS[:3])
        write_csv(source / "b.csv", EVENTS[3:])
    else:
        source, stdin = "-", "".join(json.dumps(e) + "\n" for e in EVENTS).encode()
    proc = cep(source, "--rules", rules, "--out", tmp_path / "out.jsonl", "--quiet", cwd=tmp_path, stdin=stdin)
    assert proc.returncode == 0, proc.stderr.decode()
    assert without_id(jsonl(tmp_path / "out.jsonl")) == EXPECTED  # sorted by end_ts, rule, key, start_ts
    assert not (tmp_path / "dead-letters.jsonl").exists()  # no dead letters, no file


def test_matches_go_to_stdout_with_match_ids_and_a_summary_to_stderr(tmp_path, rules):
    source = write_jsonl(tmp_path / "e.jsonl", EVENTS)
    proc = cep(source, "--rules", rules, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert without_id([json.loads(line) for line in lines]) == EXPECTED
    first = json.loads(lines[0])
    assert list(first) == ["rule", "output", "key", "start_ts", "end_ts", "match_id", "payload"]
    assert len(first["match_id"]) == 32
    summary = proc.stderr.decode()
    assert "events read" in summary and "view_then_buy" in summary and "went_quiet" in summary
    assert "\x1b[" not in summary and "\r" not in summary  # no progress bar when stderr is not a terminal


BAD_LINES = [
    ("invalid_json", '{"type": "page_view", "ts": '),
    ("not_an_object", "[1, 2, 3]"),
    ("missing_type", json.dumps({"ts": T0, "customer_id": "ana"})),
    ("bad_time", json.dumps({"type": "page_view", "ts": "yesterday", "customer_id": "ana"})),
    ("catalog", json.dumps(ev(2, "purchase", "ana", amount="ten"))),
    ("late", json.dumps(ev(-1, "page_view", "dora"))),
]


def test_every_bad_line_becomes_a_dead_letter_and_the_accounting_adds_up(tmp_path, rules):
    lines = [json.dumps(EVENTS[0]), json.dumps(EVENTS[1])] + [text for _, text in BAD_LINES]
    lines += [json.dumps(e) for e in EVENTS[2:]]
    source = tmp_path / "e.jsonl"
    source.write_text("\n".join(lines) + "\n\n")  # a trailing blank line is not an event
    csv_source = tmp_path / "f.csv"
    csv_source.write_text("customer_id,type,ts\nzed,page_view,1800000003000,extra\n")
    proc = cep(source, csv_source, "--rules", rules, "--out", tmp_path / "out.jsonl",
               "--dead-letter", tmp_path / "dead.jsonl", "--summary-json", tmp_path / "summary.json",
               "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()  # dead letters do not fail a replay
    assert proc.stderr == b""
    assert without_id(jsonl(tmp_path / "out.jsonl")) == EXPECTED
    dead = jsonl(tmp_path / "dead.jsonl")
    assert [d["reason"] for d in dead] == [r for r, _ in BAD_LINES] + ["csv_width"]
    for letter, (_, text) in zip(dead, BAD_LINES):
        assert letter["source"] == str(source)
        assert letter["raw"] == text
        assert set(letter) == {"reason", "detail", "source", "offset", "raw"} and letter["detail"]
    assert [d["offset"] for d in dead] == [3, 4, 5, 6, 7, 8, 2]
    assert dead[-1]["source"] == str(csv_source)
    summary = json.loads((tmp_path / "summary.json").read_text())
    n_events = len(EVENTS) + len(BAD_LINES) + 1
    assert summary["events_read"] == n_events
    assert summary["dead_letters"] == len(BAD_LINES) + 1
    assert summary["dead_letters_by_reason"] == {r: 1 for r, _ in BAD_LINES} | {"csv_width": 1}
    # the keyless view is irrelevant; the heartbeat is not: `idle` is affected by every type
    assert summary["irrelevant"] == 1
    assert summary["matched_against"] + summary["irrelevant"] + summary["dead_letters"] == n_events
    assert summary["rules"]["view_then_buy"]["matches"] == 1
    assert summary["rules"]["went_quiet"]["matches"] == 2


def test_dead_letters_default_to_a_file_beside_out(tmp_path, rules):
    source = tmp_path / "e.jsonl"
    source.write_text(json.dumps(EVENTS[0]) + "\nnot json\n")
    (tmp_path / "out").mkdir()
    proc = cep(source, "--rules", rules, "--out", tmp_path / "out" / "m.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    dead = jsonl(tmp_path / "out" / "dead-letters.jsonl")
    assert [d["reason"] for d in dead] == ["invalid_json"]
    assert "dead-letters.jsonl" in proc.stderr.decode()


def test_lateness_reorders_within_it_and_dead_letters_below_it(tmp_path, rules):
    # the purchase is read before the view it follows in event time
    events = [ev(5, "purchase", "ana", amount=1.0), ev(0, "page_view", "ana", page="/p"),
              ev(100, "heartbeat", "zed")]
    source = write_jsonl(tmp_path / "e.jsonl", events)
    strict = cep(source, "--rules", rules, "--out", tmp_path / "a.jsonl", "--dead-letter", tmp_path / "da.jsonl",
                 "--quiet", cwd=tmp_path)
    assert strict.returncode == 0, strict.stderr.decode()
    assert [d["reason"] for d in jsonl(tmp_path / "da.jsonl")] == ["late"]
    assert jsonl(tmp_path / "a.jsonl") == []
    loose = cep(source, "--rules", rules, "--lateness", "5s", "--out", tmp_path / "b.jsonl",
                "--dead-letter", tmp_path / "db.jsonl", "--quiet", cwd=tmp_path)
    assert loose.returncode == 0, loose.stderr.decode()
    assert jsonl(tmp_path / "db.jsonl") == []
    assert [(m["rule"], m["start_ts"], m["end_ts"]) for m in jsonl(tmp_path / "b.jsonl")] == [
        ("view_then_buy", T0, T0 + 5000)]


def test_workers_and_processes_write_identical_bytes(tmp_path, rules):
    # many keys over three partitions, so every shard and worker has work
    import random

    rng = random.Random(7)
    source = tmp_path / "events"
    source.mkdir()
    for p in range(3):
        t, events = 0.0, []
        for _ in range(1500):
            t += rng.random() * 3
            kind = rng.choice(["page_view", "page_view", "purchase", "heartbeat"])
            extra = {"page": f"/{rng.randint(0, 9)}"} if kind == "page_view" else {"amount": 1.5}
            events.append(ev(round(t, 3), kind, f"c{rng.randint(0, 200)}", **extra))
        write_jsonl(source / f"p{p}.jsonl", events)
    outputs = []
    for extra in ([], ["--workers", "3"], ["--processes", "2", "--workers", "2"]):
        out = tmp_path / f"out{len(outputs)}.jsonl"
        proc = cep(source, "--rules", rules, "--out", out, "--quiet", *extra, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()
        outputs.append(out.read_bytes())
    assert len(outputs[0].splitlines()) > 100
    assert outputs[1] == outputs[0]
    assert outputs[2] == outputs[0]


def test_rule_errors_exit_1_with_diagnostics(tmp_path):
    bad = tmp_path / "bad.cep"
    bad.write_text("rule r\n  key customer_id\n  match page_view as v then purchase where v.nope.. == 1\n")
    source = write_jsonl(tmp_path / "e.jsonl", EVENTS)
    proc = cep(source, "--rules", bad, cwd=tmp_path)
    assert proc.returncode == 1
    assert f"{bad}:3:" in proc.stderr.decode() and "error" in proc.stderr.decode()
    assert proc.stdout == b""


@pytest.mark.parametrize("args, message", [
    (["missing.jsonl"], "missing.jsonl: no such file or directory"),
    (["e.jsonl", "--config", "nope.toml"], "no such config file"),
    (["e.jsonl", "--lateness", "soon"], "lateness"),
    (["e.jsonl", "--workers", "0"], "at least 1"),
])
def test_usage_errors_and_unopenable_inputs_exit_2_in_one_line(tmp_path, rules, args, message):
    write_jsonl(tmp_path / "e.jsonl", EVENTS)
    proc = cep(*args, "--rules", rules, cwd=tmp_path)
    assert proc.returncode == 2
    err = proc.stderr.decode().strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_cep_toml_is_read_and_options_override_it(tmp_path, rules):
    (tmp_path / "cep.toml").write_text('[stream]\nlateness = "5s"\ntime_field = "at"\n')
    events = [{**e, "at": e.pop("ts")} for e in (dict(x) for x in EVENTS)]
    events.insert(1, {"type": "page_view", "at": T0 - 3000, "customer_id": "eve", "page": "/e"})
    source = write_jsonl(tmp_path / "e.jsonl", events)
    proc = cep(source, "--rules", rules, "--out", "a.jsonl", "--dead-letter", "da.jsonl", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert jsonl(tmp_path / "da.jsonl") == []  # within the 5 s of cep.toml
    assert ("eve" in [m["key"] for m in jsonl(tmp_path / "a.jsonl")])
    proc = cep(source, "--rules", rules, "--lateness", "0s", "--out", "b.jsonl", "--dead-letter", "db.jsonl",
               "--quiet", cwd=tmp_path)
    assert [d["reason"] for d in jsonl(tmp_path / "db.jsonl")] == ["late"]


def test_the_noop_matcher_reads_and_routes_everything_but_matches_nothing(tmp_path, rules):
    # the hidden throughput floor: the dataflow without the NFA
    source = write_jsonl(tmp_path / "e.jsonl", EVENTS)
    proc = cep(source, "--rules", rules, "--matcher", "noop", "--out", tmp_path / "out.jsonl",
               "--summary-json", tmp_path / "s.json", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "out.jsonl").read_bytes() == b""
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["events_read"], summary["matched_against"], summary["irrelevant"]) == (len(EVENTS), 6, 1)
    assert "--matcher" not in subprocess.run([CEP, "replay", "--help"], capture_output=True, text=True).stdout


def test_values_no_json_library_fits_in_64_bits_never_stop_a_replay(tmp_path):
    # An integer beyond 64 bits in a payload (arithmetic on event fields) is
    # written exactly; a time beyond the years 1-9999 is a bad_time dead letter.
    rules = tmp_path / "big.cep"
    rules.write_text("rule r\n  key k\n  match a as c\n  emit { cube: c.n * c.n * c.n }\n")
    events = tmp_path / "big.jsonl"
    events.write_text('{"type":"a","ts":1,"k":"x","n":10000000000}\n{"type":"a","ts":1e25,"k":"y","n":1}\n')
    out, dead = tmp_path / "out.jsonl", tmp_path / "dead.jsonl"
    proc = subprocess.run([CEP, "replay", str(events), "--rules", str(rules), "--out", str(out),
                           "--dead-letter", str(dead), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["payload"] == {"cube": 10**30}
    assert [json.loads(line)["reason"] for line in dead.read_text().splitlines()] == ["bad_time"]
