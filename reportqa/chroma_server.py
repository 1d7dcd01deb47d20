"""Start a Chroma server for `REPORTQA_CHROMA_URL`, with Chroma's own token authentication when
`REPORTQA_CHROMA_TOKEN` is set.

chromadb 1.x's `chroma run` (the Rust server) accepts every request whatever auth settings it is
given (docs/security.md). The Python FastAPI server that ships in the same chromadb wheel
(`chromadb.app:app`) still enforces `TokenAuthenticationServerProvider`, so with a token we run
that one under uvicorn (extra `reportqa[server]`); without one, plain `chroma run` on loopback.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import shutil
import sys
from pathlib import Path

from reportqa.errors import BackendError
from reportqa.settings import Settings

TOKEN_HEADERS = ("Authorization", "X-Chroma-Token")
_SERVER_MODULES = ("fastapi", "uvicorn", "opentelemetry.instrumentation.fastapi")


def server_command(settings: Settings, path: Path, host: str, port: int,
                   insecure: bool = False) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that start the server (the token travels in the environment,
    never in argv, which any local user can read with `ps`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHROMA_")}
    env["ANONYMIZED_TELEMETRY"] = "FALSE"
    if not settings.chroma_token:
        if not (is_loopback(host) or insecure):
            raise BackendError(
                f"refusing to serve Chroma on {host} without authentication: anyone who can reach "
                "it could read or delete every collection. Set REPORTQA_CHROMA_TOKEN (clients "
                "then need the same value), bind to 127.0.0.1, or pass --insecure")
        return [_require_chroma(), "run", "--path", str(path), "--host", host,
                "--port", str(port)], env
    check_token_header(settings.chroma_token_header)
    missing = [m for m in _SERVER_MODULES if not _importable(m)]
    if missing:
        raise BackendError(
            f"token authentication needs Chroma's Python server ({', '.join(missing)} not "
            "installed); run `pip install -e '.[server]'` (./run.sh test installs it)")
    env.update({
        "IS_PERSISTENT": "TRUE",
        "PERSIST_DIRECTORY": str(path),
        "CHROMA_SERVER_AUTHN_PROVIDER":
            "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
        "CHROMA_SERVER_AUTHN_CREDENTIALS": settings.chroma_token,
        "CHROMA_AUTH_TOKEN_TRANSPORT_HEADER": settings.chroma_token_header,
    })
    return [sys.executable, "-m", "uvicorn", "chromadb.app:app", "--host", host,
            "--port", str(port), "--log-level", "warning"], env


def check_token_header(header: str) -> None:
    if header not in TOKEN_HEADERS:
        raise BackendError(f"REPORTQA_CHROMA_TOKEN_HEADER is {header!r}; set it to one of "
                           f"{', '.join(TOKEN_HEADERS)} (the same on the server and the clients)")


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): reachable from this
    machine only. Servers we start refuse anything else without a token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def find_chroma() -> str | None:
    """The `chroma` command of this environment (beside the interpreter), else on PATH."""
    local = Path(sys.executable).parent / "chroma"
    return str(local) if local.exists() else shutil.which("chroma")


def _require_chroma() -> str:
    found = find_chroma()
    if not found:
        raise BackendError("the `chroma` command is not installed; `pip install chromadb` "
                           "(a dependency of reportqa) provides it")
    return found


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
