"""Issue 20.7 in a real browser: a sentence pasted over 500 characters used to be dropped silently (Streamlit's
text box ignores an edit that makes its value longer than max_chars, so the old sentence stayed)."""

from __future__ import annotations

import re

import pytest

from .conftest import assert_no_error, main, open_app_page, wait_rerun

pytestmark = pytest.mark.e2e

LONG = ("the doctor sees the small cat and the pilots follow the red horse . " * 9).strip()  # 611 characters


def test_a_pasted_sentence_over_500_characters_is_taken_cut_and_said(app_page, app_server):
    assert len(LONG) > 500
    page = app_page
    open_app_page(page, app_server.url, "sliders")
    box = main(page).get_by_role("textbox", name="Sentence", exact=True)
    old = box.input_value()
    box.click()
    box.press("Control+a")
    page.keyboard.insert_text(LONG)  # what a paste does: one input event with the whole text
    box.press("Enter")
    wait_rerun(page)
    assert box.input_value() == LONG != old, "the pasted text was dropped"
    main(page).get_by_text(re.compile("only the first 500 characters are used")).wait_for()
    main(page).get_by_text(re.compile(r"^The model reads: the doctor sees the small cat")).first.wait_for()
    assert_no_error(page)
