"""The Engine (docs/architecture.md "cep.engine"): intake per partition +
timeline + matcher. The worked examples of /work/shared/examples through it,
example 15 (lateness) and 20 (partitions, read in many interleavings) above all."""

from __future__ import annotations

import csv
import random
import sys
import tomllib
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from rules_text import load_rules  # noqa: E402

from support import EXAMPLES, json_close as _close
from cep.compile import compile_ruleset  # noqa: E402
from cep.compile.catalog import csv_typer  # noqa: E402
from cep.config import parse_duration  # noqa: E402
from cep.engine import DeadLetter, Engine, Match, StreamSettings  # noqa: E402

T0 = 1_800_000_000_000


def _folder(prefix: str) -> Path:
    return next(p for p in EXAMPLES.iterdir() if p.name.startswith(prefix + "-"))


def _config(folder: Path) -> tuple[StreamSettings, str]:
    stream = {}
    if (folder / "cep.toml").exists():
        stream = tomllib.loads((folder / "cep.toml").read_text())["stream"]
    settings = StreamSettings(type_field=stream.get("type_field", "type"), time_field=stream.get("time_field", "ts"),
                              time_format=stream.get("time_format", "auto"),
                              lateness_ms=parse_duration(stream.get("lateness", "0s")))
    return settings, stream.get("default_key", "customer_id")


def _partitions(folder: Path, ruleset, settings: StreamSettings) -> list[tuple[str, list[tuple[dict, str]]]]:
    """[(source name, [(event, raw line)])], one entry per input file, in sorted name order."""
    if (folder / "events").is_dir():
        files = sorted((folder / "events").iterdir())
    else:
        files = [p for p in (folder / "events.jsonl", folder / "events.csv") if p.exists()]
    parts = []
    for path in files:
        if path.suffix == ".csv":
            typer = csv_typer(ruleset.catalog)
            with path.open(newline="") as fh:
                rows = [(typer(row.get(settings.type_field), row), ",".join(row.values()))
                        for row in csv.DictReader(fh)]
        else:
            rows = [(orjson.loads(line), line) for line in path.read_text().splitlines() if line.strip()]
        parts.append((path.name, rows))
    return parts


def _expected(folder: Path) -> tuple[list[dict], int]:
    lines = (folder / "expected.jsonl").read_text().splitlines()
    dead = folder / "expected_dead.json"
    return ([orjson.loads(x) for x in lines if x.strip()],
            orjson.loads(dead.read_text())["dead_letters"] if dead.exists() else 0)


def _run(folder: Path, order: list[int] | None = None, **engine_kw) -> tuple[list[dict], list[DeadLetter], Engine]:
    """Feed the example's partitions in `order` (a list of partition indexes,
    one per event; default: each file to its end, then the next), then finish."""
    settings, default_key = _config(folder)
    ruleset = load_rules((folder / "rules.cep").read_text(), default_key=default_key)
    parts = _partitions(folder, ruleset, settings)
    engine = Engine(compile_ruleset(ruleset), settings, partitions=len(parts),
                    sources=[name for name, _ in parts], **engine_kw)
    if order is None:
        order = [p for p, (_, rows) in enumerate(parts) for _ in rows]
    pos = [0] * len(parts)
    matches: list[Match] = []
    for p in order:
        event, raw = parts[p][1][pos[p]]
        pos[p] += 1
        engine.feed(event, partition=p, offset=pos[p], raw=raw)
        matches += engine.take_matches()
    engine.finish()
    matches += engine.take_matches()
    got = []
    for m in sorted(matches, key=Match.sort_key):
        d = m.to_json()
        del d["match_id"]
        got.append(d)
    return got, engine.take_dead_letters(), engine


@pytest.mark.parametrize("prefix", [f"{n:02d}" for n in range(1, 21)])
def test_every_worked_example_through_the_engine(prefix):
    folder = _folder(prefix)
    got, dead, _ = _run(folder)
    expected, n_dead = _expected(folder)
    assert (len(dead), _close(got, expected)) == (n_dead, True), (got, expected, dead)


