"""The public HTML pages on a real database: content against the stored data and the JSON
API, charts as valid SVG, errors as HTML pages, languages, caching, no JavaScript."""

from __future__ import annotations

import asyncio
import html
import re
import tomllib
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from aqi_service.config import Config
from aqi_service.web import keys
from aqi_service.web.app import create_app, refresh_snapshot

pytestmark = pytest.mark.db

SVG = "{http://www.w3.org/2000/svg}"
SCHEMES = Path(__file__).resolve().parent.parent / "aqi_service" / "aqi" / "schemes"
CODES = [f"LF{i:02d}" for i in range(1, 12)]
END = datetime(2026, 11, 20, 2, tzinfo=UTC)
"""Newest expected hour at the fixture's clock (02:20 UTC; collection at :05, 10 min grace)."""
PAGES = ["/", "/stations/LF01", "/daily", "/rankings", "/methodology", "/downloads"]


def text_of(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def rows_by(body: str, attr: str = "data-station") -> dict[str, list[str]]:
    """Table rows carrying ``attr``: value → the texts of their cells."""
    out = {}
    for key, row in re.findall(rf'<tr {attr}="([^"]*)"[^>]*>(.*?)</tr>', body, re.S):
        out[key] = [text_of(c) for c in re.findall(r"<t[dh]\b[^>]*>(.*?)</t[dh]>", row, re.S)]
    return out


def svgs(body: str) -> dict[str, ET.Element]:
    """Every inline SVG of a page, parsed as XML, by id."""
    found = {}
    for chunk in re.findall(r"<svg\b.*?</svg>", body, re.S):
        el = ET.fromstring(chunk)
        found[el.get("id")] = el
    return found


def vertices(svg: ET.Element) -> list[list[tuple[float, float]]]:
    """The plotted runs of a chart: each polyline's points, each dot alone."""
    runs = []
    for el in svg.find(f"{SVG}g[@class='series']"):
        if el.tag == f"{SVG}polyline":
            runs.append([tuple(map(float, p.split(","))) for p in el.get("points").split()])
        else:
            runs.append([(float(el.get("cx")), float(el.get("cy")))])
    return runs


async def get_page(client: TestClient, path: str, **kw) -> str:
    resp = await client.get(path, **kw)
    assert resp.status == 200, path
    assert resp.content_type == "text/html"
    return await resp.text()


async def test_overview_lists_every_station_as_the_api_does(client: TestClient) -> None:
    now = await (await client.get("/api/v1/now")).json()
    for lang, heading in (("zh", "各监测站点"), ("en", "Monitoring stations")):
        resp = await client.get("/", params={"lang": lang})
        body = await resp.text()
        assert heading in body
        rows = rows_by(body)
        assert list(rows) == CODES
        for s in now["stations"]:
            cells = rows[s["station_code"]]
            assert s["station_code"] in cells[0]
            assert cells[1] == str(s["aqi"])
            assert (s["category"] if lang == "zh" else s["category_en"]) in cells[2]
            assert cells[4] == str(s["pm2_5"]) and cells[5] == str(s["pm10"])
            assert cells[9] == f"{s['co']:.1f}"
            assert cells[11] == ("正常" if lang == "zh" else "on time")
            assert f'href="/stations/{s["station_code"]}' in body
        city = now["city"]
        assert f'data-city-aqi="{city["aqi"]}"' in body
        card = re.search(r'<section class="card city".*?</section>', body, re.S).group(0)
        assert (city["advice"] if lang == "zh" else city["advice_en"]) in text_of(card)
        next_at = datetime.fromisoformat(now["next_expected_at"])
        assert next_at.strftime("%Y-%m-%d %H:%M") in body
        # Cached until the next expected publication, by the app's clock.
        clock_now = client.server.app[keys.CLOCK]()
        expected_age = int((next_at - clock_now).total_seconds())
        assert resp.headers["Cache-Control"] == f"public, max-age={expected_age}"


async def test_overview_map_shows_every_station_with_its_aqi(client: TestClient) -> None:
    now = await (await client.get("/api/v1/now")).json()
    body = await get_page(client, "/?lang=en")
    station_map = svgs(body)["station-map"]
    assert station_map.get("role") == "img"
    assert station_map.find(f"{SVG}title").text and station_map.find(f"{SVG}desc").text
    links = {a.get("data-station"): a for a in station_map.iter(f"{SVG}a")}
    assert list(links) == CODES
    for s in now["stations"]:
        a = links[s["station_code"]]
        assert a.find(f"{SVG}text[@class='aqi']").text == str(s["aqi"])
        assert a.find(f"{SVG}text[@class='name']").text == s["name_en"]
        fills = [c.get("fill") for c in a.findall(f"{SVG}circle") if c.get("fill")]
        assert fills == [s["color"]]


async def test_overview_badges_say_late_missing_and_maintenance(client: TestClient) -> None:
    app = client.server.app
    clock = app[keys.CLOCK]
    async with app[keys.POOL].acquire() as conn:
        await conn.execute(
            "UPDATE station_hourly SET flags = '{\"so2\": \"M\", \"no2\": \"M\", \"co\": \"C\"}'"
            " WHERE station_code = 'LF02' AND hour_end = $1", END)
    await refresh_snapshot(app, clock)
    rows = rows_by(await get_page(client, "/?lang=en"))
    assert rows["LF02"][-1] == "maintenance" and rows["LF01"][-1] == "on time"
    # Two hours later nothing new has come: the others are late; three hours, all missing.
    clock.now += timedelta(hours=2)
    await refresh_snapshot(app, clock)
    rows = rows_by(await get_page(client, "/"))
    assert rows.pop("LF02")[-1] == "维护中"
    assert {r[-1] for r in rows.values()} == {"迟报"}
    clock.now += timedelta(hours=1)
    await refresh_snapshot(app, clock)
    body = await get_page(client, "/?lang=en")
    assert {r[-1] for r in rows_by(body).values()} == {"missing"}
    assert 'data-status="missing"' in body


async def test_overview_is_served_without_the_database(client: TestClient) -> None:
    pool = client.server.app[keys.POOL]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        resp = await asyncio.wait_for(client.get("/?lang=en"), timeout=5)
        assert resp.status == 200
        assert len(rows_by(await resp.text())) == 11
    finally:
        for conn in held:
            await pool.release(conn)


async def test_pages_answer_304_to_their_etag(client: TestClient) -> None:
    for path in PAGES:
        first = await client.get(path)
        etag = first.headers["ETag"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304, path
        assert "Accept-Language" in again.headers["Vary"]
        other = await client.get(path, params={"lang": "en"}, headers={"If-None-Match": etag})
        assert other.status == 200, path  # another language is another representation


async def _stored_hours(client: TestClient, code: str, hours: int, field: str) -> int:
    async with client.server.app[keys.POOL].acquire() as conn:
        return await conn.fetchval(
            f"SELECT count(*) FROM station_hourly WHERE station_code = $1 AND hour_end > $2 "
            f"AND hour_end <= $3 AND {field} IS NOT NULL", code, END - timedelta(hours=hours),
            END)


async def test_station_page_shows_the_current_record(client: TestClient) -> None:
    api = await (await client.get("/api/v1/stations/LF03")).json()
    latest = api["latest"]
    for lang in ("zh", "en"):
        body = await get_page(client, "/stations/LF03", params={"lang": lang})
        assert api["name_zh" if lang == "zh" else "name_en"] in body
        assert f'data-station-aqi="{latest["aqi"]}"' in body
        pollutants = rows_by(body, "data-pollutant")
        assert list(pollutants) == ["so2", "no2", "co", "o3", "pm10", "pm2_5"]
        for p, cells in pollutants.items():
            unit = "mg/m³" if p == "co" else "µg/m³"
            assert cells[1] == f"{latest[p]} {unit}"
            assert cells[3] == str(latest["iaqi"][p])
            assert cells[4].startswith("N ")
        pm = pollutants["pm2_5"][2]
        assert f"{latest['pm2_5_24h']} µg/m³" in pm
        assert str(latest["valid_hours"]["pm2_5_24h_hours"]) in pm
        o3 = pollutants["o3"][2]
        for field in ("o3_8h", "o3_24h", "o3_8h_24h"):
            assert f"{latest[field]} µg/m³" in o3
        assert latest["scheme"] in body
        assert ("最新一小时" if lang == "zh" else "Latest hour") in body


async def test_station_page_lists_its_recent_revisions_escaped(client: TestClient) -> None:
    async with client.server.app[keys.POOL].acquire() as conn:
        await conn.executemany(
            "INSERT INTO revisions (kind, subject, field, period_end, old_value, new_value, "
            "reason, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [("observation", "LF04", "pm2_5", END - timedelta(hours=3), "81 N", "86 N",
              "late correction <script>alert(1)</script>", END + timedelta(minutes=30)),
             ("station_hourly", "LF04", "aqi", END - timedelta(hours=3), "107", "113",
              "recomputed", END + timedelta(minutes=31)),
             ("observation", "LF05", "so2", END, "1 N", "2 N", "other station", END)])
    body = await get_page(client, "/stations/LF04?lang=en")
    table = re.search(r'<table class="revisions">.*?</table>', body, re.S).group(0)
    rows = [text_of(r) for r in re.findall(r"<tbody>(.*?)</tbody>", table, re.S)[0]
            .split("</tr>") if "<td" in r]
    assert rows == [
        "2026-11-20 10:31 2026-11-20 07:00 station_hourly aqi 107 113 recomputed",
        "2026-11-20 10:30 2026-11-20 07:00 observation pm2_5 81 N 86 N "
        "late correction <script>alert(1)</script>",
    ]
    assert "<script" not in body and "&lt;script&gt;" in table
    assert "No revisions so far." in await get_page(client, "/stations/LF06?lang=en")


