"""The bundled CX rule pack (rules/) and sample stream (samples/) work as the
docs promise: the rules check cleanly, their in-file tests pass, every rule
is shown both firing and staying quiet, and replaying the sample stream
makes every rule fire and shows every kind of dead letter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cep.compile import compile_ruleset
from cep.engine import Engine, StreamSettings
from cep.lang import load

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
SAMPLE = ROOT / "samples" / "journeys.jsonl"
CEP = str(Path(sys.executable).with_name("cep"))


def _cep(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([CEP, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def pack():
    ruleset = load([str(RULES)])
    assert not ruleset.has_errors, ruleset.diagnostics
    return ruleset


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay")
    proc = _cep("replay", str(SAMPLE), "--rules", str(RULES), "--lateness", "5s", "--quiet",
                "--out", str(out / "matches.jsonl"), "--dead-letter", str(out / "dead.jsonl"), cwd=out)
    assert proc.returncode == 0, proc.stderr
    matches = [json.loads(line) for line in (out / "matches.jsonl").read_text().splitlines() if line.strip()]
    dead = [json.loads(line) for line in (out / "dead.jsonl").read_text().splitlines() if line.strip()]
    return matches, dead


def test_cep_check_passes_without_warnings():
    proc = _cep("check", str(RULES))
    output = proc.stdout + proc.stderr
    # Diagnostics print as `file:line:col: warning: message` (SPEC §5).
    assert (proc.returncode, re.findall(r":\d+:\d+: (?:error|warning): .*", output)) == (0, []), output


def test_cep_test_passes_every_rule_test():
    proc = _cep("test", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _outputs(ruleset) -> dict[str, str]:
    return {rule.name: (rule.emit.name if rule.emit and rule.emit.name else rule.name) for rule in ruleset.rules}


def _fire_and_quiet(ruleset) -> tuple[set[str], set[str]]:
    """The rules some test expects to fire, and those some test expects quiet.

    A test shows rule R firing when it is limited to R (`only R`) and expects
    an output; it shows R quiet with `expect nothing from R`, or with
    `expect nothing` when R takes part."""
    all_rules = {rule.name for rule in ruleset.rules}
    fires: set[str] = set()
    quiet: set[str] = set()
    for _, test in ruleset.tests:
        taking_part = set(test.only) or all_rules
        for expect in test.expects:
            if expect.output is not None and len(taking_part) == 1:
                fires |= taking_part
            elif expect.output is None and expect.nothing_from:
                quiet.add(expect.nothing_from)
            elif expect.output is None:
                quiet |= taking_part
    return fires, quiet


def test_every_rule_has_a_test_that_fires_and_one_that_stays_quiet(pack):
    names = {rule.name for rule in pack.rules}
    fires, quiet = _fire_and_quiet(pack)
    assert (names - fires, names - quiet) == (set(), set())


def test_pack_spreads_over_the_four_themes(pack):
    files = {Path(path).name for path in pack.sources}
    assert {"catalog.cep", "web_shop.cep", "contact_centre.cep", "applications.cep", "analytics.cep"} <= files


def test_customer_facing_rules_have_a_cooldown(pack):
    # Analytics milestones and call routing are not messages to the customer;
    # every other rule must never spam one.
    exempt = {"first_purchase_after_sessions", "funnel_drop_out", "channel_switch_to_phone"}
    missing = sorted(rule.name for rule in pack.rules if rule.cooldown is None and rule.name not in exempt)
    assert missing == []


def test_sample_generator_is_deterministic_and_matches_the_committed_file(tmp_path):
    out = tmp_path / "journeys.jsonl"
    subprocess.run([sys.executable, str(ROOT / "samples" / "generate.py"), "--seed", "7", "--out", str(out)],
                   check=True, capture_output=True)
    assert out.read_bytes() == SAMPLE.read_bytes()


def test_sample_has_a_few_thousand_events_for_a_few_hundred_customers():
    customers = set()
    lines = SAMPLE.read_text().splitlines()
    for line in lines:
        try:
            customers.add(json.loads(line).get("customer_id"))
        except json.JSONDecodeError:
            continue
    assert 3000 <= len(lines) <= 6000 and 150 <= len(customers) <= 500


def test_replaying_the_sample_fires_every_rule(pack, replayed):
    matches, _ = replayed
    fired = {m["rule"] for m in matches}
    assert {rule.name for rule in pack.rules} - fired == set()


def test_replaying_the_sample_dead_letters_exactly_the_planted_bad_lines(replayed):
    _, dead = replayed
    assert sorted(d["reason"] for d in dead) == ["bad_time", "catalog", "invalid_json", "late", "missing_type"]


def _pack_matches(pack, events: list[tuple[int, str, dict]]) -> list:
    """Run the whole pack over (offset_s, type, fields) events, then end the input."""
    engine = Engine(compile_ruleset(pack), StreamSettings())
    for offset_s, type_, fields in events:
        engine.feed({"type": type_, "ts": 1_800_000_000_000 + offset_s * 1000, **fields})
    engine.finish()
    return engine.take_matches()


def _abandonment(offset_s: int, customer: str, value: float) -> list[tuple[int, str, dict]]:
    return [
        (offset_s, "add_to_cart", {"customer_id": customer, "sku": "sku-1", "price": value, "qty": 1}),
        (offset_s + 10, "checkout_start", {"customer_id": customer, "cart_value": value, "items": 1}),
    ]


def test_cart_abandonment_offer_is_not_repeated_within_its_cooldown(pack):
    # Two abandonments three hours apart, and a later event of someone else
    # so that both idle deadlines pass: the second offer is suppressed by the
    # 12 h cooldown (a rule test cannot show this: it allows extra matches).
    events = _abandonment(0, "c1", 40.0) + _abandonment(3 * 3600, "c1", 52.0)
    events.append((4 * 3600, "page_view", {"customer_id": "someone-else", "page": "/"}))
    offers = [m.payload["cart_value"] for m in _pack_matches(pack, events) if m.rule == "cart_abandonment_chat"]
    assert offers == [40.0]


def test_cart_abandonment_offer_comes_back_after_its_cooldown(pack):
    events = _abandonment(0, "c1", 40.0) + _abandonment(13 * 3600, "c1", 52.0)
    events.append((14 * 3600, "page_view", {"customer_id": "someone-else", "page": "/"}))
    offers = [m.payload["cart_value"] for m in _pack_matches(pack, events) if m.rule == "cart_abandonment_chat"]
    assert offers == [40.0, 52.0]


def test_replaying_the_sample_shows_a_cooldown_suppression(tmp_path):
    summary = tmp_path / "summary.json"
    proc = _cep("replay", str(SAMPLE), "--rules", str(RULES), "--lateness", "5s", "--quiet",
                "--out", str(tmp_path / "m.jsonl"), "--dead-letter", str(tmp_path / "d.jsonl"),
                "--summary-json", str(summary), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(summary.read_text())["rules"]["cart_abandonment_chat"]["suppressed"] >= 1
