"""Issue 19.8 in a real browser: a run whose folder name and config.json hold markup is shown literally.

AppTest sees the strings handed to Streamlit; only a browser shows what its markdown renderer makes of them
(GFM autolinks are found in the decoded text, so an entity alone does not stop `www.example.com` from becoming a
link). Here the Overview's header, corpus metric and caption hold no link, emphasis, code, LaTeX or colour of
the payload and read exactly as the payload; the Compare page's chart legend shows the tag as text.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import TINY_RUN, assert_no_error, open_app_page, serve, wait_idle

REPO_APP = Path(__file__).resolve().parents[2] / "app.py"
PAYLOAD = r"<b>x<b> [x](http:evil.example) $\LaTeX$ **b** :red[x] # h www.example.com a@b.org https:x"

# For one element: its text (word joiners removed) and every markup it holds that is not plain text.
_INSPECT = """(el) => {
  const bad = [];
  el.querySelectorAll("a").forEach(a => { const h = a.getAttribute("href") || "";
    if (!h.startsWith("#")) bad.push("link " + h); });  // "#…": Streamlit's own header anchor
  el.querySelectorAll("strong, em, del, code, h1, h3, h4, b, .katex").forEach(e => bad.push(e.tagName));
  el.querySelectorAll("span[style*=color]").forEach(e => bad.push("colour"));
  return {text: el.innerText.replaceAll("\\u2060", ""), bad};  // U+2060: ui.safe_text.WORD_JOINER
}"""


@pytest.fixture(scope="module")
def payload_server(e2e_models_dir, tmp_path_factory):
    """The app over a models dir holding the tiny run and a copy of it named with the payload (the default)."""
    work = tmp_path_factory.mktemp("e2e-markup")
    models = work / "models"
    models.mkdir()
    shutil.copytree(e2e_models_dir / TINY_RUN, models / TINY_RUN, ignore=shutil.ignore_patterns("cache"))
    run = models / PAYLOAD
    shutil.copytree(e2e_models_dir / TINY_RUN, run, ignore=shutil.ignore_patterns("cache"))
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    config["corpus"]["name"] = PAYLOAD
    config["created"] = PAYLOAD
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (models / "DEFAULT").write_text(PAYLOAD + "\n", encoding="utf-8")
    with serve(REPO_APP, work, models, work / "runs") as server:
        yield server


def test_overview_shows_the_payload_run_literally(payload_server, app_page):
    open_app_page(app_page, payload_server.url)
    assert_no_error(app_page)
    main = app_page.locator('[data-testid="stMain"]')
    header = main.locator("h2", has_text="Model:").first
    metric = main.locator('[data-testid="stMetric"]', has_text="Corpus").first
    caption = main.locator('[data-testid="stCaptionContainer"]', has_text="Corpus spec").first
    for name, element in (("header", header), ("corpus metric", metric), ("caption", caption)):
        seen = element.evaluate(_INSPECT)
        assert not seen["bad"], (name, seen)
        assert PAYLOAD in seen["text"], (name, seen["text"])
    links = main.evaluate("m => [...m.querySelectorAll('a')].map(a => a.getAttribute('href'))")
    outside = [h for h in links if h and not h.startswith("#")]  # "#…": Streamlit's header anchors
    assert not [h for h in outside if "evil" in h or "example.com" in h or h.startswith("mailto:")], links


def test_compare_legend_shows_the_tag_as_text(payload_server, app_page):
    open_app_page(app_page, payload_server.url, "compare")
    wait_idle(app_page)
    assert_no_error(app_page)
    legend = app_page.locator('[data-testid="stMain"] .legend .legendtext')
    legend.first.wait_for(timeout=30_000)
    texts = [e.text_content() or "" for e in legend.all()]
    assert any("<b>x<b>" in t for t in texts), texts
    bold = app_page.locator('[data-testid="stMain"] .legend tspan[style*="bold"]')
    assert bold.count() == 0, "a <b> of a run name reached the legend as markup"
