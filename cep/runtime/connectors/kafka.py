"""`kafka://HOST:PORT/TOPIC` through Bytewax's own Kafka connectors.

Source: the topic's partitions are the source partitions (SPEC §3.1), in
partition-number order; `bytewax.connectors.kafka.KafkaSource` reads each
one by assignment (no consumer group), and its offset is the partition's
position in the recovery snapshot. A message value is one event as JSON
(SPEC §5); the dead letters of a partition name it `TOPIC/PARTITION` with
the message offset.

Sink: a confluent-kafka producer (see KafkaWriter for why not Bytewax's
KafkaSink); the message key is the match key as JSON (so one key's matches stay in one partition,
in order), the value the match. At-least-once: after a restart the epoch
since the last snapshot is produced again; consumers drop duplicates by
`match_id` (SPEC §4).
"""

from __future__ import annotations

import orjson

from cep.engine.model import json_bytes
from cep.runtime.connectors import Record, decode_event, log

# librdkafka errors that mean the broker is unreachable (logged as "down");
# the client reconnects on its own.
_DOWN = {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_RESOLVE", "_TIMED_OUT"}


def _error_cb(label: str):
    def report(err) -> None:
        if err.name() in _DOWN:
            log.warning("connector down: %s: %s (the client retries)", label, err.str())
        else:
            log.warning("kafka %s: %s", label, err.str())

    return report


def client_config(endpoint) -> dict:
    return {"bootstrap.servers": ",".join(endpoint.brokers), "error_cb": _error_cb(endpoint.label)}


class KafkaEventSource:
    def __init__(self, endpoint, batch: int = 1000):
        from bytewax.connectors.kafka import KafkaSource

        self._endpoint = endpoint
        self._topic = endpoint.name
        self._source = KafkaSource(endpoint.brokers, [self._topic], tail=True,
                                   add_config=client_config(endpoint), batch_size=batch,
                                   raise_on_errors=False)
        # "3-events" -> 3; listed once: the partitions are fixed for this run
        parts = self._source.list_parts()
        self._parts = sorted(int(p.split("-", 1)[0]) for p in parts)
        log.info("connector up: %s (%d partitions)", endpoint.label, len(self._parts))

    def partitions(self) -> list[str]:
        return [f"{self._topic}/{p}" for p in self._parts]

    def open(self, index: int, position: object):
        number = self._parts[index]
        part = self._source.build_part("cep-kafka", f"{number}-{self._topic}",
                                       position if isinstance(position, int) else None)
        return _KafkaReader(part, f"{self._topic}/{number}")


class _KafkaReader:
    ended = False  # a topic never ends

    def __init__(self, part, name: str):
        self._part = part
        self._name = name

    def poll(self, n: int) -> list[Record]:
        # Bytewax's partition reads up to its batch size without waiting (1 ms)
        from bytewax.connectors.kafka import KafkaError

        out: list[Record] = []
        for msg in self._part.next_batch():
            if isinstance(msg, KafkaError):
                # a message the broker reported an error for: nothing to read; say so
                log.warning("kafka %s offset %s: %s", self._name, msg.msg.offset, msg.err)
                continue
            out.append(decode_event(msg.value, self._name, msg.offset))
        return out

    def position(self) -> int | None:
        return self._part.snapshot()

    def close(self) -> None:
        self._part.close()


class KafkaWriter:
    """Not Bytewax's KafkaSink: it produces without a delivery callback, so a
    message the broker finally refuses would vanish. Here every failed
    delivery goes to the dead letters (`delivery_failed`, SPEC §4: never
    silently dropped)."""

    def __init__(self, endpoint, role: str, dead=None):
        from confluent_kafka import Producer

        self.label = endpoint.label
        self._topic = endpoint.name
        self._role = role
        self._dead = dead
        config = client_config(endpoint)
        config.update({"enable.idempotence": False, "linger.ms": 5,
                       "message.timeout.ms": 120_000})  # then a delivery counts as failed
        self._producer = Producer(config)
        log.info("connector up: %s (%s sink)", endpoint.label, role)

    def _delivered(self, err, msg) -> None:
        if err is None:
            return
        from cep.engine.model import DELIVERY_FAILED, DeadLetter

        raw = msg.value().decode("utf-8", "replace")
        detail = f"kafka delivery to {self.label} failed: {err.str()}"
        log.error("%s", detail)
        if self._dead is None or self._role != "match":
            raise RuntimeError(detail)  # a dead letter that cannot be delivered has nowhere else to go
        item = orjson.loads(raw)
        self._dead(DeadLetter(DELIVERY_FAILED, detail, self.label, item.get("match_id"), raw))

    def write(self, items: list[dict]) -> None:
        produce = self._producer.produce
        for item in items:
            key = json_bytes(item["key"]) if self._role == "match" else None
            while True:
                try:
                    produce(self._topic, json_bytes(item), key, on_delivery=self._delivered)
                    break
                except BufferError:
                    # the producer's queue is full: wait for deliveries (backpressure)
                    self._producer.poll(0.1)
        self._producer.poll(0)

    def flush(self) -> None:
        while self._producer.flush(1.0) > 0:
            log.warning("%s: waiting for the broker to take %d messages", self.label, len(self._producer))

    def snapshot(self) -> None:
        self.flush()
        return None

    def close(self) -> None:
        self.flush()
