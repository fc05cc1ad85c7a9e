"""Links in a real browser (issue 20, "Views that cannot be shared or kept"): a link opened in a fresh page
restores Interpolation's slerp and step count and Traversals' controls, and the address bar follows a
slider move on Sliders (written from the slider fragment, which AppTest does not run on its own)."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from .conftest import Z_SLIDER, assert_no_error, main, open_app_page, slider_input, wait_idle

pytestmark = pytest.mark.e2e

A = "the doctor sees the small cat ."
B = "did the pilots not follow the red horse ?"


def _query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlparse(page.url).query).items()}


def _wait_query(page, key: str, predicate, timeout_s: float = 20) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        qp = _query(page)
        if key in qp and predicate(qp[key]):
            return qp
        if time.monotonic() > deadline:
            raise AssertionError(f"the address bar never got the expected {key!r}: {page.url}")
        page.wait_for_timeout(100)


def test_interpolation_link_restores_slerp_and_steps(app_page, app_server):
    page = app_page
    open_app_page(page, app_server.url, "interpolation?" + urlencode({"s": A, "s2": B, "interp": "slerp",
                                                                       "steps": "11"}))
    assert_no_error(page)
    body = main(page)
    slerp = body.locator('[data-testid="stRadio"]').filter(has_text="Method").get_by_role("radio", name="slerp")
    assert slerp.is_checked()
    assert slider_input(body, "Steps (both ends included)").first.get_attribute("value") == "11"
    assert body.get_by_role("textbox", name="From", exact=True).input_value() == A
    assert body.get_by_role("textbox", name="To", exact=True).input_value() == B
    # 11 steps: the Path table's step labels run to t=1.00 at step 10.
    assert body.get_by_text("10 (t=1.00)").count() >= 1
    qp = _query(page)
    assert qp["interp"] == "slerp" and qp["steps"] == "11" and qp["s2"] == B


def test_traversals_link_restores_its_controls(app_page, app_server):
    page = app_page
    query = {"s": B, "dims": "2,0", "mode": "relative", "span": "1.5", "n": "5"}
    open_app_page(page, app_server.url, "traversals?" + urlencode(query))
    assert_no_error(page)
    body = main(page)
    assert body.get_by_role("textbox", name="Sentence", exact=True).input_value() == B
    dims = body.locator('[data-testid="stMultiSelect"]').filter(has_text="Dimensions (rows)")
    chosen = dims.inner_text()
    assert "z0" in chosen and "z2" in chosen and "z1 " not in chosen and "z3" not in chosen
    relative = body.locator('[data-testid="stRadio"]').filter(has_text="Values").get_by_role(
        "radio", name="Relative: posterior mean ± span × posterior std")
    assert relative.is_checked()
    numbers = body.locator('[data-testid="stNumberInput"]')
    assert numbers.filter(has_text="Span").locator("input").input_value() == "1.50"
    assert numbers.filter(has_text="Values").locator("input").input_value() == "5"
    assert body.get_by_text("μ+1.50σ").count() >= 1  # the grid's last column: span 1.5, relative
    qp = _query(page)
    assert qp["mode"] == "relative" and qp["n"] == "5" and qp["dims"] in ("0,2", "2,0")


def test_address_bar_follows_a_slider_move(app_page, app_server):
    page = app_page
    open_app_page(page, app_server.url, "sliders?" + urlencode({"s": A}))
    assert_no_error(page)
    before = _wait_query(page, "z", lambda v: True)["z"]
    slider = main(page).locator('[data-testid="stSlider"]').filter(has_text=Z_SLIDER).first
    d = int(re.match(r"z(\d+)", slider.inner_text().strip()).group(1))  # sliders are ordered by KL, not by d
    thumb = slider.locator('input[type="range"]')
    thumb.focus()
    thumb.press("End")  # to +4.00: one slider move, one fragment rerun
    qp = _wait_query(page, "z", lambda v: v != before)
    assert qp["z"].split(",")[d] == "4.00", (d, qp["z"])
    assert qp["s"] == A
    wait_idle(page)
    assert_no_error(page)
