"""Intake: one partition's events in, accepted `(ts, event)` or a dead letter out.

Per event, in this order (SPEC §1, §2 catalog, §3 rule 9, §3.1 Partitions):
1. not a JSON object                    -> `not_an_object`
2. no type, or a type that is not text  -> `missing_type` (its time, when
   readable and not late, still moves the watermark: §3.1 "every event with
   a readable time moves it")
3. a time that cannot be read           -> `bad_time`
4. below this partition's watermark     -> `late` (does not move the watermark)
5. the time moves the watermark (max time seen in this partition - lateness)
6. does not fit the catalog             -> `catalog` (it has moved the watermark:
   §3.1 "the watermark spans keys and types ... and events dead-lettered for
   breaking the catalog")
A late event is reported as late even if it also breaks the catalog: it could
not have been matched either way, and lateness is what the operator tunes.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from cep.engine.model import BAD_TIME, CATALOG, LATE, MISSING_TYPE, NOT_AN_OBJECT, DeadLetter, StreamSettings
from cep.engine.timefmt import time_reader

_ABSENT = object()


def field_getter(path: str) -> Callable[[dict], object]:
    """A reader of a (possibly dotted) field: `meta.ts` walks nested objects.
    Returns `_ABSENT` when a step is missing or not an object. A field whose
    own name contains a dot (`{"meta.ts": ...}`) is found too: the whole path
    is tried first as one name."""
    parts = tuple(path.split("."))
    if len(parts) == 1:
        return lambda event: event.get(path, _ABSENT)

    def get(event: dict) -> object:
        if path in event:
            return event[path]
        value: object = event
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                return _ABSENT
            value = value[part]
        return value

    return get


def raw_text(event: object, raw: str | None) -> str:
    """The dead letter's `raw`: the input text, or the event as JSON when there
    was no text (architecture: DeadLetter)."""
    if raw is not None:
        return raw
    try:
        return orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return repr(event)


class Intake:
    """Reads one partition. Cheap to pickle: it holds settings, two ints and
    closures rebuilt by `__setstate__`."""

    __slots__ = ("settings", "validator", "partition", "source", "max_ts", "_floor",
                 "_get_type", "_get_time", "_read_time")

    def __init__(self, settings: StreamSettings, validator: Callable[[str, dict], str | None] | None,
                 partition: int = 0, source: str = "-") -> None:
        self.settings = settings
        self.validator = validator
        self.partition = partition
        self.source = source
        self.max_ts: int | None = None  # largest event time read in this partition
        self._floor: int | None = None  # a watermark set from outside (Engine.advance)
        self._build()

    def _build(self) -> None:
        self._get_type = field_getter(self.settings.type_field)
        self._get_time = field_getter(self.settings.time_field)
        self._read_time = time_reader(self.settings.time_format)

    def __getstate__(self) -> dict:
        return {"settings": self.settings, "validator": self.validator, "partition": self.partition,
                "source": self.source, "max_ts": self.max_ts, "floor": self._floor}

    def __setstate__(self, state: dict) -> None:
        self.settings = state["settings"]
        self.validator = state["validator"]
        self.partition = state["partition"]
        self.source = state["source"]
        self.max_ts = state["max_ts"]
        self._floor = state["floor"]
        self._build()

    @property
    def watermark(self) -> int | None:
        """§3 rule 9, per partition: the largest time seen here minus the lateness
        (or a later time set by `advance`); None before the first event."""
        wm = None if self.max_ts is None else self.max_ts - self.settings.lateness_ms
        if self._floor is not None and (wm is None or self._floor > wm):
            return self._floor
        return wm

    def advance(self, watermark: int) -> None:
        """Move the watermark on without an event (live idle-advance, the end of a
        `cep test` stream). Events below it are late from now on, which is what
        keeps the timeline ordered once deadlines up to it have resolved."""
        if self._floor is None or watermark > self._floor:
            self._floor = watermark

    def _note_time(self, event: dict) -> None:
        """Move the watermark with the time of an event that is dead for another
        reason, when that time is readable and not late."""
        value = self._get_time(event)
        ts = None if value is _ABSENT else self._read_time(value)
        if ts is None:
            return
        wm = self.watermark
        if (wm is None or ts >= wm) and (self.max_ts is None or ts > self.max_ts):
            self.max_ts = ts

    def _dead(self, reason: str, detail: str, event: object, offset: object, raw: str | None) -> DeadLetter:
        return DeadLetter(reason, detail, self.source, offset, raw_text(event, raw))

    def read(self, event: object, offset: object = None, raw: str | None = None) -> tuple[int, dict] | DeadLetter:
        if not isinstance(event, dict):
            return self._dead(NOT_AN_OBJECT, f"the event is not a JSON object but {_json_kind(event)}",
                              event, offset, raw)
        type_name = self._get_type(event)
        if type_name is _ABSENT or type_name is None or not isinstance(type_name, str) or not type_name:
            self._note_time(event)
        if type_name is _ABSENT or type_name is None:
            return self._dead(MISSING_TYPE, f"the event has no type field '{self.settings.type_field}'",
                              event, offset, raw)
        if not isinstance(type_name, str) or not type_name:
            return self._dead(MISSING_TYPE, f"the type field '{self.settings.type_field}' is "
                              f"{_json_kind(type_name)}, not the name of an event type", event, offset, raw)
        value = self._get_time(event)
        if value is _ABSENT:
            return self._dead(BAD_TIME, f"the event has no time field '{self.settings.time_field}'",
                              event, offset, raw)
        ts = self._read_time(value)
        if ts is None:
            return self._dead(BAD_TIME, f"the time field '{self.settings.time_field}' holds "
                              f"{_short(value)}, which is not a time in the format "
                              f"'{self.settings.time_format}' (years 1 to 9999)", event, offset, raw)
        wm = self.watermark
        if wm is not None and ts < wm:  # §3.1 Boundaries: late only when strictly below
            return self._dead(LATE, f"the event's time {ts} is below the watermark {wm} of its partition "
                              f"(allowed lateness {self.settings.lateness_ms} ms)", event, offset, raw)
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
        if self.validator is not None:
            problem = self.validator(type_name, event)
            if problem is not None:
                return self._dead(CATALOG, problem, event, offset, raw)
        return ts, event


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: object) -> str:
    text = raw_text(value, None)
    return text if len(text) <= 60 else text[:57] + "..."
