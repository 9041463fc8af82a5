"""Parquet for the hourly download: row groups written to the response as they are made.

pyarrow is optional (``pip install 'aqi-service[parquet]'``); without it the format answers
501 with the envelope saying how to get it. Memory is one row group in Arrow's columns plus
one fetch of records as Python objects, whatever the range.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Sequence
from typing import Any

from aqi_service.aqi.batch import names
from aqi_service.web.codebook import (
    AVERAGES,
    CITATION,
    LICENCE,
    LICENCE_URL,
    TIME_CONVENTION,
    VALUES_NOTE,
    describe,
)
from aqi_service.web.errors import ApiError

ROW_GROUP = 8760
"""Station-hours per row group (a station-year): a few MB once in Arrow's columns."""
FETCH = ROW_GROUP // 12
"""Records read and converted at a time (730, a month of hours): the only ones ever held
as Python objects; a row group is twelve of these batches."""
INSTALL = "pip install 'aqi-service[parquet]'"


def pyarrow() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or a 501 saying how to install them."""
    try:
        return (importlib.import_module("pyarrow"),
                importlib.import_module("pyarrow.parquet"))
    except ImportError:
        raise ApiError(501, "format_unavailable",
                       f"Parquet needs the optional pyarrow package on the server ({INSTALL}); "
                       "hourly.csv and hourly.jsonl have the same columns",
                       {"format": "parquet", "install": INSTALL,
                        "alternatives": ["csv", "jsonl"]}) from None


class Spool(io.RawIOBase):
    """A write-only file for ParquetWriter whose bytes are taken out after each row group."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        """The bytes written since the last call."""
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def schema(pa: Any, cols: list[str]) -> Any:
    """The Arrow schema of the columns, each field described, licence and citation attached."""
    fields = []
    for col in cols:
        _, description, unit = describe(col)
        meta = {"description": description, **({"unit": unit} if unit else {})}
        fields.append(pa.field(col, _type(pa, col), nullable=True, metadata=meta))
    return pa.schema(fields, metadata={
        "licence": LICENCE, "licence_url": LICENCE_URL, "citation": CITATION,
        "time_convention": TIME_CONVENTION, "values": VALUES_NOTE,
        "order": "station_code, time_point_utc",
    })


def _type(pa: Any, col: str) -> Any:
    if col == "time_point":
        return pa.timestamp("ms", tz="Asia/Shanghai")
    if col == "time_point_utc":
        return pa.timestamp("ms", tz="UTC")
    if col == "revision":
        return pa.int32()
    datatype = describe(col)[0]
    return {"double": pa.float64(), "integer": pa.int16()}.get(datatype, pa.string())


def batch(pa: Any, arrow_schema: Any, recs: Sequence[Any], pollutants: list[str]) -> Any:
    """An Arrow record batch of stored records (values taken as they are, no rounding)."""
    def get(name: str) -> list[Any]:
        return [r[name] for r in recs]

    hours = get("hour_end")
    data: dict[str, list[Any]] = {"station_code": get("station_code"),
                                  "position_name": get("name_zh"),
                                  "time_point": hours, "time_point_utc": hours}
    flags = [r["flags"] or {} for r in recs]
    for p in pollutants:
        values = get(p)
        data[p] = values
        data[f"{p}_flag"] = [f.get(p, "N" if v is not None else None)
                             for f, v in zip(flags, values, strict=True)]
        for avg, count in AVERAGES[p]:
            data[avg] = get(avg)
            data[count] = get(count)
        data[f"iaqi_{p}"] = get(f"iaqi_{p}")
    for col in ("aqi", "level", "scheme", "revision"):
        data[col] = get(col)
    data["primary_pollutants"] = [";".join(names(m)) or None for m in get("primary_mask")]
    return pa.RecordBatch.from_arrays([pa.array(data[f.name], type=f.type)
                                       for f in arrow_schema], schema=arrow_schema)
