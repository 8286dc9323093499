"""Reading event times (SPEC §1): every time becomes an int of epoch milliseconds.

`time_reader(fmt)` returns a function of one value that gives the time in
epoch milliseconds, or None when the value cannot be read in that format.
The function never raises: a bad time is a dead letter (`bad_time`), decided
by the caller.

Formats:
- `epoch_ms`: an int (or an integral float, or a numeric string) of milliseconds;
- `epoch_s`: a number (or numeric string) of seconds, fractions kept to the ms;
- `iso8601`: an ISO-8601 string; `Z` or an offset, or none = UTC;
- `auto`: int -> ms; float -> seconds; numeric string -> as its number;
  ISO-8601; `YYYY-MM-DD HH:MM:SS[.fff] UTC`;
- anything else is a strftime pattern read with `datetime.strptime`; without a
  zone the time is UTC, and `%z` accepts `+00:00` and `Z`.

Bools are never times (JSON `true` is not the number 1). Non-finite floats
and times outside what `datetime` can represent (years 1 to 9999) are
unreadable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timezone

# ASCII digits only: `\d` would also accept other scripts' digits
_NUMERIC = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# `2019-10-01 00:00:00 UTC` (BigQuery / Postgres exports) and `... GMT`
_ZONE_WORD = re.compile(r"\s*(?:UTC|GMT)$", re.IGNORECASE)

TimeReader = Callable[[object], "int | None"]

# The times cep accepts: years 1 to 9999, what `datetime` can show.  A time
# outside (`1e25` seconds) is unreadable -- a `bad_time` dead letter -- rather
# than a number no JSON writer downstream can carry.
MIN_MS = -62_135_596_800_000
MAX_MS = 253_402_300_799_999


def _to_ms(dt: datetime) -> int | None:
    # naive -> UTC (SPEC §1); integer arithmetic so no float rounding creeps in
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        delta = dt - _EPOCH
    except OverflowError:
        return None
    return (delta.days * 86_400_000) + (delta.seconds * 1000) + (delta.microseconds // 1000)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _float_ms(seconds: float) -> int | None:
    ms = seconds * 1000
    if not math.isfinite(ms):  # 1.797e305 s is finite, its milliseconds are not
        return None
    return round(ms)


def _read_ms(value: object) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, float):
        # an integral float such as 1.7e12 is a count of ms written oddly; 1.5 ms is not
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.match(text):
            return int(text)
        if _NUMERIC.match(text):
            return _read_ms(float(text))
    return None


def _read_s(value: object) -> int | None:
    if type(value) is int:
        return value * 1000
    if isinstance(value, float):
        return _float_ms(value)
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.match(text):
            return int(text) * 1000
        if _NUMERIC.match(text):
            return _float_ms(float(text))
    return None


def _read_iso(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or text[0] not in "0123456789":
        return None
    try:
        return _to_ms(datetime.fromisoformat(text))
    except ValueError:
        return None


def _read_auto(value: object) -> int | None:
    if type(value) is int:  # fast path: the common case, epoch ms
        return value
    if isinstance(value, float):
        return _float_ms(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _INTEGER.match(text):
        return int(text)
    if _NUMERIC.match(text):
        return _float_ms(float(text))
    bare = _ZONE_WORD.sub("", text)
    if bare != text:
        # a trailing UTC/GMT word: the rest must be a naive time, read as UTC
        try:
            dt = datetime.fromisoformat(bare)
        except ValueError:
            return None
        return _to_ms(dt) if dt.tzinfo is None else None
    return _read_iso(text)


def _strptime_reader(pattern: str) -> TimeReader:
    def read(value: object) -> int | None:
        if not isinstance(value, str):
            return None
        text = value.strip()
        try:
            return _to_ms(datetime.strptime(text, pattern))
        except (ValueError, OverflowError):
            return None

    return read


_NAMED: dict[str, TimeReader] = {
    "epoch_ms": _read_ms,
    "epoch_s": _read_s,
    "iso8601": _read_iso,
    "auto": _read_auto,
}


def time_reader(fmt: str) -> TimeReader:
    """The reader for `fmt` (SPEC §1, §6 `time_format`). A name that is not
    one of the four formats is a strftime pattern; config validation has
    already required that it contains a `%`."""
    read = _NAMED.get(fmt) or _strptime_reader(fmt)
    ints_are_ms = fmt in ("epoch_ms", "auto")

    def read_in_range(value: object) -> int | None:
        if ints_are_ms and type(value) is int:  # fast path: epoch ms
            return value if MIN_MS <= value <= MAX_MS else None
        ms = read(value)
        return ms if ms is not None and MIN_MS <= ms <= MAX_MS else None

    return read_in_range
