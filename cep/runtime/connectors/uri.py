"""Source and sink URIs of `cep run` (SPEC §5).

    kafka://HOST:PORT[,HOST:PORT...]/TOPIC    source and sink
    redis://[[USER]:PASSWORD@]HOST:PORT/STREAM  source and sink (Redis Streams)
    http://... / https://...                  sink only: a webhook, one POST per match
    file:PATH                                 source (JSON lines or CSV) and sink (JSON lines)
    -                                         stdin as a source, stdout as a sink

`parse` never touches the network: it checks the shape and says what is
wrong in one sentence (a usage error, exit code 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

ROLES = ("source", "sink", "dead-letter")


class UriError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Endpoint:
    kind: str  # "kafka" | "redis" | "http" | "file" | "stdio" | "stderr"
    text: str  # the URI as given (passwords included: never log it, log `label`)
    hosts: tuple[tuple[str, int], ...] = ()
    name: str = ""  # topic, stream, file path, or the webhook URL
    username: str | None = None
    password: str | None = None

    @property
    def label(self) -> str:
        """The URI without credentials, for log lines and dead letters."""
        if self.kind in ("kafka", "redis"):
            hosts = ",".join(f"{h}:{p}" for h, p in self.hosts)
            return f"{self.kind}://{hosts}/{self.name}"
        if self.kind == "http":
            parts = urlsplit(self.text)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{host}{port}{parts.path}"
        return self.text

    @property
    def brokers(self) -> list[str]:
        return [f"{h}:{p}" for h, p in self.hosts]


STDERR = Endpoint("stderr", "stderr")


def _hosts(netloc: str, text: str) -> tuple[tuple[str, int], ...]:
    hosts = []
    for item in netloc.split(","):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UriError(f"{text}: expected HOST:PORT, got {item!r}")
        hosts.append((host.strip("[]"), int(port)))
    return tuple(hosts)


def parse(text: str, role: str) -> Endpoint:
    """The endpoint `text` names, for `role` ("source", "sink" or "dead-letter")."""
    if role not in ROLES:
        raise ValueError(role)
    if text == "-":
        return Endpoint("stdio", text, name="-")
    if text.startswith("file:"):
        path = text[len("file:"):]
        if path.startswith("//"):  # file:///abs/path
            path = path[2:]
        if not path:
            raise UriError(f"{text}: file: needs a path, e.g. file:matches.jsonl")
        return Endpoint("file", text, name=path)
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise UriError(f"{text}: not a URI; use kafka://HOST:PORT/TOPIC, redis://HOST:PORT/STREAM, "
                       "http(s)://..., file:PATH or -")
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        if role == "source":
            raise UriError(f"{text}: a webhook is a sink only; sources are kafka://, redis://, file: or -")
        if role == "dead-letter":
            raise UriError(f"{text}: dead letters cannot go to a webhook (a failed delivery would have "
                           "nowhere to go); use kafka://, redis://, file: or -")
        if not urlsplit(text).hostname:
            raise UriError(f"{text}: the webhook URL has no host")
        return Endpoint("http", text, name=text)
    if scheme not in ("kafka", "redis"):
        raise UriError(f"{text}: unknown scheme {scheme!r}; use kafka, redis, http, https, file: or -")
    netloc, _, path = rest.partition("/")
    name = unquote(path)
    what = "topic" if scheme == "kafka" else "stream"
    if not name or "/" in name:
        raise UriError(f"{text}: expected {scheme}://HOST:PORT/{what.upper()} with one {what} name")
    username = password = None
    if "@" in netloc:
        if scheme == "kafka":
            raise UriError(f"{text}: credentials in a kafka:// URI are not supported")
        creds, _, netloc = netloc.rpartition("@")
        user, has_password, secret = creds.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    hosts = _hosts(netloc, text)
    if scheme == "redis" and len(hosts) != 1:
        raise UriError(f"{text}: redis:// takes one HOST:PORT")
    return Endpoint(scheme, text, hosts, name, username, password)
