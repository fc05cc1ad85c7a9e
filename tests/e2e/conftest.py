"""Browser tests: Playwright (Python) driving Debian's Chromium against `streamlit run app.py`.

Fixtures:
- `chromium_browser` (session): headless Chromium from $VAE_CHROMIUM (default /usr/bin/chromium);
  never a browser downloaded by `playwright install`.
- `e2e_models_dir` (session): a models dir holding one tiny run trained on the built-in corpus,
  named in its DEFAULT file.
- `app_server` (session): the app served on 127.0.0.1 and a free port over that models dir, with an
  empty runs dir (test_pages.py also serves the repo's models/ when there are any).
- `app_page`: a fresh browser page (1280×800) — a fresh Streamlit session — per test.

When Chromium or the playwright package is missing every test here skips with one line saying how
to get it. Helpers (`open_app_page`, `wait_idle`, `assert_no_error`, …) are plain functions the
test modules import.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARTIFACTS = HERE / "artifacts"  # git-ignored
DOC_SCREENSHOTS = REPO / "docs" / "screenshots"  # committed; written only when VAE_SAVE_DOC_SCREENSHOTS=1
CHROMIUM = os.environ.get("VAE_CHROMIUM", "/usr/bin/chromium")
SKIP_REASON = "browser tests need Debian's chromium: apt-get install -y chromium chromium-driver"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
TINY_RUN = "tiny-synthetic"
HEALTH_TIMEOUT_S = 60
MAX_SCREENSHOT_HEIGHT = 8000  # px: a "full page" screenshot of a very long page is cut here
PAGE_TIMEOUT_S = 90  # one page run (the first one in a server process imports torch and loads the model)


def browser_available() -> bool:
    """Chromium at $VAE_CHROMIUM and the playwright package are both there."""
    return (
        os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK) and importlib.util.find_spec("playwright") is not None
    )


# Without the browser the test modules here are not collected; this conftest stands in for them as one
# skipped collector, so the summary has one line saying how to enable them (a skip per test would give
# one line per test function).
class _BrowserMissing(pytest.File):
    def collect(self):
        pytest.skip(SKIP_REASON)


def _named_on_command_line(config: pytest.Config, path: Path) -> bool:
    return any(Path(str(a).split("::")[0]).resolve() == path.resolve() for a in config.invocation_params.args)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if (
        collection_path.parent == HERE
        and collection_path.name.startswith("test_")
        and not browser_available()
        and not _named_on_command_line(config, collection_path)  # named ones skip through the fixture below
    ):
        return True
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path == Path(__file__).resolve() and not browser_available():
        return _BrowserMissing.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session", autouse=True)
def _require_browser() -> None:
    """Skip every browser test when the browser is missing (for test files named on the command line)."""
    if not browser_available():
        pytest.skip(SKIP_REASON)


# --------------------------------------------------------------------------- the app's pages


@dataclass(frozen=True)
class AppPage:
    title: str
    url_path: str  # "" for the default page
    file: str

    @property
    def slug(self) -> str:
        """A file-name-safe name: the url path, or "overview" for the default page."""
        return self.url_path or re.sub(r"\W+", "-", self.title.lower()).strip("-")


def app_pages() -> list[AppPage]:
    """The pages app.py puts in the navigation: its PAGES table read with ast (app.py is not imported),
    keeping those whose file exists, as the app does."""
    tree = ast.parse((REPO / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        if isinstance(target, ast.Name) and target.id == "PAGES" and node.value is not None:
            rows = ast.literal_eval(node.value)
            return [
                AppPage(title=title, url_path=url_path or "", file=file)
                for _group, file, title, _icon, url_path in rows
                if (REPO / file).is_file()
            ]
    raise AssertionError("app.py has no PAGES table to read the navigation from")


# --------------------------------------------------------------------------- Streamlit server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """`streamlit run <script>` in its own process group on 127.0.0.1:<free port>; stop() leaves no process."""

    def __init__(self, script: Path, cwd: Path, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.models_dir: Path | None = None  # set by serve()
        self.runs_dir: Path | None = None
        self.first_visit: FirstVisit | None = None  # set by the app_server fixture
        cmd = [
            sys.executable, "-m", "streamlit", "run", str(script),
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
            "--server.address", "127.0.0.1",
            "--server.port", str(self.port),
            # No file watcher: it would watch the whole repo (.venv included) and rerun pages when
            # someone edits a file mid-test.
            "--server.fileWatcherType", "none",
            "--server.runOnSave", "false",
        ]  # fmt: skip
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]
        except OSError:
            return ""

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the whole process group, wait, then SIGKILL."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything the server left in its group
        self._log.close()


@contextlib.contextmanager
def serve(
    script: Path, workdir: Path, models: Path, runs: Path, cwd: Path = REPO, extra_env: dict[str, str] | None = None
) -> Iterator[StreamlitServer]:
    """A healthy Streamlit server over `models` and `runs`; stopped when the block ends."""
    env = dict(os.environ)
    env.update(
        VAE_MODELS_DIR=str(models),
        VAE_RUNS_DIR=str(runs),
        VAE_CACHE_DIR=str(workdir / "cache"),
        OMP_NUM_THREADS="1",  # 2 shared cores: the server and its trainings stay on one thread each
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    runs.mkdir(parents=True, exist_ok=True)
    server = StreamlitServer(script, cwd, env, workdir / "streamlit.log")
    server.models_dir, server.runs_dir = models, runs
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def e2e_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/ with one tiny run on the built-in corpus (trained once per session) named in DEFAULT."""
    import torch

    from vae_core.config import ModelConfig, TrainConfig
    from vae_core.corpus import load_corpus
    from vae_core.train import train

    torch.manual_seed(0)
    models = tmp_path_factory.mktemp("e2e-models")
    train(
        models / TINY_RUN,
        load_corpus("synthetic"),
        ModelConfig(embed_dim=16, hidden_dim=32, latent_dim=4),
        TrainConfig(max_steps=60, batch_size=64),
    )
    (models / "DEFAULT").write_text(TINY_RUN + "\n", encoding="utf-8")
    return models


