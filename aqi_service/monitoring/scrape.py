"""Gauges computed at scrape time: stations and city from the ``/now`` snapshot, freshness
from the clock, gaps and collector state from the cached statistics, pool and leader state.

The ``/metrics`` handler gathers ``ScrapeInputs`` (awaiting what needs the database), then
the registry is collected synchronously; every family is always emitted, with no sample
where nothing is known, so the set of exported names does not depend on the data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aqi_service.aqi.schemes import POLLUTANTS
from aqi_service.collect.health import Health
from aqi_service.monitoring.stats import Reading
from aqi_service.web.snapshot import Snapshot

STATUSES = ("on_time", "late", "missing", "maintenance")
UNITS = {p: ("mg/m3" if p == "co" else "ug/m3") for p in POLLUTANTS}
"""Units of the 1 h concentrations (CO in mg/m³, the others in µg/m³), ASCII in labels."""


@dataclass(frozen=True, slots=True)
class ScrapeInputs:
    """What one scrape reports."""

    now: datetime
    expected: datetime
    snapshot: Snapshot | None
    reading: Reading | None
    db_version: int | None
    """Migration version read by this scrape's ping; None when the database did not answer."""
    code_version: int
    pool: asyncpg.Pool | None
    leader: bool | None
    scheduler_running: bool | None
    last_success_event: float
    health: Health | None = None
    """Collection's health (stall, pending derivations), if checked."""


def _epoch(iso_utc: str | None) -> float | None:
    if not iso_utc:
        return None
    return datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).timestamp()


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels or [])


