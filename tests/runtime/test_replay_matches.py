"""`cep.runtime.replay_matches`: the real dataflow on in-memory partitions
agrees with the in-process Engine, on one worker and on several (SPEC §3
rule 10), and a shard's snapshot resumes where it stopped."""

from __future__ import annotations

import pickle
import random

import pytest

from cep.compile import compile_ruleset
from cep.engine import Engine, StreamSettings
from cep.lang import load_text
from cep.runtime import replay_matches
from cep.runtime.dataflow import ReplayShard
from cep.runtime.glue import Env, EnvSpec

RULES = """
rule outage_contact
  key customer_id
  match link_down as down
    then (portal_login | ivr_call) as contact
  within 10m
  emit outage_contact { cause: down.cause, channel: contact.channel }

rule outage_unresolved
  key customer_id
  match link_down as down
    then no link_up for 5m
  emit outage_unresolved { cause: down.cause }

rule busy_line "three events of a line, keyed by line"
  key line_id
  match 3 any as evs
  within 2m
  emit busy { n: count(evs) }
"""

TYPES = ["link_down", "link_up", "portal_login", "ivr_call"]


def partitions(seed: int, n_parts: int = 3, per_part: int = 400) -> list[list[dict]]:
    """Per partition, time mostly rising with some disorder, and an unreadable event now and then."""
    rng = random.Random(seed)
    parts = []
    for p in range(n_parts):
        t = rng.randint(0, 60_000)
        events = []
        for _ in range(per_part):
            t += rng.randint(0, 20_000)
            event = {"type": rng.choice(TYPES), "ts": 1_800_000_000_000 + t - rng.randint(0, 15_000),
                     "customer_id": f"c{rng.randint(0, 30)}", "cause": rng.choice(["fibre", "power"]),
                     "channel": rng.choice(["ivr", "portal"])}
            if rng.random() < 0.3:
                event["line_id"] = rng.randint(0, 5)
            if rng.random() < 0.02:
                event["ts"] = "later"
            events.append(event)
        parts.append(events)
    return parts


def engine_run(parts: list[list[dict]], lateness_ms: int):
    ruleset = load_text(RULES)
    engine = Engine(compile_ruleset(ruleset), StreamSettings(lateness_ms=lateness_ms), partitions=len(parts))
    for p, events in enumerate(parts):  # one partition after another: the order of reading must not matter
        for i, event in enumerate(events, 1):
            engine.feed(event, partition=p, source=f"partition-{p}.jsonl", offset=i)
        engine.close(p)
    engine.finish()
    matches = sorted(engine.take_matches(), key=lambda m: m.sort_key())
    return matches, engine.take_dead_letters(), engine.stats


@pytest.mark.parametrize("workers", [1, 3])
def test_dataflow_agrees_with_the_engine(tmp_path, workers):
    rules = tmp_path / "rules.cep"
    rules.write_text(RULES)
    parts = partitions(seed=workers)
    want, want_dead, want_stats = engine_run(parts, lateness_ms=10_000)
    got, dead, stats = replay_matches(str(rules), parts, workers=workers, lateness_ms=10_000)
    assert len(want) > 20
    assert got == want
    assert sorted((d.source, d.offset, d.reason) for d in dead) == \
        sorted((d.source, d.offset, d.reason) for d in want_dead)
    assert {d.reason for d in dead} == {"bad_time", "late"}
    assert stats.events == sum(map(len, parts))
    assert stats.matched_against + stats.irrelevant + sum(stats.dead_letters.values()) == stats.events
    assert stats.irrelevant == want_stats.irrelevant and stats.matched_against == want_stats.matched_against
    assert {name: r.to_json() for name, r in stats.rules.items()} == \
        {name: r.to_json() for name, r in want_stats.rules.items()}


def test_a_loaded_ruleset_and_two_processes_give_the_same_matches(tmp_path):
    rules = tmp_path / "rules.cep"
    rules.write_text(RULES)
    parts = partitions(seed=11, per_part=200)
    one, _, _ = replay_matches(load_text(RULES), parts)
    two, _, _ = replay_matches([rules], parts, processes=2)
    assert one and one == two


def shard_value(kind, part: int, events: list, wm: int, max_ts: int, final: bool) -> tuple:
    """One source batch's share for a shard class: events are (ts, position, event) of key group 0."""
    return (part, [(ts, part, seq, 0, event) for ts, seq, event in events], wm, max_ts, final)


