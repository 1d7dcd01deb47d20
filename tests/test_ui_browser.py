"""The Streamlit app in a real Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Starts `streamlit run ui/app.py` on a free loopback port with a fresh index and the REAL
embedder, lets it ingest the bundled corpus on first start, then chats, expands a source,
uploads reports (one with script/HTML payloads) and measures two timings:

  UI-TIMING enter_to_answer_ms=... (warm: second of two identical questions; target < 1000)
            cold_start_s=...       (server restart on the built index until chat input shows;
                                    target < 15)

Run: .venv/bin/pytest -q -s tests/test_ui_browser.py
Screenshots go to artifacts/screenshots/, timings to artifacts/ui_timings.json.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import stop_process

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "artifacts"
SHOTS = ARTIFACTS / "screenshots"
FIRST_START_TIMEOUT_S = 240  # first start ingests the corpus with the real model (~30-60 s)
ANSWER_TIMEOUT_MS = 60_000
TIMINGS: dict[str, Any] = {}

CHAT_INPUT = '[data-testid="stChatInput"] textarea'
ANSWER = ".rq-answer"
QUESTION = ".rq-question"
SIDEBAR = '[data-testid="stSidebar"]'

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package is not installed (pip install -e .[dev])")

TESTSHIRE = """Testshire County Council: local authority assessment

Key findings for this quality statement
Testshire County Council commissioned a wide range of home care services across the county.
In the latest survey, 73.41% of people who use services in Testshire said they were satisfied with the lantern visiting scheme, which was better than the England average.
Waiting lists for occupational therapy had fallen over the previous year.
"""

XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '<img src=x onerror="window.__xss=2">'
XSS = f"""Xssville Borough Council: local authority assessment

Key findings for this quality statement
Xssville Borough Council ran a quarterly marmalade forum for carers.
The marmalade forum notice read {XSS_SCRIPT} and {XSS_IMG} and **bold** [link](javascript:window.__xss=3) according to 41.17% of carers.
Staff told us the forum was well attended.
"""


# --- server ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`streamlit run ui/app.py` in a subprocess on 127.0.0.1 (log in a file, not a pipe)."""

    def __init__(self, index_dir: Path, log_dir: Path) -> None:
        self.index_dir = index_dir
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started_at = 0.0
        self.runs = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.port = _free_port()
        self.runs += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTQA_")}
        env.update(REPORTQA_INDEX=str(self.index_dir), PYTHONUNBUFFERED="1",
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        cmd = [sys.executable, "-m", "streamlit", "run", "ui/app.py",
               "--server.headless", "true", "--server.port", str(self.port),
               "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--server.maxUploadSize", "20"]
        log = open(self.log_dir / f"streamlit-{self.runs}.log", "wb")  # noqa: SIM115
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"streamlit did not come up on {self.url}:\n{self.log()}")

    def log(self) -> str:
        p = self.log_dir / f"streamlit-{self.runs}.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, timeout=20)
        self.proc = None


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-browser") / "index"