async def test_station_charts_plot_every_stored_hour(client: TestClient) -> None:
    body = await get_page(client, "/stations/LF01?lang=en")
    charts = {k: v for k, v in svgs(body).items() if k.startswith("chart-")}
    fields = ["aqi", "so2", "no2", "co", "o3", "pm10", "pm2_5"]
    assert sorted(charts) == sorted(f"chart-{r}-{f}" for r in ("24h", "7d", "30d")
                                    for f in fields)
    for (range_id, hours) in (("24h", 24), ("7d", 168), ("30d", 720)):
        for field in fields:
            svg = charts[f"chart-{range_id}-{field}"]
            assert svg.get("role") == "img"
            title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
            assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
            stored = await _stored_hours(client, "LF01", hours, field)
            assert stored > 0
            assert sum(len(r) for r in vertices(svg)) == stored, (range_id, field)
            assert f"data for {stored} of {hours} hours" in desc.text
    # The 24 h chart has all 24 hours in one line; the data table lists them.
    assert [len(r) for r in vertices(charts["chart-24h-aqi"])] == [24]
    table = re.search(r'<table class="hours">.*?</table>', body, re.S).group(0)
    assert len(re.findall(r"<tr><th scope=\"row\">", table)) == 24


async def test_missing_hours_are_gaps_in_the_charts(client: TestClient) -> None:
    gone = [END - timedelta(hours=h) for h in (2, 3, 6)]
    async with client.server.app[keys.POOL].acquire() as conn:
        await conn.execute("DELETE FROM station_hourly WHERE station_code = 'LF05' "
                           "AND hour_end = ANY($1::timestamptz[])", gone)
    charts = svgs(await get_page(client, "/stations/LF05"))
    for field in ("aqi", "pm2_5", "co"):
        runs = vertices(charts[f"chart-24h-{field}"])
        # Hours ending END-23h … END-7h, then END-5h … END-4h, then END-1h … END.
        assert [len(r) for r in runs] == [17, 2, 2], field
        # No point sits where a missing hour would be.
        step = (runs[0][-1][0] - runs[0][0][0]) / 16
        xs = [x for run in runs for x, _ in run]
        for h in (2, 3, 6):
            missing_x = runs[0][0][0] + step * (23 - h)
            assert all(abs(x - missing_x) > step / 2 for x in xs)


