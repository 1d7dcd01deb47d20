"""`reportqa serve`: the HTTP API (FastAPI). Thin, like the command line: parse the request,
call the library, return its JSON, turn errors into status codes. Public: `create_app`,
`serve`, `check_bind`.

    POST /ask         {question, council?, statement?, k?, answerer?, history?, stream?}
                      -> exactly what `reportqa ask --json` prints (Answer.to_json());
                      stream: NDJSON lines {"delta": ...} (LLM drafts), then {"answer": ...}
    GET  /reports     what `reportqa reports --json` lists
    POST /reports     multipart upload, field "files" (repeatable), ingested as the app does
    GET  /judgements  the rows of `reportqa judgements --json` (?council=X: that council's)
    GET  /scores      the rows of `reportqa scores --json` (?council=X: that council's)
    GET  /health      liveness; never needs the token
    GET  /docs, /openapi.json   FastAPI's generated documentation

Errors are {"error": message} with the CLI's own messages: 400 for a question or file we cannot
use, 401 without the token, 413 over a size limit, 422 for a malformed request, 502 when a
backend fails, 503 while the index is not ready.
"""

from __future__ import annotations

import hmac
import json
import queue
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.upload import FileResult, save_and_ingest
from rag.chat import answer_in_chat
from rag.engine import Engine
from rag.extractive import warm_reader
from rag.listing import judgement_rows, noted, report_rows, score_rows
from rag.query import resolve_statement
from rag.retrieve import Filters
from reportqa.chroma_server import is_loopback
from reportqa.embed import Embedder, embedder_for
from reportqa.errors import BackendError, IndexNotReadyError, ReportQAError
from reportqa.records import Answer
from reportqa.records import Turn as ChatTurn
from reportqa.settings import MAX_K, Settings
from reportqa.text import surrogate_at

TOKEN_ENV = "REPORTQA_API_TOKEN"
# A question is at most 1,000 characters (rag/answer.py), so 1 MiB leaves room for a long
# history while a runaway body is refused before it is parsed.
BODY_LIMIT = 1 << 20
UPLOAD_PATH = "/reports"
MULTIPART_SLACK = 64 * 1024  # part headers and boundaries around the files themselves
# No data behind these: liveness, and the docs (a browser cannot send a bearer header to
# open /docs; the schema says what the source code says).
PUBLIC_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
ERROR_STATUS: tuple[tuple[type[ReportQAError], int], ...] = (
    (IndexNotReadyError, 503), (BackendError, 502), (ReportQAError, 400))


# --- request bodies ----------------------------------------------------------------------------

class CitationRef(BaseModel):
    """Where an earlier answer quoted from; the quote itself is re-read from the index."""

    model_config = ConfigDict(extra="ignore", strict=True)
    n: int
    report_id: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    council: str | None = None
    quality_statement: str | None = None
    see_also: bool = False


