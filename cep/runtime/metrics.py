"""Prometheus metrics of `cep run` (`--metrics-port P`), via prometheus-client.

Every process of a run serves its own registry (process i on port P + i):
what it read, what its shards hold, and — in the process whose worker owns
the sink — what was written. Prometheus sums them across targets.

    cep_events_in_total{partition}          records read from the source (dead letters included)
    cep_matches_total{rule,output}          matches written to the sink
    cep_dead_letters_total{reason}          dead letters written, by reason code
    cep_live_runs                           partial matches alive in this process's shards
    cep_watermark_lag_seconds{partition}    wall clock minus the partition's watermark
    cep_sink_deliveries_failed_total        matches the sink finally failed to deliver

Bytewax's Kafka source adds `bytewax_kafka_consumer_lag` to the same registry.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, start_http_server

EVENTS_IN = Counter("cep_events_in", "Records read from the source, dead letters included", ["partition"])
MATCHES = Counter("cep_matches", "Matches written to the sink", ["rule", "output"])
DEAD_LETTERS = Counter("cep_dead_letters", "Dead letters written, by reason", ["reason"])
DELIVERY_FAILED = Counter("cep_sink_deliveries_failed", "Matches the sink finally failed to deliver")
WATERMARK_LAG = Gauge("cep_watermark_lag_seconds", "Wall clock minus the partition's watermark (event time)",
                      ["partition"])
LIVE_RUNS = Gauge("cep_live_runs", "Partial matches alive in this process's shards")

_runs: dict[int, int] = {}  # id(shard logic) -> its live runs
_runs_lock = threading.Lock()


def set_live_runs(shard: int, runs: int) -> None:
    with _runs_lock:
        _runs[shard] = runs
        LIVE_RUNS.set(sum(_runs.values()))


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on host:port from a daemon thread."""
    start_http_server(port, addr=host)
