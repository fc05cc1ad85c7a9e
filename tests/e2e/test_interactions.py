"""What AppTest cannot see: typing, keyboard-driven sliders, plotly's box select, in a real browser."""

from __future__ import annotations

import re

import pytest

from .conftest import (
    DECODED,
    Z_SLIDER,
    assert_no_error,
    main,
    open_app_page,
    press_until_changed,
    save_screenshot,
    set_slider,
    wait_idle,
    wait_rerun,
)

pytestmark = pytest.mark.e2e

SENTENCE = "the pilots will not follow the red horse ."  # a sentence of the built-in corpus
OTHER = "the doctor sees the small cat ."


def _type(page, label: str, text: str) -> None:
    """Fill the text input labelled `label` in the main area and press Enter (a rerun)."""
    box = main(page).get_by_role("textbox", name=label, exact=True)
    box.fill(text)
    box.press("Enter")
    wait_rerun(page)


def test_sliders_moving_one_slider_changes_the_decoded_sentence(app_page, app_server, record_property):
    page = app_page
    open_app_page(page, app_server.url, "sliders")
    _type(page, "Sentence", SENTENCE)
    main(page).get_by_text(f"The model reads: {SENTENCE}").wait_for()
    assert_no_error(page)
    decoded = page.locator(DECODED).first
    before = decoded.inner_text().strip()
    assert before, "no decoded sentence shown"

    sliders = main(page).locator('[data-testid="stSlider"]').filter(has_text=Z_SLIDER)
    assert sliders.count() >= 1
    changed_after = None
    for i in range(sliders.count()):  # the first active dimension normally does it; a collapsed one may not
        thumb = sliders.nth(i).locator('input[type="range"]')
        for key in ("End", "Home"):
            changed_after = press_until_changed(page, thumb, key, before, timeout_ms=10_000)
            if changed_after is not None:
                break
            wait_idle(page, timeout=30, settle=0.2)  # this move decoded the same sentence: try the next one
        if changed_after is not None:
            break
    assert changed_after is not None, f"no slider move changed the decoded sentence {before!r}"
    record_property("slider_to_sentence_ms", round(changed_after * 1000))
    wait_rerun(page)
    assert_no_error(page)
    after = decoded.inner_text().strip()
    assert after != before
    assert main(page).get_by_text(re.compile(r"Decoded from the sliders \([1-9]\d* moved")).count() == 1
    save_screenshot(page, "sliders-moved")


@pytest.mark.parametrize("steps", [5])
def test_interpolation_gives_the_requested_number_of_rows(app_page, app_server, steps: int):
    page = app_page
    open_app_page(page, app_server.url, "interpolation")
    _type(page, "From", SENTENCE)
    _type(page, "To", OTHER)
    set_slider(page, main(page), "Steps (both ends included)", steps, step=1)
    collapse = main(page).locator('[data-testid="stCheckbox"]').filter(has_text="Collapse repeats")
    if collapse.locator('input[type="checkbox"]').is_checked():  # one row per step, repeats included
        collapse.locator("label").click()
        wait_rerun(page)
    assert_no_error(page)
    # app_pages/interpolation.py: the Path tab is an HTML table (ui.widgets.html_table) whose step labels read
    # "i (t=…)"; the last one is t=1.00.
    path = main(page).locator("table.vae-table").filter(has_text="(t=1.00)")
    assert path.count() == 1
    rows = path.locator("tbody tr")
    assert rows.count() == steps
    labels = [rows.nth(i).locator("td").first.inner_text().strip() for i in range(steps)]
    assert labels[0].startswith("0 (t=0.00)") and labels[-1].startswith(f"{steps - 1} (t=1.00)")
    sentences = [rows.nth(i).locator("td").nth(1).inner_text().strip() for i in range(steps)]
    assert all(sentences), f"an empty decoded row: {sentences}"
    save_screenshot(page, "interpolation-path")


def test_latent_map_renders_points_and_box_selection_lists_sentences(app_page, app_server):
    page = app_page
    open_app_page(page, app_server.url, "latent-map")
    body = main(page)
    # Settings live in a form: nothing reruns until "Draw the map". PCA: no numba compile, instant fit;
    # 100 sentences: an SVG scatter (one <path class="point"> per sentence) rather than WebGL.
    set_slider(page, body, "Sentences (a seeded sample", 100, step=10, rerun=False)
    body.locator('[data-testid="stSelectbox"]').filter(has_text="Method").click()
    page.get_by_role("option", name="PCA", exact=True).click()
    body.get_by_role("button", name="Draw the map").click()
    wait_rerun(page)
    assert_no_error(page)
    body.get_by_text(re.compile(r"^PCA 2-D of ")).wait_for()

    chart = body.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').last
    chart.wait_for()
    points = chart.locator(".scatterlayer .point")
    assert points.count() >= 90, f"{points.count()} points drawn, expected ~100"

    # plotly's modebar: pick "Box Select", then drag across the plot area.
    chart.hover()
    chart.locator('.modebar-btn[data-title="Box Select"]').click()
    area = chart.locator(".nsewdrag").first.bounding_box()
    assert area is not None
    x0, y0 = area["x"] + area["width"] * 0.05, area["y"] + area["height"] * 0.05
    x1, y1 = area["x"] + area["width"] * 0.95, area["y"] + area["height"] * 0.95
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(x0 + (x1 - x0) * k / 10, y0 + (y1 - y0) * k / 10)
    page.mouse.up()
    wait_rerun(page)
    assert_no_error(page)

    heading = body.get_by_text(re.compile(r"^Selected: [\d,]+ sentence\(s\)"))
    heading.wait_for(timeout=30_000)
    selected = int(re.search(r"Selected: ([\d,]+)", heading.inner_text()).group(1).replace(",", ""))
    assert 1 <= selected <= points.count()
    table = heading.locator('xpath=following::*[@data-testid="stDataFrame"][1]')  # the selection's table
    table.wait_for()
    grid_rows = table.locator('[role="grid"]').first.get_attribute("aria-rowcount")
    if grid_rows is not None:  # glide-data-grid: header row + data rows
        assert int(grid_rows) - 1 == selected
    save_screenshot(page, "latent-map-selection")