class Turn(BaseModel):
    """One earlier exchange of the conversation: an earlier /ask response can be sent back
    as it came (its other fields are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    question: str
    read_as: str | None = None
    answer: str | None = None
    abstained: bool = False
    citations: list[CitationRef] = Field(default_factory=list, max_length=50)


class AskRequest(BaseModel):
    """The arguments of `reportqa ask`, as JSON."""

    model_config = ConfigDict(extra="forbid", strict=True)
    question: str = Field(description="one question about the reports (under 1,000 characters)")
    council: list[str] = Field(default_factory=list, description="only these councils")
    statement: list[str] = Field(default_factory=list,
                                 description="only these CQC quality statements")
    k: int | None = Field(default=None, ge=1, le=MAX_K, description="passages to retrieve")
    answerer: Literal["extractive", "llm"] | None = Field(
        default=None, description="default: the server's REPORTQA_ANSWERER")
    history: list[Turn] = Field(default_factory=list, max_length=100,
                                description="earlier turns, oldest first (earlier /ask responses "
                                "as they came): 'and Bury?' is read against the last one")
    stream: bool = Field(default=False, description="NDJSON: {delta} lines, then {answer}")

    @model_validator(mode="after")
    def _unicode_only(self) -> AskRequest:
        """A lone UTF-16 surrogate half in a filter or an earlier turn could not be carried
        back in any reply (the question itself is checked where the CLI checks it)."""
        texts = [("council", c) for c in self.council] + [("statement", x) for x in self.statement]
        texts += [(f"history.{i}", t) for i, turn in enumerate(self.history)
                  for t in (turn.question, turn.read_as or "")]
        for field, text in texts:
            if surrogate_at(text) is not None:
                raise ValueError(f"{field} has an invalid character (half of a UTF-16 pair); "
                                 "send it again as text")
        return self


# --- shared state ------------------------------------------------------------------------------

class _Service:
    """What every request shares: one engine (answers only read, so they run concurrently, as
    the app's sessions do), one embedder, and a lock that lets one ingest run at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ingest_lock = threading.Lock()
        self._load_lock = threading.RLock()
        self._embedder: Embedder | None = None
        self._engine: Engine | None = None

    def embedder(self) -> Embedder:
        with self._load_lock:
            if self._embedder is None:
                self._embedder = embedder_for(self.settings)
            return self._embedder

    def engine(self) -> Engine:
        """Loaded on first use, so the server can start (and POST /reports create the index)
        before anything is indexed; until then IndexNotReadyError (503)."""
        with self._load_lock:
            if self._engine is None:
                self._engine = Engine.load(self.settings, embedder=self.embedder())
            return self._engine


def _service(request: Request) -> _Service:
    service: _Service = request.app.state.service
    return service


Service = Annotated[_Service, Depends(_service)]
CouncilQuery = Annotated[str | None, Query(description="only this council's rows (as typed: "
                                                    "'bury', 'Stockton-on-Tees')")]
router = APIRouter()
health_router = APIRouter()


# --- endpoints ---------------------------------------------------------------------------------

@router.post("/ask", summary="Answer a question with cited passages",
             response_description="Answer.to_json(), as `reportqa ask --json` prints it")
def ask(body: AskRequest, svc: Service) -> Response:
    settings = replace(svc.settings, answerer=body.answerer) if body.answerer else svc.settings
    filters = Filters(councils=tuple(body.council),
                      statements=tuple(resolve_statement(s) for s in body.statement))
    engine = svc.engine()

    def run(on_delta: Callable[[str], None] | None = None) -> Answer:
        # conversation: history is resolved here
        return _answer_turn(body.question, body.history, settings, filters, engine=engine,
                            k=body.k, on_delta=on_delta)

    if body.stream:
        return _ndjson(run)
    return JSONResponse(run().to_json())


def _answer_turn(question: str, history: Sequence[Turn], settings: Settings, filters: Filters,
                 *, engine: Engine, k: int | None,
                 on_delta: Callable[[str], None] | None) -> Answer:
    """One turn of a conversation, read against the turns before it as the app reads it."""
    turns = [ChatTurn.from_json({"question": t.question, "read_as": t.read_as,
                                 "abstained": t.abstained,
                                 "citations": [{**c.model_dump(), "quote": ""}
                                               for c in t.citations]})
             for t in history]
    return answer_in_chat(question, turns, settings, filters, engine=engine, k=k,
                          on_delta=on_delta)


@router.get("/reports", summary="Every indexed report (as `reportqa reports --json`)")
def list_reports(svc: Service) -> JSONResponse:
    return JSONResponse(report_rows(svc.engine().store))


@router.post(UPLOAD_PATH, summary="Upload report files (.txt .md .html .htm .pdf) and index them",
             response_description="one result per file: 200 all indexed, 207 some failed, "
             "400 none could be used")
def add_reports(files: Annotated[list[UploadFile], File(description="report files")],
                svc: Service) -> JSONResponse:
    results: list[FileResult] = []
    with svc.ingest_lock:  # one ingest at a time; answers go on reading meanwhile
        for f in files:  # one file's bytes in memory at a time
            results += save_and_ingest([(f.filename or "", f.file.read())], svc.settings,
                                       embedder=svc.embedder())
        if any(r.status in ("added", "updated") for r in results):
            # Only then is there an index to read versions from (a fresh one may have none).
            results = noted(results, svc.engine().store)
    return _upload_response(results)


@router.get("/judgements", summary="Every graded judgement (as `reportqa judgements --json`)")
def list_judgements(svc: Service, council: CouncilQuery = None) -> JSONResponse:
    return JSONResponse(judgement_rows(svc.engine(), council))


@router.get("/scores", summary="Scores and overall ratings (as `reportqa scores --json`)")
def list_scores(svc: Service, council: CouncilQuery = None) -> JSONResponse:
    return JSONResponse(score_rows(svc.engine(), council))


@health_router.get("/health", summary="Liveness (no token needed)")
def health() -> dict[str, str]:
    return {"status": "ok"}


# --- responses ---------------------------------------------------------------------------------

def _upload_response(results: list[FileResult]) -> JSONResponse:
    body: dict[str, Any] = {"files": [asdict(r) for r in results]}
    failed = [r for r in results if not r.ok]
    if not failed:
        return JSONResponse(body)
    body["error"] = "; ".join(f"{r.name}: {r.message}" for r in failed)
    return JSONResponse(body, status_code=400 if len(failed) == len(results) else 207)


def _ndjson(run: Callable[[Callable[[str], None]], Answer]) -> Response:
    """Run the answer in a worker thread that feeds a queue; stream what it puts there.

    The first item is awaited before replying, so an error found before any text (an empty
    question, an index not ready) still gets its own status code instead of a 200 stream."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue()

    def work() -> None:
        try:
            items.put(("answer", run(lambda d: items.put(("delta", d))).to_json()))
        except ReportQAError as exc:
            items.put(("error", exc))
        except BaseException as exc:  # the stream must end even on a bug
            items.put(("crash", exc))

    threading.Thread(target=work, name="reportqa-ask-stream", daemon=True).start()
    first = items.get()
    if first[0] in ("error", "crash"):
        raise first[1]

    def lines() -> Iterator[str]:
        kind, value = first
        while True:
            if kind == "delta":
                yield json.dumps({"delta": value}, ensure_ascii=False) + "\n"
            elif kind == "answer":
                yield json.dumps({"answer": value}, ensure_ascii=False) + "\n"
                return
            else:  # after text has gone out the status is sent: the error is the last line
                yield json.dumps({"error": str(value)}, ensure_ascii=False) + "\n"
                return
            kind, value = items.get()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def _report_error(_request: Request, exc: Exception) -> JSONResponse:
    status = next(code for cls, code in ERROR_STATUS if isinstance(exc, cls))
    return JSONResponse({"error": str(exc)}, status_code=status)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(isinstance(e.get("input"), bytes) for e in exc.errors()):
        # Without a JSON content type the body arrives as bytes (curl -d sends a form type).
        got = request.headers.get("content-type") or "none"
        return JSONResponse({"error": "invalid request: the body must be JSON sent with "
                                      f"'Content-Type: application/json' (got {got})"},
                            status_code=422)
    return JSONResponse({"error": "invalid request: " + _describe(exc.errors())},
                        status_code=422)


def _describe(errors: Sequence[Any]) -> str:
    """Pydantic's errors as one line: "question: Input should be a valid string (got a
    number)"."""
    parts = []
    for e in errors:
        kind = str(e.get("type", ""))
        if kind == "json_invalid":
            parts.append(f"the body is not valid JSON ({e.get('ctx', {}).get('error', '')})")
            continue
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        got = f" (got {_json_type(e['input'])})" if kind.endswith("_type") and "input" in e else ""
        parts.append(f"{where}: {e.get('msg', 'invalid')}{got}")
    return "; ".join(parts)


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string",
             list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                        headers=exc.headers)


