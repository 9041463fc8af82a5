"""SVG charts and the station map: scales, gaps, accessibility, contrast (no I/O)."""

from __future__ import annotations

import math
import tomllib
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aqi_service.web import charts

SVG = "{http://www.w3.org/2000/svg}"
SCHEMES = Path(__file__).resolve().parent.parent / "aqi_service" / "aqi" / "schemes"


def _vertices(svg: ET.Element) -> list[tuple[float, float]]:
    """Every plotted point: polyline vertices and isolated dots."""
    series = svg.find(f"{SVG}g[@class='series']")
    assert series is not None
    out = []
    for el in series:
        if el.tag == f"{SVG}polyline":
            out += [tuple(map(float, p.split(","))) for p in el.get("points", "").split()]
        elif el.tag == f"{SVG}circle":
            out.append((float(el.get("cx")), float(el.get("cy"))))
    return out


def _wcag(color: str) -> float:
    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


@pytest.mark.parametrize(("top", "ticks"), [
    (100, [0, 20, 40, 60, 80, 100]),
    (101, [0, 25, 50, 75, 100, 125]),
    (87, [0, 20, 40, 60, 80, 100]),
    (0.9, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (1.3, [0, 0.5, 1.0, 1.5]),
    (433, [0, 100, 200, 300, 400, 500]),
    (0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
])
def test_axis_ticks_are_round_and_cover_the_top(top: float, ticks: list[float]) -> None:
    assert charts.axis_ticks(top) == ticks


def test_runs_split_at_missing_values() -> None:
    assert charts.runs([1.0, None, 3.0, 4.0, None, None, 7.0]) == [[0], [2, 3], [6]]
    assert charts.runs([None, None]) == []
    assert charts.runs([]) == []


def test_line_chart_positions_points_on_the_scale_and_leaves_gaps() -> None:
    values = [10.0, None, 30.0, 40.0, None, None, 0.0, 20.0]
    frame = charts.Frame()
    svg = ET.fromstring(charts.line_chart(values, [], chart_id="c", title="t", desc="d",
                                          frame=frame))
    points = _vertices(svg)
    # Ticks for a top of 40 are 0, 10 … 40: the scale is 0…40.
    plot_w = frame.width - frame.left - frame.right
    plot_h = frame.height - frame.top - frame.bottom
    expected = [(frame.left + plot_w * i / 7, frame.top + plot_h * (1 - v / 40))
                for i, v in enumerate(values) if v is not None]
    assert len(points) == 5
    for (x, y), (ex, ey) in zip(sorted(points), sorted(expected), strict=True):
        assert x == pytest.approx(ex, abs=0.06) and y == pytest.approx(ey, abs=0.06)
    # The missing hours 1, 4 and 5 have no point: gaps, not zeros.
    xs = {round(x, 1) for x, _ in points}
    for missing in (1, 4, 5):
        assert round(frame.left + plot_w * missing / 7, 1) not in xs
    polylines = svg.findall(f"{SVG}g/{SVG}polyline")
    dots = svg.findall(f"{SVG}g/{SVG}circle")
    assert [len(p.get("points").split()) for p in polylines] == [2, 2]
    assert len(dots) == 1
    # A real zero is drawn on the baseline.
    assert any(y == pytest.approx(frame.top + plot_h, abs=0.06) for _, y in points)


def test_line_chart_is_accessible_and_escapes_text() -> None:
    title = 'PM2.5 <script>alert("x")</script> & more'
    svg = ET.fromstring(charts.line_chart([1.0, 2.0], [(0, "12:00")], chart_id="pm", title=title,
                                          desc="min 1 & max 2"))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "pm-t pm-d"
    assert svg.find(f"{SVG}title").text == title
    assert svg.find(f"{SVG}title").get("id") == "pm-t"
    assert svg.find(f"{SVG}desc").text == "min 1 & max 2"
    assert svg.find(f"{SVG}desc").get("id") == "pm-d"
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert "12:00" in labels


def test_bands_fill_the_level_ranges_below_the_top() -> None:
    frame = charts.Frame()
    bands = [charts.Band(0, 50, "#00E400", "Excellent"), charts.Band(50, 100, "#FFFF00", "Good"),
             charts.Band(100, 150, "#FF7E00", "Light"), charts.Band(150, 200, "#FF0000", "Mod")]
    svg = ET.fromstring(charts.line_chart([30.0, 90.0], [], chart_id="a", title="t", desc="d",
                                          bands=bands, min_top=100, frame=frame))
    rects = svg.findall(f"{SVG}g[@class='bands']/{SVG}rect")
    # The scale is 0…100: two bands, each half of the plot's height; the others are off scale.
    assert [r.get("fill") for r in rects] == ["#00E400", "#FFFF00"]
    plot_h = frame.height - frame.top - frame.bottom
    for r in rects:
        assert float(r.get("height")) == pytest.approx(plot_h / 2, abs=0.1)
    labels = [t.text for t in svg.findall(f"{SVG}g[@class='band-labels']/{SVG}text")]
    assert labels == ["Excellent", "Good"]


def test_a_series_without_data_says_so() -> None:
    svg = ET.fromstring(charts.line_chart([None] * 24, [], chart_id="n", title="t", desc="d",
                                          no_data="no data"))
    assert _vertices(svg) == []
    assert "no data" in [t.text for t in svg.iter(f"{SVG}text")]


def test_summary_ignores_missing_hours() -> None:
    s = charts.summarize([None, 4.0, 2.0, None, 6.0, None])
    assert (s.present, s.slots, s.low, s.high, s.mean, s.last) == (3, 6, 2.0, 6.0, 4.0, 6.0)
    empty = charts.summarize([None])
    assert (empty.present, empty.low, empty.mean, empty.last) == (0, None, None, None)


def test_hour_slots_and_local_ticks() -> None:
    end = datetime(2026, 11, 20, 2, tzinfo=UTC)  # 10:00 in Asia/Shanghai
    slots = charts.hour_slots(end, 24)
    assert slots[0] == end - timedelta(hours=23) and slots[-1] == end
    # Six-hour ticks on Beijing time: 12:00, 18:00, 00:00, 06:00.
    assert charts.time_ticks(slots, 6, "%H:%M") == [(1, "12:00"), (7, "18:00"), (13, "00:00"),
                                                    (19, "06:00")]
    # Weekly ticks fall on Mondays' local midnight: 2026-11-16 and 2026-11-09.
    month = charts.hour_slots(end, 24 * 14)
    ticks = charts.time_ticks(month, 24 * 7, "%m-%d")
    assert [label for _, label in ticks] == ["11-09", "11-16"]
    for index, _ in ticks:
        assert month[index].hour == 16  # 00:00 Asia/Shanghai is 16:00 UTC


def test_contrast_matches_wcag_reference_values() -> None:
    assert charts.contrast("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert charts.contrast("#FFFFFF", "#FFFFFF") == pytest.approx(1.0)
    assert charts.contrast("#767676", "#FFFFFF") == pytest.approx(4.54, abs=0.01)


@pytest.mark.parametrize("scheme_file", ["HJ633-2012.toml", "HJ633-2012-text.toml",
                                         "HJ633-2026.toml"])
def test_text_on_every_level_colour_meets_wcag_aa(scheme_file: str) -> None:
    levels = tomllib.loads((SCHEMES / scheme_file).read_text(encoding="utf-8"))["levels"]
    for lv in levels:
        color = "#{:02X}{:02X}{:02X}".format(*lv["rgb"])
        ink = charts.text_on(color)
        hi, lo = sorted((_wcag(color), _wcag(ink)), reverse=True)
        assert (hi + 0.05) / (lo + 0.05) >= 4.5, (color, ink)


def _map_stations() -> list[charts.MapStation]:
    rows = [("LF01", 39.524, 116.710, 57, "#FFFF00"), ("LF02", 39.503, 116.695, 140, "#FF7E00"),
            ("LF03", 39.575, 116.762, 201, "#99004C"), ("LF04", 39.983, 117.078, None, None),
            ("LF07", 39.438, 116.299, 30, "#00E400"), ("LF11", 38.705, 116.654, 320, "#7E0023")]
    return [charts.MapStation(code, f"站点{code}", lat, lon, aqi, color, f"{code} {aqi}",
                              f"/stations/{code}") for code, lat, lon, aqi, color in rows]


def test_station_map_places_labels_and_colours_every_station() -> None:
    stations = _map_stations()
    svg = ET.fromstring(charts.station_map(stations, chart_id="m", title="Map", desc="d",
                                           na="NA"))
    assert svg.get("role") == "img" and svg.find(f"{SVG}title").text == "Map"
    links = svg.findall(f"{SVG}a")
    assert [a.get("data-station") for a in links] == [s.code for s in stations]
    centres = {}
    for a, s in zip(links, stations, strict=True):
        assert a.get("href") == f"/stations/{s.code}"
        marker = next(c for c in a.findall(f"{SVG}circle")
                      if c.get("r") == str(charts.MARKER_R))
        assert marker.get("fill") == (s.color or charts.NO_DATA_FILL)
        aqi_text = a.find(f"{SVG}text[@class='aqi']")
        assert aqi_text.text == ("NA" if s.aqi is None else str(s.aqi))
        assert aqi_text.get("fill") == charts.text_on(s.color or charts.NO_DATA_FILL)
        assert a.find(f"{SVG}text[@class='name']").text == s.label
        centres[s.code] = (float(marker.get("cx")), float(marker.get("cy")))
    # Markers never overlap, even for stations a few kilometres apart.
    codes = list(centres)
    for i, a in enumerate(codes):
        for b in codes[i + 1:]:
            assert math.dist(centres[a], centres[b]) >= 2 * charts.MARKER_R
    # North is up and east is right for stations far apart.
    assert centres["LF04"][1] < centres["LF01"][1] < centres["LF11"][1]
    assert centres["LF07"][0] < centres["LF01"][0] < centres["LF04"][0]
