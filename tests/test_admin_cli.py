"""``aqi-service admin token create|list|revoke`` as real processes on the test database,
and the tokens they make used over real HTTP."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from disclosure_support import admin_config, bearer

from aqi_service.config import Config
from aqi_service.web.app import create_app

pytestmark = pytest.mark.db
REPO = Path(__file__).resolve().parent.parent


def _cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AQI_DATABASE_URL": dsn, "AQI_CONFIG_DIR": str(REPO / "config")}
    return subprocess.run([sys.executable, "-m", "aqi_service", "admin", "token", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


async def test_token_commands_end_to_end(db_dsn: str, config: Config, clock: Any,
                                         tmp_path: Path) -> None:
    made = _cli(db_dsn, "create", "--name", "desk-1", "--scope", "disclosures:write",
                "--scope", "eia:write")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert re.fullmatch(r"aqi_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    assert "shown only now" in made.stderr
    key_id = token.split("_")[1]

    conn = await asyncpg.connect(db_dsn)
    try:
        row = await conn.fetchrow("SELECT * FROM admin_tokens WHERE key_id = $1", key_id)
        assert row["token_hash"] == hashlib.sha256(token.encode()).digest()
        assert row["scopes"] == ["disclosures:write", "eia:write"]
        # the secret is nowhere in the database
        dump = json.dumps([dict(r) for r in await conn.fetch(
            "SELECT to_jsonb(t) AS t FROM admin_tokens t UNION ALL "
            "SELECT to_jsonb(a) FROM audit_log a")], default=str)
        assert token.split("_", 2)[2] not in dump
        audit = await conn.fetchrow("SELECT actor, action, entity, entity_id FROM audit_log")
        assert tuple(audit) == (f"cli:{getpass.getuser()}", "create", "token", key_id)
    finally:
        await conn.close()

    listed = _cli(db_dsn, "list")
    assert listed.returncode == 0
    assert key_id in listed.stdout and "desk-1" in listed.stdout
    assert token.split("_", 2)[2] not in listed.stdout
    as_json = json.loads(_cli(db_dsn, "list", "--json").stdout)
    assert [(t["name"], t["scopes"]) for t in as_json] == \
        [("desk-1", ["disclosures:write", "eia:write"])]
    assert "token_hash" not in as_json[0]

    dup = _cli(db_dsn, "create", "--name", "desk-1", "--scope", "admin")
    assert dup.returncode == 1 and "revoke it first" in dup.stderr
    bad_scope = _cli(db_dsn, "create", "--name", "x", "--scope", "root")
    assert bad_scope.returncode == 2 and "invalid choice" in bad_scope.stderr

    app = create_app(admin_config(config, tmp_path), scheduler=False, clock=clock)
    async with TestClient(TestServer(app)) as client:
        ok = await client.get("/api/v1/admin/disclosures", headers=bearer(token))
        assert ok.status == 200
        assert (await client.get("/api/v1/admin/audit", headers=bearer(token))).status == 403

        revoked = _cli(db_dsn, "revoke", "desk-1")
        assert revoked.returncode == 0, revoked.stderr
        assert f"key id {key_id}" in revoked.stdout
        gone = await client.get("/api/v1/admin/disclosures", headers=bearer(token))
        assert gone.status == 401

    again = _cli(db_dsn, "revoke", "desk-1")
    assert again.returncode == 1 and "no live token" in again.stderr
    assert _cli(db_dsn, "list").stdout.count("\n") == 1  # only the header is left
    everything = _cli(db_dsn, "list", "--all")
    assert "revoked" in everything.stdout
    # a revoked name can be used again
    assert _cli(db_dsn, "create", "--name", "desk-1", "--scope", "admin").returncode == 0


@pytest.mark.embedded
@pytest.mark.slow
def test_commands_share_the_embedded_server_while_serve_runs() -> None:
    """`admin token create` and `import` on --data-dir while `serve` runs there."""
    import shutil
    import signal
    import tempfile
    import time
    import urllib.error
    import urllib.request

    from process_support import free_port, gone

    data_dir = Path(tempfile.mkdtemp(prefix="aqa-", dir="/tmp"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQI_")}
    env["AQI_CONFIG_DIR"] = str(REPO / "config")
    log = data_dir / "serve.log"
    serve = subprocess.Popen(
        [sys.executable, "-m", "aqi_service", "serve", "--data-dir", str(data_dir), "--port",
         str(port), "--no-scheduler"], cwd=REPO, env=env, stdout=log.open("ab"),
        stderr=subprocess.STDOUT)

    def call(path: str, token: str | None = None) -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers=bearer(token) if token else {})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "aqi_service", *args, "--data-dir",
                               str(data_dir)], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert serve.poll() is None, log.read_text()[-3000:]
            try:
                if call("/readyz") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "serve did not get ready"
            time.sleep(0.5)
        made = run("admin", "token", "create", "--name", "ops", "--scope", "admin")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        assert call("/api/v1/admin/audit", token) == 200
        csv_file = data_dir / "ents.csv"
        csv_file.write_text("credit_code,name_zh,county\n91350100M000100Y43,甲公司,anci\n",
                            encoding="utf-8")
        imported = run("import", "enterprises", str(csv_file))
        assert imported.returncode == 0, imported.stdout + imported.stderr
        assert call("/api/v1/admin/enterprises/91350100M000100Y43", token) == 200
        assert call("/readyz") == 200  # the server survived the commands' exits
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        leaked = not gone(data_dir, 15)
        shutil.rmtree(data_dir, ignore_errors=True)
    assert not leaked
