#!/usr/bin/env python3
"""Generate the bundled sample stream of customer journeys.

    python3 samples/generate.py --seed 7 --out samples/journeys.jsonl

A week of web-shop, contact-centre and application journeys for a few
hundred customers, as JSON lines with `type`, `ts` (epoch milliseconds),
`customer_id` and the fields that rules/catalog.cep declares.  Standard
library only; the same seed always gives the same file, byte for byte.

The stream is what a real collector delivers:

- mostly in time order, with a little disorder: now and then two
  neighbouring events at most 5 seconds apart arrive swapped.  Replay it with
  `--lateness 5s` and the engine re-orders them (SPEC §3 rule 9);
- a handful of deliberately bad lines, so that a replay shows every kind of
  dead letter: a line that is not JSON, an event without a type, an
  unreadable time, an `add_to_cart` that breaks the catalog, and an event
  that arrives a minute late.

Besides the random background traffic, a few customers follow a scripted
journey that each rule of rules/ recognises, so a replay over rules/ makes
every rule fire at least once (tests/test_rule_pack.py checks it).
"""

from __future__ import annotations

import argparse
import calendar
import json
import random
from dataclasses import dataclass, field

# Monday 2027-03-01 00:00:00 UTC.
BASE_MS = calendar.timegm((2027, 3, 1, 0, 0, 0)) * 1000
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
SPAN_MS = 7 * DAY
LATENESS_MS = 5 * SECOND  # the disorder the docs promise; replay with --lateness 5s

CATEGORIES = {
    "laptops": [("sku-l1", 899.0), ("sku-l2", 1249.0), ("sku-l3", 649.0)],
    "phones": [("sku-p1", 549.0), ("sku-p2", 329.0)],
    "audio": [("sku-a1", 79.9), ("sku-a2", 199.0), ("sku-a3", 24.5)],
    "cables": [("sku-c1", 9.9), ("sku-c2", 14.5)],
    "shoes": [("sku-s1", 89.0), ("sku-s2", 59.9), ("sku-s3", 120.0)],
}
SHOP_PAGES = ["/", "/shop", "/shop/laptops", "/shop/phones", "/shop/audio", "/shop/shoes", "/deals", "/account"]
PRICING_PAGES = ["/pricing", "/pricing/compare", "/pricing/plus"]
HELP_PAGES = ["/help", "/help/returns", "/help/refunds", "/help/shipping", "/help/payments"]
SUPPORT_PAGES = ["/support", "/support/delivery", "/support/contact", "/support/warranty"]
GOOD_QUERIES = ["laptop", "usb-c cable", "headphones", "running shoes", "phone case", "charger"]
BAD_QUERIES = ["lapptop 16gb", "crimson sneakers", "hdmi 2.1 braided", "vegan leather boots", "giftcard"]
QUEUES = ["billing", "delivery", "returns", "technical"]
TOPICS = {
    "billing": ["double charge", "invoice copy", "refund status"],
    "delivery": ["late parcel", "wrong address", "missing item"],
    "returns": ["return label", "exchange size", "refund status"],
    "technical": ["app crash", "login problem", "payment page error"],
}
PAYMENT_REASONS = ["card_declined", "3ds_timeout", "insufficient_funds", "gateway_error", "user_abort"]
PRODUCTS = ["personal_loan", "credit_card", "savings_account", "mortgage"]
DOCUMENTS = ["proof_of_id", "payslip", "bank_statement", "proof_of_address"]


@dataclass
class Stream:
    """Collects (ts, seq, event) triples; seq keeps generation order for ties."""

    rng: random.Random
    events: list[tuple[int, int, dict]] = field(default_factory=list)

    def add(self, ts: int, type_: str, customer: str, **fields) -> None:
        event = {"type": type_, "ts": ts, "customer_id": customer}
        event.update({k: v for k, v in fields.items() if v is not None})
        self.events.append((ts, len(self.events), event))

    def jitter(self, low_s: float, high_s: float) -> int:
        """A gap between two clicks, in ms (never a round number, so ties are rare)."""
        return int(self.rng.uniform(low_s, high_s) * SECOND) + self.rng.randrange(1, 999)


