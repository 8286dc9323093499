"""`cep run` end to end: real servers, the real command in a subprocess."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import orjson
import pytest

RULES = """\
rule restart_then_silence "The customer restarts the modem, then nothing for 2 minutes"
  key customer_id
  match 1+ modem_restarted as restarts
    then idle 2m
  emit check_line_remotely { restarts: count(restarts) }

rule slow_twice "two slow speed tests within 10 minutes"
  key customer_id
  match speed_test where mbps < 20 as first
    then speed_test where mbps < 20
  within 10m
  emit escalate { first_mbps: first.mbps }
"""

SILENCE_RULE = """\
rule restart_then_silence "restart, then nothing for 2 seconds"
  key customer_id
  match 1+ modem_restarted as restarts
    then idle 2s
  emit check_line { restarts: count(restarts) }
"""

BASE = 1_800_000_000_000
HOUR = 3_600_000


def journeys(count: int, partitions: int, seed: int = 7, customers: int = 60) -> list[list[dict]]:
    """Events per partition (a customer always in the same one), each partition
    closed by a `tick` an hour after the last event, so every deadline of the
    data resolves in replay and live alike."""
    rng = random.Random(seed)
    parts: list[list[dict]] = [[] for _ in range(partitions)]
    ts = BASE
    for _ in range(count):
        ts += rng.randint(500, 40_000)
        customer = rng.randrange(customers)
        kind = rng.choice(["modem_restarted", "modem_restarted", "speed_test", "page_view"])
        event = {"ts": ts, "type": kind, "customer_id": f"c{customer}"}
        if kind == "speed_test":
            event["mbps"] = rng.randint(1, 60)
        parts[customer % partitions].append(event)
    for part in parts:
        part.append({"ts": ts + HOUR, "type": "tick", "customer_id": "clock"})
    return parts


def write_jsonl(path, events: list[dict]) -> None:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))


def read_jsonl(path) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh.read().splitlines() if line.strip()]


_STARTED: list[subprocess.Popen] = []


def cep(*args: str, cwd, stdin=None) -> subprocess.Popen:
    log = open(os.path.join(cwd, "cep.log"), "ab")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen([sys.executable, "-m", "cep", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=log,
                            stdin=stdin)
    _STARTED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _no_leftover_runs():
    """A failed test must not leave a `cep run` (or its worker processes) behind."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            for pid in _children(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # it ended on its own meanwhile
            proc.kill()
            proc.wait()


