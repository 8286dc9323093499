"""SPEC §1 time formats: every readable time becomes epoch milliseconds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep.engine.timefmt import time_reader

T0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z
T0_ISO = "2027-01-15T08:00:00"


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        # epoch_ms
        ("epoch_ms", T0, T0),
        ("epoch_ms", 0, 0),
        ("epoch_ms", -1000, -1000),
        ("epoch_ms", float(T0), T0),
        ("epoch_ms", str(T0), T0),
        ("epoch_ms", f" {T0} ", T0),
        ("epoch_ms", 1.5, None),  # a fraction of a millisecond is not an epoch_ms time
        ("epoch_ms", "12ab", None),
        ("epoch_ms", True, None),
        ("epoch_ms", None, None),
        ("epoch_ms", T0_ISO + "Z", None),
        ("epoch_ms", [T0], None),
        # epoch_s
        ("epoch_s", 1_800_000_000, T0),
        ("epoch_s", 1_800_000_000.5, T0 + 500),
        ("epoch_s", 1_800_000_000.123, T0 + 123),
        ("epoch_s", "1800000000", T0),
        ("epoch_s", "1800000000.25", T0 + 250),
        ("epoch_s", float("nan"), None),
        ("epoch_s", float("inf"), None),
        ("epoch_s", False, None),
        ("epoch_s", "soon", None),
        # iso8601
        ("iso8601", T0_ISO + "Z", T0),
        ("iso8601", T0_ISO, T0),  # naive = UTC
        ("iso8601", T0_ISO + "+00:00", T0),
        ("iso8601", "2027-01-15T10:00:00+02:00", T0),
        ("iso8601", "2027-01-15T03:00:00-05:00", T0),
        ("iso8601", "2027-01-15T10:00:00+0200", T0),
        ("iso8601", T0_ISO + ".250Z", T0 + 250),
        ("iso8601", T0_ISO + ".1Z", T0 + 100),
        ("iso8601", T0_ISO + ".123456789Z", T0 + 123),  # nanoseconds truncated to ms
        ("iso8601", "2027-01-15 08:00:00", T0),
        ("iso8601", "2027-01-15", T0 - 8 * 3_600_000),
        ("iso8601", "1969-12-31T23:59:59.999Z", -1),
        ("iso8601", "2027-01-15T25:00:00Z", None),
        ("iso8601", "yesterday", None),
        ("iso8601", "", None),
        ("iso8601", T0, None),  # a number is not an ISO string
        # auto
        ("auto", T0, T0),  # int -> ms
        ("auto", 1_800_000_000.0, T0),  # float -> seconds
        ("auto", 1_800_000_000.75, T0 + 750),
        ("auto", str(T0), T0),  # numeric string -> as its number: an int string is ms
        ("auto", "1800000000.5", T0 + 500),  # a decimal string is seconds
        ("auto", T0_ISO + "Z", T0),
        ("auto", T0_ISO, T0),
        ("auto", "2027-01-15T09:00:00+01:00", T0),
        ("auto", "2027-01-15 08:00:00 UTC", T0),
        ("auto", "2027-01-15 08:00:00.500 UTC", T0 + 500),
        ("auto", "2027-01-15 08:00:00 utc", T0),
        ("auto", "2027-01-15 08:00:00 GMT", T0),
        ("auto", "2019-10-01 00:00:00 UTC", 1_569_888_000_000),
        ("auto", "2027-01-15 08:00:00+01:00 UTC", None),  # two zones: which one?
        ("auto", "UTC", None),
        ("auto", True, None),
        ("auto", False, None),
        ("auto", None, None),
        ("auto", {"ts": T0}, None),
        ("auto", float("nan"), None),
        ("auto", "", None),
        ("auto", "15/01/2027 08:00", None),
        # strftime patterns (no zone -> UTC; %z accepts +00:00 and Z)
        ("%Y-%m-%d %H:%M:%S", "2027-01-15 08:00:00", T0),
        ("%Y-%m-%d %H:%M:%S.%f", "2027-01-15 08:00:00.042", T0 + 42),
        ("%d/%m/%Y %H:%M", "15/01/2027 08:00", T0),
        ("%Y-%m-%d %H:%M:%S%z", "2027-01-15 08:00:00+00:00", T0),
        ("%Y-%m-%d %H:%M:%S%z", "2027-01-15 09:30:00+01:30", T0),
        ("%Y-%m-%d %H:%M:%S%z", "2027-01-15 09:00:00+0100", T0),
        ("%Y-%m-%d %H:%M:%S%z", "2027-01-15 08:00:00Z", T0),
        ("%Y-%m-%d %H:%M:%S", "2027-01-15T08:00:00", None),
        ("%Y-%m-%d %H:%M:%S", T0, None),
        ("%Y-%m-%d %H:%M:%S", None, None),
    ],
)
def test_time_reader_reads_each_format(fmt, value, expected):
    assert time_reader(fmt)(value) == expected


@settings(max_examples=60)
@given(ms=st.integers(min_value=-(10**12), max_value=10**14))
def test_auto_reads_iso_text_of_any_millisecond_back_to_it(ms):
    from datetime import datetime, timezone

    text = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).replace(
        microsecond=(ms % 1000) * 1000
    ).isoformat()
    assert time_reader("auto")(text) == ms


@settings(max_examples=100)
@given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(),
                       st.lists(st.integers(), max_size=2), st.dictionaries(st.text(), st.integers(), max_size=2)))
@pytest.mark.parametrize("fmt", ["epoch_ms", "epoch_s", "iso8601", "auto", "%Y-%m-%d %H:%M:%S%z"])
def test_time_reader_never_raises_and_gives_an_int_or_none(fmt, value):
    got = time_reader(fmt)(value)
    assert got is None or type(got) is int


@pytest.mark.parametrize("fmt", ["epoch_ms", "epoch_s", "auto"])
def test_times_beyond_the_years_1_to_9999_are_unreadable(fmt):
    read = time_reader(fmt)
    assert [read(v) for v in (10**25, -(10**25), 1e25, "1e25")] == [None, None, None, None]
