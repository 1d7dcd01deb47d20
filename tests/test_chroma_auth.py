"""Chroma token authentication, end to end, with Chroma's own auth provider.

`reportqa chroma-server` with REPORTQA_CHROMA_TOKEN runs the FastAPI server shipped in the
chromadb wheel with `TokenAuthenticationServerProvider` (the Rust `chroma run` ignores auth
settings: tests/test_security.py pins that). Clients send the token through Chroma's
`TokenAuthClientProvider`, in the `Authorization: Bearer` or the `X-Chroma-Token` header.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import clean_env, cli_command, stop_process, wait_for_heartbeat

from reportqa.chroma_server import server_command
from reportqa.errors import BackendError
from reportqa.settings import Settings

TOKEN = "t0ken-for-tests-only"


def test_no_token_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="REPORTQA_CHROMA_TOKEN"):
        server_command(Settings(chroma_token=None), tmp_path, "0.0.0.0", 8000)
    argv, _env = server_command(Settings(chroma_token=None), tmp_path, "0.0.0.0", 8000,
                                insecure=True)
    assert argv[1:3] == ["run", "--path"]
    for host in ("127.0.0.1", "localhost", "::1"):
        assert server_command(Settings(chroma_token=None), tmp_path, host, 1)[0][1] == "run"


def test_token_goes_to_the_python_server_in_its_environment_not_argv(tmp_path: Path) -> None:
    argv, env = server_command(Settings(chroma_token=TOKEN), tmp_path, "0.0.0.0", 8123)
    assert "chromadb.app:app" in argv and not any(TOKEN in a for a in argv)
    assert env["CHROMA_SERVER_AUTHN_CREDENTIALS"] == TOKEN
    assert env["CHROMA_SERVER_AUTHN_PROVIDER"].endswith("TokenAuthenticationServerProvider")
    assert env["PERSIST_DIRECTORY"] == str(tmp_path)
    with pytest.raises(BackendError, match="X-Chroma-Token"):
        server_command(Settings(chroma_token=TOKEN, chroma_token_header="Cookie"), tmp_path,
                       "127.0.0.1", 8123)


@pytest.fixture(params=["Authorization", "X-Chroma-Token"])
def auth_server(request: pytest.FixtureRequest, tmp_path: Path,
                free_port: Callable[[], int]) -> Iterator[tuple[str, str]]:
    header = request.param
    port = free_port()
    env = clean_env(REPORTQA_CHROMA_TOKEN=TOKEN, REPORTQA_CHROMA_TOKEN_HEADER=header)
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cli_command("chroma-server", "--path", str(tmp_path / "data"),
                                        "--port", str(port)),
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_heartbeat(proc, url, tmp_path / "server.log")
        yield url, header
    finally:
        stop_process(proc)
        log.close()


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command(*args), env=clean_env(**env), capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.mark.integration
def test_chroma_token_auth_end_to_end(auth_server: tuple[str, str], tmp_path: Path,
                                      corpus_dir: Path) -> None:
    url, header = auth_server
    # The server itself enforces the token: a bare request is refused.
    bare = urllib.request.Request(
        f"{url}/api/v2/tenants/default_tenant/databases/default_database/collections")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bare, timeout=10)
    assert refused.value.code in (401, 403)

    good = {"REPORTQA_CHROMA_URL": url, "REPORTQA_CHROMA_TOKEN": TOKEN,
            "REPORTQA_CHROMA_TOKEN_HEADER": header}
    index = str(tmp_path / "idx")
    ok = _cli("ingest", str(corpus_dir / "darlington__safeguarding.txt"), "--json",
              "--index", index, **good)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["added"] == ["darlington-safeguarding"]

    for name, token in (("none", None), ("wrong", "not-the-token")):
        env = {"REPORTQA_CHROMA_URL": url, "REPORTQA_CHROMA_TOKEN_HEADER": header}
        if token:
            env["REPORTQA_CHROMA_TOKEN"] = token
        # Into the same index: refused before anything is embedded or written.
        bad = _cli("ingest", str(corpus_dir / "wirral__about.txt"), "--json", "--index", index,
                   **env)
        assert bad.returncode == 1, (name, bad.stdout, bad.stderr)
        lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, bad.stderr)
        assert "REPORTQA_CHROMA_TOKEN" in lines[0] and url in lines[0]
        assert TOKEN not in bad.stderr + bad.stdout

    listed = _cli("reports", "--json", "--index", index, **good)
    assert [r["id"] for r in json.loads(listed.stdout)] == ["darlington-safeguarding"]
    ask = _cli("ask", "What score did Darlington get for safeguarding?", "--json",
               "--index", index, **good)
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert not answer["abstained"] and "3" in answer["answer"], answer
