"""Odd text typed into every page that takes text: never an exception box, always a message or a
result, and whatever is shown back is escaped (no raw tag, markdown directive or bidi override).

Each page is opened once and every input is typed in turn (a rerun each), so the whole grid stays fast.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.app.conftest import TINY_RUN

# input id -> text. LONG is set with set_value: the browser's max_chars is not a server-side check.
ODD_INPUTS = {
    "empty": "",
    "whitespace": "  \t \u3000 ",
    "oov": "zyzzyva quixotic flibbertigibbet",
    "10k_words": " ".join(["word"] * 10_000),
    "emoji": "😀 🚀 👩\u200d👩\u200d👧 🏳️\u200d🌈 the doctor",
    "scripts": "مرحبا بالعالم 你好世界 こんにちは наука",
    "combining": "the doc\u0301tor se\u0308\u0308\u0308es a\u20dd",
    "rtl_override": "the \u202edoctor sees\u202c the cat \u2067x\u2069",
    "zero_width": "the doc\u200dtor sees\u200b the\ufeff cat",
    "control": "the\x00 doctor \x1b[31msees\x1b[0m the cat\x07\x7f",
    "script_tag": "<script>alert(1)</script> the doctor sees the cat",
    "img_tag": "<img src=x onerror=alert(1)> the pilots follow",
    "markdown": "$x$ :red[x] **b** [link](javascript:alert(1)) # h `code`",
}
SUBSET = ("empty", "whitespace", "oov", "10k_words", "emoji", "rtl_override", "control", "script_tag", "img_tag",
          "markdown")

# Tags the pages themselves write into unsafe_allow_html markdown; any other tag came from user text.
OWN_TAGS = {"div", "span", "mark", "table", "thead", "tbody", "tr", "th", "td", "i", "b", "br", "style"}
TAG = re.compile(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9-]*)")
# What must never reach a rendered body raw: markdown/LaTeX directives from the inputs and bidi controls.
RAW_MARKERS = (":red[x]", "$x$", "**b**", "](javascript", "`code`")
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _html_bodies(at) -> list[str]:
    return [m.value for m in list(at.markdown) + list(at.caption) if getattr(m, "allow_html", False)]


def _all_bodies(at) -> list[str]:
    out = [m.value for m in list(at.markdown) + list(at.caption)]
    for kind in (at.info, at.warning, at.error, at.success):
        out.extend(e.value for e in kind)
    return out


def problems(at, label: str, has_result) -> list[str]:
    """What is wrong with the page after typing `label`: exception, neither message nor result, raw echo."""
    out = []
    if at.exception:
        out.append(f"{label}: exception {[e.value for e in at.exception][:1]}")
        return out
    if not (at.info or at.warning or at.error or has_result(at)):
        out.append(f"{label}: neither a message nor a result")
    if label in ("empty", "whitespace") and not (at.info or any(c.value.startswith("Type") for c in at.caption)):
        out.append(f"{label}: no message asking for a sentence")
    if label == "oov" and not any("zyzzyva" in w.value and "does not know" in w.value for w in at.warning):
        out.append(f"{label}: the unknown words are not listed in a warning")
    for body in _html_bodies(at):
        foreign = {t.lower() for t in TAG.findall(body)} - OWN_TAGS
        if foreign:
            out.append(f"{label}: raw tag(s) {sorted(foreign)} in HTML markdown: {body[:200]!r}")
    for body in _all_bodies(at):
        for marker in RAW_MARKERS:
            if marker in body:
                out.append(f"{label}: raw {marker!r} in a rendered body: {body[:200]!r}")
        if BIDI.search(body):
            out.append(f"{label}: a bidi control character in a rendered body: {body[:200]!r}")
    return out


def type_each(at, keys: tuple[str, ...], inputs, has_result) -> list[str]:
    """Set every text box in `keys` to each input in turn, rerun, collect problems."""
    found = []
    for name in inputs:
        for key in keys:
            widget = at.text_area(key=key) if key.endswith("place") else at.text_input(key=key)
            widget.set_value(ODD_INPUTS[name])
        at.run()
        found += problems(at, name, has_result)
    return found


def _has_block(at) -> bool:
    return any('class="vae-sentence"' in m.value for m in at.markdown)


def _has_table(at) -> bool:
    return any('class="vae-table"' in m.value for m in at.markdown)


# --------------------------------------------------------------------------- pages


def test_sliders_every_odd_input(open_app):
    at = open_app("app_pages/sliders.py")
    assert not at.exception
    found = type_each(at, ("w_sliders_text",), ODD_INPUTS, _has_block)
    assert not found, "\n".join(found)
    # The 10,000-word text was cut to a sentence before it reached the model (and the URL).
    at.text_input(key="w_sliders_text").set_value(ODD_INPUTS["10k_words"]).run()
    assert len(at.query_params.get("s", "")) <= 500


def test_sliders_echo_is_escaped_not_interpreted(open_app):
    """The OOV warning and 'the model reads' line show typed HTML/markdown as entities, not markup."""
    at = open_app("app_pages/sliders.py")
    at.text_input(key="w_sliders_text").set_value(ODD_INPUTS["script_tag"] + " " + ODD_INPUTS["markdown"]).run()
    bodies = "\n".join(_all_bodies(at))
    assert "&lt;script&gt;" in bodies  # shown, escaped
    assert "<script" not in bodies.lower() and ":red[" not in bodies


@pytest.mark.slow
def test_interpolation_both_sentences_and_arithmetic(open_app):
    at = open_app("app_pages/interpolation.py")
    assert not at.exception
    found = type_each(at, ("w_interp_a_text", "w_interp_b_text"), SUBSET, _has_table)
    found += type_each(at, ("w_arith_a_text", "w_arith_b_text", "w_arith_c_text"), SUBSET, _has_table)
    assert not found, "\n".join(found)


def test_traversals_sentence(open_app):
    at = open_app("app_pages/traversals.py")
    assert not at.exception
    found = type_each(at, ("w_trav_text",), SUBSET, _has_table)
    assert not found, "\n".join(found)


@pytest.mark.slow
def test_compare_sentences(open_app, tiny_run_dir):
    """The Compare page's sentence section needs two runs: a copy of the tiny run in the runs folder."""
    shutil.copytree(tiny_run_dir, Path(os.environ["VAE_RUNS_DIR"]) / "tiny-copy",
                    ignore=shutil.ignore_patterns("cache"))
    at = open_app("app_pages/compare.py")
    assert not at.exception
    assert set(at.multiselect(key="compare_runs").value) == {TINY_RUN, "tiny-copy"}
    found = type_each(at, ("w_compare_s1_text", "w_compare_s2_text"), SUBSET, _has_block)
    assert not found, "\n".join(found)