@dataclass(frozen=True)
class FirstVisit:
    """What a fresh server showed to its very first visitor, who came by a link to a non-default page."""

    url_path: str
    nav_titles: tuple[str, ...]
    has_model_picker: bool
    error: str | None  # assert_no_error's message, if the page showed an error


def sidebar_nav_titles(page) -> list[str]:
    """Titles of the sidebar's navigation links, in order (the icon's ligature text dropped)."""
    links = page.locator('[data-testid="stSidebarNav"] a[data-testid="stSidebarNavLink"]')
    return [t.strip().splitlines()[-1].strip() for t in links.all_inner_texts()]


def has_model_picker(page) -> bool:
    return page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Model").count() == 1


def warm_up(server: StreamlitServer, browser, first_by_link: bool = False) -> FirstVisit | None:
    """Open the default page once: the first run imports torch and loads the model, and it is the run
    that calls st.navigation (see test_first_visit_by_link_runs_the_router for why that matters).

    With first_by_link, first open the first non-default page by its URL, as a shared link would, and
    return what it showed."""
    context = browser.new_context(viewport=VIEWPORT)
    first = None
    try:
        page = context.new_page()
        target = next((p for p in app_pages() if p.url_path), None)
        if first_by_link and target is not None:
            open_app_page(page, server.url, target.url_path, timeout=120)
            try:
                assert_no_error(page)
                error = None
            except AssertionError as e:
                error = str(e)
            first = FirstVisit(target.url_path, tuple(sidebar_nav_titles(page)), has_model_picker(page), error)
        open_app_page(page, server.url, "", timeout=120)
    finally:
        context.close()
    return first


@pytest.fixture(scope="session")
def app_server(
    e2e_models_dir: Path, tmp_path_factory: pytest.TempPathFactory, chromium_browser
) -> Iterator[StreamlitServer]:
    """The app over the tiny models dir and an empty runs dir, warmed up on its default page.

    Its first visitor came by a link to a non-default page: `app_server.first_visit` says what they saw."""
    work = tmp_path_factory.mktemp("e2e-app")
    with serve(REPO / "app.py", work, e2e_models_dir, work / "runs") as server:
        server.first_visit = warm_up(server, chromium_browser, first_by_link=True)
        yield server


def shipped_models() -> list[Path]:
    """Loadable runs under the repo's models/ (the ones the lead ships)."""
    root = REPO / "models"
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and (p / "config.json").is_file() and (p / "model.safetensors").is_file()
    )


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def chromium_browser():
    """Headless Debian Chromium through Playwright (no `playwright install`)."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


@contextlib.contextmanager
def fresh_page(browser, viewport: dict):
    """A page in a new browser context (its own Streamlit session) of this viewport, closed afterwards."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def app_page(chromium_browser):
    """A fresh page (its own Streamlit session) at 1280×800; closed after the test."""
    with fresh_page(chromium_browser, VIEWPORT) as page:
        yield page


# --------------------------------------------------------------------------- helpers for the tests

_IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  if (app.dataset.testConnectionState !== 'CONNECTED') return false;
  if (app.dataset.testScriptState !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stElementContainer"][data-stale="true"]')) return false;
  return !document.querySelector('[data-testid="stSkeleton"]');  // widgets and charts load lazily
}"""


def wait_idle(page, timeout: float = PAGE_TIMEOUT_S, settle: float = 0.4) -> None:
    """Wait until the app is connected, its script is not running, no element is stale or still loading
    (skeleton), and it stays so for `settle` seconds (a rerun can start just after one ends)."""
    deadline = time.monotonic() + timeout
    while True:
        left_ms = max(1, (deadline - time.monotonic()) * 1000)
        page.wait_for_function(_IDLE_JS, timeout=left_ms, polling=100)
        page.wait_for_timeout(settle * 1000)
        if page.evaluate(_IDLE_JS):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the app did not settle within {timeout:.0f} s")


def wait_rerun(page, timeout: float = PAGE_TIMEOUT_S) -> None:
    """After an interaction: give the rerun up to 2 s to start, then wait until the app is idle again."""
    with contextlib.suppress(Exception):
        page.wait_for_function(f"() => !({_IDLE_JS})()", timeout=2000, polling=50)
    wait_idle(page, timeout)


# The Sliders page's decoded sentence (ui.widgets.sentence_block) and its z-sliders ("z{d} · KL {kl:.2f}").
DECODED = '[data-testid="stMain"] .vae-sentence'
Z_SLIDER = re.compile(r"^z\d+ · KL")


def press_until_changed(page, thumb, key: str, before: str, timeout_ms: float) -> float | None:
    """Focus a slider thumb and press `key`; seconds until the decoded sentence differs from `before`,
    or None when it has not within timeout_ms (the move decoded the same sentence)."""
    thumb.focus()
    start = time.monotonic()
    thumb.press(key)
    try:
        page.wait_for_function(
            "([sel, before]) => { const e = document.querySelector(sel);"
            " return e && e.innerText.trim() !== before; }",
            arg=[DECODED, before], timeout=timeout_ms, polling="raf",
        )
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: nothing changed
        return None
    return time.monotonic() - start


def assert_no_error(page) -> None:
    """Fail when the page shows an exception box (uncaught exception, st.exception) or an st.error alert."""
    exceptions = page.locator('[data-testid="stException"], .stException')
    if exceptions.count():
        raise AssertionError("the page shows an exception:\n" + "\n---\n".join(exceptions.all_inner_texts()))
    errors = page.locator('[data-testid="stAlertContentError"]')
    if errors.count():
        raise AssertionError("the page shows an error box:\n" + "\n---\n".join(errors.all_inner_texts()))
    body = page.locator('[data-testid="stMain"]')
    if body.count() and "Traceback (most recent call last)" in body.inner_text():
        raise AssertionError("the page shows a traceback:\n" + body.inner_text()[-3000:])


def open_app_page(page, base_url: str, url_path: str = "", timeout: float = PAGE_TIMEOUT_S) -> None:
    """Go to a page of the app by its url path and wait until it has run."""
    page.goto(f"{base_url}/{url_path}", wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout * 1000)  # every page has a title
    wait_idle(page, timeout)


def save_screenshot(page, name: str, doc: bool = False) -> Path:
    """A full-page screenshot under tests/e2e/artifacts/<name>.png; with doc=True and
    VAE_SAVE_DOC_SCREENSHOTS=1, also the 1280×800 viewport under docs/screenshots/<basename>.png."""
    if doc and os.environ.get("VAE_SAVE_DOC_SCREENSHOTS") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOC_SCREENSHOTS / f"{Path(name).name}.png"), full_page=False)
    path = ARTIFACTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Streamlit scrolls inside stMain, not the document: grow the viewport to the content for a full page.
    viewport = page.viewport_size or VIEWPORT
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]'); return m ? m.scrollHeight : 0; }"
    )
    tall = min(max(int(height), viewport["height"]), MAX_SCREENSHOT_HEIGHT)
    if tall > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"], "height": tall})
        try:
            wait_idle(page, timeout=30, settle=0.3)  # charts redraw at the new size
            page.screenshot(path=str(path), full_page=True)
        finally:
            page.set_viewport_size(viewport)
    else:
        page.screenshot(path=str(path), full_page=True)
    return path


def main(page):
    """The main area of the app (not the sidebar)."""
    return page.locator('[data-testid="stMain"]')


def slider_input(scope, label: str | re.Pattern):
    """The keyboard-focusable range input of the st.slider whose label matches."""
    return scope.locator('[data-testid="stSlider"]').filter(has_text=label).locator('input[type="range"]')


def set_slider(page, scope, label: str | re.Pattern, value: float, step: float, rerun: bool = True) -> None:
    """Move an st.slider to `value` with the keyboard (arrows from where it is, or Home then ArrowRight,
    whichever is fewer presses: outside a form each press is a rerun) and check it got there."""
    thumb = slider_input(scope, label).first
    current = float(thumb.get_attribute("value"))
    if abs(current - value) < step / 2:
        return
    low = float(thumb.get_attribute("min"))
    thumb.focus()
    presses = round(abs(value - current) / step)
    from_low = round((value - low) / step)
    if from_low + 1 < presses:
        thumb.press("Home")
        key, presses = "ArrowRight", from_low
    else:
        key = "ArrowRight" if value > current else "ArrowLeft"
    for _ in range(presses):
        thumb.press(key)
    if rerun:
        wait_rerun(page)
    got = float(slider_input(scope, label).first.get_attribute("value"))
    assert abs(got - value) < step / 2, f"slider {label!r} is at {got}, wanted {value}"


def kill_run_process(run_dir: Path) -> None:
    """End a training the app started for a test (its pid is in status.json), if it still runs."""
    import json

    with contextlib.suppress(OSError, ValueError, json.JSONDecodeError):
        pid = int(json.loads((run_dir / "status.json").read_text()).get("pid") or 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() if pid > 0 else ""
        if "vae_core" in cmdline and str(run_dir.name) in cmdline:  # that training, not a reused pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
