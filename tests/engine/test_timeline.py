"""The timeline merges partitions in (ts, partition, position) order (SPEC §3.1 Partitions, Ties)."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from cep.engine.timeline import Timeline


def _feed(tl: Timeline, partition: int, seq: int, ts: int, lateness: int = 0) -> list:
    tl.push(ts, partition, seq, f"p{partition}#{seq}")
    tl.set_watermark(partition, ts - lateness)
    return [item for _, item in tl.ready()]


def test_nothing_is_released_while_a_partition_has_sent_nothing():
    tl = Timeline(2)
    assert (_feed(tl, 0, 0, 100), _feed(tl, 0, 1, 200), tl.frontier) == ([], [], None)


def test_events_are_released_below_the_minimum_watermark():
    tl = Timeline(2)
    _feed(tl, 0, 0, 100)
    _feed(tl, 0, 1, 300)
    assert (_feed(tl, 1, 0, 200), tl.frontier) == (["p0#0"], 200)


def test_an_event_at_the_frontier_waits_because_a_tie_in_an_earlier_partition_sorts_first():
    tl = Timeline(2)
    _feed(tl, 1, 0, 500)  # network.jsonl in example 20
    _feed(tl, 0, 0, 400)
    late_comer = _feed(tl, 0, 1, 500)  # ivr.jsonl, same time: comes first
    assert (late_comer, [item for _, item in tl.finish()[0]]) == (["p0#0"], ["p0#1", "p1#0"])


def test_events_within_lateness_are_reordered():
    tl = Timeline(1)
    released = []
    for seq, ts in enumerate([0, 20, 70, 60, 120]):
        released += _feed(tl, 0, seq, ts, lateness=30)
    assert released == ["p0#0", "p0#1", "p0#3", "p0#2"]  # 60 is released before 70


def test_a_closed_partition_no_longer_holds_the_frontier_back():
    tl = Timeline(2)
    _feed(tl, 0, 0, 100)
    held = _feed(tl, 1, 0, 60)  # 60 is the frontier: not released yet
    tl.close(1, 60)
    assert (held, tl.frontier, [item for _, item in tl.ready()]) == ([], 100, ["p1#0"])


def test_finish_releases_everything_with_the_largest_time_of_all_partitions_as_watermark():
    tl = Timeline(3)
    _feed(tl, 0, 0, 900, lateness=20)
    _feed(tl, 1, 0, 500, lateness=20)
    tl.close(2, 150)  # its events went elsewhere (dead letters), but its time still counts
    items, wm = tl.finish()
    assert ([ts for ts, _ in items], wm) == ([500, 900], 900)


def test_close_counts_the_time_of_events_that_were_never_pushed():
    tl = Timeline(1)
    _feed(tl, 0, 0, 100)
    tl.close(0, 400)  # e.g. a catalog dead letter at 400
    assert tl.frontier == 400


def test_finish_of_an_empty_timeline_has_no_watermark():
    assert Timeline(2).finish() == ([], None)


def test_watermarks_never_move_back():
    tl = Timeline(1)
    tl.set_watermark(0, 100)
    tl.set_watermark(0, 50)
    assert tl.frontier == 100


def test_a_timeline_survives_pickling():
    tl = Timeline(2)
    _feed(tl, 0, 0, 100)
    _feed(tl, 1, 0, 90)
    again = pickle.loads(pickle.dumps(tl))
    assert (again.frontier, len(again), again.finish()) == (90, 2, ([(90, "p1#0"), (100, "p0#0")], 100))


@st.composite
def _partitioned_inputs(draw):
    """Per partition a list of times that are in order up to `lateness`, and one
    interleaving of the partitions (the order in which a reader might see them)."""
    lateness = draw(st.sampled_from([0, 5, 30]))
    parts = draw(st.integers(min_value=1, max_value=4))
    streams = []
    for _ in range(parts):
        times, top = [], 0
        for step in draw(st.lists(st.integers(min_value=-lateness, max_value=20), max_size=8)):
            t = max(top - lateness, top + step)
            top = max(top, t)
            times.append(t)
        streams.append(times)
    order = draw(st.permutations([p for p, times in enumerate(streams) for _ in times]))
    return lateness, streams, order


@settings(max_examples=150)
@given(data=_partitioned_inputs(), close_early=st.booleans())
def test_the_release_order_does_not_depend_on_how_fast_each_partition_is_read(data, close_early):
    lateness, streams, order = data
    tl = Timeline(len(streams))
    pos = [0] * len(streams)
    released: list[tuple[int, int, int]] = []
    for p in order:
        seq = pos[p]
        pos[p] += 1
        ts = streams[p][seq]
        tl.push(ts, p, seq, (ts, p, seq))
        tl.set_watermark(p, max(streams[p][: seq + 1]) - lateness)
        if close_early and pos[p] == len(streams[p]):
            tl.close(p, None)
        frontier_before = tl.frontier
        got = [item for _, item in tl.ready()]
        assert tl.closed or all(ts < frontier_before for ts, _, _ in got)
        released += got
    released += [item for _, item in tl.finish()[0]]
    expected = sorted((ts, p, seq) for p, times in enumerate(streams) for seq, ts in enumerate(times))
    assert released == expected