async def test_unknown_station_is_an_html_404(client: TestClient) -> None:
    for path in ["/stations/NOPE", "/stations/LF99",
                 "/stations/%27%3Cscript%3Ealert(1)%3C%2Fscript%3E",
                 "/stations/..%2F..%2Fetc%2Fpasswd", "/stations/" + "x" * 300,
                 "/stations/LF01/extra", "/stations/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"]:
        for lang, text in (("zh", "未找到"), ("en", "Not found")):
            resp = await client.get(path, headers={"Accept-Language": lang})
            assert resp.status == 404, path
            assert resp.content_type == "text/html"
            body = await resp.text()
            assert "<script" not in body.lower() and "<img" not in body.lower()
            assert text in body
            assert "ETag" not in resp.headers


async def test_daily_report_matches_the_api(client: TestClient) -> None:
    # Default: yesterday in Asia/Shanghai (the clock is 2026-11-20 10:20 there).
    body = await get_page(client, "/daily?lang=en")
    assert '<time datetime="2026-11-19">2026-11-19</time>' in body
    city = (await (await client.get("/api/v1/city/daily",
                                    params={"from": "2026-11-19", "to": "2026-11-19"})).json())
    city_rec = city["records"][0]
    assert f'data-city-aqi="{city_rec["aqi"]}"' in body
    city_row = rows_by(body, "data-area")["131000"]
    assert city_row[1] == str(city_rec["aqi"])
    assert city_row[9] == f"{city_rec['pm2_5_24h']} ({city_rec['valid_hours']['pm2_5_24h_hours']})"
    rows = rows_by(body)
    assert list(rows) == CODES
    for code in CODES:
        data = await (await client.get(f"/api/v1/stations/{code}/daily",
                                       params={"from": "2026-11-19", "to": "2026-11-19"})).json()
        rec = data["records"][0]
        cells = rows[code]
        assert cells[1] == str(rec["aqi"])
        assert cells[4] == f"{rec['so2_24h']} ({rec['valid_hours']['so2_24h_hours']})"
        assert cells[7] == f"{rec['o3_8h_24h']} ({rec['valid_hours']['o3_8h_24h_windows']})"
    # A day with no records says so for each station.
    empty = rows_by(await get_page(client, "/daily?date=2026-10-01&lang=en"))
    assert all(cells[1] == "No daily record" for cells in empty.values())


