"""Issue 20 in a browser: what AppTest cannot see (what the browser shows, layout at a projector's 1024×768).

- Latent map: after a search narrows the nearest-neighbour list, the query box shows the sentence whose
  neighbours are listed (20.1).
- Train: "Open this run in the explorer" switches the sidebar's model, here and on other pages (20.2).
- Traversals: the grid's last column can be scrolled into view at 1024×768 (20.5).
- Sliders: the buttons' labels are not cut at 1024×768 (20.5).
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from .conftest import (
    assert_no_error,
    fresh_page,
    main,
    open_app_page,
    set_slider,
    wait_idle,
    wait_rerun,
)

pytestmark = pytest.mark.e2e

PROJECTOR = {"width": 1024, "height": 768}
NOUNS = ("horse", "cat", "dog", "sheep", "doctor", "pilot", "teacher", "bird")


@pytest.fixture
def projector_page(chromium_browser):
    """A fresh page (its own Streamlit session) at 1024×768."""
    with fresh_page(chromium_browser, PROJECTOR) as page:
        yield page


def _selectbox_value(box) -> str:
    """The text an st.selectbox shows as its value (its combobox input's value, else its last line of text)."""
    box = box.first
    inputs = box.locator("input")
    if inputs.count():
        value = (inputs.first.input_value() or inputs.first.get_attribute("placeholder") or "").strip()
        if value:
            return value
    label = box.locator('[data-testid="stWidgetLabel"]')
    label_text = label.first.inner_text().strip() if label.count() else ""
    lines = [t.strip() for t in box.inner_text().splitlines() if t.strip() and t.strip() != label_text]
    return lines[-1] if lines else ""


def test_latent_map_neighbours_after_a_search_are_those_of_the_sentence_shown(app_page, app_server):
    page = app_page
    open_app_page(page, app_server.url, "latent-map")
    body = main(page)
    set_slider(page, body, "Sentences (a seeded sample", 100, step=10, rerun=False)
    body.locator('[data-testid="stSelectbox"]').filter(has_text="Method").click()
    page.get_by_role("option", name="PCA", exact=True).click()
    body.get_by_role("button", name="Draw the map").click()
    wait_rerun(page)
    assert_no_error(page)

    body.get_by_text("Nearest neighbours in latent space").click()
    wait_idle(page)
    body.get_by_text("Find the nearest neighbours of a sentence").click()
    wait_rerun(page)
    query_box = body.locator('[data-testid="stSelectbox"]').filter(has_text="Sentence (search above")
    first = _selectbox_value(query_box)
    assert first.startswith("0: "), first
    word = next(n for n in NOUNS if n not in first.split())  # a search that leaves row 0 out

    search = body.get_by_role("textbox", name="Search the sentences (case-insensitive)", exact=True)
    search.fill(word)
    search.press("Enter")
    wait_rerun(page)
    assert_no_error(page)
    body.get_by_text(re.compile(r"sentence\(s\) contain")).wait_for()

    shown = _selectbox_value(query_box)
    caption = body.get_by_text(re.compile(r"^Neighbours of ")).inner_text()
    listed = re.match(r"Neighbours of (.*) by (euclidean|cosine) distance", caption, re.S).group(1).strip()
    assert shown == listed, f"the query box shows {shown!r} while the table lists the neighbours of {listed!r}"
    assert word in shown, shown


def test_open_this_run_in_the_explorer_switches_the_model(app_page, app_server, e2e_models_dir):
    page = app_page
    name = "e2e-open-in-explorer"
    run_dir = Path(app_server.runs_dir) / name
    shutil.copytree(Path(e2e_models_dir) / "tiny-synthetic", run_dir)  # a finished run in the runs folder
    try:
        open_app_page(page, app_server.url, "train")
        body = main(page)
        watch = body.locator('[data-testid="stSelectbox"]').filter(has_text="Run")
        if _selectbox_value(watch) != name:
            watch.click()
            page.get_by_role("option", name=name, exact=True).click()
            wait_rerun(page)
        body.get_by_role("button", name="Open this run in the explorer").click()
        wait_rerun(page)
        picker = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Model")
        deadline = time.monotonic() + 30
        while _selectbox_value(picker).split(" · ")[0] != name and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert _selectbox_value(picker).split(" · ")[0] == name, f"the sidebar shows {_selectbox_value(picker)!r}"
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Sliders").click()
        wait_idle(page)
        page.wait_for_selector('[data-testid="stMain"] h1')
        wait_idle(page)
        assert_no_error(page)
        assert _selectbox_value(picker).split(" · ")[0] == name, "another page went back to the default model"
        assert f"run={name}" in page.url
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.parametrize("n_values", [9, 21])
def test_traversal_grid_last_column_is_reachable_at_1024x768(projector_page, app_server, n_values: int):
    page = projector_page
    open_app_page(page, app_server.url, "traversals")
    body = main(page)
    if n_values != 9:
        box = body.get_by_role("spinbutton", name="Values", exact=True)
        box.fill(str(n_values))
        box.press("Enter")
        wait_rerun(page)
    assert_no_error(page)
    table = body.locator("table.vae-table").first
    table.wait_for()
    header = table.locator("thead th")
    assert header.count() == n_values + 1
    # Either the grid fits in the main area, or a box between it and the main area scrolls sideways.
    # (scrollIntoView alone proves nothing: it also scrolls a box whose overflow is hidden.)
    layout = table.evaluate(
        """(t) => {
          const main = document.querySelector('[data-testid="stMain"]').getBoundingClientRect();
          const r = t.getBoundingClientRect();
          let scrollable = false;
          for (let e = t.parentElement; e && e.dataset.testid !== 'stMain'; e = e.parentElement) {
            const ox = getComputedStyle(e).overflowX;
            if ((ox === 'auto' || ox === 'scroll') && e.scrollWidth > e.clientWidth + 1) scrollable = true;
          }
          return {fits: r.left >= main.left - 1 && r.right <= main.right + 1, scrollable,
                  table: r.width, main: main.width};
        }"""
    )
    assert layout["fits"] or layout["scrollable"], f"the grid is clipped with no way to scroll: {layout}"
    if n_values == 21:
        assert layout["scrollable"], f"21 columns should need a sideways scroll at 1024 px: {layout}"
    last = header.last
    last.scroll_into_view_if_needed()
    box = last.bounding_box()
    assert box is not None
    viewport = page.viewport_size
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 1, (
        f"the last column ({box}) cannot be brought into the {viewport['width']} px window"
    )
    # and it is not hidden under something else: the point at its centre is the header cell itself
    hit = page.evaluate(
        "([x, y]) => { const e = document.elementFromPoint(x, y); return e ? (e.closest('th') || e).innerText : ''; }",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert hit.strip() == last.inner_text().strip(), f"at the last column's centre: {hit!r}"


def test_sliders_buttons_show_their_whole_label_at_1024x768(projector_page, app_server):
    page = projector_page
    open_app_page(page, app_server.url, "sliders")
    body = main(page)
    for name in ("Reset", "Random", "Link"):
        button = body.get_by_role("button").filter(has_text=re.compile(rf"^\W*{name}|{name}"))
        button.first.wait_for()
        cut = button.first.evaluate(
            "(b) => [...b.querySelectorAll('*')].concat([b]).some("
            "e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflow !== 'visible')"
        )
        text = button.first.inner_text()
        assert not cut and "…" not in text, f"the button {text!r} is cut at 1024×768"


def test_train_refuses_start_while_a_number_field_is_invalid(app_page, app_server):
    page = app_page
    open_app_page(page, app_server.url, "train")
    body = main(page)
    box = body.get_by_role("spinbutton", name="Epochs", exact=True)
    box.fill("99999999")
    box.press("Tab")  # leaves the field: the browser sends what it holds
    wait_rerun(page)
    alert = body.locator('[data-testid="stAlertContentError"]').filter(has_text="Epochs: epochs must be between")
    alert.wait_for(timeout=30_000)
    assert "99999999" in alert.inner_text()
    assert body.get_by_role("button", name="Start training").is_disabled()
    box.fill("3")
    box.press("Tab")
    wait_rerun(page)
    assert body.get_by_role("button", name="Start training").is_enabled()
