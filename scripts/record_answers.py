"""Record what every public route answers on a seeded database; compare two recordings.

For changes that must not change behaviour (a refactor): record before, record after,
compare. The service runs in this process on a fresh embedded PostgreSQL (or
``--database-url``: a server where a scratch database may be created), with the shipped
configuration, the simulated stations, the disclosure sample data and a fixed clock
(2026-11-20 10:20 Beijing time), after a two-day back-fill. Every GET route of the
public API, the pages, the feeds, the widget and the admin API (with a token of every
scope) is asked, with parameters that reach its main branches and some that it refuses.

Kept per answer: the status, the headers that carry meaning (type, caching, validators,
CORS, disposition, links, retry), and the body: JSON as parsed, text as text, binary as
its SHA-256. What depends on the wall clock, the port or random ids is replaced: fields named in
VOLATILE_KEYS by ``<volatile>``, times later than the fixed clock's day by ``<wall>``, the
server's origin by ``<origin>``, UUIDs by ``<uuid:N>`` in order of appearance, the widget's
jittered refresh by ``<n>``, and the ETag of an answer whose body needed any of that by
``<volatile>``. A recording made twice on the same code compares equal.

    .venv/bin/python scripts/record_answers.py record before.json
    .venv/bin/python scripts/record_answers.py compare before.json after.json
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 20, 2, 20, tzinfo=UTC)
KEPT_HEADERS = ("Content-Type", "Cache-Control", "ETag", "Last-Modified", "Vary",
                "Content-Disposition", "Access-Control-Allow-Origin", "Link", "Location",
                "Retry-After", "Content-Language", "X-Content-Type-Options",
                "Content-Security-Policy", "Accept-Ranges", "Content-Range", "Allow",
                "WWW-Authenticate")
WALL_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[+-]\d{2}:\d{2}|Z)?")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REFRESH = re.compile(r'(http-equiv="refresh" content=")\d+')
VOLATILE_KEYS = frozenset({"created_at", "updated_at", "last_used_at", "started_at",
                           "finished_at", "duration_s", "uptime_s", "key_id", "token_id",
                           "process_start", "checked_at", "revised_at", "at", "latency_s",
                           "median_latency_s", "max_latency_s"})
DAY = "2026-11-19"


def _paths(enterprise: str | None, ids: dict[str, Any]) -> list[str]:
    """The requests: every GET route, with parameters that reach its branches."""
    out = ["/", "/?lang=en", "/stations/LF01", "/stations/LF01?lang=en", "/stations/NOPE",
           "/daily", f"/daily?date={DAY}", "/daily?date=bad", "/rankings",
           "/rankings?period=year&year=2026", "/methodology", "/methodology?lang=en",
           "/downloads", "/status", "/widget.js", "/widget/city", "/widget/LF03",
           "/widget/LF03?lang=en", "/widget/NOPE", "/healthz", "/readyz",
           "/api/v1/now", "/api/v1/stations", "/api/v1/stations/LF01",
           "/api/v1/stations/NOPE", "/api/v1/schemes", "/api/v1/openapi.json",
           "/api/v1/status", "/api/v1/revisions", "/api/v1/revisions?since=2026-11-01",
           "/api/v1/rankings", "/api/v1/rankings?period=month&month=2026-11",
           "/api/v1/rankings?period=bogus",
           f"/api/v1/stations/LF02/hourly?from={DAY}&to={DAY}",
           "/api/v1/stations/LF02/hourly", "/api/v1/stations/LF02/hourly?from=0001-01-01",
           f"/api/v1/stations/LF02/daily?from={DAY}&to={DAY}",
           f"/api/v1/city/hourly?from={DAY}&to={DAY}", f"/api/v1/city/daily?from={DAY}",
           "/api/v1/city/hourly?to=", "/api/v1/download/hourly.csv-metadata.json",
           f"/api/v1/download/hourly.csv?stations=LF01,LF02&from={DAY}&to={DAY}",
           f"/api/v1/download/hourly.jsonl?stations=LF03&pollutants=pm2_5,o3&from={DAY}",
           f"/api/v1/download/hourly.parquet?stations=LF04&from={DAY}&to={DAY}",
           "/api/v1/download/hourly.xml", "/api/v1/download/hourly.csv?stations=LF01%00",
           "/api/v1/download/monthly/LF01/2026-11.csv.gz",
           "/api/v1/download/monthly/LF01/1999-01.csv.gz",
           "/enterprises", "/enterprises?lang=en", "/enterprises?q=%E5%BB%8A", "/disclosures",
           "/disclosures.atom", "/disclosures/stats", "/eia", "/penalties",
           "/api/v1/enterprises", "/api/v1/enterprises?limit=2", "/api/v1/enterprises?limit=0",
           "/api/v1/disclosures", "/api/v1/disclosures?limit=3", "/api/v1/disclosures/stats",
           "/api/v1/eia", "/api/v1/penalties", "/api/v1/penalties?status=bogus",
           "/api/v1/admin/enterprises", "/api/v1/admin/disclosures",
           "/api/v1/admin/penalties", "/api/v1/admin/eia/projects",
           "/api/v1/admin/monitoring-results", "/api/v1/admin/audit",
           "/api/v1/admin/tokens", "/api/v1/admin/enterprises/%C2%B9"]
    if enterprise:
        out += [f"/enterprises/{enterprise}", f"/api/v1/enterprises/{enterprise}",
                f"/api/v1/admin/enterprises/{enterprise}"]
    for kind, page, api, admin in (("disclosure", "/disclosures", "/api/v1/disclosures",
                                    "/api/v1/admin/disclosures"),
                                   ("eia", "/eia", "/api/v1/eia", "/api/v1/admin/eia/projects"),
                                   ("penalty", None, None, "/api/v1/admin/penalties")):
        ident = ids.get(kind)
        if ident is not None:
            out += [f"{p}/{ident}" for p in (page, api, admin) if p]
    if ids.get("attachment") is not None:
        out.append(f"/api/v1/attachments/{ids['attachment']}")
    return out


class Normalizer:
    """Replaces what differs between two runs of the same code (see the module's doc)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.uuids: dict[str, str] = {}
        self.changed = False

    def _uuid(self, m: re.Match[str]) -> str:
        return self.uuids.setdefault(m.group(0), f"<uuid:{len(self.uuids) + 1}>")

    def _wall(self, m: re.Match[str]) -> str:
        text = m.group(0)
        try:
            when = datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00"))
        except ValueError:
            return text
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return "<wall>" if when > NOW + timedelta(days=1) else text

    def text(self, value: str) -> str:
        out = value.replace(self.origin, "<origin>")
        out = UUID.sub(self._uuid, out)
        out = WALL_TIME.sub(self._wall, out)
        out = REFRESH.sub(r"\1<n>", out)
        self.changed |= out != value
        return out

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                out[k] = "<volatile>" if k in VOLATILE_KEYS and v is not None else self.value(v)
                self.changed |= out[k] != v
            return out
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return self.text(value) if isinstance(value, str) else value

    def header(self, name: str, value: str) -> str:
        if name == "Last-Modified":
            when = datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
            return "<wall>" if when > NOW + timedelta(days=1) else value
        return self.text(value)


async def _answer(session, base: str, path: str, token: str,
                  norm: Normalizer) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if path.startswith("/api/v1/admin") else {}
    async with session.get(base + path, headers=headers, allow_redirects=False) as resp:
        raw = await resp.read()
        norm.changed = False
        ctype = resp.headers.get("Content-Type", "")
        body: Any
        if ctype.startswith("application/json") or ctype.endswith("+json"):
            body = norm.value(json.loads(raw))
        elif ctype.startswith("text/") or "xml" in ctype or "javascript" in ctype \
                or "json" in ctype:
            body = norm.text(raw.decode("utf-8", "replace"))
        else:
            body = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
        volatile_body = norm.changed
        kept = {h: norm.header(h, resp.headers[h]) for h in KEPT_HEADERS if h in resp.headers}
        if (volatile_body or kept.get("Last-Modified") == "<wall>") and "ETag" in kept:
            kept["ETag"] = "<volatile>"
        answer = {"status": resp.status, "headers": kept, "body": body}
    etag = resp.headers.get("ETag")
    if resp.status == 200 and etag:
        async with session.get(base + path, headers={**headers, "If-None-Match": etag}) as again:
            answer["if_none_match"] = again.status
    return answer


async def record(out: Path, database_url: str | None) -> int:
    import aiohttp
    import asyncpg
    from aiohttp.test_utils import TestServer

    from aqi_service.config import Secret, load_config
    from aqi_service.disclosure import tokens
    from aqi_service.storage import admin as admin_store
    from aqi_service.web import keys
    from aqi_service.web.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="aqians-", dir="/tmp"))
    server = None
    try:
        if database_url is None:
            from aqi_service.storage.embedded import EmbeddedPostgres

            server = EmbeddedPostgres(folder / "pg")
            params = server.start()
            admin_dsn = f"postgresql://{params.user}@/postgres?host={params.host}&port={params.port}"
        else:
            admin_dsn = database_url
        conn = await asyncpg.connect(admin_dsn)
        name = "aqi_answers"
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        dsn = re.sub(r"/postgres(\?|$)", rf"/{name}\1", admin_dsn, count=1)
        cfg = load_config(ROOT / "config", env={}).replace(
            disclosure={"attachment_dir": folder / "attachments", "seed_sample_data": True},
            database={"url": Secret(dsn), "pool_min": 1, "pool_max": 4},
            collection={"initial_backfill_days": 2, "timeout_s": 5.0},
            simulator={"port": 0}, http={"port": 0})
        app = create_app(cfg, scheduler=True, clock=lambda: NOW)
        async with TestServer(app, host="127.0.0.1") as srv:
            pool = app[keys.POOL]
            for _ in range(600):
                async with pool.acquire() as c:
                    done = await c.fetchval("SELECT count(*) FROM collection_runs "
                                            "WHERE finished_at IS NOT NULL")
                snap = app[keys.SNAPSHOT].current
                if done and snap is not None and snap.data["data_as_of"] is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("the service did not collect in 60 s")
            made = tokens.make_token()
            async with pool.acquire() as c:
                await admin_store.insert_token(c, made.key_id, "answers", made.token_hash,
                                               list(tokens.SCOPES), "record_answers", None)
                enterprise = await c.fetchval("SELECT credit_code FROM enterprises "
                                              "ORDER BY credit_code LIMIT 1")
                ids = {kind: await c.fetchval(f"SELECT id FROM {table} ORDER BY {order} LIMIT 1")
                       for kind, table, order in (
                           ("disclosure", "disclosure_records", "ref"),
                           ("eia", "eia_projects", "id"), ("penalty", "penalties", "id"),
                           ("attachment", "attachments", "filename, sha256"))}
            base = f"http://127.0.0.1:{srv.port}"
            answers: dict[str, Any] = {}
            norm = Normalizer(base)
            async with aiohttp.ClientSession() as session:
                for path in _paths(enterprise, ids):
                    answers[norm.text(path)] = await _answer(session, base, path, made.token,
                                                             norm)
        out.write_text(json.dumps(answers, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                       encoding="utf-8")
        print(f"{len(answers)} answers recorded in {out}")
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def compare(before: Path, after: Path) -> int:
    a = json.loads(before.read_text(encoding="utf-8"))
    b = json.loads(after.read_text(encoding="utf-8"))
    differ = [p for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)]
    for path in differ:
        old, new = a.get(path), b.get(path)
        if old is None or new is None:
            print(f"{path}: only in {'after' if old is None else 'before'}")
            continue
        parts = [k for k in ("status", "headers", "body", "if_none_match")
                 if old.get(k) != new.get(k)]
        print(f"{path}: differs in {', '.join(parts)}")
    print(f"{len(set(a) | set(b)) - len(differ)} identical, {len(differ)} different")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record every route's answer into FILE")
    rec.add_argument("file", type=Path)
    rec.add_argument("--database-url", help="a server where a scratch database may be made")
    cmp_ = sub.add_parser("compare", help="compare two recordings")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    args = ap.parse_args(argv)
    if args.command == "record":
        return asyncio.run(record(args.file, args.database_url))
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
