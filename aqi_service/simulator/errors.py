"""Errors of the station simulator, in the project's tree.

InputError (aqi_service.errors)
├── BadParameter          a bad query parameter or fault request (HTTP 400, ``code`` says which)
└── UnknownStationError   no station with that code (HTTP 404)
"""

from __future__ import annotations

from aqi_service.errors import InputError


class BadParameter(InputError):
    """A request parameter that cannot be accepted; ``code`` is the JSON error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownStationError(InputError):
    """No simulated station has this code."""

    def __init__(self, code: str) -> None:
        super().__init__(f"unknown station {code!r}")
        self.station_code = code