async def test_bad_daily_date_is_an_html_400(client: TestClient) -> None:
    for query in ["date=2026-13-01", "date=yesterday",
                  "date=%27%3Cscript%3Ealert(1)%3C%2Fscript%3E", "date=" + "9" * 500,
                  "date=2026-11-19&date=2026-11-18", "date=2026-11-21",
                  "date=1999-12-31", "date=2026-1-1", "date=..%2F..%2Fetc", "date="]:
        resp = await client.get(f"/daily?{query}")
        assert resp.status == 400, query
        assert resp.content_type == "text/html"
        body = await resp.text()
        assert "<script" not in body.lower()
        assert "请求有误" in body and "date" in text_of(body)


async def test_rankings_page_shows_the_api_rankings_with_inputs(client: TestClient) -> None:
    api = await (await client.get("/api/v1/rankings",
                                  params={"period": "month", "month": "2026-11"})).json()
    for lang in ("zh", "en"):
        body = await get_page(client, "/rankings", params={"month": "2026-11", "lang": lang})
        composite = re.search(r'<table class="rankings">.*?</table>', body, re.S).group(0)
        rows = rows_by(composite)
        assert list(rows) == [c["station_code"] for c in api["counties"]]
        for c in api["counties"]:
            cells = rows[c["station_code"]]
            assert cells[0] == str(c["rank_composite"])
            assert cells[2] == str(c["composite_index"])
            for i, p in enumerate(("so2", "no2", "pm10", "pm2_5", "co", "o3")):
                part = next(x for x in c["composite_parts"] if x["pollutant"] == p)
                assert cells[3 + i].startswith(
                    f"{part['value']} / {part['limit']} = {part['single_index']}")
            assert cells[9].startswith(f"{min(c['valid_days'].values())} / {c['required_days']}")
        pm = re.search(r'<table class="rankings-pm">.*?</table>', body, re.S).group(0)
        by_pm = sorted(api["counties"], key=lambda c: c["rank_pm2_5"])
        assert list(rows_by(pm)) == [c["station_code"] for c in by_pm]
    # The default month is the clock's.
    assert '<time datetime="2026-11">' in await get_page(client, "/rankings")


async def test_bad_rankings_month_is_an_html_400(client: TestClient) -> None:
    for query in ["month=2026-13", "month=26-11", "month=%3Cscript%3E", "month=2027-01",
                  "month=" + "1" * 300, "month=1999-12"]:
        resp = await client.get(f"/rankings?{query}&lang=en")
        assert resp.status == 400 and resp.content_type == "text/html", query
        body = await resp.text()
        assert "<script" not in body.lower()
        assert "Bad request" in body and "month" in text_of(body)


