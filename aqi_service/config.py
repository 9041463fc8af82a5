"""Typed, frozen configuration from ``config/*.toml`` with ``AQI_`` environment overrides.

``config/service.toml`` holds the service settings (sections database, http, collection,
simulator, disclosure, aqi); ``config/stations.toml`` the city and its stations.
``AQI_<SECTION>_<KEY>`` overrides a setting (``AQI_HTTP_PORT=9000``);
``AQI_DATABASE_URL`` picks an external PostgreSQL. Secrets (passwords in URLs, station
request headers) are wrapped in :class:`Secret` and masked wherever the configuration is
printed or logged.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aqi_service.aqi.schemes import POLLUTANTS, VARIANTS
from aqi_service.errors import ConfigError

ENV_PREFIX = "AQI_"
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
SOURCES = ("simulator", "http", "hj212")
TIME_CONVENTIONS = ("hour-ending", "hour-beginning")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def default_config_dir() -> Path:
    """``./config`` when the working directory has one, else the checkout's ``config/``."""
    here = Path("config")
    return here if (here / "service.toml").exists() else DEFAULT_CONFIG_DIR


class Secret(str):
    """A string that never shows itself in ``repr``/``str`` formatting of the config."""

    def __repr__(self) -> str:
        return "Secret('***')"

    def reveal(self) -> str:
        """The secret value."""
        return str.__str__(self)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "")
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """Where the data live."""

    url: Secret | None = None
    data_dir: Path = Path("./var")
    pool_min: int = 2
    pool_max: int = 10
    command_timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    restart_attempts: int = 5
    """Attempts to start the embedded server again after its postmaster died."""
    restart_backoff_s: float = 0.5
    """Wait after the first failed attempt; doubles after each (at most 15 s)."""

    @property
    def embedded(self) -> bool:
        """True when the service runs its own PostgreSQL in ``data_dir``."""
        return self.url is None


FORWARDED_HEADERS = ("x-forwarded-for", "forwarded")


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The public web server.

    ``public_url`` is the origin every absolute link is built from (Atom, the downloads
    page, CSVW metadata); unset, it is this server's own listening address, which suits
    the embedded demo only. ``trusted_proxies`` (CIDR blocks) are the reverse proxies whose
    ``forwarded_header`` is believed: the client is the right-most hop not among them.
    The timeouts bound slow clients: the request head must arrive within
    ``header_timeout_s`` of its first byte (of the connection, for the first request), a
    body within ``body_timeout_s`` of its head, and an idle kept-alive connection is
    closed after ``keepalive_timeout_s``.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    forwarded_header: str = "x-forwarded-for"
    header_timeout_s: float = 10.0
    body_timeout_s: float = 120.0
    keepalive_timeout_s: float = 75.0


@dataclass(frozen=True, slots=True)
class CollectionConfig:
    """The hourly collection."""

    minute: int = 5
    catch_up_minutes: tuple[int, ...] = (20, 35, 50)
    daily_at: str = "00:40"
    lookback_hours: int = 72
    overlap_hours: int = 3
    initial_backfill_days: int = 30
    timeout_s: float = 15.0
    connect_timeout_s: float = 5.0
    concurrency: int = 32
    retries: int = 2
    backoff_s: float = 1.0
    db_acquire_timeout_s: float = 15.0
    db_step_timeout_s: float = 120.0
    retry_after_s: float = 30.0
    retry_attempts: int = 4
    stall_grace_minutes: int = 15
    derive_grace_minutes: int = 10


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """The built-in station simulator (used by stations with ``source = "simulator"``)."""

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 2014
    extra_stations: int = 0
    publish_delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class DisclosureConfig:
    """Pollution-source and EIA disclosure: the catalogue, attachments, the admin API."""

    catalog: Path = Path("disclosure_catalog.toml")   # relative to the config folder
    attachment_dir: Path | None = None                 # default: <data_dir>/attachments
    max_attachment_bytes: int = 20 * 1024 * 1024
    auth_failures: int = 10          # failed admin authentications per client address …
    auth_window_s: float = 300.0     # … within this window, then 429 until it ends
    auth_clients_tracked: int = 10_000   # addresses remembered (bounded memory)
    # the fictional sample data set, marked as sample; None: only on the embedded database
    seed_sample_data: bool | None = None

    def catalog_path(self, config_dir: Path) -> Path:
        """The catalogue file (relative paths are in the config folder)."""
        return self.catalog if self.catalog.is_absolute() else config_dir / self.catalog

    def attachments_path(self, data_dir: Path) -> Path:
        """Where uploaded files are kept (outside any web root)."""
        return (self.attachment_dir or data_dir / "attachments").expanduser().resolve()


