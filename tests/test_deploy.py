"""What ships in ``deploy/``: the Prometheus config and alert rules pass ``promtool`` (syntax
and the rules' unit tests), the Grafana dashboard is well-formed, and every expression in
either names only metrics the service exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus'; "
                             "scripts/test installs it when run as root)")

SCRAPE_ONLY = {"up"}
"""Series Prometheus makes itself for every target."""
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "inf", "nan", "Inf", "NaN"}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
                     "$station": ".*", "$instance": ".*"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (a tokenizer for what we write)."""
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", e):
        if m.group(2) or m.group(1) in KEYWORDS:
            continue  # a function or aggregation, or a keyword
        names.add(m.group(1))
    return names


def test_the_name_tokenizer_finds_metrics_and_only_them() -> None:
    expr = ('sum by (le, route) (rate(a_seconds_bucket{route!~"/x/.*", s="{b}"}[5m])) '
            '/ on (instance) group_left c_total > 1e3 unless min(d) offset 5m == bool 0')
    assert metric_names(expr) == {"a_seconds_bucket", "c_total", "d"}
    assert metric_names("time() - max(x_seconds)") == {"x_seconds"}


async def exported_names(c: TestClient) -> set[str]:
    """Every sample name the service can export (also of families with no sample yet)."""
    text = await (await c.get("/metrics")).text()
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",), "info": ("_info",),
                "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("", "_count", "_sum", "_created"), "unknown": ("",)}
    names = set()
    for fam in text_string_to_metric_families(text):
        names.update(fam.name + s for s in suffixes.get(fam.type, ("",)))
        names.update(s.name for s in fam.samples)
    return names


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def alert_rules() -> list[dict]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"].removeprefix("label_values(").rsplit(",", 1)[0]
              for v in doc["templating"]["list"] if v["type"] == "query"]
    return exprs


@needs_promtool
def test_promtool_checks_the_scrape_config_and_rules() -> None:
    config = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in rules.stdout


@needs_promtool
def test_alert_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", "alerts_test.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_the_rule_unit_tests_can_fail(tmp_path: Path) -> None:
    """A rule with a changed threshold fails its unit test (the tests bind the rules)."""
    text = (PROMETHEUS / "alerts.yml").read_text()
    changed = text.replace("min by (station) (aqi_station_data_age_seconds) > 7200",
                           "min by (station) (aqi_station_data_age_seconds) > 9000", 1)
    assert changed != text
    (tmp_path / "alerts.yml").write_text(changed)
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "AqiStationSilent" in result.stdout + result.stderr


def test_every_alert_is_documented_and_unit_tested() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    tested = {case["alertname"] for t in tests["tests"] for case in t["alert_rule_test"]
              if case.get("exp_alerts")}
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for r in rules:
        assert {"summary", "description", "runbook"} <= set(r["annotations"]), r["alert"]
        assert r["labels"]["severity"] in {"critical", "warning", "info"}
        assert r["alert"] in tested, f"{r['alert']} has no promtool unit test that fires it"
    assert {"AqiStationSilent", "AqiStationDataLate", "AqiCollectorErrorRatioHigh",
            "AqiHeavyPollution", "AqiServiceDown", "AqiDatabaseUnreachable",
            "AqiPublicationLate"} <= set(names)


def test_the_dashboard_is_grafana_json_with_a_prometheus_datasource_variable() -> None:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["title"] and isinstance(doc["schemaVersion"], int)
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    kinds = {p["type"] for p in doc["panels"]}
    assert kinds <= {"row", "timeseries", "stat", "table", "bargauge", "gauge"}
    for p in doc["panels"]:
        assert set(p["gridPos"]) == {"h", "w", "x", "y"}
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"] and t["expr"].strip()
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"]["uid"] == "${datasource}"
    titles = " ".join(p["title"] for p in doc["panels"])
    for topic in ("AQI", "PM2.5", "Data age", "Polls", "Requests"):
        assert topic in titles


@needs_promtool
def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:expr_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


async def test_expressions_name_only_exported_metrics(client: TestClient) -> None:
    exported = await exported_names(client) | SCRAPE_ONLY
    for source, exprs in (("alerts.yml", [r["expr"] for r in alert_rules()]),
                          ("dashboard.json", dashboard_exprs())):
        used = set()
        for expr in exprs:
            names = metric_names(expr)
            assert names, f"{source}: no metric in {expr!r}"
            used |= names
        unknown = used - exported
        assert not unknown, f"{source} names metrics the service does not export: {unknown}"
    assert {"aqi_station_aqi", "aqi_station_data_age_seconds",
            "aqi_collector_polls_total"} <= used