def replay(tmp_path, rules, inputs: list[str]) -> list[dict]:
    out = tmp_path / "replay.jsonl"
    done = subprocess.run([sys.executable, "-m", "cep", "replay", *inputs, "--rules", str(rules), "--out", str(out),
                           "--quiet"], cwd=tmp_path, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return read_jsonl(out)


def engine_ids(rules, parts: list[list[dict]]) -> list[str]:
    """The match ids the engine finds on the partitions read to their end: what
    `cep replay` writes (tests/runtime check replay against the engine)."""
    from cep.engine import Engine, StreamSettings
    from cep.runtime.glue import load_program

    _ruleset, program = load_program([str(rules)], None)
    engine = Engine(program, StreamSettings(), partitions=len(parts))
    for p, events in enumerate(parts):
        for offset, event in enumerate(events, 1):
            engine.feed(event, partition=p, source=f"p{p}", offset=offset)
    engine.finish()
    return sorted(m.match_id for m in engine.take_matches())


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def log_text(tmp_path) -> str:
    return (tmp_path / "cep.log").read_text(errors="replace")


def started(tmp_path, runs: int) -> None:
    """Wait until `runs` runs have logged their start (cep.log accumulates)."""
    wait_for(lambda: log_text(tmp_path).count("] INFO start:") >= runs, 30, f"start number {runs}")


def settled(path, count: int, timeout: float = 60) -> list[dict]:
    """The sink file once it holds `count` lines and stops growing."""
    def done():
        first = read_jsonl(path)
        if len(first) < count:
            return None
        time.sleep(0.7)
        second = read_jsonl(path)
        return second if len(second) == len(first) else None

    return wait_for(done, timeout, f"{count} matches in {path}")


def ids(matches: list[dict]) -> list[str]:
    return sorted(m["match_id"] for m in matches)


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "rules.cep"
    path.write_text(RULES)
    return path


# ---------------------------------------------------------------- same matches as replay


def test_run_on_a_kafka_topic_writes_what_replay_finds_and_stops_on_sigterm(kafka, rules, tmp_path):
    parts = journeys(600, partitions=3)
    topic = kafka.create_topic(partitions=3)
    (tmp_path / "parts").mkdir()
    for p, events in enumerate(parts):
        kafka.produce(topic, [orjson.dumps(e) for e in events], partition=p)
        write_jsonl(tmp_path / "parts" / f"p{p}.jsonl", events)
    expected = engine_ids(rules, parts)
    assert len(expected) > 20  # the data exercises both rules

    out = tmp_path / "out.jsonl"
    proc = cep("run", "--rules", str(rules), "--source", kafka.uri(topic), "--sink", f"file:{out}",
               "--workers", "2", cwd=tmp_path)
    settled(out, len(expected))
    code = stop(proc)
    got = read_jsonl(out)
    assert (code, ids(got), "stop: SIGTERM received" in log_text(tmp_path)) == (0, expected, True)


def test_run_from_stdin_to_stdout_equals_replay(rules, tmp_path):
    events = [e for part in journeys(300, partitions=1, seed=3) for e in part]
    write_jsonl(tmp_path / "ev.jsonl", events)
    expected = replay(tmp_path, rules, [str(tmp_path / "ev.jsonl")])
    with open(tmp_path / "ev.jsonl", "rb") as stdin:
        proc = cep("run", "--rules", str(rules), "--source", "-", "--sink", "-", cwd=tmp_path, stdin=stdin)
        out, _ = proc.communicate(timeout=60)
    got = [orjson.loads(line) for line in out.splitlines()]
    assert (proc.returncode, ids(got)) == (0, ids(expected))


# ---------------------------------------------------------------- time in a live stream


def test_idle_advance_fires_an_absence_step_during_silence_on_redis(redis_server, tmp_path):
    (tmp_path / "rules.cep").write_text(SILENCE_RULE)
    stream = redis_server.stream()
    out = tmp_path / "out.jsonl"
    proc = cep("run", "--rules", "rules.cep", "--source", redis_server.uri(stream), "--sink", f"file:{out}",
               "--idle-advance", "1s", cwd=tmp_path)
    try:
        wait_for(lambda: "connector up" in log_text(tmp_path), 20, "the run to start")
        sent = time.time()
        ts = int(sent * 1000)
        client = redis_server.client()
        client.xadd(stream, {"event": orjson.dumps({"type": "modem_restarted", "ts": ts, "customer_id": "a"})})
        # a plain-fields entry of another key that does not match anything
        client.xadd(stream, {"type": "page_view", "ts": str(ts), "customer_id": "b"})
        got = wait_for(lambda: read_jsonl(out), 15, "the silence match")
        arrived = time.time()
    finally:
        code = stop(proc)
    deadline = (ts + 2000) / 1000
    # the match comes after its deadline and within about D (1s, plus a tick and a poll) of it
    assert ([m["end_ts"] for m in got], code, deadline <= arrived <= deadline + 2.0) == ([ts + 2000], 0, True)


def test_without_idle_advance_silence_fires_nothing(redis_server, tmp_path):
    (tmp_path / "rules.cep").write_text(SILENCE_RULE)
    stream = redis_server.stream()
    out = tmp_path / "out.jsonl"
    ts = int(time.time() * 1000)
    redis_server.client().xadd(stream, {"event": orjson.dumps({"type": "modem_restarted", "ts": ts,
                                                               "customer_id": "a"})})
    proc = cep("run", "--rules", "rules.cep", "--source", redis_server.uri(stream), "--sink", f"file:{out}",
               cwd=tmp_path)
    time.sleep(4)  # twice the idle window of wall time: replay semantics, nothing can fire
    code = stop(proc)
    assert (read_jsonl(out), code) == ([], 0)


# ---------------------------------------------------------------- webhook sink


def test_webhook_sink_through_cep_run_dead_letters_what_finally_fails(webhook, rules, tmp_path):
    events = [e for part in journeys(200, partitions=1, seed=5) for e in part]
    write_jsonl(tmp_path / "ev.jsonl", events)
    expected = engine_ids(rules, [events])
    refused = set(expected[:3])
    flaky = set(expected[3:8])
    webhook.plan = lambda mid, attempt: 503 if mid in refused else (500 if mid in flaky and attempt == 1 else "ok")
    proc = cep("run", "--rules", str(rules), "--source", f"file:{tmp_path / 'ev.jsonl'}", "--sink", webhook.url,
               "--dead-letter", "file:dead.jsonl", "--webhook-retries", "2", cwd=tmp_path)
    proc.wait(60)
    dead = read_jsonl(tmp_path / "dead.jsonl")
    assert (proc.returncode, sorted(webhook.ids()), sorted(d["offset"] for d in dead),
            {d["reason"] for d in dead}) == (0, sorted(set(expected) - refused), sorted(refused), {"delivery_failed"})


# ---------------------------------------------------------------- recovery


def _paced_producer(kafka, topic: str, parts: list[list[dict]], seconds: float) -> threading.Thread:
    """Produce the partitions' events spread over `seconds`, as a live stream."""
    def produce() -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": kafka.address, "linger.ms": 5})
        rounds = max(len(p) for p in parts)
        chunk = max(1, rounds // 40)
        for start in range(0, rounds, chunk):
            for p, events in enumerate(parts):
                for event in events[start:start + chunk]:
                    producer.produce(topic, orjson.dumps(event), partition=p)
            producer.poll(0)
            time.sleep(seconds / 40)
        assert producer.flush(10) == 0

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    return thread


def test_kill_9_and_restart_loses_nothing_and_the_file_sink_holds_no_duplicate(kafka, rules, tmp_path):
    parts = journeys(12_000, partitions=2, seed=11, customers=300)
    topic = kafka.create_topic(partitions=2)
    (tmp_path / "parts").mkdir()
    for p, events in enumerate(parts):
        write_jsonl(tmp_path / "parts" / f"p{p}.jsonl", events)
    expected = engine_ids(rules, parts)
    out = tmp_path / "out.jsonl"
    args = ("run", "--rules", str(rules), "--source", kafka.uri(topic), "--sink", f"file:{out}",
            "--recovery-dir", "recovery", "--snapshot-interval", "300ms")
    producer = _paced_producer(kafka, topic, parts, seconds=6)
    rng = random.Random(5)
    for run in range(1, 4):  # kill -9 at random points while the stream flows
        proc = cep(*args, cwd=tmp_path)
        started(tmp_path, run)
        time.sleep(rng.uniform(0.8, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    producer.join(30)
    before = log_text(tmp_path).count("] INFO start:")
    proc = cep(*args, cwd=tmp_path)
    started(tmp_path, before + 1)
    settled(out, len(expected))
    code = stop(proc)
    # sorted ids: equal means nothing lost and not one duplicate in the file
    assert (code, ids(read_jsonl(out)), "resumed " in log_text(tmp_path)) == (0, expected, True)


def test_kill_9_on_kafka_to_kafka_with_two_processes_loses_nothing(kafka, rules, tmp_path):
    parts = journeys(3000, partitions=2, seed=13, customers=100)
    topic = kafka.create_topic(partitions=2)
    sink = kafka.create_topic(partitions=1)
    (tmp_path / "parts").mkdir()
    for p, events in enumerate(parts):
        write_jsonl(tmp_path / "parts" / f"p{p}.jsonl", events)
    expected = engine_ids(rules, parts)
    producer = _paced_producer(kafka, topic, parts, seconds=5)
    args = ("run", "--rules", str(rules), "--source", kafka.uri(topic), "--sink", kafka.uri(sink),
            "--processes", "2", "--recovery-dir", "recovery", "--snapshot-interval", "300ms")

    def delivered() -> set:
        return {orjson.loads(v)["match_id"] for _p, _o, _k, v in kafka.consume_all(sink, timeout=5)}

    for run, pause in ((1, 1.0), (2, 1.8)):
        proc = cep(*args, cwd=tmp_path)
        started(tmp_path, 2 * run)  # both processes are up
        time.sleep(pause)
        # kill -9 the whole process group: the parent and both Bytewax processes
        for pid in _children(proc.pid) + [proc.pid]:
            os.kill(pid, signal.SIGKILL)
        proc.wait()
    producer.join(30)
    before = log_text(tmp_path).count("] INFO start:")
    proc = cep(*args, cwd=tmp_path)
    started(tmp_path, before + 2)  # one start per process
    wait_for(lambda: delivered() >= set(expected), 60, "every match after the restarts")
    assert (stop(proc), sorted(delivered()), "resumed " in log_text(tmp_path)) == (0, expected, True)


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


# ---------------------------------------------------------------- operations


def test_metrics_count_events_matches_and_dead_letters(rules, tmp_path, closed_port):
    events = [e for part in journeys(300, partitions=1, seed=3) for e in part]
    write_jsonl(tmp_path / "ev.jsonl", events + [{"ts": "never", "type": "x"}])
    expected = engine_ids(rules, [events])
    port = closed_port  # free now; cep run listens on it
    proc = cep("run", "--rules", str(rules), "--source", "-", "--sink", "file:out.jsonl",
               "--metrics-port", str(port), cwd=tmp_path, stdin=subprocess.PIPE)
    proc.stdin.write((tmp_path / "ev.jsonl").read_bytes())
    proc.stdin.flush()  # stdin stays open: the run is live while we scrape

    def scrape() -> dict:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return {}
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("cep_") and not line.startswith("#")}

    def ready() -> dict:
        # events are counted as read, dead letters as written: wait for both
        got = scrape()
        counted = (got.get('cep_events_in_total{partition="-"}') == len(events) + 1
                   and 'cep_dead_letters_total{reason="bad_time"}' in got)
        return got if counted else {}

    metrics = wait_for(ready, 30, "the metrics to count every event and the dead letter")
    per_rule = sum(v for k, v in metrics.items() if k.startswith("cep_matches_total"))
    proc.stdin.close()
    assert proc.wait(30) == 0
    assert (metrics['cep_dead_letters_total{reason="bad_time"}'], "cep_live_runs" in metrics,
            'cep_watermark_lag_seconds{partition="-"}' in metrics) == (1.0, True, True)
    # matches are counted when written; those after the last watermark come at the end of stdin
    assert per_rule <= len(expected) and len(read_jsonl(tmp_path / "out.jsonl")) == len(expected)


def test_bad_uri_and_missing_source_are_usage_errors(rules, tmp_path):
    bad = subprocess.run([sys.executable, "-m", "cep", "run", "--rules", str(rules), "--source", "http://x/y",
                          "--sink", "-"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    missing = subprocess.run([sys.executable, "-m", "cep", "run", "--rules", str(rules), "--source",
                              "file:nope.jsonl", "--sink", "-"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=60)
    assert (bad.returncode, "sink only" in bad.stderr, missing.returncode, "nope.jsonl" in missing.stderr) == (
        2, True, 2, True)