# ---------------------------------------------------------------------------
# background journeys


@dataclass
class Customer:
    cid: str
    segment: str | None
    orders: int  # orders placed before this week
    counter: list[int] = field(default_factory=lambda: [0])

    def next_id(self, prefix: str) -> str:
        self.counter[0] += 1
        return f"{prefix}-{self.cid[2:]}-{self.counter[0]}"


def shop_session(s: Stream, c: Customer, t: int) -> int:
    """One visit to the shop: browse, maybe search, maybe buy.  Returns the
    time of its last event."""
    rng = s.rng
    s.add(t, "session_start", c.cid, session_id=c.next_id("s"), channel=rng.choice(["web", "web", "app"]),
          device=rng.choice(["desktop", "mobile", "tablet"]))
    cart: list[tuple[str, float, int]] = []
    for _ in range(rng.randint(2, 10)):
        t += s.jitter(4, 80)
        roll = rng.random()
        if roll < 0.30:
            page = rng.choice(SHOP_PAGES)
            error = "E500" if rng.random() < 0.03 else None
            s.add(t, "page_view", c.cid, page=page, referrer=rng.choice([None, "google", "newsletter"]),
                  error_code=error)
        elif roll < 0.55:
            category = rng.choice(sorted(CATEGORIES))
            sku, price = rng.choice(CATEGORIES[category])
            s.add(t, "product_view", c.cid, sku=sku, price=price, category=category)
        elif roll < 0.68:
            if rng.random() < 0.2:
                s.add(t, "search", c.cid, query=rng.choice(BAD_QUERIES), results=0)
            else:
                s.add(t, "search", c.cid, query=rng.choice(GOOD_QUERIES), results=rng.randint(1, 300))
        elif roll < 0.76:
            s.add(t, "page_view", c.cid, page=rng.choice(PRICING_PAGES))
        elif roll < 0.82:
            s.add(t, "page_view", c.cid, page=rng.choice(HELP_PAGES))
        else:
            category = rng.choice(sorted(CATEGORIES))
            sku, price = rng.choice(CATEGORIES[category])
            qty = rng.choice([1, 1, 1, 2])
            cart.append((sku, price, qty))
            s.add(t, "add_to_cart", c.cid, sku=sku, price=price, qty=qty)
    if cart and rng.random() < 0.7:
        value = round(sum(p * q for _, p, q in cart), 2)
        items = sum(q for _, _, q in cart)
        t += s.jitter(10, 60)
        s.add(t, "checkout_start", c.cid, cart_value=value, items=items)
        if rng.random() < 0.15:
            t += s.jitter(15, 40)
            reason = rng.choice(PAYMENT_REASONS)
            s.add(t, "payment_failed", c.cid, reason=reason, amount=value,
                  error_code="PSP_502" if reason == "gateway_error" else None)
        if rng.random() < 0.75:
            t += s.jitter(15, 70)
            s.add(t, "purchase", c.cid, order_id=c.next_id("o"), amount=value, first_order=c.orders == 0,
                  segment=c.segment)
            c.orders += 1
            if rng.random() < 0.15:
                # after-sales worries, hours later
                t += rng.randrange(2 * HOUR, 20 * HOUR)
                for _ in range(rng.randint(1, 3)):
                    t += s.jitter(20, 120)
                    s.add(t, "page_view", c.cid, page=rng.choice(SUPPORT_PAGES))
    return t


