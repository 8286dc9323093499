"""Intake: type/time extraction, catalog, per-partition lateness (SPEC §1, §2, §3 rule 9, §3.1)."""

from __future__ import annotations

import pickle

import orjson
import pytest

from cep.engine.intake import Intake
from cep.engine.model import DeadLetter, StreamSettings

T0 = 1_800_000_000_000


def _needs_price(type_name: str, event: dict) -> str | None:
    if type_name == "add_to_cart" and not isinstance(event.get("price"), float):
        return "field 'price' is missing; the catalog declares it on add_to_cart as float"
    return None


def _intake(**settings) -> Intake:
    return Intake(StreamSettings(**settings), _needs_price, partition=0, source="events.jsonl")


def test_an_accepted_event_comes_back_with_its_time_in_ms():
    event = {"type": "page_view", "ts": "2027-01-15T08:00:00Z"}
    assert _intake().read(event, 1, None) == (T0, event)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"ts": T0}, "missing_type"),
        ({"type": None, "ts": T0}, "missing_type"),
        ({"type": 3, "ts": T0}, "missing_type"),
        ({"type": "", "ts": T0}, "missing_type"),
        ({"type": "page_view"}, "bad_time"),
        ({"type": "page_view", "ts": None}, "bad_time"),
        ({"type": "page_view", "ts": "tomorrow"}, "bad_time"),
        ({"type": "page_view", "ts": True}, "bad_time"),
        ({"type": "add_to_cart", "ts": T0}, "catalog"),
        ([1, 2], "not_an_object"),
    ],
)
def test_bad_events_become_dead_letters_with_a_reason(event, reason):
    got = _intake().read(event, 7, None)
    assert isinstance(got, DeadLetter) and (got.reason, got.source, got.offset) == (reason, "events.jsonl", 7)


def test_a_dead_letter_keeps_the_input_text_or_else_the_event_as_json():
    intake = _intake()
    with_text = intake.read({"ts": T0}, 1, '{"ts": 1800000000000}  ')
    without = intake.read({"ts": T0, "x": "é"}, 2, None)
    assert (with_text.raw, orjson.loads(without.raw)) == ('{"ts": 1800000000000}  ', {"ts": T0, "x": "é"})


def test_the_detail_names_the_catalog_problem():
    got = _intake().read({"type": "add_to_cart", "ts": T0}, 1, None)
    assert got.detail == "field 'price' is missing; the catalog declares it on add_to_cart as float"


def test_type_and_time_fields_follow_the_settings_and_may_be_dotted():
    intake = _intake(type_field="activity", time_field="meta.at", time_format="%Y-%m-%d %H:%M:%S")
    event = {"activity": "claim_filed", "meta": {"at": "2027-01-15 08:00:00"}}
    assert intake.read(event, 1, None) == (T0, event)


def test_a_dotted_time_field_through_a_non_object_is_missing():
    got = _intake(time_field="meta.at").read({"type": "x", "meta": "2027"}, 1, None)
    assert got.reason == "bad_time"


def test_lateness_example_15_one_event_strictly_below_the_watermark_is_late():
    # examples/15: lateness 30s; lines in file order, times in seconds
    intake = _intake(lateness_ms=30_000)
    times = [0, 20, 70, 60, 120, 200, 170, 150, 210, 230]
    late = [t for t in times
            if isinstance(intake.read({"type": "x", "ts": T0 + 1000 * t}, None, None), DeadLetter)]
    assert late == [150]


def test_the_watermark_is_the_largest_time_seen_minus_lateness():
    intake = _intake(lateness_ms=20_000)
    for t in (100, 400, 350):
        intake.read({"type": "x", "ts": T0 + 1000 * t}, None, None)
    assert (intake.max_ts, intake.watermark) == (T0 + 400_000, T0 + 380_000)


def test_no_watermark_before_the_first_event():
    assert _intake().watermark is None


def test_an_event_exactly_at_the_watermark_is_not_late():
    intake = _intake(lateness_ms=10)
    intake.read({"type": "x", "ts": 100}, None, None)
    assert intake.read({"type": "x", "ts": 90}, None, None) == (90, {"type": "x", "ts": 90})


def test_a_catalog_dead_letter_still_moves_the_watermark():
    intake = _intake()
    intake.read({"type": "add_to_cart", "ts": T0 + 5000}, None, None)
    assert intake.read({"type": "x", "ts": T0}, None, None).reason == "late"


def test_a_late_event_does_not_move_the_watermark():
    intake = _intake(lateness_ms=100)
    intake.read({"type": "x", "ts": 1000}, None, None)
    intake.read({"type": "x", "ts": 10}, None, None)  # late
    assert intake.watermark == 900


def test_events_without_a_readable_time_do_not_move_the_watermark():
    intake = _intake()
    intake.read({"type": "x", "ts": "garbage"}, None, None)
    intake.read({"ts": "garbage"}, None, None)  # no type and no readable time either
    assert intake.watermark is None


def test_advance_raises_the_watermark_and_makes_earlier_events_late():
    intake = _intake()
    intake.read({"type": "x", "ts": 1000}, None, None)
    intake.advance(5000)
    assert (intake.watermark, intake.read({"type": "x", "ts": 4999}, None, None).reason) == (5000, "late")


def test_advance_never_moves_the_watermark_back():
    intake = _intake()
    intake.read({"type": "x", "ts": 9000}, None, None)
    intake.advance(5000)
    assert intake.watermark == 9000


def test_an_intake_survives_pickling_with_its_watermark():
    intake = _intake(lateness_ms=10)
    intake.read({"type": "x", "ts": 100}, None, None)
    again = pickle.loads(pickle.dumps(intake))
    assert (again.watermark, again.read({"type": "x", "ts": 50}, None, None).reason) == (90, "late")


def test_an_event_without_type_still_moves_the_watermark_with_its_readable_time():
    # §3.1 "every event with a readable time moves it": the typeless event at
    # t=100 is a dead letter, but it lifts the watermark, so t=50 is late after it.
    intake = Intake(StreamSettings(lateness_ms=10), None)
    assert intake.read({"type": "a", "ts": 40}, 1) == (40, {"type": "a", "ts": 40})
    dead = intake.read({"ts": 100}, 2)
    assert dead.reason == "missing_type"
    late = intake.read({"type": "a", "ts": 50}, 3)
    assert late.reason == "late" and intake.watermark == 90