async def test_methodology_renders_both_schemes_from_their_data(client: TestClient) -> None:
    for lang in ("zh", "en"):
        body = await get_page(client, "/methodology", params={"lang": lang})
        for name in ("HJ633-2012", "HJ633-2026"):
            data = tomllib.loads((SCHEMES / f"{name}.toml").read_text(encoding="utf-8"))
            section = re.search(rf'<section id="scheme-{name}".*?</section>', body, re.S).group(0)
            table = re.search(r'<table class="breakpoints">.*?</table>', section, re.S).group(0)
            header = re.findall(r"<code>(\w+)</code>", table.split("</thead>")[0])
            assert header == list(data["columns"])
            rows = re.findall(r"<tr><th scope=\"row\">(\d+)</th>(.*?)</tr>", table, re.S)
            assert [int(r[0]) for r in rows] == data["iaqi_scale"]
            for col_index, (column, breakpoints) in enumerate(data["columns"].items()):
                shown = [text_of(re.findall(r"<td[^>]*>(.*?)</td>", r[1])[col_index])
                         for r in rows]
                assert shown[:len(breakpoints)] == [str(b) for b in breakpoints], column
                assert set(shown[len(breakpoints):]) <= {"—"}
            levels = re.search(r'<table class="levels">.*?</table>', section, re.S).group(0)
            for lv in data["levels"]:
                color = "#{:02X}{:02X}{:02X}".format(*lv["rgb"])
                assert color in levels
                assert (lv["advice_zh"] if lang == "zh" else lv["advice_en"]) in levels
        assert "Asia/Shanghai" in body and "CC BY 4.0" in body and "GB 3095" in body
        assert "2026-03-01 01:00" in body  # the first hour of HJ 633-2026


async def test_methodology_describes_every_scheme_and_names_the_one_published(
        client: TestClient) -> None:
    """Each scheme file's description is on the page, in the page's language, and the page
    says which of the two HJ 633-2012 readings the service publishes with (by default the
    national platform's practice, HJ633-2012; the text's reading only on request)."""
    for lang, key, in_use in (("zh", "description_zh", "发布所用"),
                              ("en", "description_en", "publishes with it")):
        body = await get_page(client, "/methodology", params={"lang": lang})
        used = {}
        for name in ("HJ633-2012", "HJ633-2012-text", "HJ633-2026"):
            data = tomllib.loads((SCHEMES / f"{name}.toml").read_text(encoding="utf-8"))
            section = re.search(rf'<section id="scheme-{name}".*?</section>', body, re.S).group(0)
            assert text_of(data[key].strip()) in text_of(section), (lang, name)
            row = re.search(rf'<tr><th scope="row"><a href="#scheme-{name}">.*?</tr>', body,
                            re.S).group(0)
            used[name] = in_use in row
        assert used == {"HJ633-2012": True, "HJ633-2012-text": False, "HJ633-2026": True}


async def test_downloads_page_links_and_widget_snippets(client: TestClient) -> None:
    body = await get_page(client, "/downloads?lang=en")
    origin = f"http://{client.server.host}:{client.server.port}"
    for link in ("/api/v1/download/hourly.csv-metadata.json", "/api/v1/openapi.json",
                 'formaction="/api/v1/download/hourly.jsonl"',
                 'formaction="/api/v1/download/hourly.parquet"',
                 'action="/api/v1/download/hourly.csv"'):
        assert link in body
    for code in CODES:
        assert f'href="/api/v1/download/monthly/{code}/2026-10.csv.gz"' in body
    snippets = [html.unescape(s) for s in re.findall(r"<pre class=\"snippet\"><code>(.*?)</code>",
                                                      body, re.S)]
    assert (f'<div data-aqi-station="LF01"></div>\n<script src="{origin}/widget.js" async>'
            "</script>") in snippets
    assert any("data-aqi-city" in s and 'data-lang="en"' in s for s in snippets)
    assert any(f'<iframe src="{origin}/widget/LF01?lang=en&transparent=1"' in s
               for s in snippets)
    assert any(f'{origin}/widget/city"' in s for s in snippets)
    # The links lead to real answers.
    for path in ("/api/v1/download/hourly.csv-metadata.json", "/api/v1/openapi.json",
                 "/api/v1/download/hourly.csv?stations=LF01&from=2026-11-19&to=2026-11-20"):
        resp = await client.get(path)
        assert resp.status == 200, path
        await resp.read()


