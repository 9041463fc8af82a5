"""Real hourly AQIs published by CNEMC, and their reconciliation with ``aqi-service aqi``.

Sources (every value is as published; nothing here comes from the service):

- the shared archive ``shared/data/cnemc-published/`` (README there names the public
  repositories, paths and commits): 13,503 station-hours of 2017-2019, read directly when
  present (``AQI_SHARED_DIR``, or ``shared/`` beside or above the checkout);
- ``tests/data/cnemc/published_2017_2019_sample.csv``: a committed subset of it, so that a
  checkout without ``shared/`` still tests (written by ``--write-sample``, rule below);
- ``tests/data/cnemc/2026-03-01T00.csv`` and ``T01.csv``: the first rows, as published, of
  CNEMC's hourly archive files across the switch to HJ 633-2026 (repository HeQinWill/CNEMC,
  see the README beside them);
- ``tests/data/cnemc/langfang_2026-02-27_2026-03-02.csv``: Langfang's four national stations,
  every hour of 2026-02-27 … 2026-03-02 (96 each) across the switch, from the same archive.

Run ``python tests/cnemc_published.py`` for the figures: for each scheme, how many published
AQIs and primary pollutants the CLI reproduces from the whole records (natural keys).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "cnemc"
SAMPLE = DATA / "published_2017_2019_sample.csv"
ARCHIVE_2026 = (DATA / "2026-03-01T00.csv", DATA / "2026-03-01T01.csv")
LANGFANG_DAYS = DATA / "langfang_2026-02-27_2026-03-02.csv"
HOURLY_FILES = ("cnemc_geoinsights.jsonl", "cnemc_eddycy.jsonl", "pm25in_ligl.jsonl")

NATURAL = ("pm10", "pm10_24h", "pm2_5", "pm2_5_24h", "o3", "o3_24h", "o3_8h", "o3_8h_24h",
           "no2", "no2_24h", "so2", "so2_24h", "co", "co_24h")
"""The concentration columns of CNEMC's hourly archive layout, in its order."""
# The shared files name values by meaning; the archive layout's names for them.
FROM_SHARED = {"o3_1h": "o3_1h", "o3_1h_max24h": "o3_24h", "o3_8h": "o3_8h",
               "o3_8h_max": "o3_8h_24h"}
PRIMARY_NAMES = {
    "颗粒物(PM10)": "pm10", "细颗粒物(PM2.5)": "pm2_5", "臭氧1小时": "o3", "臭氧8小时": "o3",
    "二氧化氮": "no2", "二氧化硫": "so2", "一氧化碳": "co",
}
"""CNEMC's published primary-pollutant texts."""
POLLUTANTS_1H = ("so2", "no2", "co", "o3", "pm10", "pm2_5")
KNOWN_DISAGREEMENT = ("3019A", "2017-06-18T17:00+08:00")
"""PM25.in's hour that contradicts its own values: AQI 30 published, but its largest IAQI
(every 1 h and 24 h value, either reading) is 20 or less (shared README, "Quirks")."""


@dataclass
class Hour:
    """One published station-hour: its whole record (natural keys) and what was published."""

    source: str
    station: str
    time: str
    record: dict[str, object]
    aqi: int | None
    primary: list[str]

    def line(self) -> dict[str, object]:
        return {"time": self.time, "station": self.station, **self.record}

    @property
    def missing_1h(self) -> list[str]:
        def absent(key: str) -> bool:
            value = self.record.get(key, self.record.get("o3_1h") if key == "o3" else None)
            return value is None or value in ("", "NA")
        return [p for p in POLLUTANTS_1H if absent(p)]


def shared_dir() -> Path | None:
    """The shared data directory, if this checkout has one near it."""
    env = os.environ.get("AQI_SHARED_DIR")
    candidates = [Path(env)] if env else []
    candidates += [p / "shared" for p in (HERE.parent.parent, HERE.parent.parent.parent)]
    for path in candidates:
        if (path / "data" / "cnemc-published" / HOURLY_FILES[0]).is_file():
            return path / "data" / "cnemc-published"
    return None


