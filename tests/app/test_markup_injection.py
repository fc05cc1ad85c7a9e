"""Issue 19.8: text that is not the app's own never renders as markdown, LaTeX, a link or HTML — on any page.

Runs whose directory name, config.json fields (corpus name, corpus spec, created) and status.json state hold
markup, a safetensors file whose tensor names hold it, and uploaded label files whose name, columns and values
hold it. Every markdown-rendered value of every page (markdown, captions, alerts, headers, metric labels and
values, expander / tab / radio / button / widget labels, toasts) is checked: no payload appears raw, and where
the payload is shown it is shown escaped (ui.safe_text.escape). Charts are checked in their JSON (legend names,
hover text, marker text, ticks): every < of the payload is &lt;. Which Streamlit elements parse markdown and
that the escaped form renders literally was measured in Chromium (see ui/safe_text.py).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.app.conftest import TINY_RUN, open_page
from ui import state
from ui.safe_text import WORD_JOINER, escape
from vae_core.corpus import load_corpus

# One payload of every kind the issue found; no "/" so it can be a directory name too.
PAYLOAD = r"<b>x<b> [x](http:evil.example) $\LaTeX$ **b** :red[x] # h www.example.com a@b.org"
RAW_MARKERS = ("[x](", "$\\LaTeX$", "**b**", "<b>x<b>", ":red[", "# h", "www.example.com", "a@b.org", "http:evil")
CODE_SPAN = re.compile(r"`[^`]*`")
SPEC_RUN = "spec-run"  # a run whose corpus spec is the payload (its corpus is then unavailable)
BAD_WEIGHTS = "bad-weights"  # a run whose safetensors holds a tensor named with the payload


def _copy_run(src: Path, dst: Path, corpus: dict | None = None, state_text: str | None = None) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("cache"))
    config = json.loads((dst / "config.json").read_text(encoding="utf-8"))
    if corpus:
        config["corpus"] = {**config["corpus"], **corpus}
    config["created"] = PAYLOAD
    (dst / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if state_text is not None:
        status = json.loads((dst / "status.json").read_text(encoding="utf-8"))
        status.update(state=state_text, message=PAYLOAD)
        (dst / "status.json").write_text(json.dumps(status), encoding="utf-8")
    return dst


@pytest.fixture
def payload_runs(tiny_run_dir: Path) -> dict[str, Path]:
    runs = Path(os.environ["VAE_RUNS_DIR"])  # set by tiny_models_dir
    good = _copy_run(tiny_run_dir, runs / PAYLOAD, corpus={"name": PAYLOAD}, state_text="finished")
    spec = _copy_run(tiny_run_dir, runs / SPEC_RUN, corpus={"spec": PAYLOAD, "name": PAYLOAD})
    bad = _copy_run(tiny_run_dir, runs / BAD_WEIGHTS)
    save_file({PAYLOAD: np.zeros(2, dtype=np.float32)}, str(bad / "model.safetensors"))
    return {"good": good, "spec": spec, "bad": bad}


def _label_csv(n: int = 60) -> bytes:
    """Test sentences with a payload column name and payload label values."""
    sentences = list(load_corpus("synthetic").test.sentences[:n])
    out = io.StringIO()
    out.write(f'text,"{PAYLOAD}"\n')
    for i, s in enumerate(sentences):
        out.write(f'{s},"{PAYLOAD} {i % 3}"\n')
    return out.getvalue().encode("utf-8")


UPLOAD_NAME = PAYLOAD + ".csv"


# --------------------------------------------------------------------------- what the page renders as markdown


def rendered_markdown(at) -> list[str]:
    """Every string the page hands to Streamlit's markdown renderer (measured in a browser: see ui/safe_text.py)."""
    out: list[str] = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader",
                 "toast"):
        out += [str(e.value) for e in getattr(at, kind)]
    out += [str(m.label) for m in at.metric] + [str(m.value) for m in at.metric]
    out += [str(e.label) for e in at.expander] + [str(t.label) for t in at.tabs]
    for r in at.radio:
        out += [str(r.label), *[str(o) for o in r.options]]
    for kind in ("button", "checkbox", "selectbox", "multiselect", "slider", "text_input", "number_input"):
        out += [str(w.label) for w in getattr(at, kind)]
    return out


def assert_nothing_raw(at) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    bodies = rendered_markdown(at)
    for body in bodies:
        body = CODE_SPAN.sub("", body)  # inside a code span nothing is markdown (ui.safe_text.code)
        for marker in RAW_MARKERS:
            assert marker not in body, (marker, body)
    return bodies


def shown_escaped(bodies: list[str], text: str = PAYLOAD) -> bool:
    return any(escape(text) in b for b in bodies)


def chart_specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):  # legendgroup is an id, never drawn
        return [s for k, v in obj.items() if k != "legendgroup" for s in _strings(v)]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in _strings(v)]
    return []


def assert_charts_escaped(at) -> list[str]:
    """No chart string holds a raw tag of the payload; returns every string that holds the payload (escaped)."""
    found = []
    for spec in chart_specs(at):
        for s in _strings(spec.get("data", [])) + _strings(spec.get("layout", {})):
            assert "<b>x" not in s, s
            if "&lt;b&gt;x" in s:  # labels may be cut (at 40 characters): the start of the tag
                found.append(s)
    return found


