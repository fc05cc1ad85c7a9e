"""Page loads and slider key press → new decoded sentence visible, in headless Chromium, as JSON.

Starts `streamlit run app.py` on the shipped default model (127.0.0.1, a free port; the server runs
with OMP_NUM_THREADS=1 like the browser tests) and times:

- the first page after a cold start;
- page loads once the server is warm: each page opened by its link in a new browser session (a new
  Streamlit session), and each page reached by clicking its sidebar link from the previous one (a page
  switch), until the page has run and settled (no stale element, no skeleton), per page;
- the Sliders page: End / Home pressed alternately on each active dimension's slider, until the decoded
  sentence's text changes; with --beside-training again while a training launched through
  vae_core.jobs runs on the same machine (lowered priority and threads, see README "Performance").

A bare Streamlit page with one slider is measured the same way as the floor. Needs Debian's chromium
and the playwright package.

    python benchmarks/browser_latency.py --presses 30 --beside-training
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import (  # noqa: E402
    _IDLE_JS,
    CHROMIUM,
    CHROMIUM_ARGS,
    DECODED,
    VIEWPORT,
    Z_SLIDER,
    app_pages,
    main,
    open_app_page,
    press_until_changed,
    serve,
    wait_idle,
    wait_rerun,
)

# The reference in the same run: a bare Streamlit page with one slider and one line of text, which
# shows what Streamlit itself costs per slider move on this machine (the floor under any app).
BARE = """
import streamlit as st
st.title("bare")
st.text_input("Sentence")
v = st.slider("z0 · KL 1.00", -4.0, 4.0, 0.0, 0.05)
st.markdown(f'<div class="vae-sentence">value {v:.2f}</div>', unsafe_allow_html=True)
"""


def measure_slider(page, presses: int) -> tuple[list[float], int]:
    """Alternate End/Home on the z-sliders; ms from key press until the decoded text changes."""
    decoded = page.locator(DECODED).first
    thumbs = main(page).locator('[data-testid="stSlider"]').filter(has_text=Z_SLIDER)
    times, unchanged, n, i = [], 0, thumbs.count(), 0
    while len(times) < presses and i < presses * 4:
        thumb = thumbs.nth(i % n).locator('input[type="range"]')
        key = "End" if (i // n) % 2 == 0 else "Home"
        i += 1
        before = decoded.inner_text().strip()
        seconds = press_until_changed(page, thumb, key, before, timeout_ms=5000)
        if seconds is None:  # this move decoded the same sentence
            unchanged += 1
        else:
            times.append(seconds * 1000)
        wait_idle(page, timeout=30, settle=0.15)
    return sorted(times), unchanged


def _until_settled(page, t0: float, timeout: float = 120, settle: float = 0.3) -> float:
    """Seconds from t0 until the app was idle (script done, nothing stale or loading) and stayed so `settle` s."""
    deadline = time.monotonic() + timeout
    while True:
        page.wait_for_function(_IDLE_JS, timeout=max(1, (deadline - time.monotonic()) * 1000), polling=50)
        idle_at = time.monotonic()
        page.wait_for_timeout(settle * 1000)
        if page.evaluate(_IDLE_JS) or time.monotonic() > deadline:
            return idle_at - t0


def measure_page_loads(browser, url: str) -> dict:
    """Per page: a new session's first page by its link, and a switch to it by its sidebar link (s)."""
    new_session, switch = {}, {}
    pages = app_pages()
    for p in pages:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        t0 = time.monotonic()
        page.goto(f"{url}/{p.url_path}", wait_until="domcontentloaded")
        page.wait_for_selector('[data-testid="stMain"] h1', timeout=120_000)
        new_session[p.title] = round(_until_settled(page, t0), 2)
        context.close()
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    open_app_page(page, url, "")
    for p in [*pages[1:], pages[0]]:  # Overview → Train → … → Overview, one sidebar click each
        link = page.locator('[data-testid="stSidebarNav"] a[data-testid="stSidebarNavLink"]').filter(has_text=p.title)
        t0 = time.monotonic()
        link.first.click()
        path = f"/{p.url_path}"
        page.wait_for_url(lambda u, path=path: urlsplit(u).path == path, timeout=30_000)  # a query may follow
        page.wait_for_selector('[data-testid="stMain"] h1', timeout=120_000)
        switch[p.title] = round(_until_settled(page, t0), 2)
    context.close()
    return {
        "new_session_first_page_s": new_session,
        "page_switch_s": switch,
        "new_session_max_s": max(new_session.values()),
        "page_switch_max_s": max(switch.values()),
        "budget_new_session_s": 3.0,
        "budget_page_switch_s": 1.0,
    }