def contact_journey(s: Stream, c: Customer, t: int) -> None:
    """A case: a chat or a web form, perhaps a call, perhaps resolved and reopened."""
    rng = s.rng
    queue = rng.choice(QUEUES)
    topic = rng.choice(TOPICS[queue])
    case = c.next_id("K")
    if rng.random() < 0.6:
        s.add(t, "chat_started", c.cid, queue=queue, topic=topic, agent_id=f"a-{rng.randint(10, 60)}", case_id=case)
    else:
        s.add(t, "contact_form", c.cid, queue=queue, topic=topic, case_id=case)
    if rng.random() < 0.35:
        t += rng.randrange(30 * MINUTE, 40 * HOUR)
        s.add(t, "call_started", c.cid, queue="general", topic=topic if rng.random() < 0.5 else None,
              case_id=case if rng.random() < 0.6 else None)
    if rng.random() < 0.7:
        t += rng.randrange(1 * HOUR, 30 * HOUR)
        s.add(t, "case_resolved", c.cid, case_id=case, resolution=rng.choice(["answered", "refunded", "replaced"]))
        if rng.random() < 0.2:
            t += rng.randrange(6 * HOUR, 2 * DAY)
            s.add(t, "case_reopened", c.cid, case_id=case, reason=rng.choice(["not fixed", "new question"]))


def application_journey(s: Stream, c: Customer, t: int) -> None:
    rng = s.rng
    app = c.next_id("A")
    s.add(t, "application_started", c.cid, application_id=app, product=rng.choice(PRODUCTS))
    t += rng.randrange(10 * MINUTE, 6 * HOUR)
    docs = sorted(rng.sample(DOCUMENTS, rng.randint(1, 3)))
    s.add(t, "documents_requested", c.cid, application_id=app, documents=docs)
    if rng.random() < 0.7:
        t += rng.randrange(2 * HOUR, 2 * DAY)
        s.add(t, "documents_submitted", c.cid, application_id=app, documents=docs)
        t += rng.randrange(10 * MINUTE, 5 * HOUR)
        s.add(t, "application_submitted", c.cid, application_id=app)


def background(s: Stream, c: Customer) -> None:
    rng = s.rng
    starts = sorted(rng.randrange(0, SPAN_MS - 2 * HOUR) for _ in range(rng.randint(1, 5)))
    busy_until = 0
    for start in starts:
        busy_until = shop_session(s, c, BASE_MS + max(start, busy_until - BASE_MS + 30 * MINUTE))
    if rng.random() < 0.3:
        contact_journey(s, c, BASE_MS + rng.randrange(0, SPAN_MS - DAY))
    if rng.random() < 0.08:
        application_journey(s, c, BASE_MS + rng.randrange(0, 4 * DAY))


# ---------------------------------------------------------------------------
# scripted journeys: one per rule, each on a customer of its own, so that
# nothing else on that customer's timeline can get in the way


