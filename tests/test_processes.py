"""`aqi-service serve` as a real process on its embedded PostgreSQL.

From an empty data folder the default command must list 11 stations with AQI values
within two minutes; other commands share its database while it runs; SIGTERM stops the
embedded server with it. Killed processes and postmasters: test_embedded_supervisor.py.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from process_support import REPO, Service, free_port, get_json, postgres_of, run_cli, scratch_folder

pytestmark = pytest.mark.embedded


@pytest.fixture
def data_dir() -> Iterator[Path]:
    yield from scratch_folder()


def test_serve_from_empty_then_share_then_stop(data_dir: Path) -> None:
    svc = Service(data_dir, free_port(), data_dir / "serve.log")
    try:
        elapsed = svc.wait_ready(120)
        print(f"first /api/v1/now with 11 AQIs after {elapsed:.1f} s")
        assert "back-filling 30 days" in svc.log.read_text()
        assert len(postgres_of(data_dir)) >= 1

        migrate = run_cli("migrate", "--data-dir", str(data_dir))
        assert migrate.returncode == 0, migrate.stderr
        assert "database at migration" in migrate.stdout
        collect = run_cli("collect", "--once", "--data-dir", str(data_dir))
        assert collect.returncode == 0, collect.stderr
        summary = json.loads(collect.stdout)
        assert summary["status"] == "ok" and summary["ok"] == 11
        assert get_json(svc.url("/healthz"))["status"] == "ok"
        assert get_json(svc.url("/readyz"))["status"] == "ready"
    finally:
        code = svc.stop(signal.SIGTERM)
    assert code == 0
    deadline = time.monotonic() + 15
    while postgres_of(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert postgres_of(data_dir) == [], "embedded PostgreSQL still running after SIGTERM"


def test_check_config_explains_every_error(tmp_path: Path) -> None:
    shutil.copy(REPO / "config" / "stations.toml", tmp_path / "stations.toml")
    (tmp_path / "service.toml").write_text(
        '[http]\nport = "eighty"\n[collection]\nminute = 75\nfrobnicate = 1\n')
    bad = run_cli("check-config", "--config-dir", str(tmp_path))
    assert bad.returncode == 2
    for text in ("http.port", "collection.minute", "collection.frobnicate"):
        assert text in bad.stderr
    good = run_cli("check-config")
    assert good.returncode == 0
    assert json.loads(good.stdout)["stations"][0]["code"] == "LF01"
