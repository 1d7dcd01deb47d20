"""The HTTP API (ui/api.py, `reportqa serve`).

In-process, with FastAPI's TestClient over temp indexes of the bundled CQC pages built with the
hash embedder: /ask returns what answer().to_json() gives (streamed or not), the listings are
the CLI's --json rows, every bad request gets a 4xx with a clear message and leaves the index as
it was, and the token guards everything but /health. One integration test runs `reportqa serve`
as a real process and compares /ask with `reportqa ask --json`.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import clean_env, cli_command, hash_settings_for, stop_process
from fastapi.testclient import TestClient
from test_llm import GOOD, Q_CARERS, FakeLLM, Reply, citing, fake_llm  # noqa: F401  (fixture)

from rag.answer import answer
from rag.engine import Engine
from rag.retrieve import Filters
from reportqa.errors import ReportQAError
from reportqa.settings import Settings
from ui.api import check_bind, create_app

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-token-0123456789"
QUESTIONS = [  # a table answer, retrieved answers, a filter, an abstention
    ("What score did Darlington get for safeguarding?", {}),
    ("What percentage of carers in Stockton-on-Tees said they were accessing a support group?",
     {}),
    ("How did the council work with partners on safeguarding?", {"council": ["Wirral"]}),
    ("What do inspectors say about waiting lists?", {"statement": ["assessing needs"]}),
    ("What is the capital of France?", {}),
]


def good_text(tag: str) -> str:
    """A small valid report with its own council name (so never a duplicate)."""
    return (f"{tag} Borough Council: local authority assessment\n\n"
            "Key findings for this quality statement\n"
            f"{tag} Borough Council supported unpaid carers with a respite service.\n"
            f"In the latest survey, 61.37% of carers in {tag} said they could get advice "
            "quickly.\n")


def without_timings(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "timings_ms"}


@pytest.fixture(scope="module")
def api_index(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Settings:
    """The CQC pages in a temp index for this module's read-only and bad-input tests."""
    from ingest.pipeline import ingest

    settings = hash_settings_for(tmp_path_factory.mktemp("api") / "index")
    assert not ingest([corpus_dir], settings).failed
    return settings


@pytest.fixture(scope="module")
def client(api_index: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_index)) as c:
        yield c


def state(settings: Settings) -> tuple[dict[str, str], frozenset[str], list[str]]:
    """What must not change after a refused request: reports, chunks, files under uploads/."""
    from conftest import assert_consistent, snapshot

    snap = snapshot(settings)
    assert_consistent(snap)
    uploads = Path(settings.index_dir) / "uploads"
    files = sorted(str(p) for p in uploads.rglob("*") if p.is_file()) if uploads.exists() else []
    return snap.reports, snap.chunk_ids, files


# --- /ask -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("question", "extra"), QUESTIONS)
def test_ask_returns_answer_to_json(client: TestClient, api_index: Settings, question: str,
                                    extra: dict[str, Any]) -> None:
    from rag.query import resolve_statement

    r = client.post("/ask", json={"question": question, **extra})
    assert r.status_code == 200, r.text
    filters = Filters(councils=tuple(extra.get("council", ())),
                      statements=tuple(resolve_statement(s) for s in extra.get("statement", ())))
    expected = answer(question, api_index, filters, engine=Engine.load(api_index)).to_json()
    body = r.json()
    # timings_ms is wall-clock time: the one field that differs between two runs.
    assert set(body["timings_ms"]) == set(expected["timings_ms"]) == {"retrieve", "answer",
                                                                      "total"}
    assert without_timings(body) == without_timings(expected)


def test_ask_accepts_history_and_k(client: TestClient, api_index: Settings) -> None:
    q = QUESTIONS[1][0]
    r = client.post("/ask", json={"question": q, "k": 3, "answerer": "extractive",
                                  "history": [{"question": "Hello?", "answer": "Hi."},
                                              {"question": "And Bury?"}]})
    assert r.status_code == 200, r.text
    expected = answer(q, api_index, engine=Engine.load(api_index), k=3).to_json()
    assert without_timings(r.json()) == without_timings(expected)


