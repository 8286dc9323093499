"""`http://...` / `https://...`: a webhook sink, one POST per match (SPEC §5).

Each match is POSTed as JSON (`Content-Type: application/json`, with the
match id in `Idempotency-Key` so the receiver can drop the duplicates a
restart may send). A few sender threads work through a bounded queue of
matches in flight: when the receiver is slow the queue fills and `write`
waits, which holds the dataflow back (backpressure) instead of growing
memory. A POST that times out, cannot connect or gets a 5xx (or 408/429) is
retried with exponential backoff; any other 4xx is the receiver refusing
this match, so it is not retried. A match whose last attempt failed goes to
the dead letters with reason `delivery_failed` and the last error.

Delivery order follows the queue but is not guaranteed when several
senders run (`senders=1` keeps it).
"""

from __future__ import annotations

import http.client
import queue
import random
import socket
import threading
import time
from urllib.parse import urlsplit


from cep.engine.model import DELIVERY_FAILED, DeadLetter, json_bytes
from cep.runtime.connectors import DeadFn, log

RETRY_STATUS = {408, 429}


class Refused(Exception):
    """The receiver answered with a status that retrying cannot fix."""


class WebhookWriter:
    def __init__(self, url: str, dead: DeadFn, *, timeout: float = 5.0, retries: int = 5,
                 backoff: float = 0.2, max_backoff: float = 10.0, in_flight: int = 100, senders: int = 4):
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.label = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        self._dead = dead
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._queue: queue.Queue = queue.Queue(maxsize=in_flight)
        self._stop = object()
        self.delivered = 0
        self.failed = 0
        self._count_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send_loop, daemon=True, name=f"cep-webhook-{i}")
                         for i in range(senders)]
        for thread in self._threads:
            thread.start()
        log.info("connector up: %s (webhook sink, %d senders, %d in flight at most)",
                 self.label, senders, in_flight)

    # ---------------------------------------------------------- the writer interface

    def write(self, items: list[dict]) -> None:
        for item in items:
            self._queue.put(item)  # blocks while `in_flight` matches wait: backpressure

    def flush(self) -> None:
        self._queue.join()  # every match delivered or dead-lettered

    def snapshot(self) -> None:
        self.flush()
        return None

    def close(self) -> None:
        self.flush()
        for _ in self._threads:
            self._queue.put(self._stop)
        for thread in self._threads:
            thread.join(timeout=self._timeout + 1)

    # ---------------------------------------------------------- senders

    def _send_loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is self._stop:
                    return
                self._deliver(item)
            finally:
                self._queue.task_done()

    def _connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout)

    def _post(self, body: bytes, match_id: str) -> None:
        conn = self._connection()
        try:
            conn.request("POST", self._path, body, {
                "Content-Type": "application/json", "User-Agent": "cep", "Idempotency-Key": match_id})
            resp = conn.getresponse()
            resp.read()
        finally:
            conn.close()
        if 200 <= resp.status < 300:
            return
        reason = f"HTTP {resp.status} {resp.reason}".rstrip()
        if resp.status >= 500 or resp.status in RETRY_STATUS:
            raise ConnectionError(reason)
        raise Refused(reason)

    def _deliver(self, item: dict) -> None:
        body = json_bytes(item)
        match_id = str(item.get("match_id", ""))
        attempts = 1 + self._retries
        error = ""
        for attempt in range(1, attempts + 1):
            try:
                self._post(body, match_id)
                with self._count_lock:
                    self.delivered += 1
                return
            except Refused as exc:
                error = f"the webhook refused the match: {exc}"
                break
            except (OSError, http.client.HTTPException, socket.timeout) as exc:
                # refused or reset connections, timeouts, 5xx
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if attempt == attempts:
                    break
                # exponential backoff with jitter, so many senders do not retry in step
                delay = min(self._max_backoff, self._backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                log.warning("retry: %s match %s attempt %d/%d failed (%s); next in %.2fs",
                            self.label, match_id, attempt, attempts, error, delay)
                time.sleep(delay)
        with self._count_lock:
            self.failed += 1
        detail = f"POST to {self.label} failed after {attempt} attempt(s): {error}"
        log.error("delivery failed: %s match %s: %s", self.label, match_id, error)
        self._dead(DeadLetter(DELIVERY_FAILED, detail, self.label, match_id, body.decode()))
