"""``aqi-service`` as real processes: a ``serve`` process, one-off commands, free ports, the
embedded PostgreSQL processes of a data folder, and short scratch folders."""

from __future__ import annotations

import contextlib
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

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback TCP port free just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_of(data_dir: Path) -> list[psutil.Process]:
    """Running postgres processes serving ``data_dir``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["name"] == "postgres" and f"{data_dir}/pg" in " ".join(
                    proc.info["cmdline"] or []):
                found.append(proc)
    return found


def get_json(url: str, timeout: float = 5.0) -> dict:
    """GET ``url`` and parse its JSON body."""
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


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m aqi_service ARGS`` with the shipped configuration, no ``AQI_`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQI_")}
    env["AQI_CONFIG_DIR"] = str(REPO / "config")
    return subprocess.run([sys.executable, "-m", "aqi_service", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def gone(data_dir: Path, timeout: float) -> bool:
    """Whether every postgres process of ``data_dir`` exits within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while postgres_of(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not postgres_of(data_dir)


def ignored_signals(pid: int) -> set[int]:
    """The signals process ``pid`` ignores (the ``SigIgn`` mask of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16)
            return {n for n in range(1, 65) if mask >> (n - 1) & 1}
    raise AssertionError(f"no SigIgn line for process {pid}")
