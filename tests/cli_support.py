"""Running ``aqi-service aqi`` from tests: in-process (the CLI's ``main`` with stdin, stdout
and stderr replaced by buffers), or as a real process where the process itself matters."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aqi_service.cli import main

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def results(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


def run_aqi(*args: str, stdin: str | bytes = "", env: dict | None = None,
            timeout: float = 120, real: bool = False) -> Run:
    """``aqi-service aqi ARGS`` on ``stdin``: in-process, or a real process if ``real`` or
    ``env`` is given (UTF-8 I/O regardless of locale)."""
    if not real and env is None:
        return run_in_process(args, stdin)
    return run_process(*args, stdin=stdin, env=env, timeout=timeout)


def run_in_process(args: tuple[str, ...], stdin: str | bytes) -> Run:
    """Call the CLI's ``main`` with the standard streams replaced by buffers."""
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    fake_in = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    out_bytes = io.BytesIO()
    fake_out = io.TextIOWrapper(out_bytes, encoding="utf-8", newline="")
    fake_err = io.StringIO()
    saved = sys.stdin, sys.stdout
    sys.stdin, sys.stdout = fake_in, fake_out
    try:
        with contextlib.redirect_stderr(fake_err):
            try:
                code = main(["aqi", *args])
            except SystemExit as exc:   # argparse: bad arguments
                code = exc.code if isinstance(exc.code, int) else 1
            fake_out.flush()
    finally:
        sys.stdin, sys.stdout = saved
    return Run(code, out_bytes.getvalue().decode("utf-8"), fake_err.getvalue())


def run_process(*args: str, stdin: str | bytes = "", env: dict | None = None,
                timeout: float = 120) -> Run:
    """Run ``python -m aqi_service aqi ARGS`` with ``stdin``; UTF-8 I/O regardless of locale."""
    child_env = {**os.environ, "PYTHONUTF8": "1"}
    child_env.pop("PYTHONIOENCODING", None)
    child_env.update(env or {})
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-m", "aqi_service", "aqi", *args],
        input=data, capture_output=True, timeout=timeout, env=child_env, cwd=REPO,
    )
    return Run(proc.returncode, proc.stdout.decode("utf-8"),
               proc.stderr.decode("utf-8", errors="replace"))


def jsonl(*items: object) -> str:
    """JSON Lines from objects (dumped) or raw strings (kept as written)."""
    return "".join((it if isinstance(it, str) else json.dumps(it)) + "\n" for it in items)