def test_a_follow_up_is_read_against_the_history_sent_back(client: TestClient,
                                                           api_index: Settings) -> None:
    first = client.post("/ask", json={"question": "What score did Darlington get for "
                                                  "safeguarding?"}).json()
    r = client.post("/ask", json={"question": "and Staffordshire?", "history": [first]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["read_as"] == "What score did Staffordshire get for safeguarding?"
    alone = answer(body["read_as"], api_index, engine=Engine.load(api_index)).to_json()
    assert body["citations"] == alone["citations"] and body["answer"] == alone["answer"]
    # Only report ids and offsets are taken from the client; a bad offset is a 422.
    bad = {**first, "citations": [{**first["citations"][0], "start": -1}]}
    assert client.post("/ask", json={"question": "which page?", "history": [bad]}).status_code == 422


def test_closest_passages_are_marked_see_also_and_read_back_as_such(client: TestClient) -> None:
    first = client.post("/ask", json={"question": "How many dragons live in Darlington?"}).json()
    assert first["abstained"] and first["citations"]
    assert all(c["see_also"] for c in first["citations"])  # shown beside "don't say", not quoted
    # A client that keeps each citation as it came but not the answer's other fields: the
    # passages are still the closest ones shown, not quotes of an answer.
    turn = {"question": first["question"], "citations": first["citations"]}
    r = client.post("/ask", json={"question": "which page is that on?", "history": [turn]})
    assert r.status_code == 200, r.text
    assert r.json()["answer"].startswith("The closest passages shown:")


def test_stream_with_the_extractive_answerer_sends_only_the_final_line(
        client: TestClient) -> None:
    q = QUESTIONS[0][0]
    r = client.post("/ask", json={"question": q, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert len(lines) == 1 and set(lines[0]) == {"answer"}
    plain = client.post("/ask", json={"question": q}).json()
    assert without_timings(lines[0]["answer"]) == without_timings(plain)


def test_stream_with_the_llm_sends_deltas_then_the_verified_answer(
        api_index: Settings, fake_llm: FakeLLM) -> None:  # noqa: F811
    settings = replace(api_index, llm_url=fake_llm.url, llm_model="fake", llm_timeout_s=10.0)
    # The draft cites a figure the passage does not hold; the final answer drops it.
    fake_llm.say(Reply(citing(GOOD.replace("25.19%", "52.19%"))))
    with TestClient(create_app(settings)) as c:
        r = c.post("/ask", json={"question": Q_CARERS, "answerer": "llm", "stream": True})
    assert r.status_code == 200, r.text
    lines = [json.loads(x) for x in r.text.splitlines()]
    deltas, final = lines[:-1], lines[-1]
    assert len(deltas) > 3 and all(set(d) == {"delta"} for d in deltas)
    assert "52.19%" in "".join(d["delta"] for d in deltas)
    assert set(final) == {"answer"} and final["answer"]["citations"]
    assert "52.19" not in final["answer"]["answer"] and "32.98%" in final["answer"]["answer"]
    assert fake_llm.requests[0]["stream"] is True


def test_stream_error_before_any_text_keeps_its_status(client: TestClient) -> None:
    r = client.post("/ask", json={"question": "  ", "stream": True})
    assert r.status_code == 400 and "empty" in r.json()["error"]


# --- listings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["reports", "scores", "judgements"])
def test_listings_are_the_cli_json_rows(client: TestClient, api_index: Settings, name: str,
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.cli import main

    monkeypatch.setenv("REPORTQA_EMBEDDER", "hash")
    capsys.readouterr()
    assert main([name, "--json", "--index", str(api_index.index_dir)]) == 0
    cli_rows = json.loads(capsys.readouterr().out)
    r = client.get(f"/{name}")
    assert r.status_code == 200
    assert r.json() == cli_rows and cli_rows


@pytest.mark.parametrize("name", ["scores", "judgements"])
def test_a_listing_asked_for_one_council_is_that_councils_rows(
        client: TestClient, api_index: Settings, name: str,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.cli import main

    every = client.get(f"/{name}").json()
    darlington = client.get(f"/{name}", params={"council": "darlington"}).json()
    assert darlington and len(darlington) < len(every)
    assert {r["council"] for r in darlington} == {"Darlington Borough Council"}
    assert darlington == [r for r in every if r["council"] == "Darlington Borough Council"]
    monkeypatch.setenv("REPORTQA_EMBEDDER", "hash")
    capsys.readouterr()
    assert main([name, "--json", "--council", "Darlington", "--index",
                 str(api_index.index_dir)]) == 0
    assert json.loads(capsys.readouterr().out) == darlington
    unknown = client.get(f"/{name}", params={"council": "Atlantis"})
    assert unknown.status_code == 400 and "no indexed council matches 'Atlantis'" in \
        unknown.json()["error"]


def test_health_and_docs(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    schema = client.get("/openapi.json").json()
    assert {"/ask", "/reports", "/judgements", "/scores", "/health"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


def test_no_index_is_503_with_the_cli_message(tmp_path: Path) -> None:
    with TestClient(create_app(hash_settings_for(tmp_path / "missing"))) as c:
        for r in (c.post("/ask", json={"question": "What score did Bury get?"}),
                  c.get("/reports"), c.get("/scores")):
            assert r.status_code == 503 and "reportqa ingest" in r.json()["error"]
        # An upload that indexes nothing still says why per file, not that there is no index.
        r = c.post("/reports", files=[("files", ("notes.exe", b"MZ", "application/octet-stream"))])
        assert r.status_code == 400 and "unsupported file type '.exe'" in r.json()["error"], r.text


# --- bad input: 4xx, a clear message, the index unchanged -------------------------------------

THIRTY_MB = (good_text("Bigtown").encode() * 200_000)[: 30 * 1048576]  # a valid report, too big
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
BAD_ASK: list[tuple[str, Any, int, str]] = [
    ("empty question", {"question": ""}, 400, "the question is empty"),
    ("blank question", {"question": " \n\t "}, 400, "the question is empty"),
    ("100 kB question", {"question": "word " * 20_000}, 400, "keep it under 1,000"),
    ("no words", {"question": "?? 12 !!"}, 400, "no English words"),
    # half of a UTF-16 pair: no reply could carry it back (it failed as a 500, streamed as an
    # empty 200)
    # (sent as JSON text: an HTTP client cannot encode the character itself)
    ("lone surrogate", '{"question": "What score did Darlington get\\ud800?"}', 400,
     "invalid character at position 30"),
    ("lone surrogate, streamed", '{"question": "\\udfffWhat about Bury?", "stream": true}',
     400, "invalid character at position 1"),
    ("lone surrogate in a filter", '{"question": "What about carers?", "council": ["Bu\\ud800ry"]}',
     422, "council has an invalid character"),
    ("lone surrogate in history", '{"question": "why?", "history": [{"question": "Bury\\udc00?"}]}',
     422, "history.0 has an invalid character"),
    ("question a number", {"question": 42}, 422, "question: Input should be a valid string"),
    ("question missing", {"k": 3}, 422, "question: Field required"),
    ("k a string", {"question": "Bury?", "k": "many"}, 422, "k: Input should be a valid integer"),
    ("k zero", {"question": "Bury?", "k": 0}, 422, "k: Input should be greater than or equal"),
    ("council a string", {"question": "Bury?", "council": "Bury"}, 422,
     "council: Input should be a valid list"),
    ("stream a string", {"question": "Bury?", "stream": "yes"}, 422, "stream: Input should be"),
    ("unknown answerer", {"question": "Bury?", "answerer": "gpt"}, 422, "answerer:"),
    ("unknown field", {"question": "Bury?", "questoin": "x"}, 422, "questoin: Extra inputs"),
    ("history of strings", {"question": "Bury?", "history": ["hi"]}, 422, "history.0:"),
    ("array body", [1, 2], 422, "body: Input should be a valid dictionary"),
    ("unknown statement", {"question": "Bury?", "statement": ["bogus"]}, 400,
     "unknown quality statement 'bogus'"),
    ("unknown council", {"question": "What about carers?", "council": ["Atlantis"]}, 400,
     "no indexed council matches 'Atlantis'"),
]


@pytest.mark.parametrize(("case", "body", "status", "message"), BAD_ASK,
                         ids=[c[0] for c in BAD_ASK])
def test_bad_ask_is_a_clear_4xx(client: TestClient, api_index: Settings, case: str, body: Any,
                                status: int, message: str) -> None:
    before = state(api_index)
    r = (client.post("/ask", content=body, headers={"content-type": "application/json"})
         if isinstance(body, str) else client.post("/ask", json=body))
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert state(api_index) == before


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_json_sent_without_its_content_type_is_told_so(client: TestClient,
                                                       content_type: str | None) -> None:
    # `curl -d '{"question": ...}'` sends a form content type.
    headers = {"content-type": content_type} if content_type else {}
    r = client.post("/ask", content='{"question": "What score did Bury get?"}', headers=headers)
    assert r.status_code == 422
    assert "Content-Type: application/json" in r.json()["error"], r.text


def _chunked(data: bytes, piece: int = 1 << 20) -> Iterator[bytes]:
    """A body with no Content-Length (chunked transfer): the limit must hold while reading."""
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "reportqa-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n").encode()
    return body + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


BAD_RAW: list[tuple[str, Callable[[TestClient], Any], int, str]] = [
    ("body not JSON", lambda c: c.post("/ask", content=b"{question: hi",
                                       headers={"Content-Type": "application/json"}),
     422, "the body is not valid JSON"),
    ("2 MB JSON body", lambda c: c.post("/ask", json={"question": "x" * (2 << 20)}),
     413, "over the 1 MB limit"),
    ("2 MB chunked JSON body",
     lambda c: c.post("/ask", content=_chunked(json.dumps({"question": "x" * (2 << 20)})
                                               .encode()),
                      headers={"Content-Type": "application/json"}),
     413, "over the 1 MB limit"),
    ("30 MB upload", lambda c: c.post("/reports", files=[
        ("files", ("big.txt", THIRTY_MB, "text/plain"))]),
     413, "30.0 MB, over the 20 MB upload limit"),
    ("30 MB chunked upload", lambda c: c.post("/reports", content=_chunked(
        _multipart("big.txt", b"x" * (30 * 1048576))[0]),
        headers={"Content-Type": _multipart("x", b"")[1]}),
     413, "over the 20 MB upload limit"),
    (".exe upload", lambda c: c.post("/reports", files=[
        ("files", ("setup.exe", b"MZ\x90\x00\x03" + bytes(500), "application/octet-stream"))]),
     400, "setup.exe: unsupported file type '.exe'; upload one of: .txt"),
    ("PNG renamed .pdf", lambda c: c.post("/reports", files=[
        ("files", ("scan.pdf", PNG, "application/pdf"))]),
     400, "scan.pdf: has a .pdf extension but is not a PDF"),
    ("empty file", lambda c: c.post("/reports", files=[("files", ("blank.txt", b"  \n",
                                                                  "text/plain"))]),
     400, "blank.txt: the file is empty"),
    ("no usable name", lambda c: c.post("/reports", files=[("files", ("..", b"Some text",
                                                                      "text/plain"))]),
     400, "the file has no usable name"),
    ("no files field", lambda c: c.post("/reports", data={"file": "x"}),
     422, "files: Field required"),
    ("bad Content-Length", lambda c: c.post("/ask", content=b"{}",
                                            headers={"Content-Length": "lots"}),
     400, "Content-Length"),
]


@pytest.mark.parametrize(("case", "send", "status", "message"), BAD_RAW,
                         ids=[c[0] for c in BAD_RAW])
def test_bad_request_is_a_clear_4xx_and_nothing_changes(
        client: TestClient, api_index: Settings, case: str, send: Callable[[TestClient], Any],
        status: int, message: str) -> None:
    before = state(api_index)
    r = send(client)
    assert r.status_code == status, r.text
    assert message in r.json()["error"], r.json()
    assert state(api_index) == before
    assert len(client.get("/reports").json()) == len(before[0]) == 36


# --- uploads that work ------------------------------------------------------------------------

def test_upload_indexes_sanitised_files_and_reports_each_failure(
        ingested_hash_index: Settings) -> None:
    settings = ingested_hash_index
    before = state(settings)[0]
    with TestClient(create_app(settings)) as c:
        r = c.post("/reports", files=[
            ("files", ("../../etc/Eastmoor report.txt", good_text("Eastmoor").encode(),
                       "text/plain")),
            ("files", ("notes.exe", b"MZ", "application/octet-stream"))])
        assert r.status_code == 207, r.text  # one added, one refused
        added, refused = r.json()["files"]
        assert added["status"] == "added" and added["report_ids"]
        saved = Path(added["saved_as"])  # the app's own name and place for an upload
        assert saved.name == "Eastmoor_report.txt"
        assert saved.parent.parent == (Path(settings.index_dir) / "uploads").resolve()
        assert refused["status"] == "failed" and "notes.exe" in r.json()["error"]
        after = {row["id"] for row in c.get("/reports").json()}
        assert after == set(before) | set(added["report_ids"])  # nothing else went or came
        a = c.post("/ask", json={"question": "What percentage of carers in Eastmoor said they "
                                             "could get advice quickly?"}).json()
        assert "61.37%" in a["answer"]
        assert a["citations"][0]["report_id"] in added["report_ids"]
        again = c.post("/reports", files=[("files", ("copy.txt", good_text("Eastmoor").encode(),
                                                     "text/plain"))])
        assert again.status_code == 200 and again.json()["files"][0]["status"] == "unchanged"
        # Its text is indexed from the first upload: the copy is not kept on disk.
        assert again.json()["files"][0]["saved_as"] is None
        assert [p.name for p in (Path(settings.index_dir) / "uploads").rglob("*.txt")] == [
            "Eastmoor_report.txt"]
        # An edited copy (a corrected figure) stands in for the page it edits, and says so.
        fixed = good_text("Eastmoor").replace("61.37%", "62.04%").encode()
        up = c.post("/reports", files=[("files", ("Eastmoor report.txt", fixed, "text/plain"))])
        [res] = up.json()["files"]
        assert res["status"] == "added" and "Note: " in res["message"], res
        assert f"stands in for {added['report_ids'][0]}" in res["message"]
        a = c.post("/ask", json={"question": "What percentage of carers in Eastmoor said they "
                                             "could get advice quickly?"}).json()
        assert "62.04%" in a["answer"]
        assert "no inspection report was recognised" not in res["message"]
        # A file with no report in it is indexed (it may be one we cannot name), and said so.
        odd = c.post("/reports", files=[("files", ("notes.txt", b"blorp zanth quibble 42 "
                                                   b"frobnicate the wizzle. Nothing here.",
                                                   "text/plain"))]).json()["files"][0]
        assert odd["status"] == "added", odd
        assert (f"no inspection report was recognised in {odd['report_ids'][0]}"
                in odd["message"] and "reportqa remove" in odd["message"]), odd


def test_ingests_run_one_at_a_time_while_answers_go_on(
        ingested_hash_index: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.api

    real = ui.api.save_and_ingest
    inside = {"now": 0, "most": 0}
    guard = threading.Lock()

    def counting(*args: Any, **kwargs: Any) -> Any:
        with guard:
            inside["now"] += 1
            inside["most"] = max(inside["most"], inside["now"])
        try:
            time.sleep(0.2)  # long enough for the other upload to try to get in
            return real(*args, **kwargs)
        finally:
            with guard:
                inside["now"] -= 1

    monkeypatch.setattr(ui.api, "save_and_ingest", counting)
    statuses: list[int] = []
    with TestClient(create_app(ingested_hash_index)) as c:
        def upload(tag: str) -> None:
            statuses.append(c.post("/reports", files=[
                ("files", (f"{tag}.txt", good_text(tag).encode(), "text/plain"))]).status_code)

        def ask() -> None:
            for _ in range(3):
                statuses.append(c.post("/ask", json={"question": QUESTIONS[1][0]}).status_code)

        threads = [threading.Thread(target=upload, args=(t,)) for t in ("Northmoor", "Southmoor")]
        threads += [threading.Thread(target=ask) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        names = {row["council"] for row in c.get("/reports").json()}
    assert statuses == [200] * 8
    assert inside["most"] == 1
    assert {"Northmoor Borough Council", "Southmoor Borough Council"} <= names


# --- token ------------------------------------------------------------------------------------

def test_token_guards_every_endpoint_but_health(ingested_hash_index: Settings) -> None:
    settings = ingested_hash_index
    upload = [("files", ("Westmoor.txt", good_text("Westmoor").encode(), "text/plain"))]
    calls: list[Callable[[TestClient, dict[str, str]], Any]] = [
        lambda c, h: c.post("/ask", json={"question": QUESTIONS[0][0]}, headers=h),
        lambda c, h: c.post("/ask", json={"question": ""}, headers=h),  # 401 before 400
        lambda c, h: c.get("/reports", headers=h),
        lambda c, h: c.post("/reports", files=upload, headers=h),
        lambda c, h: c.get("/judgements", headers=h),
        lambda c, h: c.get("/scores", headers=h),
    ]
    wrong = [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"},
             {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}]
    before = state(settings)
    with TestClient(create_app(settings, token=TOKEN)) as c:
        for headers in wrong:
            for call in calls:
                r = call(c, headers)
                assert r.status_code == 401, (headers, r.text)
                assert "Authorization: Bearer" in r.json()["error"]
                assert TOKEN not in r.text
        assert state(settings) == before
        assert c.get("/health").status_code == 200
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert [call(c, right).status_code for call in calls] == [200, 400, 200, 200, 200, 200]
        assert any(row["council"] == "Westmoor Borough Council"
                   for row in c.get("/reports", headers=right).json())


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_needs_no_token(host: str) -> None:
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_other_addresses_need_a_token(host: str) -> None:
    with pytest.raises(ReportQAError, match="REPORTQA_API_TOKEN"):
        check_bind(host, None)
    with pytest.raises(ReportQAError, match="127.0.0.1"):
        check_bind(host, "")
    with pytest.raises(ReportQAError, match="1-character token: use at least 16"):
        check_bind(host, "a")
    check_bind(host, TOKEN)


# --- a real server ----------------------------------------------------------------------------

def _post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_healthy(proc: subprocess.Popen[str], url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"reportqa serve exited ({proc.returncode}): "
                                 + (proc.stderr.read() if proc.stderr else ""))
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"reportqa serve did not answer at {url} within {timeout:g} s")


@pytest.mark.integration
def test_served_ask_is_cli_ask_json(shared_hash_index: Settings, free_port: Callable[[], int],
                                    run_cli: Callable[..., subprocess.CompletedProcess[str]]
                                    ) -> None:
    index = str(shared_hash_index.index_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(cli_command("serve", "--index", index, "--port", str(port)),
                            cwd=REPO, env=clean_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_healthy(proc, url)
        for question, _ in QUESTIONS[:2]:
            status, served = _post_json(f"{url}/ask", {"question": question})
            assert status == 200, served
            cli = run_cli("ask", question, "--json", "--index", index)
            assert cli.returncode == 0, cli.stderr
            # timings_ms is measured wall-clock time, different on every run: left out.
            assert without_timings(served) == without_timings(json.loads(cli.stdout))
        status, err = _post_json(f"{url}/ask", {"question": ""})
        assert status == 400 and "empty" in err["error"]
    finally:
        stop_process(proc)


@pytest.mark.integration
def test_serve_refuses_a_public_address_without_a_token(shared_hash_index: Settings,
                                                        free_port: Callable[[], int],
                                                        run_cli: Callable[..., Any]) -> None:
    port = free_port()
    r = run_cli("serve", "--host", "0.0.0.0", "--port", str(port), "--index",
                str(shared_hash_index.index_dir), timeout=60)
    assert r.returncode == 1
    assert "refusing to serve the API on 0.0.0.0 without a token" in r.stderr
    assert "REPORTQA_API_TOKEN" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(OSError):  # nothing is listening
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


@pytest.mark.integration
def test_serve_on_a_port_in_use_says_so_before_any_banner(shared_hash_index: Settings,
                                                          free_port: Callable[[], int],
                                                          run_cli: Callable[..., Any]) -> None:
    """uvicorn printed "address already in use" after our "serving on ..." banner and exited
    3: the port is bound first, and a taken one is a clear error naming it."""
    import socket

    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        r = run_cli("serve", "--port", str(port), "--index", str(shared_hash_index.index_dir),
                    timeout=60)
    assert r.returncode == 1, r.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in r.stderr and "--port N" in r.stderr
    assert "reportqa serve: http" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("port", ["99999", "0", "http"])
def test_a_port_out_of_range_is_refused_before_anything_starts(port: str,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    """uvicorn took --port 99999 modulo 65536 and listened on 34463 while the banner said
    99999: every command with --port refuses what is not a port, naming the range."""
    from ui.cli import main

    for cmd in ("serve", "ui", "chroma-server"):
        extra = ["--path", "x"] if cmd == "chroma-server" else []
        with pytest.raises(SystemExit) as exc:
            main([cmd, *extra, "--port", port])
        assert exc.value.code == 2
        assert "give a number from 1 to 65535" in capsys.readouterr().err
