"""Server-rendered SVG: hourly line charts over AQI level bands, and the station map.

Pure functions, no I/O: data in, SVG text out (as ``Markup``, ready for a template). A
missing hour is a gap in the line, never a zero; every chart carries ``role="img"``, a
``<title>`` and a ``<desc>``; colour is never the only carrier (bands and markers are
labelled in text).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape

from markupsafe import Markup

from aqi_service.aqi.schemes import SHANGHAI

INK = "#1a1a1a"
NO_DATA_FILL = "#9E9E9E"
BAND_OPACITY = "0.28"
_EPOCH_MONDAY = datetime(1970, 1, 5, tzinfo=SHANGHAI)


def _q(text: object) -> str:
    """Text escaped for XML content or a double-quoted attribute."""
    return escape(str(text), quote=True)


def _n(value: float) -> str:
    """A coordinate with at most one decimal (short, stable output)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def label_number(value: float) -> str:
    """A tick or axis number without a trailing ``.0``."""
    return f"{value:g}"


# --- colour ---------------------------------------------------------------------------

def _luminance(color: str) -> float:
    """WCAG 2 relative luminance of ``#RRGGBB``."""
    channels = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``#RRGGBB`` colours (1…21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(background: str) -> str:
    """Black or white, whichever contrasts more with ``background``."""
    return "#000000" if contrast(background, "#000000") >= contrast(background, "#FFFFFF") \
        else "#FFFFFF"


# --- scales ---------------------------------------------------------------------------

def axis_ticks(top: float, target: int = 5) -> list[float]:
    """Round ticks from 0 to at least ``top`` in steps of 1, 2, 2.5 or 5 × 10ⁿ."""
    if not (top > 0 and math.isfinite(top)):
        top = 1.0
    raw = Decimal(repr(top)) / target
    unit = Decimal(1).scaleb(raw.adjusted())
    step = next(unit * m for m in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5),
                                   Decimal(10)) if unit * m >= raw)
    count = int((Decimal(repr(top)) / step).to_integral_value(rounding="ROUND_CEILING"))
    return [float(step * i) for i in range(max(count, 1) + 1)]


def runs(values: Sequence[float | None]) -> list[list[int]]:
    """Indexes of the consecutive present values (a None ends a run)."""
    out: list[list[int]] = []
    current: list[int] = []
    for i, v in enumerate(values):
        if v is None:
            if current:
                out.append(current)
            current = []
        else:
            current.append(i)
    if current:
        out.append(current)
    return out


@dataclass(frozen=True, slots=True)
class Summary:
    """Plain statistics of a series, for a chart's description."""

    present: int
    slots: int
    low: float | None
    high: float | None
    mean: float | None
    last: float | None


def summarize(values: Sequence[float | None]) -> Summary:
    """Count, minimum, maximum, mean and last value of the present values."""
    got = [v for v in values if v is not None]
    last = next((v for v in reversed(values) if v is not None), None)
    return Summary(len(got), len(values), min(got, default=None), max(got, default=None),
                   sum(got) / len(got) if got else None, last)


def hour_slots(end: datetime, hours: int) -> list[datetime]:
    """The ``hours`` hour-ending labels up to and including ``end``, oldest first."""
    return [end - timedelta(hours=hours - 1 - i) for i in range(hours)]