@pytest.mark.parametrize("kind", [ReplayShard])
def test_a_shard_resumes_from_its_snapshot(kind):
    ruleset = load_text(RULES)
    env = Env(EnvSpec((), None, StreamSettings()), ruleset, compile_ruleset(ruleset))
    t0 = 1_800_000_000_000
    down = {"type": "link_down", "ts": t0, "customer_id": "a", "cause": "fibre"}
    login = {"type": "portal_login", "ts": t0 + 1000, "customer_id": "a", "channel": "portal"}
    first = [shard_value(kind, 0, [(t0, 1, down)], t0, t0, False)]
    second = [shard_value(kind, 0, [(t0 + 1000, 2, login)], t0 + 1000, t0 + 1000, True)]

    straight = kind(env, 1, noop=False)
    straight.on_batch(first)
    out_straight, _ = straight.on_batch(second)

    before = kind(env, 1, noop=False)
    before.on_batch(first)
    state = before.snapshot()
    assert isinstance(state, bytes)
    pickle.loads(state)  # compact bytes Bytewax can store
    resumed = kind(env, 1, noop=False, state=state)
    out_resumed, discard = resumed.on_batch(second)
    assert discard  # the input ended: the shard's state can go
    matches = [m for k, ms in out_resumed if k == "m" for m in ms]
    assert matches == [m for k, ms in out_straight if k == "m" for m in ms]
    assert [(m.rule, m.start_ts, m.end_ts) for m in matches] == [("outage_contact", t0, t0 + 1000)]


@pytest.mark.parametrize("kind", [ReplayShard])
def test_a_shard_holds_events_until_every_open_partition_has_passed_them(kind):
    ruleset = load_text(RULES)
    env = Env(EnvSpec((), None, StreamSettings()), ruleset, compile_ruleset(ruleset))
    t0 = 1_800_000_000_000
    down = {"type": "link_down", "ts": t0, "customer_id": "a", "cause": "fibre"}
    login = {"type": "portal_login", "ts": t0 + 1000, "customer_id": "a", "channel": "portal"}
    shard = kind(env, 2, noop=False)
    # partition 1 races ahead with the login; partition 0 has not said anything yet
    out, _ = shard.on_batch([shard_value(kind, 1, [(t0 + 1000, 1, login)], t0 + 5000, t0 + 5000, False)])
    assert out == []
    # partition 0 brings the earlier link_down: only now, in time order, does it match
    out, _ = shard.on_batch([shard_value(kind, 0, [(t0, 1, down)], t0 + 2000, t0 + 2000, False)])
    assert [(m.rule, m.start_ts, m.end_ts) for k, ms in out if k == "m" for m in ms] == [
        ("outage_contact", t0, t0 + 1000)]


def test_replay_shard_releases_in_time_then_partition_then_position_order():
    """Events of one key arriving out of order across batches and partitions
    reach the matcher in (ts, partition, position) order: the same ts on two
    partitions goes by partition, and an event at the frontier waits."""
    ruleset = load_text(RULES)
    env = Env(EnvSpec((), None, StreamSettings()), ruleset, compile_ruleset(ruleset))
    shard = ReplayShard(env, 2, noop=False)
    fed: list = []
    shard._matcher.on_batch = lambda entries, out: fed.extend((e[0], e[4]["n"]) for e in entries)
    shard._matcher.on_time = lambda wm: []
    ev = lambda n: {"type": "ivr_call", "customer_id": "a", "n": n}  # noqa: E731
    shard.on_batch([(1, [(10, 1, 1, 0, ev("p1-10")), (5, 1, 2, 0, ev("p1-5"))], 10, 10, False)])
    assert fed == []  # partition 0 has no watermark yet
    shard.on_batch([(0, [(10, 0, 1, 0, ev("p0-10")), (7, 0, 2, 0, ev("p0-7"))], 10, 10, False)])
    assert fed == [(5, "p1-5"), (7, "p0-7")]  # below the frontier 10 only
    shard.on_batch([(0, [], 10, 10, True), (1, [], 10, 10, True)])
    assert fed == [(5, "p1-5"), (7, "p0-7"), (10, "p0-10"), (10, "p1-10")]