def scripted(s: Stream, cid: str, rule: str, t: int) -> None:
    j = s.jitter
    if rule == "cart_abandonment_twice":
        # Two abandonments three hours apart: the second chat offer falls in
        # the rule's 12 h cooldown, so the replay summary shows a suppression.
        scripted(s, cid, "cart_abandonment_chat", t)
        scripted(s, cid, "cart_abandonment_chat", t + 3 * HOUR)
    elif rule == "cart_abandonment_chat":
        s.add(t, "session_start", cid, session_id=f"s-{cid}", channel="web")
        t += j(20, 40); s.add(t, "add_to_cart", cid, sku="sku-a2", price=199.0, qty=1)
        t += j(20, 40); s.add(t, "add_to_cart", cid, sku="sku-c1", price=9.9, qty=2)
        t += j(20, 40); s.add(t, "checkout_start", cid, cart_value=218.8, items=3)
        # ...and then silence: the chat offer comes 90 s later
    elif rule == "pricing_hesitation":
        for page in ["/pricing", "/pricing/compare", "/shop/laptops", "/pricing/plus"]:
            t += j(10, 30); s.add(t, "page_view", cid, page=page)
        t += j(10, 30); s.add(t, "checkout_start", cid, cart_value=1249.0, items=1)
    elif rule == "search_dead_end":
        for query in ["lapptop 16gb", "laptop 16 gb ram", "notebook 16gb"]:
            t += j(15, 60); s.add(t, "search", cid, query=query, results=0)
    elif rule == "help_page_loop":
        for page in ["/help/returns", "/help/refunds", "/help/shipping", "/help/returns"]:
            t += j(10, 40); s.add(t, "page_view", cid, page=page)
    elif rule == "payment_trouble":
        s.add(t, "checkout_start", cid, cart_value=649.0, items=1)
        t += j(20, 40); s.add(t, "payment_failed", cid, reason="card_declined", amount=649.0)
        t += j(20, 40); s.add(t, "payment_failed", cid, reason="3ds_timeout", amount=649.0)
        t += j(60, 120); s.add(t, "checkout_start", cid, cart_value=649.0, items=1)
        t += j(20, 40); s.add(t, "purchase", cid, order_id=f"o-{cid}", amount=649.0, first_order=False)
    elif rule == "error_streak":
        t += j(5, 10); s.add(t, "page_view", cid, page="/checkout", error_code="E500")
        t += j(5, 10); s.add(t, "page_view", cid, page="/checkout")
        t += j(5, 10); s.add(t, "payment_failed", cid, reason="gateway_error", amount=89.0, error_code="PSP_502")
        t += j(5, 10); s.add(t, "page_view", cid, page="/checkout", error_code="E500")
    elif rule == "channel_switch_to_phone":
        s.add(t, "chat_started", cid, queue="billing", topic="double charge", agent_id="a-17")
        t += 3 * HOUR + j(0, 600); s.add(t, "call_started", cid, queue="general")
    elif rule == "repeat_contact":
        s.add(t, "contact_form", cid, queue="delivery", topic="missing item", case_id=f"K-{cid}")
        t += 20 * HOUR + j(0, 600); s.add(t, "call_started", cid, queue="general", case_id=f"K-{cid}")
    elif rule == "case_reopened_twice":
        case = f"K-{cid}"
        s.add(t, "chat_started", cid, queue="technical", topic="app crash", agent_id="a-31", case_id=case)
        t += 2 * HOUR + j(0, 600); s.add(t, "case_resolved", cid, case_id=case, resolution="answered")
        t += 10 * HOUR + j(0, 600); s.add(t, "case_reopened", cid, case_id=case, reason="not fixed")
        t += 4 * HOUR + j(0, 600); s.add(t, "case_resolved", cid, case_id=case, resolution="replaced")
        t += 1 * DAY + j(0, 600); s.add(t, "case_reopened", cid, case_id=case, reason="same fault")
    elif rule == "vip_support_after_purchase":
        s.add(t, "purchase", cid, order_id=f"o-{cid}", amount=1249.0, first_order=False)
        t += 5 * HOUR + j(0, 600); s.add(t, "page_view", cid, page="/support/delivery")
        t += j(30, 90); s.add(t, "page_view", cid, page=f"/orders/o-{cid}/problem")
    elif rule == "stalled_application":
        app = f"A-{cid}"
        s.add(t, "application_started", cid, application_id=app, product="personal_loan")
        t += j(600, 1800); s.add(t, "documents_requested", cid, application_id=app, documents=["payslip", "proof_of_id"])
    elif rule == "first_purchase_after_sessions":
        for n in range(3):
            s.add(t, "session_start", cid, session_id=f"s-{cid}-{n}", channel=["web", "app", "web"][n])
            t += DAY + j(0, 3600)
        t -= DAY - 10 * MINUTE
        s.add(t, "purchase", cid, order_id=f"o-{cid}", amount=79.9, first_order=True)
    elif rule == "funnel_drop_out":
        s.add(t, "add_to_cart", cid, sku="sku-s3", price=120.0, qty=1)
        t += j(30, 60); s.add(t, "page_view", cid, page="/shop/shoes")
        t += j(30, 60); s.add(t, "checkout_start", cid, cart_value=120.0, items=1)
        t += j(200, 400); s.add(t, "page_view", cid, page="/deals")
    else:
        raise ValueError(f"no scripted journey for rule {rule!r}")