@pytest.fixture(scope="module")
def server(index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(index_dir, tmp_path_factory.mktemp("ui-logs"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture(scope="module", autouse=True)
def write_timings() -> Iterator[None]:
    yield
    printed = TIMINGS.pop("printed", False)
    if TIMINGS:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "ui_timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
        if not printed:
            print("\nUI-TIMING " + " ".join(f"{k}={v}" for k, v in TIMINGS.items()), flush=True)


# --- helpers ---------------------------------------------------------------------------------

def shot(page: Any, name: str, focus: Any = None) -> None:
    """Screenshot of the viewport (Streamlit scrolls inside its own container), with ``focus``
    scrolled into view first."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if focus is not None:
        focus.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def caption_ms(page: Any) -> int | None:
    """The server-side answer time shown under the last answer ("answered by X · N ms")."""
    import re

    cap = page.locator('[data-testid="stChatMessage"]').last.locator(
        '[data-testid="stCaptionContainer"]').first.inner_text()
    m = re.search(r"(\d+) ms", cap)
    return int(m.group(1)) if m else None


def wait_ready(page: Any, timeout_s: float) -> None:
    page.locator(CHAT_INPUT).wait_for(state="visible", timeout=timeout_s * 1000)


def wait_idle(page: Any, timeout_ms: float = 60_000) -> None:
    """Until the script run is over (Streamlit shows a 'running' status widget meanwhile)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=timeout_ms, polling=100)


def ask(page: Any, question: str) -> tuple[Any, float]:
    """Type a question, press Enter, wait for the new answer; returns (locator, ms).

    Waits for this question's own turn: one more question drawn, ending with this text, and
    an answer for every question. (Counting answers alone raced with a rerun still redrawing
    the previous turn: the count taken before Enter was one short and the old answer came
    back as the new one.)"""
    before = page.locator(QUESTION).count()
    box = page.locator(CHAT_INPUT)
    box.fill(question)
    t0 = time.perf_counter()
    box.press("Enter")
    page.wait_for_function(
        """([n, q, question, answer]) => {
             const qs = document.querySelectorAll(question);
             return qs.length > n && qs[qs.length - 1].innerText.trim() === q.trim()
               && document.querySelectorAll(answer).length >= qs.length;
           }""", arg=[before, question, QUESTION, ANSWER], timeout=ANSWER_TIMEOUT_MS, polling="raf")
    ms = (time.perf_counter() - t0) * 1000
    wait_idle(page)
    return page.locator(ANSWER).last, ms


def upload(page: Any, path: Path) -> None:
    """Upload a file and wait for its own result line in the sidebar. (Counting result lines
    raced with a rerun still drawing the old ones: counted twice, the count never grew.)"""
    page.locator(f"{SIDEBAR} input[type='file']").set_input_files(str(path))
    done = page.locator(f"{SIDEBAR} [data-testid='stAlert']", has_text=f"{path.name}:")
    try:
        done.first.wait_for(state="visible", timeout=120_000)
    except Exception:
        shot(page, f"upload-timeout-{path.stem}")
        print("sidebar at timeout:", page.locator(SIDEBAR).inner_text()[-1500:], flush=True)
        raise
    wait_idle(page)


# --- tests -----------------------------------------------------------------------------------

def test_chat_sources_upload_and_escaping(server: Server, browser: Any,
                                          tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    # First start on an empty index: the corpus is ingested behind a visible progress bar.
    bar = page.locator('[data-testid="stProgress"]')
    bar.first.wait_for(state="visible", timeout=90_000)
    assert "First start" in page.locator('[data-testid="stMain"]').inner_text()
    shot(page, "00-first-start-progress")
    wait_ready(page, FIRST_START_TIMEOUT_S)
    assert bar.count() == 0
    TIMINGS["first_start_ready_s"] = round(time.perf_counter() - server.started_at, 1)
    wait_idle(page)
    shot(page, "01-ready")
    assert page.get_by_text("Indexed reports (66)").count() == 1, "corpus not ingested"

    # Ask; the answer quotes the report and cites it.
    ans, _ms = ask(page, "What percentage of Stockton carers used a support group?")
    assert "25.19%" in ans.inner_text()
    assert ans.locator(".rq-marker").count() >= 1
    msg = page.locator('[data-testid="stChatMessage"]').last
    exp = msg.locator('[data-testid="stExpander"]').first
    assert "Stockton-on-Tees Borough Council" in exp.inner_text()
    shot(page, "02-answer", focus=ans)

    # Warm timing: the same question again; Enter -> answer on screen.
    ans2, ms = ask(page, "What percentage of Stockton carers used a support group?")
    assert "25.19%" in ans2.inner_text()
    TIMINGS["enter_to_answer_ms"] = round(ms)
    TIMINGS["answer_compute_ms"] = caption_ms(page)  # answer() alone, measured in the app

    # Expand a source: the quoted sentence is highlighted with <mark>.
    msg = page.locator('[data-testid="stChatMessage"]').last
    exp = msg.locator('[data-testid="stExpander"]').first
    exp.locator("summary").click()
    mark = exp.locator("mark.rq-quote")
    mark.wait_for(state="visible", timeout=10_000)
    assert "25.19%" in mark.inner_text()
    link = exp.locator("a[href^='https://']")
    assert link.count() == 1
    shot(page, "03-source-expanded", focus=mark)

    # Upload a new report and ask what only it answers.
    f = tmp_path / "testshire-assessment.txt"
    f.write_text(TESTSHIRE, encoding="utf-8")
    upload(page, f)
    sidebar = page.locator(SIDEBAR)
    assert "testshire-assessment.txt: indexed as" in sidebar.inner_text()
    shot(page, "04-uploaded", focus=page.locator(f"{SIDEBAR} [data-testid='stAlert']").last)
    ans, _ = ask(page, "What percentage of people in Testshire were satisfied with the "
                 "lantern visiting scheme?")
    assert "73.41%" in ans.inner_text()
    shot(page, "05-uploaded-answer", focus=ans)

    # A report with script / HTML / Markdown payloads is shown as text and never runs.
    x = tmp_path / "xssville.txt"
    x.write_text(XSS, encoding="utf-8")
    upload(page, x)
    assert "xssville.txt: indexed as" in page.locator(SIDEBAR).inner_text()
    ans, _ = ask(page, "What did the Xssville marmalade forum notice read?")
    text = ans.inner_text()
    assert XSS_SCRIPT in text and XSS_IMG in text and "**bold**" in text, text
    msg = page.locator('[data-testid="stChatMessage"]').last
    exp = msg.locator('[data-testid="stExpander"]').first
    exp.locator("summary").click()
    exp.locator("mark.rq-quote").wait_for(state="visible", timeout=10_000)
    assert XSS_SCRIPT in exp.inner_text()
    page.wait_for_timeout(500)  # give any injected handler (img onerror) the chance to fire
    assert page.evaluate("window.__xss") is None
    assert page.evaluate(
        "() => [...document.querySelectorAll('script')].some(s => s.textContent.includes('__xss'))"
    ) is False
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    shot(page, "06-xss-as-text", focus=exp.locator("mark.rq-quote"))
    page.close()


def test_cold_start_with_built_index(server: Server, browser: Any) -> None:
    # Make sure the index is built (normally by the test above), then restart on it.
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    wait_ready(page, FIRST_START_TIMEOUT_S)
    page.close()
    server.stop()

    server.start()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    wait_ready(page, 120)
    cold = time.perf_counter() - server.started_at
    TIMINGS["cold_start_s"] = round(cold, 2)
    wait_idle(page)
    shot(page, "07-cold-start-ready")
    assert page.get_by_text("First start").count() == 0  # no re-ingest on a built index

    # The empty chat offers questions built from the index; one click answers one.
    assert page.get_by_text("Try asking").count() == 1
    example = page.locator('[data-testid="stButton"] button').filter(has_text="?").first
    asked = example.inner_text()
    example.click()
    page.locator(ANSWER).first.wait_for(state="visible", timeout=ANSWER_TIMEOUT_MS)
    wait_idle(page)
    assert asked in page.locator(QUESTION).first.inner_text()
    assert page.locator(ANSWER).first.locator(".rq-marker").count() >= 1
    assert page.get_by_text("Try asking").count() == 0
    shot(page, "08-example-answered")

    ans, _ = ask(page, "What percentage of Stockton carers used a support group?")
    assert "25.19%" in ans.inner_text()

    # A follow-up is read against the question before, and says how it was read.
    ask(page, "What score did Darlington get for safeguarding?")
    ans, _ = ask(page, "and Staffordshire?")
    msg = page.locator('[data-testid="stChatMessage"]').last
    assert "Read as: What score did Staffordshire get for safeguarding?" in msg.inner_text()
    assert "Staffordshire County Council" in ans.inner_text()
    assert "3 - Evidence shows a good standard" in ans.inner_text()
    exp = msg.locator('[data-testid="stExpander"]').first
    assert "Staffordshire County Council" in exp.inner_text()
    shot(page, "09-follow-up-read-as", focus=msg)
    page.close()


def test_timings_within_targets() -> None:
    """Reported, and held to generous bounds (the targets are 1 s and 15 s on a quiet box)."""
    if "enter_to_answer_ms" not in TIMINGS or "cold_start_s" not in TIMINGS:
        pytest.skip("timings were not measured (an earlier browser test failed)")
    print(f"\nUI-TIMING enter_to_answer_ms={TIMINGS['enter_to_answer_ms']} "
          f"cold_start_s={TIMINGS['cold_start_s']} "
          f"answer_compute_ms={TIMINGS.get('answer_compute_ms')} "
          f"first_start_ready_s={TIMINGS.get('first_start_ready_s')} "
          "(targets: enter_to_answer < 1000 ms, cold_start < 15 s)", flush=True)
    TIMINGS["printed"] = True
    assert TIMINGS["enter_to_answer_ms"] < 5000
    assert TIMINGS["cold_start_s"] < 60