def beside_training(runs: Path) -> Path:
    """Launch a long training (the CLI's default model settings) through vae_core.jobs, as the Train page does."""
    from vae_core import jobs

    run = runs / "bench-beside"
    jobs.start_training(run, ["--corpus", "synthetic", "--max-steps", "100000", "--log-every", "50"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run / "metrics.jsonl").exists():  # past imports: training
        time.sleep(0.5)
    return run


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def summary(times: list[float], unchanged: int) -> dict:
    return {
        "median": round(statistics.median(times), 1) if times else None,
        "p95": round(times[int(0.95 * (len(times) - 1))], 1) if times else None,
        "min": round(times[0], 1) if times else None,
        "n": len(times),
        "presses_that_changed_nothing": unchanged,
    }


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presses", type=int, default=30)
    ap.add_argument("--sentence", default="the pilots will not follow the red horse .")
    ap.add_argument("--no-pages", action="store_true", help="skip the page-load measurements")
    ap.add_argument("--beside-training", action="store_true",
                    help="measure the slider again while a training launched through vae_core.jobs runs")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t_start = time.monotonic()
        with serve(ROOT / "app.py", work, ROOT / "models", work / "runs") as server:
            t_healthy = time.monotonic() - t_start
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_context(viewport=VIEWPORT).new_page()
                t0 = time.monotonic()
                open_app_page(page, server.url, "")
                cold_first_page = time.monotonic() - t0
                t0 = time.monotonic()
                open_app_page(page, server.url, "sliders")
                sliders_open = time.monotonic() - t0
                box = main(page).get_by_role("textbox", name="Sentence", exact=True)
                box.fill(a.sentence)
                box.press("Enter")
                wait_rerun(page)
                app_times, app_unchanged = measure_slider(page, a.presses)
                load_before = load_average()
                if a.beside_training:
                    from vae_core import jobs

                    run = beside_training(work / "runs")
                    try:
                        open_app_page(page, server.url, "sliders")
                        train_times, train_unchanged = measure_slider(page, a.presses)
                        load_training = load_average()
                    finally:
                        jobs.stop_training(run, timeout=30)
                pages = None if a.no_pages else measure_page_loads(browser, server.url)
                bare_script = work / "bare.py"
                bare_script.write_text(BARE, encoding="utf-8")
                (work / "bare").mkdir()
                with serve(bare_script, work / "bare", ROOT / "models", work / "runs") as bare:
                    open_app_page(page, bare.url, "")
                    bare_times, bare_unchanged = measure_slider(page, a.presses)
                browser.close()
    print(json.dumps({
        "benchmark": "browser_latency",
        "model": (ROOT / "models" / "DEFAULT").read_text().strip(),
        "server_healthy_s": round(t_healthy, 2),
        "first_page_after_start_s": round(cold_first_page, 2),
        "sliders_page_open_s": round(sliders_open, 2),
        "load_average_1_5_15": load_before,
        "slider_to_sentence_ms": summary(app_times, app_unchanged),
        "slider_to_sentence_beside_training_ms": summary(train_times, train_unchanged) if a.beside_training else None,
        "load_average_during_training": load_training if a.beside_training else None,
        "page_loads": pages,
        "bare_streamlit_slider_ms": summary(bare_times, bare_unchanged),
        "ratio_to_bare": round(statistics.median(app_times) / statistics.median(bare_times), 2)
        if app_times and bare_times else None,
        "budget_ms": 150,
    }, indent=2))


if __name__ == "__main__":
    main_()
