"""`redis://HOST:PORT/STREAM`: Redis Streams as a source and a sink (SPEC §5).

Source: one stream is one partition. An entry carries the event as JSON in
its field `event`; an entry without that field is read as the event's own
fields, typed through the catalog like a CSV row. The position is the id of
the last entry read, so a restart resumes right after it (`XREAD` from that
id). Reads never block the worker: `XREAD` without `BLOCK`, and while the
server is unreachable the reader backs off and says so in the log.

Sink: `XADD STREAM * match <json>` (dead letters: field `dead_letter`), one
transaction per batch, retried with backoff while the server is away.
At-least-once: after a restart the epoch since the last snapshot is added
again; consumers drop duplicates by `match_id` (SPEC §4).
"""

from __future__ import annotations

import time


from cep.engine.model import json_bytes

from cep.runtime.connectors import Record, decode_event, log

START = "0-0"  # before the first entry of a stream


def _client(endpoint):
    import redis

    host, port = endpoint.hosts[0]
    return redis.Redis(host=host, port=port, username=endpoint.username, password=endpoint.password,
                       socket_timeout=5, socket_connect_timeout=5)


def _errors():
    import redis

    return (redis.ConnectionError, redis.TimeoutError)


class RedisEventSource:
    def __init__(self, endpoint, csv_typer=None, batch: int = 1000):
        self._endpoint = endpoint
        self._typer = csv_typer
        self._batch = batch

    def partitions(self) -> list[str]:
        return [self._endpoint.name]

    def open(self, index: int, position: object):
        return _RedisReader(self._endpoint, self._typer, position if isinstance(position, str) else START,
                            self._batch)


class _Backoff:
    """Exponential backoff for a connection that is down: 0.1 s doubling up to 5 s."""

    def __init__(self):
        self.down = False
        self._delay = 0.0
        self._next = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self._next

    def failed(self) -> float:
        self._delay = min(5.0, self._delay * 2 or 0.1)
        self._next = time.monotonic() + self._delay
        self.down = True
        return self._delay

    def succeeded(self) -> None:
        self.down = False
        self._delay = 0.0


class _RedisReader:
    ended = False  # a stream never ends

    def __init__(self, endpoint, typer, last_id: str, batch: int):
        self._batch = batch
        self._label = endpoint.label
        self._stream = endpoint.name
        self._typer = typer
        self._last = last_id
        self._client = _client(endpoint)
        self._backoff = _Backoff()
        self._errors = _errors()
        log.info("connector up: %s (reading after id %s)", self._label, last_id)

    def poll(self, n: int) -> list[Record]:
        if not self._backoff.ready():
            return []
        try:
            got = self._client.xread({self._stream: self._last}, count=min(n, self._batch))
        except self._errors as exc:
            delay = self._backoff.failed()
            log.warning("connector down: %s: %s (retry in %.1fs)", self._label, exc, delay)
            return []
        if self._backoff.down:
            log.info("connector up: %s (reading after id %s)", self._label, self._last)
        self._backoff.succeeded()
        out: list[Record] = []
        for _stream, entries in got:
            for entry_id, fields in entries:
                out.append(self._record(entry_id.decode(), fields))
        if out:
            self._last = out[-1][0]
        return out

    def _record(self, entry_id: str, fields: dict) -> Record:
        body = fields.get(b"event")
        if body is not None:
            return decode_event(body, self._stream, entry_id)
        # §5: the entry's own fields are the event, typed through the catalog like CSV
        event = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in fields.items()}
        raw = json_bytes(event).decode()
        if self._typer is not None:
            event = self._typer(event)
        return entry_id, raw, event

    def position(self) -> str:
        return self._last

    def close(self) -> None:
        self._client.close()


class RedisWriter:
    def __init__(self, endpoint, role: str):
        self.label = endpoint.label
        self._stream = endpoint.name
        self._field = "match" if role == "match" else "dead_letter"
        self._client = _client(endpoint)
        self._errors = _errors()
        log.info("connector up: %s (%s sink)", self.label, role)

    def write(self, items: list[dict]) -> None:
        if not items:
            return
        backoff = _Backoff()
        attempt = 0
        while True:
            attempt += 1
            try:
                pipe = self._client.pipeline(transaction=True)
                for item in items:
                    pipe.xadd(self._stream, {self._field: json_bytes(item)})
                pipe.execute()
                if backoff.down:
                    log.info("connector up: %s", self.label)
                return
            except self._errors as exc:
                # at-least-once: hold the batch (and so the dataflow) until the server is back
                delay = backoff.failed()
                log.warning("connector down: %s: %s (retry %d in %.1fs)", self.label, exc, attempt, delay)
                time.sleep(delay)

    def flush(self) -> None:
        pass  # every write is acknowledged before it returns

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._client.close()