async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log"},
                        status_code=500)


# --- the gate: token and size, before the body is read -----------------------------------------

class _Gate:
    """Pure ASGI, so it runs before anything reads the body: the token first (a refused
    request is never parsed, let alone ingested), then the size (refused from Content-Length
    when there is one, else after the first bytes past the limit)."""

    def __init__(self, app: ASGIApp, token: str | None, upload_limit: int) -> None:
        self.app = app
        self.token = token
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if (self.token and scope["path"] not in PUBLIC_PATHS
                and not _bearer_ok(headers.get("authorization"), self.token)):
            await _refuse(scope, receive, send, 401, "missing or wrong token: send the header "
                          f"'Authorization: Bearer <token>' with the server's {TOKEN_ENV}",
                          {"WWW-Authenticate": "Bearer"})
            return
        limit = self.upload_limit if scope["path"] == UPLOAD_PATH else BODY_LIMIT
        declared = headers.get("content-length")
        if declared is not None and not declared.isdigit():
            await _refuse(scope, receive, send, 400, "the Content-Length header is not a number")
        elif declared is not None and int(declared) > limit:
            await _refuse(scope, receive, send, 413, self._too_large(scope, int(declared)))
        elif declared is not None:
            await self.app(scope, receive, send)
        else:  # chunked: read up to the limit, then hand the same messages on
            messages = await _read_upto(receive, limit)
            if messages is None:
                await _refuse(scope, receive, send, 413, self._too_large(scope, None))
            else:
                await self.app(scope, _replay(messages, receive), send)

    def _too_large(self, scope: Scope, size: int | None) -> str:
        is_upload = scope["path"] == UPLOAD_PATH
        limit = (self.upload_limit - MULTIPART_SLACK) if is_upload else BODY_LIMIT
        what = f"{size / 1048576:.1f} MB, over" if size is not None else "over"
        if is_upload:
            return (f"the upload is {what} the {limit / 1048576:g} MB upload limit per request "
                    "(REPORTQA_MAX_FILE_MB); split it into smaller files or send them in "
                    "separate requests")
        return (f"the request body is {what} the {limit / 1048576:g} MB limit; a question is "
                "at most 1,000 characters")


