"""The timeline: the merge of the partitions in event-time order (SPEC §3.1 Partitions).

Accepted events are buffered tagged `(ts, partition, seq)` — `seq` is the
event's position in its partition — and released in that order once no
partition can still send anything that sorts before them:

- each open partition has a watermark (its intake's: max time seen - lateness);
  an event arriving later in that partition is at or above it (else it is late);
- the *frontier* is the minimum over the open partitions. An event with
  `ts < frontier` can be released: every event still to come has `ts >= frontier`.
  An event *at* the frontier cannot: another partition may still send one at
  the same time that sorts first (ties go by partition order).
- A deadline `<= frontier` may resolve: every event still to come is at or
  after it, and a deadline comes before an event of the same time (§3.1 Ties).
- A closed partition (its input ended) no longer holds the frontier back; once
  every partition is closed the frontier is the largest event time of all of
  them (§3 rule 9: at the end of a finite input the watermark becomes the
  largest event time of the whole input) and everything is released.

A partition that has not sent an event yet has no watermark and holds the
frontier at None (nothing is released) until it sends one or is closed.

Plain lists and a heap: cheap to pickle for the dataflow's snapshots.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class Timeline:
    __slots__ = ("_heap", "_wm", "_closed", "_max")

    def __init__(self, partitions: int) -> None:
        if partitions < 1:
            raise ValueError("a timeline needs at least one partition")
        self._heap: list[tuple[int, int, int, object]] = []
        self._wm: list[int | None] = [None] * partitions  # per partition, never moves back
        self._closed: list[bool] = [False] * partitions
        self._max: list[int | None] = [None] * partitions  # largest event time per partition

    def __getstate__(self) -> tuple:
        return (self._heap, self._wm, self._closed, self._max)

    def __setstate__(self, state: tuple) -> None:
        self._heap, self._wm, self._closed, self._max = state

    @property
    def partitions(self) -> int:
        return len(self._wm)

    def __len__(self) -> int:
        """Events buffered, not yet released."""
        return len(self._heap)

    def push(self, ts: int, partition: int, seq: int, item: object) -> None:
        """Buffer an accepted event. `(partition, seq)` must be unique, so the
        item itself is never compared."""
        heapq.heappush(self._heap, (ts, partition, seq, item))
        top = self._max[partition]
        if top is None or ts > top:
            self._max[partition] = ts

    def set_watermark(self, partition: int, wm: int | None) -> None:
        """A partition's watermark; a lower value than the last one is ignored."""
        cur = self._wm[partition]
        if wm is not None and (cur is None or wm > cur):
            self._wm[partition] = wm

    def close(self, partition: int, max_ts: int | None = None) -> None:
        """The partition's input ended; `max_ts` is the largest event time it
        read (dead-lettered events with a readable time included)."""
        self._closed[partition] = True
        top = self._max[partition]
        if max_ts is not None and (top is None or max_ts > top):
            self._max[partition] = max_ts

    @property
    def closed(self) -> bool:
        return all(self._closed)

    @property
    def frontier(self) -> int | None:
        """The minimum watermark of the open partitions (deadlines `<=` it may
        resolve); once all are closed, the largest time of all partitions."""
        low: int | None = None
        any_open = False
        for p, wm in enumerate(self._wm):
            if self._closed[p]:
                continue
            any_open = True
            if wm is None:
                return None
            if low is None or wm < low:
                low = wm
        if any_open:
            return low
        top = None
        for value in (*self._max, *self._wm):
            if value is not None and (top is None or value > top):
                top = value
        return top

    def ready(self) -> Iterator[tuple[int, object]]:
        """Release `(ts, item)` in `(ts, partition, seq)` order for every buffered
        event below the frontier (all of them once every partition is closed).
        The frontier is read once: pushing while iterating is not supported."""
        heap = self._heap
        if self.closed:
            while heap:
                ts, _, _, item = heapq.heappop(heap)
                yield ts, item
            return
        bound = self.frontier
        if bound is None:
            return
        while heap and heap[0][0] < bound:
            ts, _, _, item = heapq.heappop(heap)
            yield ts, item

    def finish(self) -> tuple[list[tuple[int, object]], int | None]:
        """End of input: close every partition, release everything left.
        Returns the events and the final watermark (the largest event time of
        all partitions; None when there was none)."""
        for p in range(len(self._closed)):
            self._closed[p] = True
        return list(self.ready()), self.frontier