@pytest.mark.slow
def test_latent_map_placement_text_area_and_search(open_app):
    at = open_app("app_pages/latent_map.py")
    at.selectbox(key="w_map_method").set_value("pca")
    next(b for b in at.button if b.label == "Draw the map").click()
    at.run()
    assert not at.exception and at.get("plotly_chart")

    def spec(at) -> dict:
        return json.loads(at.get("plotly_chart")[0].proto.spec)

    def placed(at) -> bool:  # the sentences are on the map, or the page asks for some
        return any(str(t.get("name", "")).startswith("your sentences") for t in spec(at)["data"]) or any(
            c.value.startswith("Type sentences") for c in at.caption)

    inputs = {**ODD_INPUTS, "lines": "\n".join(ODD_INPUTS[k] for k in SUBSET)}
    found = []
    for name, text in inputs.items():
        at.text_area(key="w_map_place").set_value(text).run()
        found += problems(at, name, placed)
        if not at.exception and ("<script" in json.dumps(spec(at)) or "<img" in json.dumps(spec(at))):
            found.append(f"{name}: raw tag in the map's hover text")
    at.text_area(key="w_map_place").set_value("").run()
    for name in SUBSET:  # the search box (200 characters at most in the browser; longer is set anyway)
        at.text_input(key="w_map_search").set_value(ODD_INPUTS[name]).run()
        found += problems(at, f"search {name}", lambda at: bool(at.get("plotly_chart")))
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------- echoes of uploaded text

