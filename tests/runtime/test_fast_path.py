"""Replay's fast path gives what the general path gives: the chunked line
reader and the inline intake (flat type, integer epoch-ms time) produce the
same records, dead letters and watermarks as `Reader` + `Intake`, and the
catalog precheck never accepts an event the catalog validator rejects."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cep.compile import compile_ruleset
from cep.compile.catalog import catalog_validator
from cep.engine import StreamSettings
from cep.engine.model import DeadLetter
from cep.lang import load_text
from cep.runtime.dataflow import SIDE, FlowSpec, _PartitionSource
from cep.runtime.glue import Env, EnvSpec, catalog_precheck
from cep.runtime.inputs import Partition, Reader

RULES = """
event view { page: str, n: int?, score: float, tags: list?, extra: any }
event ping { }

rule two_views
  key customer_id
  match view as a then view as b
  within 1m
  emit two { a: a.page }
"""

T0 = 1_800_000_000_000

# every kind of line the fast path must hand to the general one, between ordinary events
LINES = [
    b'{"type":"view","ts":%d,"customer_id":"a","page":"/x","score":1,"extra":0}' % T0,
    b"",
    b"   \t",
    b'{"type":"view","ts":%d,"customer_id":"a","page":"/y","score":2.5,"extra":[]}\r' % (T0 + 5),
    b'{"type":"view","ts":',  # truncated: orjson's message counts the newline
    b"[1, 2]",
    b"null",
    b'{"ts":%d,"customer_id":"a"}' % (T0 + 9),  # no type, but its time moves the watermark
    b'{"type":"","ts":%d}' % (T0 + 9),
    b'{"type":"view","ts":"soon","customer_id":"a"}',
    b'{"type":"view","ts":1800000000.010,"customer_id":"b","page":"/f","score":1,"extra":1}',  # seconds
    b'{"type":"view","ts":"%d","customer_id":"b","page":"/s","score":1,"extra":1}' % (T0 + 11),
    b'{"type":"view","ts":%d,"customer_id":"a","page":"/late","score":1,"extra":1}' % (T0 - 60_000),
    b'{"type":"view","ts":%d,"customer_id":"a","page":7,"score":1,"extra":1}' % (T0 + 12),
    b'{"type":"view","ts":%d,"customer_id":"a","page":"/n","score":1,"extra":null}' % (T0 + 13),
    b'{"type":"view","ts":%d,"customer_id":"a","page":"/t","score":true,"extra":1}' % (T0 + 14),
    b'{"type":"ping","ts":%d,"customer_id":"a"}' % (T0 + 15),
    b'{"type":"view","ts":%d,"page":"/nokey","score":1,"extra":1}' % (T0 + 16),
    b'{"type":"view","ts":true,"customer_id":"a"}',
    b'{"type":"view","ts":%d,"customer_id":"a","page":"/z","score":1,"extra":1,"n":null}' % (T0 + 17),
    b'{"type":"view","ts":%d,"customer_id":"a","page":"/\xff","score":1,"extra":1}' % (T0 + 18),
    b'{"type":"view","ts":%d,"customer_id":"a","page":"/end","score":1,"extra":1' % (T0 + 19),
]


def env_for(lateness_ms: int = 1000) -> Env:
    ruleset = load_text(RULES)
    return Env(EnvSpec((), None, StreamSettings(lateness_ms=lateness_ms)), ruleset, compile_ruleset(ruleset))


def general_path(path: str, env: Env) -> tuple[list, list, int | None]:
    """What the Reader and the Intake make of the file, record by record."""
    reader = Reader(Partition(path, "jsonl", False))
    intake = env.intake(0, path)
    accepted, dead = [], []
    for offset, raw, value in reader:
        got = value if type(value) is DeadLetter else intake.read(value, offset, raw)
        (dead if type(got) is DeadLetter else accepted).append(got if type(got) is DeadLetter else (offset, got))
    reader.close()
    return accepted, dead, intake.watermark


def fast_path(path: str, env: Env, chunk: int) -> tuple[list, list, int | None, int, int, int]:
    spec = FlowSpec(partitions=(Partition(path, "jsonl", False),), out_dir="", shards=1, chunk=chunk)
    source = _PartitionSource(0, spec.partitions[0], env, spec)
    events, dead, lines, matched, irrelevant, wm = [], [], 0, 0, 0, None
    while True:
        try:
            items = source.next_batch()
        except StopIteration:
            break
        for key, value in items:
            if key == SIDE:
                dead += value[1]
                lines += value[2]
                matched += value[3]
                irrelevant += value[4]
            else:
                events += value[1]
                wm = value[2]
    return events, dead, wm, lines, matched, irrelevant


def test_the_fast_path_reads_every_line_as_the_reader_and_the_intake_do(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\n".join(LINES))  # the last line has no newline: its message differs
    env = env_for()
    want_accepted, want_dead, want_wm = general_path(str(path), env)
    for chunk in (7, 64, 1 << 20):  # lines cut across chunks at every size
        events, dead, wm, lines, matched, irrelevant = fast_path(str(path), env, chunk)
        assert [d.to_json() for d in dead] == [d.to_json() for d in want_dead]
        # routed: (ts, partition, line, group, event), only the events with a key of a type the rule uses
        assert [(e[2], (e[0], e[4])) for e in events] == [
            (offset, got) for offset, got in want_accepted if "customer_id" in got[1] and got[1]["type"] == "view"]
        assert wm == want_wm
        assert lines == len(want_accepted) + len(want_dead) == sum(1 for line in LINES if line.strip())
        assert (matched, irrelevant) == (len(events), len(want_accepted) - len(events))
    reasons = {d.reason for d in want_dead}
    assert reasons == {"invalid_json", "not_an_object", "missing_type", "bad_time", "late", "catalog"}


def test_a_final_line_with_a_newline_keeps_its_message(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"type":"view","ts":\n')
    env = env_for()
    _, want_dead, _ = general_path(str(path), env)
    _, dead, *_ = fast_path(str(path), env, 1 << 20)
    assert [d.detail for d in dead] == [d.detail for d in want_dead] == [
        "not valid JSON: unexpected end of data: line 2 column 1 (char 21)"]


# the values orjson can read back: integers within 64 bits
scalars = st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=3)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2),
    max_leaves=4)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["view", "ping", "other"]),
       st.dictionaries(st.sampled_from(["page", "n", "score", "tags", "extra", "x"]), json_values, max_size=6))
def test_the_catalog_precheck_accepts_only_what_the_validator_accepts(etype, event):
    catalog = load_text(RULES).catalog
    validator, fits = catalog_validator(catalog), catalog_precheck(catalog)
    event = orjson.loads(orjson.dumps(event))  # what orjson hands the fast path
    if fits(etype, event):
        assert validator(etype, event) is None


def test_the_catalog_precheck_lets_ordinary_events_skip_the_validator():
    fits = catalog_precheck(load_text(RULES).catalog)
    assert fits("view", {"page": "/p", "score": 1, "extra": {}, "n": None})
    assert fits("ping", {}) and fits("undeclared", {"anything": 1})
    assert not fits("view", {"page": "/p", "score": "1", "extra": 1})
    assert not fits("view", {"page": "/p", "score": 1})  # a required `any` field is missing