async def test_language_from_query_then_accept_language(client: TestClient) -> None:
    cases = [({}, {}, "zh-CN"),
             ({}, {"Accept-Language": "en-US,en;q=0.9"}, "en"),
             ({}, {"Accept-Language": "fr-FR, en;q=0.5, zh-CN;q=0.8"}, "zh-CN"),
             ({"lang": "zh"}, {"Accept-Language": "en"}, "zh-CN"),
             ({"lang": "en"}, {"Accept-Language": "zh-CN"}, "en"),
             ({"lang": "<script>"}, {"Accept-Language": "en"}, "en")]
    for params, headers, expected in cases:
        for path in PAGES:
            resp = await client.get(path, params=params, headers=headers)
            body = await resp.text()
            assert resp.status == 200, (path, params)
            assert resp.headers["Content-Language"] == expected
            assert f'<html lang="{expected}">' in body
            assert "Accept-Language" in resp.headers["Vary"]
            assert ("Methodology" in body) == (expected == "en")


async def test_language_switch_keeps_the_page_and_escapes_the_query(client: TestClient) -> None:
    body = await get_page(client, "/daily",
                          params={"date": "2026-11-19", "x": '"><script>alert(1)</script>'})
    link = re.search(r'<p class="lang">\s*<a href="([^"]*)"', body).group(1)
    assert html.unescape(link).startswith("/daily?date=2026-11-19&")
    assert html.unescape(link).endswith("lang=en")
    assert "<script" not in body.lower()
    # Another query on the overview is not served to the next visitor.
    junk = await get_page(client, "/", params={"x": "junk"})
    assert "x=junk" in junk
    assert "junk" not in await get_page(client, "/")
    # Inside the English pages, links keep the language.
    en = await get_page(client, "/?lang=en")
    assert 'href="/stations/LF01?lang=en"' in en
    assert 'href="/daily?lang=en"' in en


async def test_pages_use_no_script_and_are_accessible(client: TestClient) -> None:
    for path in PAGES:
        body = await get_page(client, path)
        lower = body.lower()
        assert "<script" not in lower, path
        resp = await client.get(path)
        assert "script-src 'none'" in resp.headers["Content-Security-Policy"]
        assert not re.search(r"\son[a-z]+\s*=", lower), path  # no inline event handlers
        # Nothing is loaded from elsewhere (the one external address is a licence link).
        assert not re.search(r'<[a-z][^>]*\s(src|href)="(https?:)?//(?!creativecommons\.org)',
                             lower), path
        assert re.search(r'<link rel="stylesheet" href="/static/style\.css', body)
        for landmark in ("<header", "<nav", "<main", "<footer", "<h1"):
            assert landmark in body, (path, landmark)
        assert body.count("<table") == body.count("<caption>"), path
        for chunk in re.findall(r"<svg\b.*?</svg>", body, re.S):
            el = ET.fromstring(chunk)
            assert el.get("role") == "img" and el.find(f"{SVG}title") is not None
    css = await client.get("/static/style.css")
    assert css.status == 200
    assert "@import" not in await css.text()


async def test_pages_before_any_data(config: Config, clock) -> None:
    """A fresh database (nothing collected yet): every page still renders and says so."""
    app = create_app(config, clock=clock, scheduler=False)
    async with TestClient(TestServer(app)) as c:
        overview = await get_page(c, "/?lang=en")
        assert "No data yet." in overview and 'data-city-aqi=""' in overview
        rows = rows_by(overview)
        assert list(rows) == CODES
        assert all(r[1] == "NA" and r[-1] == "missing" for r in rows.values())
        station = await get_page(c, "/stations/LF01?lang=en")
        assert "No data for this station yet." in station
        for svg in (v for k, v in svgs(station).items() if k.startswith("chart-")):
            assert vertices(svg) == []
        daily = await get_page(c, "/daily?lang=en")
        assert "No city record for this day." in daily
        rankings = await get_page(c, "/rankings?lang=en")
        tables = re.findall(r'<table class="rankings(?:-pm)?">.*?</table>', rankings, re.S)
        assert len(tables) == 2
        for table in tables:
            rows = rows_by(table)
            assert list(rows) == CODES  # no ranks yet: every county, in code order
            for cells in rows.values():
                assert cells[0] == "—" and any("0 / 27 incomplete" in x for x in cells)
