"""The kinds of faults a simulated data logger can show.

Transport (the answer to ``/stations/{code}/hourly`` fails):

- ``down``: 503 with a JSON error;
- ``http_500``: 500 with a JSON error;
- ``timeout``: the handler waits ``value`` seconds (30) before answering, so clients time out;
- ``malformed_json``: 200, ``application/json``, a truncated body;
- ``wrong_content``: 200, ``text/html`` (a login page).

Data (the records are wrong):

- ``missing_hour``: the hours are absent;
- ``late_hour``: an hour appears only ``value`` seconds (3600) after it would normally;
- ``duplicate_hour``: the record appears twice;
- ``revised_value``: a pollutant's value changes by a delta from the moment it is registered;
- ``out_of_range`` / ``negative`` / ``non_numeric``: a value is 20000 / -5 / "—";
- ``sentinel``: a value is a logger's "no value" code (9999.9; by rate 9999.9, 9999 or -99);
- ``pm25_above_pm10``: PM10 reads low, below PM2.5 (PM10 = PM2.5 / ``value``, 1.25);
- ``bad_timestamp``: a record's time is off the hour or in the future;
- ``flag_maintenance`` / ``flag_calibration`` / ``flag_fault``: flags M / C / D;
- ``silent``: 200 but no records for hours after the fault starts.
"""

from __future__ import annotations

from enum import StrEnum


class FaultKind(StrEnum):
    """Every fault the simulator can inject."""

    DOWN = "down"
    HTTP_500 = "http_500"
    TIMEOUT = "timeout"
    MALFORMED_JSON = "malformed_json"
    WRONG_CONTENT = "wrong_content"
    MISSING_HOUR = "missing_hour"
    LATE_HOUR = "late_hour"
    DUPLICATE_HOUR = "duplicate_hour"
    REVISED_VALUE = "revised_value"
    OUT_OF_RANGE = "out_of_range"
    NEGATIVE = "negative"
    BAD_TIMESTAMP = "bad_timestamp"
    NON_NUMERIC = "non_numeric"
    SENTINEL = "sentinel"
    PM25_ABOVE_PM10 = "pm25_above_pm10"
    FLAG_MAINTENANCE = "flag_maintenance"
    FLAG_CALIBRATION = "flag_calibration"
    FLAG_FAULT = "flag_fault"
    SILENT = "silent"

    @property
    def is_transport(self) -> bool:
        """Whether the fault replaces the whole answer rather than altering records."""
        return self in TRANSPORT_KINDS


TRANSPORT_KINDS = frozenset({
    FaultKind.DOWN, FaultKind.HTTP_500, FaultKind.TIMEOUT,
    FaultKind.MALFORMED_JSON, FaultKind.WRONG_CONTENT,
})
FLAG_OF_KIND = {
    FaultKind.FLAG_MAINTENANCE: "M",
    FaultKind.FLAG_CALIBRATION: "C",
    FaultKind.FLAG_FAULT: "D",
}
"""HJ 212 data flags: N normal, M maintenance, C calibration, D instrument fault."""