class ServiceCollector(Collector):
    """Yields the scrape-time families from the inputs the handler set."""

    def __init__(self) -> None:
        self.inputs: ScrapeInputs | None = None

    def collect(self) -> Iterator[Metric]:
        """Every family, with samples where the inputs know them."""
        inp = self.inputs
        yield from self._stations(inp)
        yield from self._city(inp)
        yield from self._service(inp)

    def _stations(self, inp: ScrapeInputs | None) -> Iterator[Metric]:
        info = _gauge("aqi_station_info", "A city station (value 1) with its names",
                      ["station", "name_zh", "name_en", "county_en"])
        aqi = _gauge("aqi_station_aqi", "AQI of the station's latest published hour",
                     ["station"])
        level = _gauge("aqi_station_level", "AQI level (1-6) of the latest published hour",
                       ["station"])
        iaqi = _gauge("aqi_station_iaqi", "Individual AQI of each pollutant, latest hour",
                      ["station", "pollutant"])
        conc = _gauge("aqi_station_concentration",
                      "1 h concentration at publication precision, latest hour",
                      ["station", "pollutant", "unit"])
        last = _gauge("aqi_station_last_observation_timestamp_seconds",
                      "Hour-ending time of the station's latest published hour", ["station"])
        age = _gauge("aqi_station_data_age_seconds",
                     "Seconds since the end of the latest published hour (+Inf: never)",
                     ["station"])
        status = _gauge("aqi_station_status",
                        "1 for the station's current status (on_time, late, missing, "
                        "maintenance), 0 for the others", ["station", "status"])
        missing = _gauge("aqi_station_missing_hours_24h",
                         "Hours without any report among the last 24 expected hours",
                         ["station"])
        failures = _gauge("aqi_station_consecutive_failed_polls",
                          "Polls of the station that failed in a row", ["station"])
        polled = _gauge("aqi_station_last_successful_poll_timestamp_seconds",
                        "When the station last answered a poll", ["station"])
        if inp is not None and inp.snapshot is not None:
            now = inp.now.timestamp()
            for s in inp.snapshot.data["stations"]:
                code = s["station_code"]
                info.add_metric([code, s["name_zh"], s["name_en"], s.get("county_en") or ""], 1)
                if s.get("aqi") is not None:
                    aqi.add_metric([code], s["aqi"])
                if s.get("level") is not None:
                    level.add_metric([code], s["level"])
                for pol, value in (s.get("iaqi") or {}).items():
                    iaqi.add_metric([code, pol], value)
                for pol in POLLUTANTS:
                    if s.get(pol) is not None:
                        conc.add_metric([code, pol, UNITS[pol]], s[pol])
                hour_end = _epoch(s.get("time_point_utc"))
                if hour_end is not None:
                    last.add_metric([code], hour_end)
                age.add_metric([code], now - hour_end if hour_end is not None else math.inf)
                for name in STATUSES:
                    status.add_metric([code, name], 1 if s["status"] == name else 0)
        if inp is not None and inp.reading is not None:
            for code, st in inp.reading.stations.items():
                missing.add_metric([code], st.missing_24h)
                if st.cursor is not None:
                    failures.add_metric([code], st.cursor["consecutive_failures"])
                    if st.cursor["last_success_at"] is not None:
                        polled.add_metric([code], st.cursor["last_success_at"].timestamp())
        yield from (info, aqi, level, iaqi, conc, last, age, status, missing, failures, polled)

    def _city(self, inp: ScrapeInputs | None) -> Iterator[Metric]:
        aqi = _gauge("aqi_city_aqi", "The city's AQI (AQI of the stations' mean concentrations)",
                     ["area"])
        level = _gauge("aqi_city_level", "The city's AQI level (1-6)", ["area"])
        conc = _gauge("aqi_city_concentration", "The city's 1 h mean concentrations",
                      ["area", "pollutant", "unit"])
        last = _gauge("aqi_city_last_observation_timestamp_seconds",
                      "Hour-ending time of the city's latest published hour", ["area"])
        lag = _gauge("aqi_city_publication_lag_seconds",
                     "How far the city's latest published hour is behind the expected hour",
                     ["area"])
        reporting = _gauge("aqi_city_stations_reporting",
                           "Stations behind the city's latest hour", ["area"])
        expected = _gauge("aqi_expected_hour_timestamp_seconds",
                          "The newest hour that should be published by now (hour-ending)")
        city: dict[str, Any] = {}
        if inp is not None:
            expected.add_metric([], inp.expected.timestamp())
            city = inp.snapshot.data["city"] if inp.snapshot else {}
        if inp is not None and city.get("time_point_utc"):
            area = city["area_code"]
            if city.get("aqi") is not None:
                aqi.add_metric([area], city["aqi"])
            if city.get("level") is not None:
                level.add_metric([area], city["level"])
            for pol in POLLUTANTS:
                if city.get(pol) is not None:
                    conc.add_metric([area, pol, UNITS[pol]], city[pol])
            hour_end = _epoch(city["time_point_utc"]) or 0.0
            last.add_metric([area], hour_end)
            lag.add_metric([area], max(inp.expected.timestamp() - hour_end, 0.0))
            reporting.add_metric([area], city.get("stations_reporting") or 0)
        yield from (aqi, level, conc, last, lag, reporting, expected)

    def _service(self, inp: ScrapeInputs | None) -> Iterator[Metric]:
        last_ok = _gauge("aqi_collector_last_success_timestamp_seconds",
                         "When the last ok or partial collection run finished")
        leader = _gauge("aqi_scheduler_leader",
                        "1 if this instance holds the leader lock and runs the jobs")
        running = _gauge("aqi_scheduler_running", "1 if this instance's scheduler runs")
        up = _gauge("aqi_db_up", "1 if the database answered this scrape's ping")
        size = _gauge("aqi_db_pool_size", "Open connections of the pool")
        max_size = _gauge("aqi_db_pool_max_size", "Most connections the pool opens")
        in_use = _gauge("aqi_db_pool_in_use", "Connections of the pool in use")
        version = _gauge("aqi_db_migration_version", "Latest migration applied to the database")
        expected = _gauge("aqi_db_migration_expected_version",
                          "Latest migration this version of the service ships")
        stalled = _gauge("aqi_collection_stalled",
                         "1 if no collection run succeeded within the expected interval "
                         "(the hourly schedule plus grace)")
        pending = _gauge("aqi_derive_pending",
                         "Station-hours whose derived records are due (written observations "
                         "not yet derived)")
        if inp is not None and inp.health is not None:
            stalled.add_metric([], 1 if inp.health.stalled else 0)
            if inp.health.state is not None:
                pending.add_metric([], inp.health.state.pending_hours)
        if inp is not None:
            stored = (inp.reading.last_success_at.timestamp()
                      if inp.reading and inp.reading.last_success_at else 0.0)
            newest = max(stored, inp.last_success_event)
            if newest:
                last_ok.add_metric([], newest)
            if inp.leader is not None:
                leader.add_metric([], 1 if inp.leader else 0)
            if inp.scheduler_running is not None:
                running.add_metric([], 1 if inp.scheduler_running else 0)
            up.add_metric([], 0 if inp.db_version is None else 1)
            if inp.pool is not None:
                size.add_metric([], inp.pool.get_size())
                max_size.add_metric([], inp.pool.get_max_size())
                in_use.add_metric([], inp.pool.get_size() - inp.pool.get_idle_size())
            if inp.db_version is not None:
                version.add_metric([], inp.db_version)
            expected.add_metric([], inp.code_version)
        yield from (last_ok, leader, running, up, size, max_size, in_use, version, expected,
                    stalled, pending)
