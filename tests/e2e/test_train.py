"""Train page in a browser: a tiny run started from the page finishes and shows up in the model picker.

Runs last (file order): the run it adds to the runs dir appears in the picker of later sessions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import assert_no_error, kill_run_process, main, open_app_page, save_screenshot, wait_rerun

pytestmark = pytest.mark.e2e

RUN_NAME = "e2e-browser-run"
FINISH_TIMEOUT_S = 120
# Widget labels of app_pages/train.py and the values of a run that trains in seconds on 2 cores.
TINY = {
    "Max steps (0 = all epochs)": "30",
    "Latent size": "4",
    "Embedding size": "16",
    "Hidden size": "32",
}


def _set_number(page, label: str, value: str) -> None:
    box = main(page).get_by_role("spinbutton", name=label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_rerun(page)
    assert box.input_value() == value, f"{label}: {box.input_value()!r} instead of {value!r}"


def test_a_run_started_from_the_page_finishes_and_is_in_the_picker(app_page, app_server):
    page = app_page
    runs_dir = Path(app_server.runs_dir)
    run_dir = runs_dir / RUN_NAME
    open_app_page(page, app_server.url, "train")
    try:
        for label, value in TINY.items():
            _set_number(page, label, value)
        name = main(page).get_by_role("textbox", name="Run name", exact=True)
        name.fill(RUN_NAME)
        name.press("Enter")
        wait_rerun(page)
        assert_no_error(page)
        main(page).get_by_role("button", name="Start training").click()
        wait_rerun(page)
        assert_no_error(page)

        # The watch fragment polls every 2 s; when the run ends the page reruns and says so.
        done = main(page).get_by_text(re.compile(rf"Run {re.escape(RUN_NAME)} is finished"))
        try:
            done.wait_for(timeout=FINISH_TIMEOUT_S * 1000)
        except Exception as e:  # noqa: BLE001 - say what the run did instead
            status = (run_dir / "status.json").read_text() if (run_dir / "status.json").is_file() else "(none)"
            log = (run_dir / "train.log").read_text()[-2000:] if (run_dir / "train.log").is_file() else "(none)"
            raise AssertionError(f"the run did not finish in {FINISH_TIMEOUT_S} s: {status}\n{log}") from e
        assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
        assert (run_dir / "model.safetensors").is_file()
        wait_rerun(page)
        assert_no_error(page)
        save_screenshot(page, "train-finished")

        picker = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Model")
        picker.click()
        options = page.get_by_role("option")
        options.first.wait_for()
        labels = [t.strip() for t in options.all_inner_texts()]
        page.keyboard.press("Escape")
        assert any(label.split(" · ")[0] == RUN_NAME for label in labels), f"not in the model picker: {labels}"
    finally:
        kill_run_process(run_dir)  # a failed test leaves no training behind