@dataclass(frozen=True, slots=True)
class AqiConfig:
    """How the pipeline indexes hours: which reading of HJ 633-2012 hourly it publishes."""

    hourly_2012: str = "practice"
    """``practice`` (the national platform's, scheme HJ633-2012) or ``text`` (the 2012
    text's reading, scheme HJ633-2012-text); every record names the scheme it used."""


HTTP_PRESETS: dict[str, dict[str, Any]] = {
    "cnemc": {
        "records": "records", "time": "timepoint", "time_convention": "hour-ending",
        "fields": {"so2": "so2", "no2": "no2", "co": "co", "o3": "o3", "pm10": "pm10",
                   "pm2_5": "pm2_5"},
        "flags": {}, "missing": ("NA", "", "—", "-", "/"),
    },
}
"""Field mappings of known feed layouts: ``preset = "cnemc"`` reads CNEMC's hourly JSON
(its archive's names: ``timepoint`` hour-ending, ``pm2_5`` …, ``NA``/``—`` missing, ``/``
not monitored). Keys given beside a preset override it."""


@dataclass(frozen=True, slots=True)
class HttpSource:
    """How to read a data logger's HTTP API: URL and the mapping of its JSON."""

    url: str
    records: str = "records"
    time: str = "time"
    time_convention: str = "hour-ending"
    fields: Mapping[str, str] = field(default_factory=lambda: {p: p for p in POLLUTANTS})
    flags: Mapping[str, str] = field(
        default_factory=lambda: {p: f"{p}_flag" for p in POLLUTANTS})
    headers: Mapping[str, Secret] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    """Texts that stand for "no value" in this feed (stored as nothing, not rejected)."""


@dataclass(frozen=True, slots=True)
class StationConfig:
    """One monitoring station."""

    code: str
    name_zh: str
    name_en: str
    lat: float
    lon: float
    county_zh: str = ""
    county_en: str = ""
    admin_code: str = ""
    timezone: str = "Asia/Shanghai"
    source: str = "simulator"
    http: HttpSource | None = None
    not_monitored: tuple[str, ...] = ()
    """Pollutants the station's monitoring plan does not measure (shown ``/`` on the
    national platform): neither indexed nor counted as missing in its records."""


@dataclass(frozen=True, slots=True)
class CityConfig:
    """The city the stations belong to."""

    code: str = "131000"
    name_zh: str = "廊坊市"
    name_en: str = "Langfang"
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    collection: CollectionConfig = field(default_factory=CollectionConfig)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    disclosure: DisclosureConfig = field(default_factory=DisclosureConfig)
    aqi: AqiConfig = field(default_factory=AqiConfig)
    city: CityConfig = field(default_factory=CityConfig)
    stations: tuple[StationConfig, ...] = ()
    config_dir: Path = DEFAULT_CONFIG_DIR

    def station(self, code: str) -> StationConfig:
        """The station with ``code``."""
        for st in self.stations:
            if st.code == code:
                return st
        raise KeyError(code)

    def replace(self, **sections: Any) -> Config:
        """A copy with some sections replaced (``database=…``) or updated from a dict."""
        updates = {}
        for name, value in sections.items():
            current = getattr(self, name)
            if isinstance(value, Mapping) and dataclasses.is_dataclass(current):
                value = dataclasses.replace(current, **value)
            updates[name] = value
        return dataclasses.replace(self, **updates)

    def masked(self) -> dict[str, Any]:
        """The configuration as plain data with every secret masked (for printing/logging)."""
        return _masked(self)