SCRIPTED_RULES = (
    "cart_abandonment_chat", "pricing_hesitation", "search_dead_end", "help_page_loop", "payment_trouble",
    "error_streak", "channel_switch_to_phone", "repeat_contact", "case_reopened_twice",
    "vip_support_after_purchase", "stalled_application", "first_purchase_after_sessions", "funnel_drop_out",
    "cart_abandonment_twice",
)


# ---------------------------------------------------------------------------
# assembling the file


def disorder(rng: random.Random, events: list[dict]) -> list[dict]:
    """Swap a few neighbouring events whose times are at most LATENESS_MS
    apart.  Pairs never overlap, so no event arrives more than LATENESS_MS
    behind the largest time read before it: with `--lateness 5s` none is late."""
    out = list(events)
    i = 0
    while i < len(out) - 1:
        if out[i + 1]["ts"] - out[i]["ts"] <= LATENESS_MS and rng.random() < 0.25:
            out[i], out[i + 1] = out[i + 1], out[i]
            i += 2
        else:
            i += 1
    return out


def bad_lines(events: list[dict]) -> list[tuple[int, str]]:
    """(position, line) pairs: one line of each kind of dead letter."""
    n = len(events)

    def ts_at(pos: int) -> int:
        return events[pos]["ts"]

    late_pos = n * 5 // 6
    late_ts = max(e["ts"] for e in events[:late_pos]) - 60 * SECOND
    lines = [
        (n // 6, '{"type": "page_view", "ts": %d, "customer_id": "c-0003", "page": "/shop"' % ts_at(n // 6)),
        (n // 3, json.dumps({"ts": ts_at(n // 3), "customer_id": "c-0004", "page": "/deals"})),
        (n // 2, json.dumps({"type": "page_view", "ts": "next tuesday", "customer_id": "c-0005", "page": "/"})),
        (n * 2 // 3, json.dumps({"type": "add_to_cart", "ts": ts_at(n * 2 // 3), "customer_id": "c-0006",
                                 "sku": "sku-c2", "price": "14,50", "qty": 1})),
        (late_pos, json.dumps({"type": "page_view", "ts": late_ts, "customer_id": "c-0007", "page": "/account"})),
    ]
    return lines


def generate(seed: int, customers: int) -> list[str]:
    rng = random.Random(seed)
    s = Stream(rng)
    # c-0001 .. c-0007 are kept quiet: the bad lines use their ids.
    first_background = 8 + len(SCRIPTED_RULES)
    for number in range(first_background, first_background + customers):
        c = Customer(f"c-{number:04d}", segment="vip" if rng.random() < 0.05 else None,
                     orders=0 if rng.random() < 0.4 else rng.randint(1, 12))
        background(s, c)
    for offset, rule in enumerate(SCRIPTED_RULES):
        start = BASE_MS + DAY // 2 + offset * 4 * HOUR + rng.randrange(0, HOUR)
        scripted(s, f"c-{8 + offset:04d}", rule, start)
    ordered = [event for _, _, event in sorted(s.events, key=lambda item: (item[0], item[1]))]
    ordered = disorder(rng, ordered)
    lines = [json.dumps(e, separators=(", ", ": ")) for e in ordered]
    for pos, line in sorted(bad_lines(ordered), reverse=True):
        lines.insert(pos, line)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--customers", type=int, default=220, help="background customers (default 220)")
    parser.add_argument("--out", default="samples/journeys.jsonl", help="output file")
    args = parser.parse_args(argv)
    lines = generate(args.seed, args.customers)
    with open(args.out, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} lines to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
