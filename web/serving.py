"""Run the web app under gunicorn (threaded workers), loading it by name so the core never imports Flask."""
from __future__ import annotations

import os
import sys

__all__ = ["run_gunicorn", "gunicorn_argv"]

# Each worker answers one request of each kind before it takes any (web.warm_up).
APP = "web:create_app(warm=True)"


def gunicorn_argv(host: str, port: int, *, workers: int = 2, threads: int = 4) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--worker-class", "gthread",
        "--workers", str(workers),
        "--threads", str(threads),
        "--bind", f"{host}:{port}",
        "--graceful-timeout", "20",
        "--timeout", "60",
        "--access-logfile", "-",
        "--access-logformat",
        '{"time":"%(t)s","remote":"%(h)s","method":"%(m)s","path":"%(U)s","query":"%(q)s",'
        '"status":%(s)s,"bytes":"%(B)s","ms":%(M)s,"request_id":"%({x-request-id}o)s"}',
        APP,
    ]


def run_gunicorn(host: str, port: int, *, workers: int = 2, threads: int = 4) -> int:
    """Replace this process with gunicorn, so signals (graceful shutdown on SIGTERM) reach it directly."""
    argv = gunicorn_argv(host, port, workers=workers, threads=threads)
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - execv does not return
