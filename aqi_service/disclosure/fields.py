"""Reading typed fields from a JSON object or a CSV row, collecting every problem.

JSON values arrive typed (numbers as ``Decimal`` when the body is parsed with
``parse_float=Decimal``); CSV values arrive as text, where an empty cell means "absent".
Each problem names its field, so the API answers 400 with all of them and an import
reports line, column and reason.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.disclosure import credit_code as cc
from aqi_service.errors import InputError

MAX_TEXT = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Problem:
    """One field that cannot be accepted."""

    field: str
    message: str


class Invalid(InputError):
    """Input with one or more bad fields."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in self.problems))


_MISSING = object()


class Reader:
    """Typed access to the fields of one object; ``finish()`` raises every problem at once."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "", *, csv: bool = False) -> None:
        if not isinstance(data, Mapping):
            raise Invalid([Problem(prefix.rstrip(".") or "body", "must be a JSON object")])
        self.data = data
        self.prefix = prefix
        self.csv = csv
        self.problems: list[Problem] = []
        self.used: set[str] = set()

    # -- plumbing -------------------------------------------------------------------------

    def problem(self, name: str, message: str) -> None:
        """Record a problem with ``name``."""
        self.problems.append(Problem(self.prefix + name, message))

    def raw(self, name: str) -> Any:
        """The raw value, or ``_MISSING`` when absent, null or an empty CSV cell."""
        self.used.add(name)
        value = self.data.get(name, _MISSING)
        if value is None or (self.csv and isinstance(value, str) and value.strip() == ""):
            return _MISSING
        return value

    def present(self, name: str) -> bool:
        """Whether the field was given."""
        return self.raw(name) is not _MISSING

    def check_unknown(self) -> None:
        """Record a problem for every field nobody asked for (a typo must not pass)."""
        for key in self.data:
            if key not in self.used:
                self.problem(str(key)[:40], "unknown field")

    def finish(self, *, strict: bool = True) -> None:
        """Raise every problem; with ``strict``, unknown fields are problems too."""
        if strict:
            self.check_unknown()
        if self.problems:
            raise Invalid(self.problems)

    def _required(self, name: str, required: bool) -> None:
        if required:
            self.problem(name, "required")

    # -- scalars ---------------------------------------------------------------------------

    def text(self, name: str, *, required: bool = False, max_len: int = MAX_TEXT,
             default: str = "", multiline: bool = False) -> str:
        """A string, stripped; control characters refused (new lines only if multiline)."""
        value = self.raw(name)
        if value is _MISSING:
            self._required(name, required)
            return default
        if not isinstance(value, str):
            self.problem(name, "must be a string")
            return default
        value = value.strip()
        checked = value.replace("\n", "").replace("\r", "").replace("\t", "") \
            if multiline else value
        if _CONTROL.search(checked) or (not multiline and ("\n" in value or "\r" in value)):
            self.problem(name, "contains control characters")
            return default
        if required and not value:
            self.problem(name, "required")
        if len(value) > max_len:
            self.problem(name, f"longer than {max_len} characters")
            return default
        return value

    def optional_text(self, name: str, *, max_len: int = MAX_TEXT,
                      pattern: re.Pattern[str] | None = None, hint: str = "") -> str | None:
        """A string or None; matched against ``pattern`` when given."""
        if not self.present(name):
            return None
        value = self.text(name, max_len=max_len)
        if not value:
            return None
        if pattern is not None and not pattern.match(value):
            self.problem(name, f"{value[:40]!r} is not valid{': ' + hint if hint else ''}")
            return None
        return value

    def choice(self, name: str, choices: Mapping[str, str] | Iterable[str], *,
               required: bool = False, default: str | None = None) -> str | None:
        """One of ``choices`` (a mapping also accepts aliases, e.g. Chinese names)."""
        value = self.raw(name)
        if value is _MISSING:
            self._required(name, required)
            return default
        mapping = dict(choices) if isinstance(choices, Mapping) else {c: c for c in choices}
        if not isinstance(value, str) or value.strip() not in mapping:
            canonical = sorted(set(mapping.values()))
            self.problem(name, f"must be one of {', '.join(canonical)}")
            return default
        return mapping[value.strip()]

    def boolean(self, name: str, *, default: bool = False) -> bool:
        """true/false (CSV: true/false/1/0/yes/no/是/否)."""
        value = self.raw(name)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "1", "yes", "y", "是"):
                return True
            if low in ("false", "0", "no", "n", "否"):
                return False
        self.problem(name, "must be true or false")
        return default

    def decimal(self, name: str, *, required: bool = False, places: int | None = None,
                minimum: Decimal | None = None, maximum: Decimal | None = None
                ) -> Decimal | None:
        """An exact decimal number (JSON number or string; never through a float)."""
        value = self.raw(name)
        if value is _MISSING:
            self._required(name, required)
            return None
        if isinstance(value, bool | float):
            # a float has already lost the decimal digits it was written with
            self.problem(name, "must be a decimal number")
            return None
        try:
            number = Decimal(value.strip().replace(",", "") if isinstance(value, str)
                             else value)
        except (InvalidOperation, TypeError, ValueError):
            self.problem(name, f"{str(value)[:40]!r} is not a number")
            return None
        if not number.is_finite():
            self.problem(name, "must be a finite number")
            return None
        if abs(number.adjusted()) > 15:
            self.problem(name, "out of range")
            return None
        exponent = number.as_tuple().exponent
        if places is not None and isinstance(exponent, int) and -exponent > places:
            self.problem(name, f"at most {places} decimal places")
            return None
        if minimum is not None and number < minimum:
            self.problem(name, f"must be at least {minimum}")
            return None
        if maximum is not None and number > maximum:
            self.problem(name, f"must be at most {maximum}")
            return None
        return number

    def number(self, name: str, *, low: float, high: float) -> float | None:
        """A float in [low, high] (coordinates)."""
        value = self.decimal(name)
        if value is None:
            return None
        result = float(value)
        if not math.isfinite(result) or not low <= result <= high:
            self.problem(name, f"must be between {low} and {high}")
            return None
        return result

    def integer(self, name: str, *, required: bool = False, low: int, high: int) -> int | None:
        """An integer in [low, high]."""
        value = self.raw(name)
        if value is _MISSING:
            self._required(name, required)
            return None
        if isinstance(value, bool):
            self.problem(name, "must be an integer")
            return None
        try:
            number = int(value.strip()) if isinstance(value, str) else int(value)
            if isinstance(value, Decimal | float) and number != value:
                raise ValueError
        except (ValueError, TypeError):
            self.problem(name, "must be an integer")
            return None
        if not low <= number <= high:
            self.problem(name, f"must be {low}-{high}")
            return None
        return number

    def date(self, name: str, *, required: bool = False) -> date | None:
        """An ISO 8601 date (YYYY-MM-DD)."""
        value = self.raw(name)
        if value is _MISSING:
            self._required(name, required)
            return None
        try:
            if not isinstance(value, str) or len(value.strip()) != 10:
                raise ValueError
            return date.fromisoformat(value.strip())
        except ValueError:
            self.problem(name, f"{str(value)[:40]!r} is not a date (YYYY-MM-DD)")
            return None

    def datetime(self, name: str, *, required: bool = False) -> datetime | None:
        """An ISO 8601 time; without an offset it is Asia/Shanghai."""
        value = self.raw(name)
        if value is _MISSING:
            self._required(name, required)
            return None
        try:
            if not isinstance(value, str) or len(value) > 40:
                raise ValueError
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            self.problem(name, f"{str(value)[:40]!r} is not an ISO 8601 time")
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=SHANGHAI)
        if not 1990 <= when.year <= 2100:
            self.problem(name, "out of range (1990-2100)")
            return None
        return when

    def credit_code(self, name: str, *, required: bool = False) -> str | None:
        """A valid unified social credit code (GB 32100, with the GB 11714 check)."""
        value = self.raw(name)
        if value is _MISSING:
            self._required(name, required)
            return None
        if not isinstance(value, str):
            self.problem(name, "must be a string")
            return None
        try:
            return cc.parse(value).code
        except cc.CreditCodeError as exc:
            self.problem(name, f"not a valid unified social credit code: {exc}")
            return None

    def uuid(self, name: str, *, required: bool = False) -> uuid.UUID | None:
        """An attachment id."""
        value = self.raw(name)
        if value is _MISSING:
            self._required(name, required)
            return None
        try:
            return uuid.UUID(str(value)) if isinstance(value, str) and len(value) <= 40 \
                else _bad_uuid()
        except ValueError:
            self.problem(name, "must be an attachment id (UUID)")
            return None

    def uuid_list(self, name: str, *, limit: int = 20) -> list[uuid.UUID]:
        """A list of attachment ids (CSV: separated by ';')."""
        items = self.str_list(name, limit=limit)
        out = []
        for item in items:
            try:
                out.append(uuid.UUID(item))
            except ValueError:
                self.problem(name, f"{item[:40]!r} is not an attachment id (UUID)")
        if len(set(out)) != len(out):
            self.problem(name, "an attachment is listed twice")
        return out

    def str_list(self, name: str, *, limit: int = 20, choices: Iterable[str] | None = None
                 ) -> list[str]:
        """A list of strings (CSV: separated by ';' or '+')."""
        value = self.raw(name)
        if value is _MISSING:
            return []
        if isinstance(value, str) and self.csv:
            value = [v.strip() for v in re.split(r"[;+]", value) if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(name, "must be a list of strings")
            return []
        if len(value) > limit:
            self.problem(name, f"at most {limit} items")
            return []
        if choices is not None:
            allowed = set(choices)
            bad = [v for v in value if v not in allowed]
            if bad:
                self.problem(name, f"{bad[0][:40]!r} is not one of {', '.join(sorted(allowed))}")
                return []
        return [v.strip() for v in value]

    def objects(self, name: str, *, limit: int = 100) -> list[Mapping[str, Any]]:
        """A list of JSON objects."""
        value = self.raw(name)
        if value is _MISSING:
            return []
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            self.problem(name, "must be a list of objects")
            return []
        if len(value) > limit:
            self.problem(name, f"at most {limit} items")
            return []
        return value

    def nested(self, name: str, index: int, data: Mapping[str, Any]) -> Reader:
        """A reader of one object inside a list field (problems land here)."""
        return _Nested(self, f"{name}[{index}].", data)


class _Nested(Reader):
    def __init__(self, parent: Reader, prefix: str, data: Mapping[str, Any]) -> None:
        super().__init__(data, parent.prefix + prefix, csv=parent.csv)
        self.problems = parent.problems


def _bad_uuid() -> uuid.UUID:
    raise ValueError("not a string")
