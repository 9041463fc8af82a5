"""`aqi-service serve` as a real process on its embedded PostgreSQL.

From an empty data folder the default command must list 11 stations with AQI values
within two minutes; other commands share its database while it runs; SIGTERM stops the
embedded server with it. Killed processes and postmasters: test_embedded_supervisor.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.embedded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_of(data_dir: Path) -> list[psutil.Process]:
    """Running postgres processes serving ``data_dir``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres" and f"{data_dir}/pg" in cmd:
            found.append(proc)
    return found


def get_json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


class Service:
    """One `aqi-service serve` process."""

    def __init__(self, data_dir: Path, port: int, log: Path,
                 settings: dict[str, str] | None = None) -> None:
        self.port = port
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("AQI_")}
        env["AQI_CONFIG_DIR"] = str(REPO / "config")
        env.update(settings or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aqi_service", "serve", "--data-dir", str(data_dir),
             "--port", str(port)],
            cwd=REPO, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = 120.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.log.read_text()[-3000:]}")
            try:
                now = get_json(self.url("/api/v1/now"))
                if len(now["stations"]) == 11 and all(
                        isinstance(s.get("aqi"), int) for s in now["stations"]):
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not ready in {timeout} s: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def scratch_folder() -> Iterator[Path]:
    """A short data folder in /tmp; any server left on it is killed, then it is removed."""
    folder = Path(tempfile.mkdtemp(prefix="aqis-", dir="/tmp"))
    try:
        yield folder
    finally:
        for proc in postgres_of(folder):
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    yield from scratch_folder()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQI_")}
    env["AQI_CONFIG_DIR"] = str(REPO / "config")
    return subprocess.run([sys.executable, "-m", "aqi_service", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


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