def time_ticks(times: Sequence[datetime], step_hours: int, fmt: str) -> list[tuple[int, str]]:
    """Indexes of ``times`` on a local (Asia/Shanghai) multiple of ``step_hours``, labelled.

    Weekly steps start on Mondays; daily and shorter steps on local midnight.
    """
    out = []
    for i, t in enumerate(times):
        local = t.astimezone(SHANGHAI)
        hours = int((local - _EPOCH_MONDAY).total_seconds() // 3600)
        if local.minute == 0 and hours % step_hours == 0:
            out.append((i, local.strftime(fmt)))
    return out


# --- line chart -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Band:
    """A background band: values in [low, high) belong to one AQI level."""

    low: float
    high: float
    color: str
    label: str


@dataclass(frozen=True, slots=True)
class Frame:
    """The plotting area inside a chart's view box."""

    width: int = 640
    height: int = 220
    left: int = 44
    right: int = 8
    top: int = 8
    bottom: int = 24

    @property
    def plot_w(self) -> float:
        """Width of the plotting area."""
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        """Height of the plotting area."""
        return self.height - self.top - self.bottom

    def x(self, index: int, slots: int) -> float:
        """Horizontal position of slot ``index`` of ``slots``."""
        if slots <= 1:
            return self.left + self.plot_w / 2
        return self.left + self.plot_w * index / (slots - 1)

    def y(self, value: float, top: float) -> float:
        """Vertical position of ``value`` on a 0…``top`` scale."""
        return self.top + self.plot_h * (1 - value / top)


def line_chart(values: Sequence[float | None], ticks: Sequence[tuple[int, str]], *,
               chart_id: str, title: str, desc: str, bands: Sequence[Band] = (),
               min_top: float = 0.0, no_data: str = "—", frame: Frame | None = None) -> Markup:
    """An hourly series as an SVG line over level bands; gaps where values are None."""
    f = frame or Frame()
    slots = len(values)
    present = [v for v in values if v is not None]
    y_ticks = axis_ticks(max([*present, min_top, 0.0]) or 1.0)
    top = y_ticks[-1]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_q(chart_id)}" '
        f'viewBox="0 0 {f.width} {f.height}" role="img" '
        f'aria-labelledby="{_q(chart_id)}-t {_q(chart_id)}-d">',
        f'<title id="{_q(chart_id)}-t">{_q(title)}</title>',
        f'<desc id="{_q(chart_id)}-d">{_q(desc)}</desc>',
    ]
    parts.append('<g class="bands">')
    labels = []
    for band in bands:
        if band.low >= top:
            continue
        y_hi, y_lo = f.y(min(band.high, top), top), f.y(band.low, top)
        parts.append(f'<rect x="{f.left}" y="{_n(y_hi)}" width="{_n(f.plot_w)}" '
                     f'height="{_n(y_lo - y_hi)}" fill="{_q(band.color)}" '
                     f'fill-opacity="{BAND_OPACITY}"/>')
        if y_lo - y_hi >= 12:
            labels.append(f'<text class="band-label" x="{_n(f.left + f.plot_w - 4)}" '
                          f'y="{_n(y_hi + 11)}" text-anchor="end">{_q(band.label)}</text>')
    parts.append('</g><g class="axes">')
    for value in y_ticks:
        y = f.y(value, top)
        parts.append(f'<line x1="{f.left}" x2="{_n(f.left + f.plot_w)}" y1="{_n(y)}" '
                     f'y2="{_n(y)}"/>')
        parts.append(f'<text x="{f.left - 4}" y="{_n(y + 4)}" text-anchor="end">'
                     f'{label_number(value)}</text>')
    for index, label in ticks:
        x = f.x(index, slots)
        base = f.top + f.plot_h
        parts.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{_n(base)}" y2="{_n(base + 4)}"/>')
        parts.append(f'<text x="{_n(x)}" y="{_n(base + f.bottom - 8)}" text-anchor="middle">'
                     f'{_q(label)}</text>')
    parts.append('</g><g class="band-labels">' + "".join(labels) + '</g><g class="series">')
    for run in runs(values):
        points = [(f.x(i, slots), f.y(values[i], top)) for i in run]  # type: ignore[arg-type]
        if len(points) == 1:
            (x, y), = points
            parts.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="2.5"/>')
        else:
            coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
            parts.append(f'<polyline points="{coords}"/>')
    parts.append("</g>")
    if not present:
        parts.append(f'<text class="no-data" x="{_n(f.left + f.plot_w / 2)}" '
                     f'y="{_n(f.top + f.plot_h / 2)}" text-anchor="middle">{_q(no_data)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# --- station map ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MapStation:
    """A station on the map: where it is, its label, its AQI and level colour."""

    code: str
    label: str
    lat: float
    lon: float
    aqi: int | None
    color: str | None
    tooltip: str
    href: str


KM_PER_DEGREE = 111.32
MARKER_R = 14
LABEL_SIZE = 12


def text_width(text: str, size: int = LABEL_SIZE) -> float:
    """An estimate of a label's width: CJK characters are square, others about 0.6 em."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.6 for ch in text)


def _separate(boxes: list[list[float]], gap: float = 3.0, rounds: int = 400) -> None:
    """Move boxes [x0, y0, x1, y1] apart vertically until none overlap (in place)."""
    for _ in range(rounds):
        moved = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] >= b[2] + gap or b[0] >= a[2] + gap:
                    continue
                if a[1] >= b[3] + gap or b[1] >= a[3] + gap:
                    continue
                upper, lower = (a, b) if (a[1] + a[3], i) <= (b[1] + b[3], j) else (b, a)
                push = (upper[3] + gap - lower[1]) / 2 + 0.5
                upper[1] -= push
                upper[3] -= push
                lower[1] += push
                lower[3] += push
                moved = True
        if not moved:
            return


def station_map(stations: Sequence[MapStation], *, chart_id: str, title: str, desc: str,
                width: int = 420, max_height: int = 560, na: str = "—",
                north: str = "N") -> Markup:
    """Stations at their coordinates (equirectangular), coloured by level, AQI as text."""
    pad = MARKER_R + 8
    if not stations:
        return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 40" '
                      f'role="img" aria-labelledby="{_q(chart_id)}-t"><title id="'
                      f'{_q(chart_id)}-t">{_q(title)}</title></svg>')
    mid_lat = sum(s.lat for s in stations) / len(stations)
    kx = math.cos(math.radians(mid_lat))
    xs = [s.lon * kx for s in stations]
    ys = [s.lat for s in stations]
    span_x, span_y = max(max(xs) - min(xs), 1e-6), max(max(ys) - min(ys), 1e-6)
    label_room = max(text_width(s.label) for s in stations) + MARKER_R + 6
    scale = min((width - 2 * pad - label_room) / span_x, (max_height - 2 * pad) / span_y)
    anchors = [(pad + (x - min(xs)) * scale, pad + (max(ys) - y) * scale)
               for x, y in zip(xs, ys, strict=True)]
    boxes = [[x - MARKER_R, y - MARKER_R, x + MARKER_R + 6 + text_width(s.label), y + MARKER_R]
             for (x, y), s in zip(anchors, stations, strict=True)]
    _separate(boxes)
    shift = max(0.0, 4 - min(b[1] for b in boxes))
    bottom = max(max(b[3] for b in boxes), max(y for _, y in anchors) + 2) + shift + 6
    height = bottom + 28
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="map" id="{_q(chart_id)}" '
        f'viewBox="0 0 {width} {_n(height)}" role="img" '
        f'aria-labelledby="{_q(chart_id)}-t {_q(chart_id)}-d">',
        f'<title id="{_q(chart_id)}-t">{_q(title)}</title>',
        f'<desc id="{_q(chart_id)}-d">{_q(desc)}</desc>',
    ]
    km = 10
    bar = km / KM_PER_DEGREE * scale
    base_y = height - 8
    parts.append(f'<g class="scale"><line x1="{pad}" x2="{_n(pad + bar)}" y1="{_n(base_y)}" '
                 f'y2="{_n(base_y)}"/><text x="{_n(pad + bar + 6)}" y="{_n(base_y + 4)}">'
                 f'{km} km</text><text x="{width - 12}" y="{_n(base_y + 4)}" '
                 f'text-anchor="end">↑ {_q(north)}</text></g>')
    for (ax, ay), box, s in zip(anchors, boxes, stations, strict=True):
        ay += shift
        cx, cy = box[0] + MARKER_R, box[1] + MARKER_R + shift
        fill = s.color or NO_DATA_FILL
        ink = text_on(fill)
        parts.append(f'<a href="{_q(s.href)}" class="station" data-station="{_q(s.code)}">'
                     f'<title>{_q(s.tooltip)}</title>')
        if abs(cx - ax) > 1 or abs(cy - ay) > 1:
            parts.append(f'<line class="leader" x1="{_n(ax)}" y1="{_n(ay)}" x2="{_n(cx)}" '
                         f'y2="{_n(cy)}"/><circle class="anchor" cx="{_n(ax)}" cy="{_n(ay)}" '
                         f'r="2"/>')
        parts.append(f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="{MARKER_R}" fill="{_q(fill)}"/>')
        parts.append(f'<text class="aqi" x="{_n(cx)}" y="{_n(cy + 4)}" text-anchor="middle" '
                     f'fill="{ink}">{_q(na if s.aqi is None else s.aqi)}</text>')
        parts.append(f'<text class="name" x="{_n(cx + MARKER_R + 4)}" y="{_n(cy + 4)}">'
                     f'{_q(s.label)}</text></a>')
    parts.append("</svg>")
    return Markup("".join(parts))