def _bearer_ok(header: str | None, token: str) -> bool:
    scheme, _, value = (header or "").partition(" ")
    # compare_digest: the time taken does not tell how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode())


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str,
                  headers: dict[str, str] | None = None) -> None:
    await JSONResponse({"error": message}, status_code=status, headers=headers)(
        scope, receive, send)


async def _read_upto(receive: Receive, limit: int) -> list[Message] | None:
    """The request's body messages, or None as soon as they pass ``limit`` bytes."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body"):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


# --- app and server ----------------------------------------------------------------------------

def create_app(settings: Settings, token: str | None = None) -> FastAPI:
    """The API over the index named by ``settings``. With ``token``, every endpoint but
    /health and the docs needs `Authorization: Bearer <token>`."""
    app = FastAPI(title="reportqa", version=_version(), description=__doc__ or "")
    app.state.service = _Service(settings)
    # Declared for /docs ("Authorize" button) only: _Gate is what enforces the token.
    bearer = [Depends(HTTPBearer(auto_error=False))] if token else []
    app.include_router(router, dependencies=bearer)
    app.include_router(health_router)
    app.add_exception_handler(ReportQAError, _report_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    upload_limit = int(settings.max_file_mb * 1048576) + MULTIPART_SLACK
    app.add_middleware(_Gate, token=token or None, upload_limit=upload_limit)
    return app


MIN_TOKEN = 16  # characters: a short token beyond this machine is guessed, not a guard


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token, or with one short enough to
    guess."""
    if is_loopback(host):
        return
    if not token:
        raise ReportQAError(
            f"refusing to serve the API on {host} without a token: anyone who can reach it "
            f"could read every report and add new ones. Set {TOKEN_ENV} (clients then send "
            "'Authorization: Bearer <token>'), or bind to 127.0.0.1 (the default)")
    if len(token) < MIN_TOKEN:
        raise ReportQAError(
            f"refusing to serve the API on {host} with a {len(token)}-character token: use at "
            f"least {MIN_TOKEN} characters, e.g. from: python -c 'import secrets; "
            "print(secrets.token_urlsafe(24))'")


def serve(settings: Settings, host: str, port: int, token: str | None) -> int:
    """Check the address, load the engine, then serve until interrupted."""
    import sys

    import uvicorn

    check_bind(host, token)
    sock = _bound(host, port)  # before the banner: a port in use is said, not announced
    app = create_app(settings, token)
    state = _warm(app.state.service)
    auth = "token required" if token else "no token, this machine only"
    print(f"reportqa serve: http://{_url_host(host)}:{port} ({auth}; index "
          f"{settings.index_dir}: {state}); docs at /docs", file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0


def _bound(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, held until uvicorn listens on it; a clear error when
    the port is taken (uvicorn printed "address already in use" after our banner, exit 3)."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise ReportQAError(f"cannot serve on {host}:{port}: {exc.strerror or exc} (another "
                            "server may be using the port): stop it or pass --port N") from exc
    return sock


def _warm(svc: _Service) -> str:
    """Load the model and tables before the first request, so it pays no start-up cost."""
    try:
        eng = svc.engine()
        eng.require_ready()
        eng.derived()
        eng.embedder.embed(["warm up"])
        warm_reader(eng.settings)
        n_reports, n_chunks = eng.store.counts()
    except IndexNotReadyError as exc:
        return f"not ready yet ({exc})"
    return f"{n_reports} reports, {n_chunks} chunks"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reportqa")
    except PackageNotFoundError:
        return "0"
