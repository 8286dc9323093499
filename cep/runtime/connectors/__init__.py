"""Live sources and sinks of `cep run` (SPEC §5), one module per system.

Every connector speaks one of two small interfaces, so the dataflow of
`cep.runtime.live` never knows which system it talks to:

    source = open_source(endpoint, ...)     # uri.parse(text, "source")
    source.partitions() -> [name, ...]      # fixed, in timeline tie-break order (§3.1 Partitions)
    reader = source.open(index, position)   # position: None (from the start) or a reader's snapshot
    reader.poll(n) -> [(offset, raw, value)]    # never blocks for long; value: event dict or DeadLetter
    reader.position() -> picklable          # resumes *after* the last record poll returned
    reader.ended -> bool                    # a finite source (a file, stdin) has no more records
    reader.close()

    writer = open_writer(endpoint, role, resume, dead)   # role: "match" or "dead_letter"
    writer.write([dict, ...])               # SPEC §4 JSON objects, in order
    writer.flush()                          # everything written is delivered (or dead-lettered)
    writer.snapshot() -> picklable          # after flush: where a restart resumes writing
    writer.close()

`dead` is a callable taking a DeadLetter: sinks that can finally fail to
deliver (the webhook) hand the match there with reason `delivery_failed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson

from cep.engine.model import INVALID_JSON, NOT_AN_OBJECT, DeadLetter, json_bytes

log = logging.getLogger("cep.run")

Record = tuple[object, str, object]  # (offset, raw text, event dict or DeadLetter)
DeadFn = Callable[[DeadLetter], None]


def decode_event(data: bytes | str | None, source: str, offset: object) -> Record:
    """One JSON event from a message body; bad JSON and non-objects become
    dead letters (SPEC §4: bad input is never silently dropped)."""
    if data is None:
        data = b""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return offset, text, DeadLetter(INVALID_JSON, f"not valid JSON: {exc}", source, offset, text)
    if not isinstance(value, dict):
        kind = "null" if value is None else type(value).__name__
        return offset, text, DeadLetter(NOT_AN_OBJECT, f"a JSON {kind}, not an object", source, offset, text)
    return offset, text, value


def encode(item: dict) -> bytes:
    return json_bytes(item)


def open_source(endpoint, *, csv_typer=None, batch: int = 1000):
    """The source an endpoint names (`uri.parse(..., "source")`)."""
    kind = endpoint.kind
    if kind == "kafka":
        from cep.runtime.connectors.kafka import KafkaEventSource

        return KafkaEventSource(endpoint, batch=batch)
    if kind == "redis":
        from cep.runtime.connectors.redis_streams import RedisEventSource

        return RedisEventSource(endpoint, csv_typer=csv_typer, batch=batch)
    if kind in ("file", "stdio"):
        from cep.runtime.connectors.files import FileEventSource

        return FileEventSource(endpoint, csv_typer=csv_typer)
    raise ValueError(f"{endpoint.text}: not a source")  # uri.parse rejects these first


def open_writer(endpoint, role: str, resume: object, dead: DeadFn | None, **options):
    """The writer an endpoint names, for matches (`role="match"`) or dead letters."""
    kind = endpoint.kind
    if kind == "kafka":
        from cep.runtime.connectors.kafka import KafkaWriter

        return KafkaWriter(endpoint, role, dead)
    if kind == "redis":
        from cep.runtime.connectors.redis_streams import RedisWriter

        return RedisWriter(endpoint, role)
    if kind == "http":
        from cep.runtime.connectors.webhook import WebhookWriter

        if dead is None:
            raise ValueError("a webhook sink needs a dead-letter output for failed deliveries")
        return WebhookWriter(endpoint.text, dead, **options)
    if kind in ("file", "stdio", "stderr"):
        from cep.runtime.connectors.files import FileWriter

        return FileWriter(endpoint, resume)
    raise ValueError(f"{endpoint.text}: not a sink")
