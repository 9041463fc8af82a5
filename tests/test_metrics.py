"""``/metrics``: the exposition parses, station series equal the stored data, counters move
on injected faults, label sets stay bounded, scheduler and HTTP events are counted.

Expected values are read from the database (and ``/api/v1/now``) independently of the
metrics code; faults are injected through the simulator's HTTP API.
"""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from metrics_support import EXPECTED_AT_START, HOUR, STATIONS, collect, fault
from prometheus_client.parser import text_string_to_metric_families
from service_support import wait_for

from aqi_service.config import Config
from aqi_service.monitoring.metrics import Metrics
from aqi_service.web import keys
from aqi_service.web.app import create_app
from aqi_service.web.metrics import handler_args

pytestmark = pytest.mark.db

POLLUTANTS = ("so2", "no2", "co", "o3", "pm10", "pm2_5")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Family name → type, and every sample keyed by name and labels."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return types, samples


def get(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value (None when absent)."""
    return samples.get((name, frozenset(labels.items())))


async def scrape(c: TestClient) -> Samples:
    resp = await c.get("/metrics")
    assert resp.status == 200
    return parse(await resp.text())[1]


def publication(value: Decimal, pollutant: str) -> float:
    """A 1 h value at publication precision (integers, CO one decimal; GB/T 8170)."""
    step = Decimal("0.1") if pollutant == "co" else Decimal(1)
    return float(value.quantize(step, rounding=ROUND_HALF_EVEN))


async def test_exposition_parses_and_station_series_equal_the_stored_data(
        client: TestClient, clock) -> None:
    async def startup_job_counted() -> bool:
        # The job's event follows the snapshot refresh the fixture waited for.
        return get(await scrape(client), "aqi_scheduler_job_runs_total", job="startup",
                   outcome="ok") == 1
    await wait_for(startup_job_counted, timeout=10)
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    types, samples = parse(await resp.text())
    assert types["aqi_collector_polls"] == "counter"
    assert types["aqi_collector_poll_duration_seconds"] == "histogram"
    assert types["aqi_station_aqi"] == "gauge"
    now = await (await client.get("/api/v1/now")).json()
    pool = client.app[keys.POOL]
    async with pool.acquire() as conn:
        latest = {r["station_code"]: r for r in await conn.fetch(
            "SELECT DISTINCT ON (station_code) * FROM station_hourly "
            "ORDER BY station_code, hour_end DESC")}
        obs = await conn.fetch("SELECT station_code, pollutant, value FROM observations "
                               "WHERE hour_end = $1", EXPECTED_AT_START)
        city = await conn.fetchrow("SELECT * FROM city_hourly ORDER BY hour_end DESC LIMIT 1")
        hours_24 = {r["station_code"]: r["n"] for r in await conn.fetch(
            "SELECT station_code, count(DISTINCT hour_end) AS n FROM observations "
            "WHERE hour_end > $1 AND hour_end <= $2 GROUP BY station_code",
            EXPECTED_AT_START - 24 * HOUR, EXPECTED_AT_START)}
        version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        last_ok = await conn.fetchval("SELECT max(finished_at) FROM collection_runs "
                                      "WHERE status IN ('ok', 'partial')")
    assert sorted(latest) == STATIONS
    values = {(r["station_code"], r["pollutant"]): r["value"] for r in obs}
    by_code = {s["station_code"]: s for s in now["stations"]}
    for code in STATIONS:
        rec, shown = latest[code], by_code[code]
        assert rec["hour_end"] == EXPECTED_AT_START
        assert get(samples, "aqi_station_aqi", station=code) == rec["aqi"] == shown["aqi"]
        assert get(samples, "aqi_station_level", station=code) == rec["level"]
        for pol in POLLUTANTS:
            assert get(samples, "aqi_station_iaqi", station=code, pollutant=pol) == \
                rec[f"iaqi_{pol}"] == shown["iaqi"][pol]
            unit = "mg/m3" if pol == "co" else "ug/m3"
            assert get(samples, "aqi_station_concentration", station=code, pollutant=pol,
                       unit=unit) == publication(values[(code, pol)], pol) == shown[pol]
        assert get(samples, "aqi_station_last_observation_timestamp_seconds",
                   station=code) == EXPECTED_AT_START.timestamp()
        assert get(samples, "aqi_station_data_age_seconds", station=code) == 20 * 60
        assert get(samples, "aqi_station_status", station=code, status="on_time") == 1
        for other in ("late", "missing", "maintenance"):
            assert get(samples, "aqi_station_status", station=code, status=other) == 0
        assert get(samples, "aqi_station_missing_hours_24h", station=code) == \
            24 - hours_24[code] == 0
        assert get(samples, "aqi_station_consecutive_failed_polls", station=code) == 0
    assert get(samples, "aqi_city_aqi", area=now["city"]["area_code"]) == city["aqi"]
    assert get(samples, "aqi_city_level", area=city["area_code"]) == city["level"]
    assert get(samples, "aqi_city_publication_lag_seconds", area=city["area_code"]) == 0
    assert get(samples, "aqi_city_stations_reporting", area=city["area_code"]) == 11
    assert get(samples, "aqi_expected_hour_timestamp_seconds") == EXPECTED_AT_START.timestamp()
    assert get(samples, "aqi_collector_last_success_timestamp_seconds") >= last_ok.timestamp()
    assert get(samples, "aqi_db_up") == 1
    assert get(samples, "aqi_db_migration_version") == version
    assert get(samples, "aqi_db_migration_expected_version") == version
    assert 1 <= get(samples, "aqi_db_pool_size") <= get(samples, "aqi_db_pool_max_size") == 4
    assert 0 <= get(samples, "aqi_db_pool_in_use") <= get(samples, "aqi_db_pool_size")
    assert get(samples, "aqi_scheduler_leader") == 1
    assert get(samples, "aqi_scheduler_running") == 1
    # The start-up back-fill: one run, every station polled once and answering.
    assert sum(v for (n, lab), v in samples.items()
               if n == "aqi_collector_runs_total" and ("trigger", "initial") in lab) == 1
    for code in STATIONS:
        assert get(samples, "aqi_collector_polls_total", station=code, outcome="ok") == 1
    assert get(samples, "aqi_collector_poll_duration_seconds_count") == 11
    assert any(n == "aqi_build_info" for n, _ in samples)
    assert any(n == "process_resident_memory_bytes" for n, _ in samples)


async def test_counters_move_on_injected_faults(quiet: TestClient, clock) -> None:
    pool = quiet.app[keys.POOL]
    before = await scrape(quiet)
    start = clock.now
    await fault(quiet, station="LF02", kind="down")
    await fault(quiet, station="LF05", kind="silent")
    new_hour = EXPECTED_AT_START + HOUR
    await fault(quiet, station="LF04", kind="out_of_range", hours=[new_hour.isoformat()],
                value={"pollutants": ["pm10", "so2"], "value": 20000})
    first = await collect(quiet, clock)
    after = await scrape(quiet)

    def delta(name: str, **labels: str) -> float:
        return (get(after, name, **labels) or 0) - (get(before, name, **labels) or 0)

    async with pool.acquire() as conn:
        rejected = await conn.fetch("SELECT station_code, reason, count(*) AS n "
                                    "FROM rejected_values GROUP BY 1, 2")
        run = await conn.fetchrow("SELECT * FROM collection_runs WHERE id = $1", first)
        touched = await conn.fetchval("SELECT count(*) FROM observations WHERE received_at "
                                      ">= $1", run["started_at"])
    assert [(r["station_code"], r["reason"], r["n"]) for r in rejected] == [
        ("LF04", "out_of_range", 2)]
    assert delta("aqi_collector_rejected_values_total", station="LF04",
                 reason="out_of_range") == 2
    assert delta("aqi_collector_polls_total", station="LF02", outcome="http_5xx") == 1
    assert delta("aqi_collector_polls_total", station="LF02", outcome="ok") == 0
    for code in STATIONS:
        if code != "LF02":
            assert delta("aqi_collector_polls_total", station=code, outcome="ok") == 1
    assert delta("aqi_collector_poll_duration_seconds_count") == 11
    assert delta("aqi_collector_runs_total", trigger="test", status="partial") == 1
    assert delta("aqi_collector_run_duration_seconds_count") == 1
    assert touched > 0 and delta("aqi_collector_observations_ingested_total") == touched
    assert get(after, "aqi_station_consecutive_failed_polls", station="LF02") == 1
    assert get(after, "aqi_station_status", station="LF02", status="late") == 1
    assert get(after, "aqi_station_data_age_seconds", station="LF02") == \
        (clock.now - EXPECTED_AT_START).total_seconds()

    # A second silent hour: LF02 (down) and LF05 (silent) each miss two hours.
    await collect(quiet, clock)
    second = await scrape(quiet)
    expected = EXPECTED_AT_START + 2 * HOUR
    async with pool.acquire() as conn:
        have = {r["station_code"]: r["n"] for r in await conn.fetch(
            "SELECT station_code, count(DISTINCT hour_end) AS n FROM observations "
            "WHERE hour_end > $1 AND hour_end <= $2 GROUP BY station_code",
            expected - 24 * HOUR, expected)}
    for code in STATIONS:
        assert get(second, "aqi_station_missing_hours_24h", station=code) == 24 - have[code]
    assert have["LF02"] == have["LF05"] == 22
    assert get(second, "aqi_station_consecutive_failed_polls", station="LF02") == 2
    assert get(second, "aqi_station_consecutive_failed_polls", station="LF05") == 0
    assert get(second, "aqi_station_data_age_seconds", station="LF05") == \
        (clock.now - EXPECTED_AT_START).total_seconds() == 2 * 3600 + 20 * 60
    assert get(second, "aqi_expected_hour_timestamp_seconds") == expected.timestamp()

    # Faults cleared: both back-fill their two missed hours.
    resp = await quiet.session.delete(f"{quiet.app[keys.SIMULATOR_URL]}/_faults")
    assert resp.status == 200
    back = await scrape(quiet)
    await collect(quiet, clock)
    third = await scrape(quiet)
    assert (get(third, "aqi_collector_backfilled_hours_total")
            - get(back, "aqi_collector_backfilled_hours_total")) == 2 + 2
    for code in ("LF02", "LF05"):
        assert get(third, "aqi_station_missing_hours_24h", station=code) == 0
        assert get(third, "aqi_station_status", station=code, status="on_time") == 1
    assert get(third, "aqi_station_consecutive_failed_polls", station="LF02") == 0

    # A revised value changes published records: the revisions counter follows the log.
    revised = clock.now.replace(minute=0) - HOUR
    await fault(quiet, station="LF07", kind="revised_value", hours=[revised.isoformat()],
                value={"pollutant": "pm2_5", "delta": 40})
    run_id = await collect(quiet, clock, hours=0)
    fourth = await scrape(quiet)
    async with pool.acquire() as conn:
        logged = await conn.fetchval("SELECT count(*) FROM revisions WHERE run_id = $1 "
                                     "AND kind <> 'observation'", run_id)
    assert logged > 0
    assert (get(fourth, "aqi_collector_revisions_total")
            - get(third, "aqi_collector_revisions_total")) == logged
    assert clock.now - start == 3 * HOUR


async def test_labels_stay_bounded_whatever_the_requests(quiet: TestClient) -> None:
    rng = random.Random(5)

    def junk(n: int) -> str:
        return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))

    await quiet.get("/nothing")
    await quiet.get("/api/v1/stations/NOPE")
    await quiet.get("/api/v1/stations/LF01/hourly", params={"from": "junk"})
    await quiet.get("/api/v1/stations/NOPE/hourly", params={"from": "junk"})
    await quiet.get("/static/none.css")
    for method in ("BREW", "PROPFIND"):
        await quiet.request(method, f"/{junk(8)}")
        await quiet.request(method, "/api/v1/now")
    await scrape(quiet)  # /metrics counts itself from its second scrape on
    before = await scrape(quiet)
    slots = len(quiet.app[keys.METRICS].request_slots)
    unmatched = 0
    for i in range(200):
        kind = rng.randrange(5)
        path = [f"/{junk(12)}", f"/{junk(4)}/{junk(30)}?x={i}", f"/api/v1/stations/{junk(8)}",
                f"/api/v1/stations/{junk(6)}/hourly?from={junk(5)}",
                f"/static/{junk(10)}.css"][kind]
        unmatched += kind < 2
        resp = await quiet.get(path, headers={"User-Agent": junk(20),
                                              "X-Forwarded-For": f"10.0.{i}.1"})
        assert resp.status in (400, 404)
    after = await scrape(quiet)
    assert sorted(map(str, set(after) - set(before))) == []
    assert len(after) == len(before)
    assert set(after) == set(before)
    routes = {dict(lab)["route"] for n, lab in after if n == "aqi_http_requests_total"}
    assert "unmatched" in routes
    assert all(r == "unmatched" or (r.startswith("/") and len(r) < 60) for r in routes)
    assert (get(after, "aqi_http_requests_total", route="unmatched", method="GET",
                status="404")
            - get(before, "aqi_http_requests_total", route="unmatched", method="GET",
                  status="404")) == unmatched > 50
    # Nor does what the request observer keeps per kind of request grow.
    for method in ("BREW", "PROPFIND", "MKCOL"):
        await quiet.request(method, f"/{junk(8)}")
        await quiet.request(method, "/api/v1/now")
    assert len(quiet.app[keys.METRICS].request_slots) == slots


async def test_http_requests_are_counted_by_route_template(quiet: TestClient) -> None:
    before = await scrape(quiet)
    for _ in range(3):
        assert (await quiet.get("/api/v1/stations/LF01")).status == 200
    assert (await quiet.get("/api/v1/stations/LF02")).status == 200
    assert (await quiet.get("/api/v1/stations/NOPE")).status == 404
    assert (await quiet.post("/api/v1/now")).status == 405
    # /now's serialised answers (200, 304, HEAD) and aiohttp's own path are counted alike.
    now = await quiet.get("/api/v1/now")
    assert now.status == 200
    assert (await quiet.get("/api/v1/now", headers={"If-None-Match": now.headers["ETag"]})
            ).status == 304
    assert (await quiet.head("/api/v1/now")).status == 200
    assert (await quiet.get("/api/v1/now", headers={"Connection": "close"})).status == 200
    dl = await quiet.get("/api/v1/download/hourly.csv",
                         params={"stations": "LF01", "from": "2026-11-20T00:00",
                                 "to": "2026-11-20T02:00"})
    assert dl.status == 200
    await dl.read()
    after = await scrape(quiet)

    def delta(name: str, **labels: str) -> float:
        return (get(after, name, **labels) or 0) - (get(before, name, **labels) or 0)

    route = "/api/v1/stations/{code}"
    assert delta("aqi_http_requests_total", route=route, method="GET", status="200") == 4
    assert delta("aqi_http_requests_total", route=route, method="GET", status="404") == 1
    assert delta("aqi_http_request_duration_seconds_count", route=route, method="GET") == 5
    assert delta("aqi_http_requests_total", route="unmatched", method="POST",
                 status="405") == 1
    assert delta("aqi_downloads_total", dataset="hourly", format="csv") == 1
    now_route = "/api/v1/now"
    assert delta("aqi_http_requests_total", route=now_route, method="GET", status="200") == 2
    assert delta("aqi_http_requests_total", route=now_route, method="GET", status="304") == 1
    assert delta("aqi_http_requests_total", route=now_route, method="HEAD", status="200") == 1
    assert delta("aqi_http_request_duration_seconds_count", route=now_route, method="GET") == 3
    assert delta("aqi_http_requests_total", route="/metrics", method="GET", status="200") == 1


async def test_widget_and_download_counts(config: Config) -> None:
    """The request observer on a small app with the widget's and the download's routes."""
    metrics = Metrics(config)
    app = web.Application(handler_args=handler_args(metrics))
    app[keys.METRICS] = metrics

    async def ok(request: web.Request) -> web.Response:
        if request.match_info.get("code") == "gone":
            raise web.HTTPNotFound()
        return web.Response(text="ok")

    for path in ("/widget.js", "/widget/city", "/widget/{code}",
                 "/api/v1/download/hourly.{fmt}",
                 "/api/v1/download/monthly/{code}/{month}.csv.gz"):
        app.router.add_get(path, ok)
    async with TestClient(TestServer(app)) as c:
        for path in ("/widget.js", "/widget.js", "/widget/city", "/widget/LF01",
                     "/widget/gone", "/api/v1/download/hourly.jsonl",
                     "/api/v1/download/hourly.xlsx",
                     "/api/v1/download/monthly/LF01/2026-10.csv.gz"):
            await c.get(path)
    m = app[keys.METRICS]
    assert m.widget.labels("script")._value.get() == 2
    assert m.widget.labels("frame")._value.get() == 2
    assert m.downloads.labels("hourly", "jsonl")._value.get() == 1
    assert m.downloads.labels("hourly", "other")._value.get() == 1
    assert m.downloads.labels("hourly", "csv")._value.get() == 0
    assert m.downloads.labels("monthly", "csv.gz")._value.get() == 1
    assert m.http.count("/widget/{code}", "GET", 404) == 1


async def test_scheduler_outcomes_and_misfires_are_counted(client: TestClient) -> None:
    scheduler = client.app[keys.SCHEDULE].scheduler

    async def boom() -> None:
        raise RuntimeError("probe")

    async def fine() -> None:
        return None

    now = datetime.now(UTC)
    scheduler.add_job(fine, "date", run_date=now - HOUR, misfire_grace_time=1, id="late_probe")
    scheduler.add_job(boom, "date", run_date=now, id="failing_probe")
    scheduler.add_job(fine, "date", run_date=now, id="fine_probe")

    async def counted() -> bool:
        s = await scrape(client)
        return (get(s, "aqi_scheduler_misfires_total", job="late_probe") == 1
                and get(s, "aqi_scheduler_job_runs_total", job="failing_probe",
                        outcome="error") == 1
                and get(s, "aqi_scheduler_job_runs_total", job="fine_probe",
                        outcome="ok") == 1)
    await wait_for(counted, timeout=10)
    s = await scrape(client)
    assert get(s, "aqi_scheduler_job_runs_total", job="late_probe", outcome="missed") == 1


async def test_database_loss_shows_in_metrics_and_readiness(quiet: TestClient) -> None:
    ready = await quiet.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["status"] == "ready"
    assert body["migration"]["database"] == body["migration"]["code"] >= 1
    assert body["scheduler"] == "off" and body["leader"] is None
    await quiet.app[keys.POOL].close()
    samples = await scrape(quiet)
    assert get(samples, "aqi_db_up") == 0
    assert get(samples, "aqi_db_migration_version") is None
    # The last known station figures stay exported while the database is away.
    assert get(samples, "aqi_station_aqi", station="LF01") is not None
    ready = await quiet.get("/readyz")
    body = await ready.json()
    assert ready.status == 503 and body["status"] == "not_ready"
    assert any(r.startswith("database unreachable") for r in body["reasons"])


async def test_a_stopped_scheduler_is_not_ready(client: TestClient) -> None:
    scheduler = client.app[keys.SCHEDULE].scheduler
    scheduler.shutdown(wait=False)
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503 and body["scheduler"] == "stopped"
    assert "the scheduler is not running" in body["reasons"]
    assert get(await scrape(client), "aqi_scheduler_running") == 0


def test_each_app_has_its_own_registry(config: Config) -> None:
    first, second = create_app(config), create_app(config)
    assert first[keys.METRICS].registry is not second[keys.METRICS].registry
    first[keys.METRICS].poll_finished("LF01", "ok", 0.1)
    assert first[keys.METRICS].polls.labels("LF01", "ok")._value.get() == 1
    assert second[keys.METRICS].polls.labels("LF01", "ok")._value.get() == 0


def test_http_latency_histogram_buckets_are_cumulative_and_inclusive() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from aqi_service.monitoring.http import HttpStats

    stats = HttpStats((0.01, 0.1, 1.0))
    reg = CollectorRegistry()
    reg.register(stats)
    # 0.01 sits exactly on a bound: Prometheus buckets are "less than or equal".
    for seconds in (0.005, 0.01, 0.05, 0.5, 2.0):
        stats.observe("/api/v1/now", "GET", 200, seconds)
    stats.observe("/api/v1/now", "GET", 304, 0.001)
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(reg).decode())}
    req = {(s.labels["status"]): s.value for s in fams["aqi_http_requests"].samples
           if s.name == "aqi_http_requests_total"}
    assert req == {"200": 5.0, "304": 1.0}
    hist = {(s.name, s.labels.get("le")): s.value
            for s in fams["aqi_http_request_duration_seconds"].samples}
    assert hist[("aqi_http_request_duration_seconds_bucket", "0.01")] == 3     # .001 .005 .01
    assert hist[("aqi_http_request_duration_seconds_bucket", "0.1")] == 4      # + .05
    assert hist[("aqi_http_request_duration_seconds_bucket", "1.0")] == 5      # + .5
    assert hist[("aqi_http_request_duration_seconds_bucket", "+Inf")] == 6     # + 2.0
    assert hist[("aqi_http_request_duration_seconds_count", None)] == 6
    assert hist[("aqi_http_request_duration_seconds_sum", None)] == pytest.approx(2.566)


async def test_every_pool_statement_is_timed_and_failures_counted(quiet: TestClient) -> None:
    import asyncpg

    before = await scrape(quiet)
    async with quiet.app[keys.POOL].acquire() as conn:
        for _ in range(3):
            await conn.fetchval("SELECT count(*) FROM stations")
        with pytest.raises(asyncpg.UndefinedTableError):
            await conn.fetchval("SELECT 1 FROM no_such_table")

    def delta(name: str, **labels: str) -> float:
        return (get(after, name, **labels) or 0) - (get(before, name, **labels) or 0)

    async def logged() -> bool:
        # asyncpg calls the query loggers soon after each statement, in order: once the
        # failed statement is counted, so are the three before it.
        nonlocal after
        after = await scrape(quiet)
        return delta("aqi_db_query_errors_total", error="UndefinedTableError") >= 1

    after: Samples = {}
    await wait_for(logged, timeout=5)

    # three counts, the failed statement, and the pings of the scrapes since
    assert delta("aqi_db_query_duration_seconds_count", query="select") >= 5
    assert delta("aqi_db_query_errors_total", error="UndefinedTableError") == 1
    # The back-fill wrote through the pool: its inserts were timed too.
    assert (get(after, "aqi_db_query_duration_seconds_count", query="insert") or 0) > 0
