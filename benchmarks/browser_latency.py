"""Slider key press → new decoded sentence visible, in headless Chromium, as JSON (and app cold start).

Starts `streamlit run app.py` on the shipped default model (127.0.0.1, a free port), opens the Sliders
page on a sentence, then presses End / Home alternately on each active dimension's slider and times
how long until the decoded sentence's text changes. Needs Debian's chromium and the playwright package.

    python benchmarks/browser_latency.py --presses 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    DECODED,
    VIEWPORT,
    Z_SLIDER,
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
        "slider_to_sentence_ms": summary(app_times, app_unchanged),
        "bare_streamlit_slider_ms": summary(bare_times, bare_unchanged),
        "ratio_to_bare": round(statistics.median(app_times) / statistics.median(bare_times), 2)
        if app_times and bare_times else None,
        "budget_ms": 150,
    }, indent=2))


if __name__ == "__main__":
    main_()