def load_shared(directory: Path) -> list[Hour]:
    """Every hourly row of the shared files."""
    hours = []
    for name in HOURLY_FILES:
        with (directory / name).open(encoding="utf-8") as fh:
            for raw in fh:
                row = json.loads(raw)
                measured = row["measured"]
                record = {FROM_SHARED.get(k, k): v for k, v in measured.items()}
                pub = row["published"]
                hours.append(Hour(row["dataset"], row["station"], row["time"], record, pub["aqi"],
                                  list(pub["primary_pollutants"])))
    return hours


def primary_of(text: str) -> list[str]:
    """Pollutant names of a published primary-pollutant text (``NA``/empty: none)."""
    return sorted({PRIMARY_NAMES[p] for p in text.split(",") if p and p not in ("NA", "—")})


def load_archive_csv(path: Path) -> list[Hour]:
    """Rows of a CNEMC hourly archive file (or the committed sample, same layout)."""
    hours = []
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        for row in rows:
            record: dict[str, object] = {}
            for key in (*NATURAL, "o3_1h"):
                if key in row:
                    record[key] = row[key]
            aqi = None if row["aqi"] in ("", "NA") else int(row["aqi"])
            hours.append(Hour(row.get("source") or path.name, row["stationcode"],
                              row["timepoint"], record, aqi, primary_of(row["primarypollutant"])))
    return hours


def archive_line(hour: Hour) -> dict[str, object]:
    """An archive row as the CLI takes it: ``timepoint`` and the natural keys as printed."""
    return {"timepoint": hour.time, "station": hour.station, **hour.record}


@dataclass
class Reconciliation:
    """Published against computed, hour by hour."""

    scheme: str
    agree: list[tuple[Hour, dict]] = field(default_factory=list)
    disagree: list[tuple[Hour, dict]] = field(default_factory=list)
    unpublished: list[tuple[Hour, dict]] = field(default_factory=list)
    """Hours the platform published no AQI for."""

    def summary(self) -> str:
        n = len(self.agree) + len(self.disagree)
        withheld = sum(1 for _, out in self.unpublished if out.get("aqi") is None)
        return (f"{self.scheme}: reproduced {len(self.agree)} of {n} published hourly AQIs "
                f"and primary pollutants ({100 * len(self.agree) / max(n, 1):.2f} %); "
                f"{len(self.unpublished)} hours without a published AQI, "
                f"{withheld} of them without one here too")

    def lines(self, limit: int = 20) -> Iterator[str]:
        for hour, out in self.disagree[:limit]:
            yield (f"  {hour.station} {hour.time}: published {hour.aqi} {hour.primary}, "
                   f"computed {out.get('aqi')} {out.get('primary_pollutants')} "
                   f"({out.get('scheme')}; {hour.source})")


def reconcile(hours: Iterable[Hour], scheme: str, lines=None) -> Reconciliation:
    """Feed every hour's whole record to ``aqi-service aqi --scheme SCHEME --detail``."""
    from cli_support import jsonl, run_aqi

    hours = list(hours)
    make = lines or (lambda h: h.line())
    run = run_aqi("--scheme", scheme, "--detail", stdin=jsonl(*(make(h) for h in hours)))
    outs = run.results
    if len(outs) != len(hours):
        raise AssertionError(f"{len(hours)} lines in, {len(outs)} out: {run.stderr}")
    rec = Reconciliation(scheme)
    for hour, out in zip(hours, outs, strict=True):
        if "error" in out:
            rec.disagree.append((hour, out))
        elif hour.aqi is None:
            rec.unpublished.append((hour, out))
        elif out["aqi"] == hour.aqi and out["primary_pollutants"] == hour.primary:
            rec.agree.append((hour, out))
        else:
            rec.disagree.append((hour, out))
    return rec


