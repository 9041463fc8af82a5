"""HTTP polling of stations' data loggers: one shared session, timeouts, retries, back-off."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from aqi_service.collect.validate import NumText
from aqi_service.config import CollectionConfig
from aqi_service.errors import AqiServiceError

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024
"""A response larger than this is refused (a month of hourly data is far smaller)."""


class StationError(AqiServiceError):
    """A poll that failed; ``outcome`` names how (timeout, http_5xx, …)."""

    def __init__(self, outcome: str, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful response."""

    body: Any
    attempts: int


def create_session(cfg: CollectionConfig) -> aiohttp.ClientSession:
    """The one client session of the process, with explicit timeouts."""
    timeout = aiohttp.ClientTimeout(total=cfg.timeout_s, connect=cfg.connect_timeout_s,
                                    sock_read=cfg.timeout_s)
    connector = aiohttp.TCPConnector(limit=max(cfg.concurrency, 1) * 2, ttl_dns_cache=300)
    # Loggers set no cookies worth keeping: a dummy jar saves work on every response.
    return aiohttp.ClientSession(timeout=timeout, connector=connector, raise_for_status=False,
                                 cookie_jar=aiohttp.DummyCookieJar(),
                                 headers={"User-Agent": "aqi-service collector"})


def _retryable(outcome: str) -> bool:
    return outcome in ("timeout", "connection", "http_5xx", "malformed_json")


async def _body(resp: aiohttp.ClientResponse) -> bytes:
    """The whole body, however many pieces it arrives in; StationError past MAX_BODY."""
    pieces = []
    size = 0
    while piece := await resp.content.readany():
        size += len(piece)
        if size > MAX_BODY:
            raise StationError("too_large", f"response over {MAX_BODY} bytes")
        pieces.append(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


async def _once(session: aiohttp.ClientSession, url: str, params: Mapping[str, str],
                headers: Mapping[str, str]) -> Any:
    try:
        async with session.get(url, params=params, headers=headers) as resp:
            if resp.status >= 500:
                raise StationError("http_5xx", f"HTTP {resp.status} from {url}")
            if resp.status >= 400:
                raise StationError("http_4xx", f"HTTP {resp.status} from {url}")
            if resp.content_length is not None and resp.content_length > MAX_BODY:
                raise StationError("too_large", f"response of {resp.content_length} bytes")
            raw = await _body(resp)
    except TimeoutError as exc:
        raise StationError("timeout", f"no answer from {url} in time") from exc
    except aiohttp.ClientError as exc:
        raise StationError("connection", f"{type(exc).__name__}: {exc}") from exc
    try:
        return json.loads(raw, parse_float=NumText)
    except (ValueError, RecursionError) as exc:
        raise StationError("malformed_json", f"response is not valid JSON ({exc})") from exc


async def fetch_json(
    session: aiohttp.ClientSession, cfg: CollectionConfig, url: str,
    params: Mapping[str, str], headers: Mapping[str, str] | None = None,
) -> Fetched:
    """GET ``url`` as JSON with retries on transient failures (exponential back-off)."""
    attempt = 0
    delay = cfg.backoff_s
    while True:
        attempt += 1
        try:
            body = await _once(session, url, params, headers or {})
            return Fetched(body, attempt)
        except StationError as exc:
            exc.attempts = attempt
            if attempt > cfg.retries or not _retryable(exc.outcome):
                raise
            log.info("retrying %s after %s (attempt %d): %s", url, exc.outcome, attempt, exc)
            await asyncio.sleep(delay)
            delay *= 2
