#!/usr/bin/env python3
"""Generate N realistic rules over the gen_events.py clickstream.

    python bench/rules_gen.py --n 1000 --out bench/data/rules-1000.cep

The rules are what a shop would write against that stream: each one is one
of eight templates (product interest, pricing hesitation, search to cart,
abandoned checkout, chat on a page, browsing burst, repeated cart adds,
checkout retries) with its own pages, counts, windows and cooldowns drawn
from a seeded random generator, so the pages are spread over the 500
products of the stream and only a few rules share a first step. Every rule
keys on customer_id and the file declares the catalog, like
../shared/bench/flink_workloads.cep. Same --n and --seed, same text.
"""

from __future__ import annotations

import argparse
import random

N_PRODUCTS = 500  # gen_events.py N_PRODUCTS

CATALOG = """\
event page_view      { page: str }
event search         { page: str }
event add_to_cart    { page: str }
event checkout_start { page: str }
event purchase       { page: str }
event chat_open      { page: str }
"""

OTHER_PAGES = ("/home", "/about", "/blog", "/docs", "/contact", "/pricing", "/search")


def _product(rng: random.Random) -> str:
    return f"/product/{rng.randrange(1, N_PRODUCTS + 1)}"


def _minutes(rng: random.Random, *choices: int) -> str:
    return f"{rng.choice(choices)}m"


def product_interest(i: int, rng: random.Random) -> str:
    page = _product(rng)
    n = rng.choice((2, 3))
    return f"""rule r{i:04d}_product_interest "Viewed one product {n} times, then added it to the cart"
  key customer_id
  match {n} page_view where page == "{page}" as views
        then add_to_cart where page == "{page}" as cart
  within {_minutes(rng, 10, 20, 30, 60)}
  emit product_interest {{ page: cart.page, views: count(views) }}
"""


def pricing_hesitation(i: int, rng: random.Random) -> str:
    n = rng.choice((2, 3, 4))
    return f"""rule r{i:04d}_pricing_hesitation "Pricing views, checkout, then silence"
  key customer_id
  match {n} page_view where page == "/pricing" as views
        then checkout_start as checkout
        then idle {rng.choice((60, 90, 120, 300))}s
  within {_minutes(rng, 20, 30, 45)}
  emit pricing_hesitation {{ pricing_views: count(views), at: checkout.page }}
  cooldown {rng.choice((1, 2, 6))}h
"""


def search_to_cart(i: int, rng: random.Random) -> str:
    page = _product(rng)
    return f"""rule r{i:04d}_search_to_cart "Search, product page, add to cart, back to back"
  key customer_id
  match search
        next page_view where page == "{page}" as product
        next add_to_cart
  within {_minutes(rng, 5, 10, 15)}
  emit search_to_cart {{ page: product.page }}
"""


def abandoned_checkout(i: int, rng: random.Random) -> str:
    page = _product(rng)
    return f"""rule r{i:04d}_abandoned_checkout "Cart with one product, checkout, then no purchase"
  key customer_id
  match add_to_cart where page == "{page}" as cart
        then checkout_start as checkout
        then no purchase for {_minutes(rng, 5, 10, 15, 30)}
  within {rng.choice((1, 2, 3))}h
  emit abandoned_checkout {{ page: cart.page }}
  cooldown 1d
"""


def chat_on_page(i: int, rng: random.Random, other_page: bool = False) -> str:
    pages = {_product(rng) for _ in range(rng.randint(2, 5))}
    if other_page:
        pages.add(rng.choice(OTHER_PAGES))
    pages = sorted(pages)
    listed = ", ".join(f'"{p}"' for p in pages)
    return f"""rule r{i:04d}_chat_on_page "Opened the chat right after one of a few pages"
  key customer_id
  match page_view where page in [{listed}] as seen
        next chat_open
  within {rng.choice((30, 60, 120))}s
  emit chat_on_page {{ page: seen.page }}
"""


def browsing_burst(i: int, rng: random.Random) -> str:
    pages = sorted({_product(rng) for _ in range(3)})
    listed = ", ".join(f'"{p}"' for p in pages)
    n = rng.choice((3, 4, 5))
    return f"""rule r{i:04d}_browsing_burst "Many views of a few related products in a short time"
  key customer_id
  match {n}+ page_view where page in [{listed}] as views
        then (add_to_cart | search)
  within {_minutes(rng, 5, 10, 20)}
  emit browsing_burst {{ pages: distinct(views.page), first: first(views.page) }}
  cooldown 30m
"""


def repeated_cart(i: int, rng: random.Random) -> str:
    page = _product(rng)
    return f"""rule r{i:04d}_repeated_cart "Added the same product twice"
  key customer_id
  match add_to_cart where page == "{page}" as first_add
        then not purchase
        then add_to_cart where page == first_add.page
  within {_minutes(rng, 15, 30, 60)}
  emit repeated_cart {{ page: first_add.page }}
  cooldown 1h
"""


def checkout_retry(i: int, rng: random.Random) -> str:
    n = rng.choice((2, 3))
    return f"""rule r{i:04d}_checkout_retry "Started checkout {n} times without buying"
  key customer_id
  match checkout_start as first
        then not purchase
        then {n - 1} checkout_start as again
  within {_minutes(rng, 30, 60, 120)}
  emit checkout_retry {{ tries: count(again) + 1 }}
  cooldown 2h
"""


# Every template once at the head of the pack (so even 10 rules are varied);
# after that, what a large pack is made of: rules about one product or a few,
# weighted. The generic ones (pricing, checkout retries, chat on a site page)
# are not repeated: a thousand near-copies of "3 pricing views" would each
# start a run on every pricing view, which no one writes.
HEAD = (
    product_interest,
    search_to_cart,
    abandoned_checkout,
    repeated_cart,
    lambda i, rng: chat_on_page(i, rng, other_page=True),
    browsing_burst,
    pricing_hesitation,
    checkout_retry,
)
PER_PRODUCT = (
    (product_interest, 5),
    (search_to_cart, 3),
    (abandoned_checkout, 3),
    (repeated_cart, 3),
    (chat_on_page, 2),
    (browsing_burst, 2),
)


def generate(n: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    funcs = [f for f, _ in PER_PRODUCT]
    weights = [w for _, w in PER_PRODUCT]
    parts = [f"# {n} generated rules (bench/rules_gen.py --n {n} --seed {seed})\n\n", CATALOG]
    for i in range(n):
        func = HEAD[i] if i < len(HEAD) else rng.choices(funcs, weights)[0]
        parts.append("\n" + func(i, rng))
    return "".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, required=True, help="number of rules")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", required=True, help="output .cep file")
    args = ap.parse_args()
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(generate(args.n, args.seed))


if __name__ == "__main__":
    main()