def _sample_rule(index: int, hour: Hour) -> bool:
    """Which shared hours the committed sample keeps: every hour with a 1 h value missing or
    no published AQI, every AQI above 150, every 5th O3-primary and every 40th other hour."""
    return (bool(hour.missing_1h) or hour.aqi is None or (hour.aqi or 0) > 150
            or (hour.station, hour.time) == KNOWN_DISAGREEMENT
            or index % (5 if "o3" in hour.primary else 40) == 0)


def write_sample(directory: Path, out: Path = SAMPLE) -> int:
    """Write the committed subset of the shared hours (archive layout plus ``source``)."""
    hours = load_shared(directory)
    kept = [h for i, h in enumerate(hours) if _sample_rule(i, h)]
    with out.open("w", encoding="utf-8", newline="") as fh:
        fh.write("# Real hourly AQIs published by CNEMC (and PM25.in, a re-publisher), 2017-2019,\n"
                 "# a subset of shared/data/cnemc-published/ (cnemc_geoinsights.jsonl,\n"
                 "# cnemc_eddycy.jsonl, pm25in_ligl.jsonl; their README names the archives:\n"
                 "# geoinsights/ChinaAQIData b7b2867 and e459468, Eddy-CY/AQI_cnemc 389fa6e,\n"
                 "# Li-GL/ChinaAQI 5d07674); source = the dataset of each row there.\n"
                 "# Written by `python tests/cnemc_published.py --write-sample`; rule: every\n"
                 "# hour with a 1 h value missing or no published AQI, every AQI above 150,\n"
                 "# every 5th O3-primary and every 40th other hour. o3_1h is the 1 h O3 value,\n"
                 "# o3_24h / o3_8h_24h the published daily maxima of 1 h and 8 h O3.\n")
        cols = ["source", "timepoint", "stationcode", "primarypollutant", "aqi",
                *[k if k != "o3" else "o3_1h" for k in NATURAL]]
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(cols)
        for h in kept:
            names = {v: k for k, v in PRIMARY_NAMES.items() if k != "臭氧8小时"}
            primary = ",".join(names[p] for p in h.primary)
            values = [h.record.get(k if k != "o3" else "o3_1h") for k in NATURAL]
            writer.writerow([h.source, h.time, h.station, primary,
                             "NA" if h.aqi is None else h.aqi,
                             *["NA" if v is None else v for v in values]])
    return len(kept)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    directory = shared_dir()
    if "--write-sample" in argv:
        if directory is None:
            print("no shared/data/cnemc-published here (set AQI_SHARED_DIR)", file=sys.stderr)
            return 1
        print(f"wrote {write_sample(directory)} hours to {SAMPLE}")
        return 0
    sets = [("committed sample", load_archive_csv(SAMPLE), None)]
    if directory is not None:
        sets.insert(0, (f"shared {directory}", load_shared(directory), None))
    sets.append(("CNEMC archive 2026-03-01 00:00 and 01:00",
                 [h for p in ARCHIVE_2026 for h in load_archive_csv(p)], archive_line))
    sets.append(("Langfang's national stations 2026-02-27 … 2026-03-02",
                 load_archive_csv(LANGFANG_DAYS), archive_line))
    for title, hours, lines in sets:
        print(f"== {title}: {len(hours)} station-hours")
        for scheme in ("auto", "HJ633-2012", "HJ633-2012-text"):
            rec = reconcile(hours, scheme, lines)
            print(rec.summary())
            for text in rec.lines(5 if scheme != "HJ633-2012-text" else 0):
                print(text)
    hours_2026 = [h for p in (*ARCHIVE_2026, LANGFANG_DAYS) for h in load_archive_csv(p)
                  if h.time >= "2026-03-01T0100"]
    pm10_only = [h for h in hours_2026 if h.missing_1h == ["pm10"]]
    print(f"== HJ 633-2026 hours (archive files above): {len(hours_2026)}; PM10 the only 1 h "
          f"value missing: {len(pm10_only)}, with a published AQI: "
          f"{sum(h.aqi is not None for h in pm10_only)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
