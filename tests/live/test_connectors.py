"""Each connector end to end against the real server (tests/live/conftest.py)."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from cep.engine.model import DeadLetter
from cep.runtime.connectors import open_source, open_writer
from cep.runtime.connectors.uri import UriError, parse


def drain(reader, want: int, timeout: float = 10.0) -> list:
    out: list = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        got = reader.poll(100)
        out.extend(got)
        if not got:
            time.sleep(0.02)
    return out


def match(i: int, key="c1") -> dict:
    return {"rule": "r", "output": "o", "key": key, "start_ts": i, "end_ts": i + 1,
            "match_id": f"m{i:04d}", "payload": {"i": i}}


# ---------------------------------------------------------------- URIs


@pytest.mark.parametrize(("text", "role", "kind", "name"), [
    ("kafka://127.0.0.1:9092/events", "source", "kafka", "events"),
    ("kafka://a:1,b:2/events", "sink", "kafka", "events"),
    ("redis://127.0.0.1:6379/journeys", "source", "redis", "journeys"),
    ("http://127.0.0.1:8080/hook", "sink", "http", "http://127.0.0.1:8080/hook"),
    ("file:out/matches.jsonl", "sink", "file", "out/matches.jsonl"),
    ("-", "source", "stdio", "-"),
])
def test_uri_names_the_connector(text, role, kind, name):
    endpoint = parse(text, role)
    assert (endpoint.kind, endpoint.name) == (kind, name)


@pytest.mark.parametrize(("text", "role", "says"), [
    ("http://127.0.0.1/hook", "source", "sink only"),
    ("https://h/x", "dead-letter", "dead letters cannot go to a webhook"),
    ("kafka://127.0.0.1/events", "source", "HOST:PORT"),
    ("kafka://127.0.0.1:9092/", "sink", "topic"),
    ("redis://127.0.0.1:6379", "source", "stream"),
    ("ftp://x/y", "sink", "unknown scheme"),
    ("events.jsonl", "source", "not a URI"),
])
def test_bad_uri_is_one_clear_sentence(text, role, says):
    with pytest.raises(UriError, match=says):
        parse(text, role)


def test_redis_password_is_kept_out_of_the_label():
    endpoint = parse("redis://:s3cret@127.0.0.1:6379/st", "sink")
    assert (endpoint.password, "s3cret" in endpoint.label) == ("s3cret", False)


# ---------------------------------------------------------------- Kafka


def test_kafka_source_reads_every_partition_and_resumes_after_its_offset(kafka):
    topic = kafka.create_topic(partitions=3)
    for p in range(3):
        kafka.produce(topic, [orjson.dumps({"type": "t", "ts": i, "p": p}) for i in range(4)], partition=p)
    source = open_source(parse(kafka.uri(topic), "source"), batch=2)
    assert source.partitions() == [f"{topic}/0", f"{topic}/1", f"{topic}/2"]
    reader = source.open(1, None)
    first = drain(reader, 2)
    position = reader.position()
    reader.close()
    resumed = source.open(1, position)
    rest = drain(resumed, 2)
    resumed.close()
    events = [value for _offset, _raw, value in first + rest]
    assert ([e["ts"] for e in events], {e["p"] for e in events}, position) == ([0, 1, 2, 3], {1}, 2)


def test_kafka_source_dead_letters_bad_messages_with_partition_and_offset(kafka):
    topic = kafka.create_topic(partitions=1)
    kafka.produce(topic, [b'{"type": "t", "ts": 1}', b"{oops", b"[1, 2]"])
    reader = open_source(parse(kafka.uri(topic), "source")).open(0, None)
    got = drain(reader, 3)
    reader.close()
    dead = [(v.reason, v.source, v.offset, v.raw) for _o, _r, v in got if isinstance(v, DeadLetter)]
    assert dead == [("invalid_json", f"{topic}/0", 1, "{oops"), ("not_an_object", f"{topic}/0", 2, "[1, 2]")]


def test_kafka_sink_writes_each_match_keyed_by_its_key(kafka):
    topic = kafka.create_topic(partitions=2)
    writer = open_writer(parse(kafka.uri(topic), "sink"), "match", None, lambda d: None)
    writer.write([match(i, key=f"c{i % 2}") for i in range(6)])
    writer.flush()
    writer.close()
    got = kafka.consume_all(topic, expect=6)
    by_key: dict = {}
    for partition, _offset, key, value in got:
        by_key.setdefault(key, set()).add(partition)
        assert orjson.loads(value)["key"] == orjson.loads(key)
    # one key's matches stay in one partition, so they stay in order
    assert (len(got), sorted(by_key), [len(v) for v in by_key.values()]) == (6, [b'"c0"', b'"c1"'], [1, 1])


# ---------------------------------------------------------------- Redis Streams


def test_redis_source_reads_event_json_and_plain_fields_and_resumes_after_the_id(redis_server):
    stream = redis_server.stream()
    client = redis_server.client()
    client.xadd(stream, {"event": orjson.dumps({"type": "view", "ts": 1, "customer_id": "c1"})})
    client.xadd(stream, {"type": "buy", "ts": "2", "amount": "9.5", "customer_id": "c1"})
    third = client.xadd(stream, {"event": b"not json"}).decode()

    def typer(event: dict) -> dict:  # the catalog's CSV typing, as cep run passes it
        return {**event, "ts": int(event["ts"]), "amount": float(event["amount"])}

    source = open_source(parse(redis_server.uri(stream), "source"), csv_typer=typer, batch=2)
    reader = source.open(0, None)
    got = drain(reader, 2)
    position = reader.position()
    resumed = source.open(0, position)
    rest = drain(resumed, 1)
    values = [v for _o, _r, v in got]
    assert values == [{"type": "view", "ts": 1, "customer_id": "c1"},
                      {"type": "buy", "ts": 2, "amount": 9.5, "customer_id": "c1"}]
    assert [(v.reason, v.offset) for _o, _r, v in rest] == [("invalid_json", third)]


def test_redis_source_rides_out_a_server_restart(redis_server, caplog):
    stream = redis_server.stream()
    redis_server.client().xadd(stream, {"event": b'{"type": "a", "ts": 1}'})
    reader = open_source(parse(redis_server.uri(stream), "source")).open(0, None)
    assert len(drain(reader, 1)) == 1
    caplog.set_level("INFO", logger="cep.run")
    redis_server.proc.terminate()
    redis_server.proc.wait()
    assert reader.poll(10) == []  # down: logged, no exception, no records
    redis_server.restart()
    # memory-only server: the stream is gone; new entries are read from the start id on
    redis_server.client().xadd(stream, {"event": b'{"type": "b", "ts": 2}'}, id="9999999999999-0")
    got = drain(reader, 1, timeout=15)
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert ([v["type"] for _o, _r, v in got], "connector down" in messages,
            messages.count("connector up") >= 1) == (["b"], True, True)


def test_redis_sink_adds_entries_with_the_match_field(redis_server):
    stream = redis_server.stream()
    writer = open_writer(parse(redis_server.uri(stream), "sink"), "match", None, None)
    writer.write([match(1), match(2)])
    writer.close()
    entries = redis_server.client().xrange(stream)
    assert [orjson.loads(fields[b"match"])["match_id"] for _id, fields in entries] == ["m0001", "m0002"]


# ---------------------------------------------------------------- webhook


def test_webhook_posts_each_match_as_json_and_retries_failures(webhook):
    # m0001: two 503s then ok; m0002: dropped connection then ok; m0003: slow but in time
    plans = {"m0001": {1: 503, 2: 502}, "m0002": {1: "drop"}, "m0003": {1: ("delay", 0.3)}}
    webhook.plan = lambda mid, attempt: plans.get(mid, {}).get(attempt, "ok")
    dead: list = []
    writer = open_writer(parse(webhook.url, "sink"), "match", None, dead.append,
                         timeout=2.0, retries=3, backoff=0.05)
    writer.write([match(i) for i in range(5)])
    writer.close()
    assert (sorted(webhook.ids()), dead, webhook.content_types, webhook.attempts["m0001"]) == (
        [f"m{i:04d}" for i in range(5)], [], {"application/json"}, 3)


def test_webhook_dead_letters_a_match_that_finally_fails_with_the_last_error(webhook):
    webhook.plan = lambda mid, attempt: 503 if mid == "m0001" else (404 if mid == "m0002" else "ok")
    dead: list = []
    writer = open_writer(parse(webhook.url, "sink"), "match", None, dead.append, retries=2, backoff=0.02)
    writer.write([match(i) for i in range(3)])
    writer.close()
    got = sorted((d.reason, d.offset, "HTTP 503" in d.detail or "HTTP 404" in d.detail, orjson.loads(d.raw)["match_id"])
                 for d in dead)
    # 503 is retried (3 attempts), 404 is the receiver refusing: one attempt
    assert (got, webhook.attempts["m0001"], webhook.attempts["m0002"], webhook.ids()) == (
        [("delivery_failed", "m0001", True, "m0001"), ("delivery_failed", "m0002", True, "m0002")], 3, 1, ["m0000"])


def test_webhook_times_out_a_slow_receiver_and_retries(webhook):
    webhook.plan = lambda mid, attempt: ("delay", 1.5) if attempt == 1 else "ok"
    dead: list = []
    writer = open_writer(parse(webhook.url, "sink"), "match", None, dead.append, timeout=0.3, retries=2, backoff=0.02)
    writer.write([match(7)])
    writer.close()
    assert (dead, webhook.attempts["m0007"]) == ([], 2)


def test_webhook_to_a_refusing_port_dead_letters_after_the_retries(closed_port):
    dead: list = []
    writer = open_writer(parse(f"http://127.0.0.1:{closed_port}/x", "sink"), "match", None, dead.append,
                         retries=2, backoff=0.02)
    writer.write([match(1), match(2)])
    writer.close()
    assert sorted((d.reason, d.offset, "ConnectionRefusedError" in d.detail) for d in dead) == [
        ("delivery_failed", "m0001", True), ("delivery_failed", "m0002", True)]


def test_webhook_queue_is_bounded_so_a_slow_receiver_holds_the_writer_back(webhook):
    webhook.hold = threading.Event()
    writer = open_writer(parse(webhook.url, "sink"), "match", None, lambda d: None, in_flight=3, senders=1)
    done = threading.Event()

    def write_all() -> None:
        writer.write([match(i) for i in range(10)])
        done.set()

    thread = threading.Thread(target=write_all, daemon=True)
    thread.start()
    blocked = not done.wait(0.5)  # 1 being sent + 3 queued: the 5th put waits
    webhook.hold.set()
    thread.join(10)
    writer.close()
    assert (blocked, len(webhook.ids())) == (True, 10)


# ---------------------------------------------------------------- files


def test_file_sink_cuts_back_to_its_snapshot_on_resume(tmp_path):
    path = tmp_path / "out" / "m.jsonl"
    endpoint = parse(f"file:{path}", "sink")
    writer = open_writer(endpoint, "match", None, None)
    writer.write([match(1)])
    position = writer.snapshot()
    writer.write([match(2)])  # written after the snapshot, then the process dies
    writer.flush()
    again = open_writer(endpoint, "match", position, None)
    again.write([match(2)])
    again.close()
    assert [orjson.loads(line)["match_id"] for line in path.read_bytes().splitlines()] == ["m0001", "m0002"]


def test_file_source_reads_to_the_end_and_resumes_after_the_last_line(tmp_path):
    path = tmp_path / "ev.jsonl"
    path.write_text("".join(f'{{"type": "t", "ts": {i}}}\n' for i in range(5)))
    source = open_source(parse(f"file:{path}", "source"))
    reader = source.open(0, None)
    first = reader.poll(2)
    resumed = source.open(0, reader.position())
    rest = resumed.poll(100)
    assert ([v["ts"] for _o, _r, v in first + rest], resumed.ended) == ([0, 1, 2, 3, 4], True)
