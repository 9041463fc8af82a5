"""Schemathesis, every check, against the real service: no server error, nothing off the document.

The service runs as its own process (``aqi-service serve``) on a fresh database of the
tests' PostgreSQL, with the sample disclosure data and a short back-fill, so the public API
answers real data; an admin token made with the CLI lets the admin API be exercised too.
Schemathesis (its CLI, in a process of its own: it cannot disturb the test's event loop,
and the command is the one an operator runs) generates valid and invalid requests from
``/api/v1/openapi.json`` and checks every answer: no 5xx, status codes, content types,
headers and bodies as documented, valid requests accepted, invalid ones refused, no
operation answering without its token. The run is bounded (examples per operation, one
worker, a fixed seed: the same cases every time) and takes about two minutes on 2 CPUs.

The cross-parameter rules a document cannot state are in ``schemathesis/hooks.py``, the
one exception (admin bodies, whose validity depends on stored data) in
``schemathesis/config.toml``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from process_support import free_port, get_json

pytestmark = [pytest.mark.slow, pytest.mark.db]

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "schemathesis"
MAX_EXAMPLES = 25
"""Generated cases per operation and phase (about 3,000 requests in all)."""
SEED = 20261207


def _env(db_dsn: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQI_")}
    env.update({
        "AQI_CONFIG_DIR": str(REPO / "config"),
        "AQI_DATABASE_URL": db_dsn,
        "AQI_DISCLOSURE_SEED_SAMPLE_DATA": "true",
        "AQI_DISCLOSURE_ATTACHMENT_DIR": str(tmp / "attachments"),
        "AQI_COLLECTION_INITIAL_BACKFILL_DAYS": "2",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), str(HERE),
                                                  os.environ.get("PYTHONPATH")) if p),
    })
    return env


@pytest.fixture
def service(db_dsn: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The base URL of a running service on the test's database, and its environment."""
    port = free_port()
    env = _env(db_dsn, tmp_path)
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aqi_service", "serve", "--data-dir", str(tmp_path / "var"),
         "--port", str(port)],
        cwd=REPO, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                now = get_json(f"{url}/api/v1/now")
                if all(isinstance(s.get("aqi"), int) for s in now["stations"]):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url, env
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _admin_token(env: dict[str, str]) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "aqi_service", "admin", "token", "create", "--name",
         "schemathesis", "--scope", "admin"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True)
    token = made.stdout.split()[0]
    assert token.startswith("aqi_"), made.stdout
    return token


def test_every_check_passes_on_the_public_and_admin_api(
        service: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    url, env = service
    token = _admin_token(env)
    junit = tmp_path / "junit.xml"
    command = [
        cli, "--config-file", str(HERE / "config.toml"), "run", "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--seed", str(SEED),
        "--header", f"Authorization: Bearer {token}", "--url", url,
        "--report", "junit", "--report-junit-path", str(junit),
        f"{url}/api/v1/openapi.json"]
    started = time.monotonic()
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=400)
    took = time.monotonic() - started
    output = run.stdout + run.stderr
    print(output[-6000:])
    print(f"schemathesis took {took:.0f} s")
    suites = ET.parse(junit).getroot()
    cases = suites.findall(".//testcase")
    failed = [c.get("name") for c in cases
              if c.find("failure") is not None or c.find("error") is not None]
    assert len(cases) >= 40, "every operation of the document was tested"
    assert failed == [], output[-6000:]
    assert run.returncode == 0, output[-6000:]
    assert "server error" not in output.lower()
