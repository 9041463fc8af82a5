"""The OpenAPI document is valid and real responses conform to it."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate
from openapi_support import response_validator

from aqi_service.web import keys, params
from aqi_service.web.openapi import document, for_app

pytestmark = pytest.mark.db


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(document())


def test_a_nonconforming_response_is_caught() -> None:
    validator = response_validator(document(), "/api/v1/stations", "200")
    assert not list(validator.iter_errors({"stations": [], "count": 0}))
    broken = {"stations": [{"station_code": "LF01", "lat": "north"}], "count": "one"}
    assert len(list(validator.iter_errors(broken))) >= 2


CASES = [
    ("/api/v1/now", "/api/v1/now", "200"),
    ("/api/v1/stations", "/api/v1/stations", "200"),
    ("/api/v1/stations/LF01", "/api/v1/stations/{code}", "200"),
    ("/api/v1/stations/NOPE", "/api/v1/stations/{code}", "404"),
    ("/api/v1/stations/LF01/hourly", "/api/v1/stations/{code}/hourly", "200"),
    ("/api/v1/stations/LF01/hourly?from=junk", "/api/v1/stations/{code}/hourly", "400"),
    ("/api/v1/stations/LF01/daily?from=2026-11-18&to=2026-11-20",
     "/api/v1/stations/{code}/daily", "200"),
    ("/api/v1/city/hourly", "/api/v1/city/hourly", "200"),
    ("/api/v1/city/daily?from=2026-11-18&to=2026-11-20", "/api/v1/city/daily", "200"),
    ("/api/v1/schemes", "/api/v1/schemes", "200"),
    ("/api/v1/revisions?since=2026-01-01", "/api/v1/revisions", "200"),
    ("/api/v1/rankings?period=month&month=2026-11", "/api/v1/rankings", "200"),
    ("/api/v1/rankings?period=month&month=11/2026", "/api/v1/rankings", "400"),
]


@pytest.mark.parametrize(("url", "path", "status"), CASES, ids=[c[0] for c in CASES])
async def test_real_responses_conform(client: TestClient, url: str, path: str,
                                      status: str) -> None:
    served = await (await client.get("/api/v1/openapi.json")).json()
    app = client.app
    stations = tuple(s.code for s in (*app[keys.CONFIG].stations, *app[keys.EXTRA_STATIONS]))
    catalog = app[keys.DISCLOSURE_CATALOG]
    assert served == for_app(app) == document(stations,
                                              tuple(c.code for c in catalog.categories),
                                              tuple(s.code for s in catalog.subitems))
    station_param = served["paths"]["/api/v1/stations/{code}/hourly"]["get"]["parameters"][0]
    assert station_param["schema"] == {"enum": [f"LF{i:02d}" for i in range(1, 12)]}
    resp = await client.get(url)
    assert str(resp.status) == status
    errors = sorted(response_validator(served, path, status).iter_errors(await resp.json()),
                    key=str)
    assert not errors, "\n".join(e.message for e in errors[:5])


def test_the_published_date_pattern_is_the_calendar_of_2000_to_2099() -> None:
    """Every real day of 2000-2099 matches, nothing else does (leap years by the Gregorian
    rule: 2000 is one, 2100 would not be, and it is outside anyway)."""
    pattern = re.compile(params.DATE_PATTERN)
    day, days = date(1999, 12, 25), 0
    while day <= date(2100, 1, 5):
        assert bool(pattern.match(day.isoformat())) == (2000 <= day.year <= 2099), day
        days += 1
        day += timedelta(days=1)
    assert days > 36_500
    for impossible in ("2001-02-29", "2100-02-29", "2026-04-31", "2026-13-01", "2026-00-10",
                       "2026-1-01", "0001-01-01", "9999-12-31", "2026-01-01T00:00", ""):
        assert not pattern.match(impossible), impossible
    for leap in ("2000-02-29", "2024-02-29", "2096-02-29"):
        assert pattern.match(leap)
    times = re.compile(params.TIME_PATTERN)
    for ok in ("2026-11-20", "2026-11-20T05:00", "2026-11-20T05:00:00Z",
               "2026-11-20T05:00:00.5+08:00", "2026-11-20T05:00 08:00"):
        assert times.match(ok), ok
    for bad in ("2026-11-20T24:00", "2026-11-20T05", "20261120", "2026-W47",
                "2026-11-20T05:00+15:00"):
        assert not times.match(bad), bad