MARKUP_SENTENCES = "\n".join(
    ["text,topic"] + [f"the cat :red[x] sat $x$ on mat {i} .,{'ab'[i % 2]}" for i in range(20)])


def test_latent_map_search_echo_of_matching_markup_is_escaped(open_app):
    at = open_app("app_pages/latent_map.py")
    at.file_uploader(key="w_map_upload").set_value(("mine.csv", MARKUP_SENTENCES.encode(), "text/csv")).run()
    assert at.radio(key="w_map_source").value == "upload"
    at.selectbox(key="w_map_method").set_value("pca")
    next(b for b in at.button if b.label == "Draw the map").click()
    at.run()
    at.text_input(key="w_map_search").set_value(":red[x] sat $x$").run()
    assert not at.exception
    assert any("contain" in c.value for c in at.caption), "the search found the uploaded sentences"
    found = problems(at, "search markup", lambda at: True)
    assert not found, "\n".join(found)


def test_label_upload_error_echoes_the_file_name_escaped(open_app):
    at = open_app("app_pages/latent_map.py")
    at.file_uploader(key="w_map_upload").set_value((":red[x] **b**.csv", b"text,b\nx y,2,3\n", "text/csv")).run()
    assert not at.exception and at.error
    found = problems(at, "file name", lambda at: True)
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------- issue 20.7: text over the length limit

LONG_SENTENCE = ("the doctor sees the small cat and the pilots follow the red horse . " * 9).strip()  # ~600 chars


def _cut_warnings(at) -> list[str]:
    return [w.value for w in at.warning if "only the first 500 characters are used" in w.value]


def test_sliders_sentence_over_500_characters_is_cut_and_says_so(open_app):
    """In the browser a max_chars box silently drops a longer paste (the old sentence stays); now the box takes it,
    the page uses its first 500 characters and says so."""
    assert len(LONG_SENTENCE) > 500
    at = open_app("app_pages/sliders.py")
    box = at.text_input(key="w_sliders_text")
    assert box.proto.max_chars == 0, "no browser-side limit that drops a paste"
    box.set_value(LONG_SENTENCE).run()
    assert not at.exception
    warnings = _cut_warnings(at)
    assert len(warnings) == 1 and f"has {len(LONG_SENTENCE):,}" in warnings[0], [w.value for w in at.warning]
    assert _has_block(at)
    assert at.query_params.get("s", "").startswith("the doctor sees") and len(at.query_params["s"]) <= 500
    at.text_input(key="w_sliders_text").set_value("the doctor sees the small cat .").run()
    assert not _cut_warnings(at), "a sentence within the limit gets no warning"


def test_interpolation_sentences_over_500_characters_are_cut_and_say_so(open_app):
    at = open_app("app_pages/interpolation.py")
    for key in ("w_interp_a_text", "w_interp_b_text"):
        assert at.text_input(key=key).proto.max_chars == 0
    at.text_input(key="w_interp_b_text").set_value(LONG_SENTENCE).run()
    assert not at.exception
    warnings = _cut_warnings(at)
    assert len(warnings) == 1 and _has_table(at), [w.value for w in at.warning]


def test_latent_map_long_search_and_placed_lines_are_cut_and_say_so(open_app):
    at = open_app("app_pages/latent_map.py")
    at.selectbox(key="w_map_method").set_value("pca")
    next(b for b in at.button if b.label == "Draw the map").click()
    at.run()
    assert at.text_input(key="w_map_search").proto.max_chars == 0
    at.text_input(key="w_map_search").set_value("the " * 80).run()  # 320 characters
    assert not at.exception
    assert any("Only the first 200 characters of the search" in w.value for w in at.warning)
    lines = [LONG_SENTENCE] + [f"the doctor sees the cat {i} ." for i in range(25)]
    at.text_area(key="w_map_place").set_value("\n".join(lines)).run()
    assert not at.exception
    notes = [w.value for w in at.warning if "are placed" in w.value]
    assert len(notes) == 1 and "first 20 of 26 lines" in notes[0] and "Line(s) 1 cut" in notes[0], notes