def _open(page: str, path: Path | None, **kw):
    session = {state.RUN_PICKER: str(path)} if path is not None else None
    return open_page(page, session=session, **kw)


# --------------------------------------------------------------------------- escape itself


@pytest.mark.parametrize("text", [PAYLOAD, "www.example.com", "see http://evil.example now", "mail a@b.org",
                                  "- item", "+ item", "1986. a year", "    code", "HTTPS://X.ORG"])
def test_escape_breaks_markdown_and_autolinks(text):
    out = escape(text)
    assert "www.example.com" not in out and "@b.org" not in out.replace(WORD_JOINER + "@", "")
    assert not any(m in out for m in RAW_MARKERS)
    for scheme in ("http&#58;//", "HTTPS&#58;//"):
        assert scheme not in out  # a word joiner sits between the scheme and "://"
    assert not out.startswith(("-", "+", " ")) and not out[:5].rstrip("0123456789").startswith(".")


# --------------------------------------------------------------------------- every page


def test_overview_shows_run_name_config_fields_and_status_escaped(tiny_models_dir, payload_runs):
    at = _open("app_pages/overview.py", payload_runs["good"])
    bodies = assert_nothing_raw(at)
    assert any(h.value == f"Model: {escape(PAYLOAD)}" for h in at.header), [h.value for h in at.header]
    assert any(m.value == escape(PAYLOAD) for m in at.metric), "the corpus name, escaped"
    caption = next(c.value for c in at.caption if c.value.startswith("Corpus spec"))
    assert f"created {escape(PAYLOAD)}" in caption and caption.endswith(f"directory: {escape(payload_runs['good'])}")
    assert shown_escaped(bodies)


def test_overview_shows_a_payload_corpus_spec_escaped(tiny_models_dir, payload_runs):
    at = _open("app_pages/overview.py", payload_runs["spec"])
    assert_nothing_raw(at)
    caption = next(c.value for c in at.caption if c.value.startswith("Corpus spec"))
    assert caption.startswith(f"Corpus spec: {escape(PAYLOAD)} ·")


def test_tensor_names_in_a_load_error_are_escaped(tiny_models_dir, payload_runs):
    at = _open("app_pages/sliders.py", payload_runs["bad"])
    assert_nothing_raw(at)
    errors = [e.value for e in at.error]
    assert any("Cannot open the run" in e for e in errors), errors


@pytest.mark.parametrize("page", ["app_pages/sliders.py", "app_pages/traversals.py",
                                  "app_pages/interpolation.py"])
def test_explore_pages_render_nothing_raw_for_a_payload_run(tiny_models_dir, payload_runs, page):
    at = _open(page, payload_runs["good"])
    assert not at.error, [e.value for e in at.error]
    assert_nothing_raw(at)
    assert_charts_escaped(at)


def test_train_page_shows_the_watched_run_escaped(tiny_models_dir, payload_runs):
    at = _open("app_pages/train.py", None)
    at.selectbox(key="train_watch_run").set_value(PAYLOAD).run()
    assert_nothing_raw(at)
    assert any(s.value.startswith(f"Run {escape(PAYLOAD)} is finished") for s in at.success), at.success
    assert_charts_escaped(at)


def test_compare_page_shows_run_names_escaped_in_text_and_charts(tiny_models_dir, payload_runs):
    at = open_page("app_pages/compare.py", session={"compare_runs": [TINY_RUN, PAYLOAD]})
    assert_nothing_raw(at)
    assert any(s.value == escape(PAYLOAD) for s in at.subheader), [s.value for s in at.subheader]
    escaped = assert_charts_escaped(at)
    assert escaped, "the run's name reaches the curves' legend and the rate-distortion plane, escaped"


def _upload(at, key: str):
    at.file_uploader(key=key).set_value((UPLOAD_NAME, _label_csv(), "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_latent_map_label_file_name_columns_and_values_are_escaped(tiny_models_dir, payload_runs):
    at = _upload(_open("app_pages/latent_map.py", payload_runs["good"]), "w_map_upload")
    at.selectbox(key="w_map_method").set_value("pca")
    at.button[0].click()  # the form's "Draw the map"
    at.run()
    at.selectbox(key="w_map_color").set_value(PAYLOAD).run()
    bodies = assert_nothing_raw(at)
    assert shown_escaped(bodies, UPLOAD_NAME), "the file name in the map's caption, escaped"
    escaped = assert_charts_escaped(at)
    legend = [t["name"] for spec in chart_specs(at) for t in spec["data"] if t.get("customdata") is not None]
    assert any("&lt;b&gt;x" in n for n in legend), legend
    assert escaped


def test_disentanglement_label_file_name_and_columns_are_escaped(tiny_models_dir, payload_runs):
    at = _upload(_open("app_pages/disentanglement.py", payload_runs["good"]), "w_dis_upload")
    bodies = assert_nothing_raw(at)
    assert any(c.value == f"Measured on {escape(UPLOAD_NAME)}." or escape(UPLOAD_NAME) in c.value
               for c in at.caption), bodies
    assert assert_charts_escaped(at), "the label column reaches the MI heat map and the probe bars, escaped"
