"""Live time in the shards (`--idle-advance`), without a dataflow: the shard
logic of `cep run` fed the items its sources send (SPEC §3 rule 9, §3.1)."""

from __future__ import annotations

import pytest

from cep.engine.model import StreamSettings
from cep.runtime.glue import Env, EnvSpec
from cep.runtime.live import IDLE, LiveShardLogic, LiveTimeline

RULE = """\
rule restart_then_silence "restart, then nothing for 2 seconds"
  key customer_id
  match 1+ modem_restarted as restarts
    then idle 2s
  emit check_line { restarts: count(restarts) }
"""


@pytest.fixture
def env(tmp_path):
    (tmp_path / "r.cep").write_text(RULE)
    return Env(EnvSpec((str(tmp_path / "r.cep"),), None, StreamSettings()))


def restart(ts: int, seq: int) -> tuple:
    return (ts, seq, (0, {"type": "modem_restarted", "ts": ts, "customer_id": "a"}))


def emitted(out: list, kind: str) -> list:
    return [x for k, items in out if k == kind for x in items]


def test_an_idle_partition_does_not_hold_the_frontier_back():
    timeline = LiveTimeline(2)
    timeline.set_watermark(0, 1000)
    timeline.set_watermark(1, 200)
    held = timeline.frontier
    timeline.set_idle(1, 300)
    assert (held, timeline.frontier) == (200, 1000)


def test_when_every_partition_is_idle_the_frontier_is_the_largest_clock_watermark():
    timeline = LiveTimeline(2)
    timeline.set_watermark(0, 1000)
    timeline.set_watermark(1, 200)
    timeline.set_idle(0, 5000)
    timeline.set_idle(1, 7000)
    both = timeline.frontier
    timeline.set_active(1)  # an event arrived there: it holds the frontier again
    assert (both, timeline.frontier) == (7000, 200)


def test_silence_fires_the_absence_step_once_the_clock_watermark_passes_the_deadline(env):
    shard = LiveShardLogic(env, ["p0"])
    shard.on_batch([(0, [restart(100, 1)], 100, 100, False)])
    before = shard.on_batch([(0, [], 1500, 100, (IDLE, 1500))])[0]
    after = shard.on_batch([(0, [], 2100, 100, (IDLE, 2100))])[0]
    assert (emitted(before, "m"), [(m.key, m.end_ts) for m in emitted(after, "m")]) == ([], [("a", 2100)])


def test_without_idle_items_the_shard_waits_like_replay(env):
    shard = LiveShardLogic(env, ["p0"])
    out, _ = shard.on_batch([(0, [restart(100, 1)], 100, 100, False)])
    assert out == []


def test_an_event_below_the_time_already_resolved_is_a_late_dead_letter(env):
    shard = LiveShardLogic(env, ["p0", "p1"])
    shard.on_batch([(0, [], None, None, (IDLE, None)), (1, [restart(5000, 3)], 5000, 5000, False)])
    shard.on_batch([(1, [], 9000, 5000, (IDLE, 9000))])
    # partition 0 was idle from the start and now sends an event from before 9000
    out, _ = shard.on_batch([(0, [restart(4000, 7)], 4000, 4000, False)])
    late = emitted(out, "d")
    assert [(d.reason, d.source, d.offset) for d in late] == [("late", "p0", 7)]


def test_a_restored_shard_keeps_its_idle_partitions(env):
    shard = LiveShardLogic(env, ["p0", "p1"])
    shard.on_batch([(0, [restart(100, 1)], 100, 100, False), (1, [], None, None, (IDLE, None))])
    again = LiveShardLogic(env, ["p0", "p1"], shard.snapshot())
    out, _ = again.on_batch([(0, [], 2500, 100, (IDLE, 2500))])
    assert [(m.key, m.end_ts) for m in emitted(out, "m")] == [("a", 2100)]
