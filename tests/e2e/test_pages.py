"""Every page in the app's navigation opens in a real browser with no error box; a screenshot of each.

Two model sets: the tiny run the fixture trains, and the repo's shipped models/ (skipped until the
lead has trained them). With VAE_SAVE_DOC_SCREENSHOTS=1 the shipped set's screenshots (1280×800)
are also written to docs/screenshots/ for the README.
"""

from __future__ import annotations

import os
import shutil

import pytest

from .conftest import (
    REPO,
    app_pages,
    assert_no_error,
    has_model_picker,
    main,
    open_app_page,
    save_screenshot,
    serve,
    shipped_models,
    sidebar_nav_titles,
    wait_idle,
    wait_rerun,
    warm_up,
)

pytestmark = pytest.mark.e2e

PAGES = app_pages()
DOC_MAP_TIMEOUT_S = 180  # the README's latent map is a UMAP of the default sample (first fit compiles numba)


@pytest.fixture(scope="module", params=["tiny", "shipped"])
def served(request, tmp_path_factory, chromium_browser):
    """(variant, server): the tiny models dir's server, then one over the repo's models/."""
    if request.param == "tiny":
        yield "tiny", request.getfixturevalue("app_server")
        return
    if not shipped_models():
        pytest.skip("no shipped models under models/ yet (the lead trains them with `make models`)")
    work = tmp_path_factory.mktemp("e2e-shipped")
    # A copy (a few MB): the app caches encodings and maps inside run directories, and a test should
    # leave the repo's models/ as it found it.
    models = shutil.copytree(REPO / "models", work / "models", ignore=shutil.ignore_patterns("cache"))
    with serve(REPO / "app.py", work, models, work / "runs") as server:
        warm_up(server, chromium_browser)
        yield "shipped", server


# Streamlit (1.67) runs a script from a `pages/` folder next to app.py *instead of* app.py (its multipage
# v1 fallback) until some session of the process has called st.navigation; that is why the pages live in
# app_pages/. This test guards it: the first visit to a fresh server by a link gets the router.
def test_first_visit_by_link_runs_the_router(app_server):
    first = app_server.first_visit  # the fixture's first visit, before anything opened the default page
    assert first is not None
    assert first.error is None, first.error
    assert list(first.nav_titles) == [p.title for p in PAGES], f"/{first.url_path} showed the wrong navigation"
    assert first.has_model_picker, f"/{first.url_path}: the sidebar's model picker (app.py) is missing"


@pytest.mark.parametrize("app_page_info", PAGES, ids=[p.slug for p in PAGES])
def test_page_opens_without_error(app_page, served, app_page_info):
    variant, server = served
    open_app_page(app_page, server.url, app_page_info.url_path)
    assert_no_error(app_page)
    assert sidebar_nav_titles(app_page) == [p.title for p in PAGES], "the navigation is not app.py's"
    assert has_model_picker(app_page), "the sidebar's model picker is missing"
    title = main(app_page).locator("h1").first.inner_text()
    assert title.strip(), f"{app_page_info.title}: the page has an empty title"
    doc = variant == "shipped"
    if doc and os.environ.get("VAE_SAVE_DOC_SCREENSHOTS") == "1" and app_page_info.url_path == "latent-map":
        _draw_default_map(app_page)
        assert_no_error(app_page)
    name = app_page_info.slug if variant == "tiny" else f"shipped/{app_page_info.slug}"
    save_screenshot(app_page, name, doc=doc)


def _draw_default_map(page) -> None:
    """For the README: press 'Draw the map' with the page's defaults and wait for the chart."""
    button = main(page).get_by_role("button", name="Draw the map")
    if not button.count():
        return
    button.click()
    wait_rerun(page, timeout=DOC_MAP_TIMEOUT_S)
    chart = main(page).locator('[data-testid="stPlotlyChart"]').last
    chart.wait_for(timeout=30_000)
    chart.scroll_into_view_if_needed()  # the README's 1280×800 view shows the map, not the settings
    wait_idle(page, timeout=30)
