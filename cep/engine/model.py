"""The engine's data at its edges: settings, matches, dead letters, statistics."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

import orjson


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """How to read events (SPEC §1, §6). Paths may be dotted (`meta.ts`)."""

    type_field: str = "type"
    time_field: str = "ts"
    time_format: str = "auto"
    lateness_ms: int = 0


def json_bytes(value: object, option: int = 0) -> bytes:
    """orjson's JSON of `value`; for what orjson refuses -- an integer beyond
    64 bits, from CSV typing or payload arithmetic -- the standard library's,
    which writes such integers exactly (non-finite floats become null, as
    orjson writes them). Every JSON line cep writes goes through here, so no
    input value can stop a sink."""
    try:
        return orjson.dumps(value, option=option)
    except TypeError:
        return json.dumps(_finite(value), separators=(",", ":"), ensure_ascii=False,
                          sort_keys=bool(option & orjson.OPT_SORT_KEYS), default=str).encode()


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def match_id(rule: str, key: object, start_ts: int, end_ts: int) -> str:
    """SPEC §4: a deterministic hex digest of rule, key, start and end."""
    return hashlib.blake2b(json_bytes([rule, key, start_ts, end_ts]), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Match:
    rule: str
    output: str
    key: object  # the key field's JSON value, or a list for a multi-field key
    start_ts: int
    end_ts: int
    payload: dict

    @property
    def match_id(self) -> str:
        return match_id(self.rule, self.key, self.start_ts, self.end_ts)

    def to_json(self) -> dict:
        return {
            "rule": self.rule,
            "output": self.output,
            "key": self.key,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "match_id": self.match_id,
            "payload": self.payload,
        }

    def sort_key(self) -> tuple:
        """Replay output order: end_ts, rule, key, start_ts (keys compared as JSON text)."""
        return (self.end_ts, self.rule, json_bytes(self.key, orjson.OPT_SORT_KEYS), self.start_ts)


# Dead-letter reason codes (docs/architecture.md).
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_TYPE = "missing_type"
BAD_TIME = "bad_time"
CATALOG = "catalog"
LATE = "late"
CSV_WIDTH = "csv_width"
DELIVERY_FAILED = "delivery_failed"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str  # one of the codes above
    detail: str  # the human sentence: "field 'price' is a str, the catalog says float"
    source: str  # file name, "-", topic/partition, ...
    offset: object  # line number (1-based) in a file, offset in a topic, stream id in Redis
    raw: str  # the input text, or the event as JSON when there was no text

    def to_json(self) -> dict:
        return {"reason": self.reason, "detail": self.detail, "source": self.source,
                "offset": self.offset, "raw": self.raw}


@dataclass(slots=True)
class RuleStats:
    runs_started: int = 0
    died: Counter = field(default_factory=Counter)  # within, not, idle, no, next, cap
    discarded: int = 0
    matches: int = 0
    suppressed: int = 0

    def to_json(self) -> dict:
        return {"runs_started": self.runs_started, "died": dict(sorted(self.died.items())),
                "discarded": self.discarded, "matches": self.matches, "suppressed": self.suppressed}


@dataclass(slots=True)
class Stats:
    events: int = 0  # every event fed, dead letters included
    matched_against: int = 0
    irrelevant: int = 0
    dead_letters: Counter = field(default_factory=Counter)  # by reason code
    rules: dict[str, RuleStats] = field(default_factory=dict)

    def rule(self, name: str) -> RuleStats:
        got = self.rules.get(name)
        if got is None:
            got = self.rules[name] = RuleStats()
        return got

    def merge(self, other: Stats) -> None:
        """Add another shard's statistics into these."""
        self.events += other.events
        self.matched_against += other.matched_against
        self.irrelevant += other.irrelevant
        self.dead_letters.update(other.dead_letters)
        for name, theirs in other.rules.items():
            mine = self.rule(name)
            mine.runs_started += theirs.runs_started
            mine.died.update(theirs.died)
            mine.discarded += theirs.discarded
            mine.matches += theirs.matches
            mine.suppressed += theirs.suppressed

    def to_json(self) -> dict:
        return {"events": self.events, "matched_against": self.matched_against, "irrelevant": self.irrelevant,
                "dead_letters": dict(sorted(self.dead_letters.items())),
                "rules": {name: s.to_json() for name, s in sorted(self.rules.items())}}
