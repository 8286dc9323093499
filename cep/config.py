"""`cep.toml` (SPEC §6), validated with pydantic at the edge.

An unknown key or a bad value is a `ConfigError` that names the key and the
file; command-line options override the file (the CLI passes them to
`load_config(..., overrides=...)`).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

_DURATION = re.compile(r"^\s*(?:[0-9]+(?:ms|s|m|h|d))+\s*$")
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class ConfigError(Exception):
    pass


def parse_duration(text: str) -> int:
    """`1h30m` -> 5400000 ms; raises ValueError on anything else."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration (write 500ms, 90s, 30m, 1h30m or 2d)")
    return sum(int(n) * _UNIT_MS[u] for n, u in _PART.findall(text))


class StreamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type_field: str = "type"
    time_field: str = "ts"
    time_format: str = "auto"
    default_key: str | None = None
    lateness: str = "0s"

    @field_validator("lateness")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("type_field", "time_field")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("time_format")
    @classmethod
    def _time_format(cls, value: str) -> str:
        if value in ("epoch_ms", "epoch_s", "iso8601", "auto") or "%" in value:
            return value
        raise ValueError("must be epoch_ms, epoch_s, iso8601, auto or a strftime pattern such as '%Y-%m-%d %H:%M:%S'")

    @property
    def lateness_ms(self) -> int:
        return parse_duration(self.lateness)

    @property
    def default_key_fields(self) -> tuple[str, ...] | None:
        if not self.default_key:
            return None
        return tuple(part.strip() for part in self.default_key.split(",") if part.strip())


class Config(BaseModel):
    """The whole file. Sections other than [stream] belong to later features
    (`[run]` for the live deployment) and are validated by them."""

    model_config = ConfigDict(extra="forbid")

    stream: StreamConfig = StreamConfig()
    run: dict = {}


def load_config(path: str | None = None, overrides: dict | None = None) -> Config:
    """Read `path`, or `cep.toml` in the working directory when it exists;
    apply `overrides` (dotted keys such as "stream.lateness"). Raises ConfigError."""
    file = Path(path) if path else Path("cep.toml")
    data: dict = {}
    if path and not file.exists():
        raise ConfigError(f"{file}: no such config file")
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        data.setdefault(section, {})[key] = value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{file}: [{where}]: {msg}")
        raise ConfigError("; ".join(problems)) from None