def test_example_15_the_late_event_is_a_dead_letter_naming_its_line():
    _, dead, _ = _run(_folder("15"))
    assert [(d.reason, d.source, d.offset, orjson.loads(d.raw)["customer_id"]) for d in dead] == [
        ("late", "events.jsonl", 8, "eli")]


def test_example_15_matches_come_out_as_soon_as_the_watermark_passes_them():
    # lateness 30s: ana's courier (t=20) completes her match, which is released once
    # the watermark passes t=20, i.e. once an event at t > 50 has been read (line 3, t=70)
    folder = _folder("15")
    settings, _ = _config(folder)
    engine = Engine(compile_ruleset(load_rules((folder / "rules.cep").read_text())), settings)
    lines = [orjson.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    seen = []
    for event in lines[:3]:
        engine.feed(event)
        seen.append(len(engine.take_matches()))
    assert seen == [0, 0, 1]


def _orders(sizes: list[int], seed: int) -> list[int]:
    rng = random.Random(seed)
    bag = [p for p, n in enumerate(sizes) for _ in range(n)]
    rng.shuffle(bag)
    return bag


def _example_20_orders() -> list[list[int]]:
    sizes = [4, 7, 3]  # ivr, network, portal
    files = [[p] * n for p, n in enumerate(sizes)]
    one_after_another = [
        [p for f in perm for p in files[f]] for perm in ([0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1])
    ]
    round_robin = []
    left = list(sizes)
    while any(left):
        for p in range(3):
            if left[p]:
                round_robin.append(p)
                left[p] -= 1
    return one_after_another + [round_robin] + [_orders(sizes, seed) for seed in range(12)]


@pytest.mark.parametrize("order", _example_20_orders())
def test_example_20_the_result_does_not_depend_on_how_the_partitions_interleave(order):
    folder = _folder("20")
    got, dead, _ = _run(folder, order)
    expected, n_dead = _expected(folder)
    assert ([(d.reason, d.source, d.offset) for d in dead], _close(got, expected)) == (
        [("late", "network.jsonl", 6)], True), got


def test_example_20_read_as_one_stream_most_events_would_be_late():
    # the contrast the README draws: per-partition watermarks are what keep them
    folder = _folder("20")
    settings, default_key = _config(folder)
    ruleset = load_rules((folder / "rules.cep").read_text(), default_key=default_key)
    engine = Engine(compile_ruleset(ruleset), settings, partitions=1)
    for _, rows in _partitions(folder, ruleset, settings):
        for event, raw in rows:
            engine.feed(event, raw=raw)
    engine.finish()
    assert len(engine.take_dead_letters()) == 10  # every event after ivr.jsonl (t=900)


def test_stats_count_every_event_fed_and_dead_letters_by_reason():
    _, _, engine = _run(_folder("20"))
    stats = engine.stats
    assert (stats.events, dict(stats.dead_letters),
            stats.events == stats.matched_against + stats.irrelevant + sum(stats.dead_letters.values()),
            stats.rules["outage_contact"].matches, stats.rules["outage_unresolved"].matches) == (
        14, {"late": 1}, True, 4, 4)


RULES = """
rule cart_then_silence
  key customer_id
  match add_to_cart as cart
    then idle 90s
  emit silence { sku: cart.sku }
"""
CATALOG = "event add_to_cart { sku: str }\n"


def _engine(text: str = RULES, **kw) -> Engine:
    return Engine(compile_ruleset(load_rules(text)), StreamSettings(**kw.pop("settings", {})), **kw)


def test_a_deadline_beyond_the_last_event_never_fires_in_replay():
    eng = _engine()
    eng.feed({"type": "add_to_cart", "ts": T0, "customer_id": "c1", "sku": "a"})
    eng.feed({"type": "page_view", "ts": T0 + 60_000, "customer_id": "c2"})
    eng.finish()
    assert eng.take_matches() == []


def test_advance_moves_time_on_without_an_event_so_silence_is_detected():
    eng = _engine()
    eng.feed({"type": "add_to_cart", "ts": T0, "customer_id": "c1", "sku": "a"})
    eng.advance(T0 + 90_000)
    assert [(m.output, m.key, m.end_ts, m.payload) for m in eng.take_matches()] == [
        ("silence", "c1", T0 + 90_000, {"sku": "a"})]


def test_after_advance_an_event_below_it_is_late():
    eng = _engine()
    eng.feed({"type": "add_to_cart", "ts": T0, "customer_id": "c1", "sku": "a"})
    eng.advance(T0 + 10_000)
    eng.feed({"type": "page_view", "ts": T0 + 5_000, "customer_id": "c1"})
    assert [d.reason for d in eng.take_dead_letters()] == ["late"]


def test_a_catalog_dead_letter_moves_the_watermark_so_its_time_resolves_deadlines():
    eng = _engine(CATALOG + RULES)
    eng.feed({"type": "add_to_cart", "ts": T0, "customer_id": "c1", "sku": "a"})
    eng.feed({"type": "add_to_cart", "ts": T0 + 100_000, "customer_id": "c2", "sku": 7})
    got = [m.end_ts for m in eng.take_matches()]
    assert (got, [d.reason for d in eng.take_dead_letters()]) == ([T0 + 90_000], ["catalog"])


def test_the_final_watermark_counts_the_time_of_a_catalog_dead_letter():
    eng = _engine(CATALOG + RULES, partitions=2)
    eng.feed({"type": "add_to_cart", "ts": T0, "customer_id": "c1", "sku": "a"}, partition=0)
    eng.feed({"type": "add_to_cart", "ts": T0 + 90_000, "customer_id": "c2", "sku": None}, partition=1)
    eng.finish()
    assert [m.end_ts for m in eng.take_matches()] == [T0 + 90_000]


def test_a_partition_without_events_holds_matches_back_until_finish():
    eng = _engine(partitions=2)
    eng.feed({"type": "add_to_cart", "ts": T0, "customer_id": "c1", "sku": "a"}, partition=0)
    eng.feed({"type": "page_view", "ts": T0 + 200_000, "customer_id": "c9"}, partition=0)
    before = eng.take_matches()
    eng.finish()
    assert (before, [m.end_ts for m in eng.take_matches()]) == ([], [T0 + 90_000])


def test_close_lets_the_other_partitions_move_on():
    eng = _engine(partitions=2)
    eng.feed({"type": "add_to_cart", "ts": T0, "customer_id": "c1", "sku": "a"}, partition=0)
    eng.feed({"type": "page_view", "ts": T0 + 200_000, "customer_id": "c9"}, partition=0)
    eng.close(1)
    assert [m.end_ts for m in eng.take_matches()] == [T0 + 90_000]


def test_dead_letters_carry_source_offset_and_raw_text():
    eng = _engine(sources=["clicks.jsonl"])
    eng.feed({"ts": T0}, offset=3, raw='{"ts": 1800000000000}')
    eng.feed([1], source="other.jsonl", offset=4, raw="[1]")
    assert [d.to_json() for d in eng.take_dead_letters()] == [
        {"reason": "missing_type", "detail": "the event has no type field 'type'", "source": "clicks.jsonl",
         "offset": 3, "raw": '{"ts": 1800000000000}'},
        {"reason": "not_an_object", "detail": "the event is not a JSON object but a list",
         "source": "other.jsonl", "offset": 4, "raw": "[1]"}]


def test_the_type_field_setting_reaches_the_matcher():
    eng = _engine(settings={"type_field": "kind"})
    eng.feed({"kind": "add_to_cart", "ts": T0, "customer_id": "c1", "sku": "a"})
    eng.advance(T0 + 90_000)
    assert len(eng.take_matches()) == 1


def test_take_matches_hands_each_match_out_once():
    eng = _engine()
    eng.feed({"type": "add_to_cart", "ts": T0, "customer_id": "c1", "sku": "a"})
    eng.advance(T0 + 90_000)
    assert (len(eng.take_matches()), eng.take_matches()) == (1, [])