def _masked(value: Any) -> Any:
    if isinstance(value, Secret):
        return mask_url(value.reveal()) if "://" in value else "***"
    if dataclasses.is_dataclass(value):
        return {f.name: _masked(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_masked(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class _Errors:
    """Collects every configuration error so check-config can explain them all at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def _convert(value: Any, kind: Any, where: str, errors: _Errors) -> Any:
    """Convert TOML/env data to the annotated type, recording an error if it does not fit."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if value is None or value == "":
            return None
        return _convert(value, inner[0], where, errors)
    if kind is Secret:
        return Secret(str(value))
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false",
                                                        "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        errors.add(where, f"expected true or false, got {value!r}")
        return None
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            errors.add(where, f"expected an integer, got {value!r}")
            return None
        try:
            return int(value)
        except ValueError:
            errors.add(where, f"expected an integer, got {value!r}")
            return None
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            errors.add(where, f"expected a number, got {value!r}")
            return None
        try:
            return float(value)
        except ValueError:
            errors.add(where, f"expected a number, got {value!r}")
            return None
    if kind is str:
        if not isinstance(value, str):
            errors.add(where, f"expected a string, got {value!r}")
            return None
        return value
    if kind is Path:
        return Path(str(value))
    if origin is tuple:
        items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            errors.add(where, f"expected a list, got {value!r}")
            return None
        return tuple(_convert(v.strip() if isinstance(v, str) else v, args[0],
                              f"{where}[{i}]", errors) for i, v in enumerate(items))
    return value


def _section(cls: type, data: Mapping[str, Any], where: str, errors: _Errors) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in names:
            errors.add(f"{where}.{key}", f"unknown setting (known: {', '.join(sorted(names))})")
            continue
        converted = _convert(value, hints[key], f"{where}.{key}", errors)
        if converted is not None or value is None:
            kwargs[key] = converted
    return cls(**kwargs)


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    sections = {f.name for f in dataclasses.fields(Config)} - {"stations", "city", "config_dir"}
    out: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        for section in sections:
            if rest.startswith(section + "_"):
                out.setdefault(section, {})[rest[len(section) + 1:]] = value
    return out


def _read_toml(path: Path, errors: _Errors) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        errors.add(str(path), "file not found")
    except tomllib.TOMLDecodeError as exc:
        errors.add(str(path), f"not valid TOML: {exc}")
    except OSError as exc:
        errors.add(str(path), f"cannot be read: {exc.strerror}")
    return {}


def _station(raw: Any, where: str, errors: _Errors) -> StationConfig | None:
    if not isinstance(raw, Mapping):
        errors.add(where, "must be a table")
        return None
    raw = dict(raw)
    http_raw = raw.pop("http", None)
    url = raw.pop("url", None)
    for key in ("code", "name_zh", "name_en", "lat", "lon"):
        if key not in raw:
            errors.add(where, f"missing {key!r}")
    if any(k not in raw for k in ("code", "name_zh", "name_en", "lat", "lon")):
        return None
    before = len(errors.items)
    st = _section(StationConfig, raw, where, errors)
    if len(errors.items) > before:
        return None
    if not _CODE.match(st.code):
        errors.add(f"{where}.code", f"{st.code!r} must be 1-32 letters, digits, '-' or '_'")
    if not -90 <= st.lat <= 90 or not -180 <= st.lon <= 180:
        errors.add(where, f"lat/lon out of range: {st.lat}, {st.lon}")
    try:
        ZoneInfo(st.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors.add(f"{where}.timezone", f"unknown time zone {st.timezone!r}")
    if st.source not in SOURCES:
        errors.add(f"{where}.source", f"{st.source!r} is not one of {', '.join(SOURCES)}")
    st = dataclasses.replace(st, not_monitored=_monitoring_plan(
        st.not_monitored, f"{where}.not_monitored", errors))
    http = None
    if st.source == "http":
        spec = dict(http_raw or {})
        if url is not None:
            spec.setdefault("url", url)
        if "url" not in spec:
            errors.add(where, 'source = "http" needs url = "http://…"')
            return None
        headers = {k: Secret(str(v)) for k, v in (spec.pop("headers", {}) or {}).items()}
        preset = spec.pop("preset", None)
        if preset is not None:
            if preset not in HTTP_PRESETS:
                errors.add(f"{where}.http.preset", f"{preset!r} is not one of "
                                                   f"{', '.join(HTTP_PRESETS)}")
            else:
                spec = {**HTTP_PRESETS[preset], **spec}
        http = _section(HttpSource, spec, f"{where}.http", errors)
        http = dataclasses.replace(http, headers=headers)
        if not str(http.url).startswith(("http://", "https://")):
            errors.add(f"{where}.url", f"{http.url!r} is not an http(s) URL")
        if http.time_convention not in TIME_CONVENTIONS:
            errors.add(f"{where}.http.time_convention",
                       f"{http.time_convention!r} is not one of {', '.join(TIME_CONVENTIONS)}")
        unknown = [p for p in [*http.fields, *http.flags] if p not in POLLUTANTS]
        if unknown:
            errors.add(f"{where}.http.fields", f"unknown pollutants {unknown}")
    return dataclasses.replace(st, http=http)


def _monitoring_plan(names: tuple[str, ...], where: str, errors: _Errors) -> tuple[str, ...]:
    """The not-monitored pollutants in ``POLLUTANTS`` order, each a known name, once."""
    unknown = [n for n in names if n not in POLLUTANTS]
    if unknown:
        errors.add(where, f"unknown pollutants {unknown} (known: {', '.join(POLLUTANTS)})")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        errors.add(where, f"pollutants listed twice {repeated}")
    plan = tuple(p for p in POLLUTANTS if p in names)
    if len(plan) == len(POLLUTANTS):
        errors.add(where, "a station must monitor at least one pollutant")
    return plan


def _validate(cfg: Config, errors: _Errors) -> None:
    col = cfg.collection
    if not 0 <= col.minute <= 59:
        errors.add("collection.minute", "must be 0-59")
    if any(not 0 <= m <= 59 for m in col.catch_up_minutes):
        errors.add("collection.catch_up_minutes", "every minute must be 0-59")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", col.daily_at):
        errors.add("collection.daily_at", f"{col.daily_at!r} is not HH:MM")
    if not 1 <= col.lookback_hours <= 24 * 31:
        errors.add("collection.lookback_hours", "must be 1-744")
    if not 0 <= col.overlap_hours < col.lookback_hours:
        errors.add("collection.overlap_hours", "must be ≥ 0 and below lookback_hours")
    if not 0 <= col.initial_backfill_days <= 366:
        errors.add("collection.initial_backfill_days", "must be 0-366")
    if col.timeout_s <= 0 or col.connect_timeout_s <= 0:
        errors.add("collection", "timeouts must be positive")
    if not 1 <= col.concurrency <= 1000:
        errors.add("collection.concurrency", "must be 1-1000")
    if not 0 <= col.retries <= 10:
        errors.add("collection.retries", "must be 0-10")
    if min(col.db_acquire_timeout_s, col.db_step_timeout_s, col.retry_after_s) <= 0:
        errors.add("collection", "database timeouts and retry_after_s must be positive")
    if not 0 <= col.retry_attempts <= 20:
        errors.add("collection.retry_attempts", "must be 0-20")
    if col.stall_grace_minutes < 0 or col.derive_grace_minutes < 0:
        errors.add("collection", "grace minutes must be ≥ 0")
    db = cfg.database
    if not 1 <= db.pool_min <= db.pool_max:
        errors.add("database.pool_min", "must be ≥ 1 and ≤ pool_max")
    if db.url is not None and not db.url.reveal().startswith(("postgres://", "postgresql://")):
        errors.add("database.url", "must be a postgresql:// URL")
    if not 0 <= db.restart_attempts <= 100 or db.restart_backoff_s < 0:
        errors.add("database.restart_attempts",
                   "restart_attempts must be 0-100 and restart_backoff_s ≥ 0")
    if db.url is None and len(str(db.data_dir.resolve() / "pg" / ".s.PGSQL.5432")) > 107:
        errors.add("database.data_dir",
                   "path too long for the embedded PostgreSQL socket (107 bytes); use a "
                   "shorter --data-dir")
    for name, port in (("http.port", cfg.http.port), ("simulator.port", cfg.simulator.port)):
        if not 0 <= port <= 65535:
            errors.add(name, "must be 0-65535")
    _validate_http(cfg.http, errors)
    codes = [s.code for s in cfg.stations]
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        errors.add("stations", f"duplicate station codes {dupes}")
    if not cfg.stations:
        errors.add("stations", "no stations configured")
    if cfg.aqi.hourly_2012 not in VARIANTS:
        errors.add("aqi.hourly_2012", f"{cfg.aqi.hourly_2012!r} is not one of "
                                      f"{', '.join(VARIANTS)}")
    dis = cfg.disclosure
    if not 1024 <= dis.max_attachment_bytes <= 2 * 1024 ** 3:
        errors.add("disclosure.max_attachment_bytes", "must be 1 KiB - 2 GiB")
    if dis.auth_failures < 1 or dis.auth_window_s <= 0 or dis.auth_clients_tracked < 1:
        errors.add("disclosure", "auth_failures, auth_window_s and auth_clients_tracked must "
                                 "be positive")


def _validate_http(http: HttpConfig, errors: _Errors) -> None:
    if http.public_url is not None:
        parts = urlsplit(http.public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
                or parts.fragment or parts.username is not None:
            errors.add("http.public_url", f"{http.public_url!r} must be an http(s) URL with a "
                                          "host, no query, fragment or credentials")
    for i, block in enumerate(http.trusted_proxies):
        try:
            ipaddress.ip_network(block, strict=False)
        except ValueError:
            errors.add(f"http.trusted_proxies[{i}]", f"{block!r} is not an address or CIDR "
                                                     "block")
    if http.forwarded_header.lower() not in FORWARDED_HEADERS:
        errors.add("http.forwarded_header", f"must be one of {', '.join(FORWARDED_HEADERS)}")
    for name in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
        if not 0 < getattr(http, name) <= 3600:
            errors.add(f"http.{name}", "must be above 0 and at most 3600")


def load_config(
    config_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Load and validate the configuration; raise ConfigError listing every problem.

    ``overrides`` are section dicts applied last (command-line options), e.g.
    ``database={"data_dir": Path("./var")}``.
    """
    env = os.environ if env is None else env
    errors = _Errors()
    directory = Path(config_dir or env.get("AQI_CONFIG_DIR") or default_config_dir())
    service = _read_toml(directory / "service.toml", errors)
    stations_doc = _read_toml(directory / "stations.toml", errors)

    sections: dict[str, dict[str, Any]] = {}
    for name in ("database", "http", "collection", "simulator", "disclosure", "aqi"):
        raw = service.get(name, {})
        if not isinstance(raw, Mapping):
            errors.add(name, "must be a table")
            raw = {}
        sections[name] = dict(raw)
    for name in service:
        if name not in sections:
            errors.add(name, "unknown section (known: database, http, collection, simulator, "
                             "disclosure, aqi)")
    for name, values in _env_overrides(env).items():
        sections[name].update(values)
    for name, values in overrides.items():
        sections.setdefault(name, {}).update({k: v for k, v in values.items() if v is not None})

    built = {
        "database": _section(DatabaseConfig, sections["database"], "database", errors),
        "http": _section(HttpConfig, sections["http"], "http", errors),
        "collection": _section(CollectionConfig, sections["collection"], "collection", errors),
        "simulator": _section(SimulatorConfig, sections["simulator"], "simulator", errors),
        "disclosure": _section(DisclosureConfig, sections["disclosure"], "disclosure", errors),
        "aqi": _section(AqiConfig, sections["aqi"], "aqi", errors),
    }
    city = _section(CityConfig, stations_doc.get("city", {}), "city", errors)
    raw_stations = stations_doc.get("stations", [])
    stations = tuple(
        st for i, raw in enumerate(raw_stations if isinstance(raw_stations, list) else [])
        if (st := _station(raw, f"stations[{i}]", errors)) is not None
    )
    cfg = Config(**built, city=city, stations=stations, config_dir=directory)
    _validate(cfg, errors)
    if errors.items:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors.items))
    return cfg
