"""Every page's state in its link (issue 20, "Views that cannot be shared or kept"), and named bookmarks.

Per page: query parameters → the widgets show those values; a widget change → st.query_params follows;
a bad value → ignored with a toast, the page still works. Bookmarks: save / list / open / delete from the
sidebar panel, and a malformed bookmarks.json reported without breaking the app.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ui import state

SLIDERS = "app_pages/sliders.py"
INTERP = "app_pages/interpolation.py"
TRAV = "app_pages/traversals.py"
MAP = "app_pages/latent_map.py"
A = "the doctor sees the small cat ."
B = "did the pilots not follow the red horse ?"


def _toasts(at) -> str:
    return "\n".join(t.value for t in at.toast)


def _qp(at) -> dict[str, str]:
    return {k: at.query_params[k] for k in at.query_params}


# --------------------------------------------------------------------------- decoding settings (sidebar)


def test_decode_settings_restored_from_the_link_and_written_back(open_app, assert_page_ok):
    at = open_app(SLIDERS, query={"s": A, "dec": "sample", "temp": "0.7", "topk": "5", "seed": "42"})
    assert_page_ok(at)
    assert at.sidebar.radio(key=state.DECODE_STRATEGY).value == "sample"
    assert at.sidebar.slider(key=state.DECODE_TEMPERATURE).value == 0.7
    assert at.sidebar.number_input(key=state.DECODE_TOP_K).value == 5
    assert at.sidebar.number_input(key=state.DECODE_SEED).value == 42
    assert _qp(at)["dec"] == "sample" and _qp(at)["temp"] == "0.7"
    at.sidebar.radio(key=state.DECODE_STRATEGY).set_value("beam").run()
    assert _qp(at)["dec"] == "beam"
    at.sidebar.slider(key=state.DECODE_BEAM).set_value(7).run()
    assert _qp(at)["beam"] == "7"
    at.sidebar.radio(key=state.DECODE_STRATEGY).set_value("greedy").run()
    assert "dec" not in _qp(at)  # the default is left out of the link


def test_bad_decode_values_are_ignored_with_a_toast(open_app, assert_page_ok):
    at = open_app(None, query={"dec": "wild", "temp": "9", "beam": "x", "maxlen": "20"})  # the first run reads it
    assert_page_ok(at)
    toasts = _toasts(at)
    assert "dec" in toasts and "temp" in toasts and "beam" in toasts and "ignored" in toasts
    at.switch_page(SLIDERS).run()
    assert_page_ok(at)
    assert at.sidebar.radio(key=state.DECODE_STRATEGY).value == "greedy"
    assert at.sidebar.slider(key=state.DECODE_TEMPERATURE).value == 1.0
    assert at.sidebar.slider(key=state.DECODE_MAX_LEN).value == 20  # the good one is kept


def test_decode_link_bounds_are_the_sidebar_widgets_bounds(open_app):
    at = open_app()
    keys = {"beam": state.DECODE_BEAM, "temp": state.DECODE_TEMPERATURE, "topp": state.DECODE_TOP_P,
            "maxlen": state.DECODE_MAX_LEN}
    widgets = {name: at.sidebar.slider(key=key) for name, key in keys.items()}
    for name, w in widgets.items():
        assert (w.min, w.max) == state.DECODE_BOUNDS[name], name
    for name, key in (("topk", state.DECODE_TOP_K), ("seed", state.DECODE_SEED)):
        w = at.sidebar.number_input(key=key)
        assert (w.min, w.max) == state.DECODE_BOUNDS[name], name


# --------------------------------------------------------------------------- Sliders


def test_sliders_link_and_bad_z(open_app, assert_page_ok):
    at = open_app(SLIDERS, query={"s": A, "z": "a,b,c,d"})
    assert_page_ok(at)
    assert at.text_input(key="w_sliders_text").value == A
    assert "z" in _toasts(at)
    at.slider(key="w_z_0").set_value(1.5).run()
    assert _qp(at)["z"].split(",")[0] == "1.50"
    assert _qp(at)["s"] == A


def test_a_page_drops_the_parameters_of_other_pages(open_app):
    at = open_app(SLIDERS, query={"s": A, "s2": B, "steps": "12", "dims": "1"})
    qp = _qp(at)
    assert "s2" not in qp and "steps" not in qp and "dims" not in qp
    assert qp["s"] == A and "run" in qp


# --------------------------------------------------------------------------- Interpolation


def _path_table(at):
    return next(df.value for df in at.dataframe if "t" in df.value.columns)


def test_interpolation_link_restores_method_steps_and_collapse(open_app, assert_page_ok):
    at = open_app(INTERP, query={"s": A, "s2": B, "interp": "slerp", "steps": "12", "collapse": "0"})
    assert_page_ok(at)
    assert at.text_input(key="w_interp_a_text").value == A
    assert at.text_input(key="w_interp_b_text").value == B
    assert at.radio(key="w_interp_method").value == "slerp"
    assert at.slider(key="w_interp_steps").value == 12
    assert at.checkbox(key="w_interp_collapse").value is False
    assert len(_path_table(at)) == 12
    assert not _toasts(at)


def test_interpolation_changes_are_written_to_the_link(open_app):
    at = open_app(INTERP)
    assert "interp" not in _qp(at) and "steps" not in _qp(at)  # defaults are left out
    at.slider(key="w_interp_steps").set_value(5).run()
    assert _qp(at)["steps"] == "5"
    at.radio(key="w_interp_method").set_value("slerp").run()
    assert _qp(at)["interp"] == "slerp"
    at.checkbox(key="w_interp_collapse").uncheck().run()
    assert _qp(at)["collapse"] == "0"
    at.text_input(key="w_interp_b_text").input(B).run()
    assert _qp(at)["s2"] == B


def test_interpolation_bad_link_values_are_ignored(open_app, assert_page_ok):
    at = open_app(INTERP, query={"s": A, "s2": B, "interp": "cubic", "steps": "99", "collapse": "maybe"})
    assert_page_ok(at)
    assert at.radio(key="w_interp_method").value == "lerp"
    assert at.slider(key="w_interp_steps").value == 8
    assert at.checkbox(key="w_interp_collapse").value is True
    toasts = _toasts(at)
    assert all(name in toasts for name in ("interp", "steps", "collapse"))
    assert len(_path_table(at)) == 8


# --------------------------------------------------------------------------- Traversals


def test_traversals_link_restores_every_control(open_app, assert_page_ok):
    query = {"s": B, "dims": "3,1", "mode": "relative", "span": "1.5", "n": "5"}
    at = open_app(TRAV, query=query)
    assert_page_ok(at)
    assert at.text_input(key="w_trav_text").value == B
    assert sorted(at.multiselect(key="w_trav_dims").value) == [1, 3]
    assert at.radio(key="w_trav_mode").value == "relative"
    assert at.number_input(key="w_trav_span").value == 1.5
    assert at.number_input(key="w_trav_n").value == 5
    table = next(df.value for df in at.dataframe if "dim" in df.value.columns)
    assert sorted(table["dim"]) == ["z1", "z3"]
    assert sum(c.startswith("μ") for c in table.columns) == 5
    at.number_input(key="w_trav_n").set_value(7).run()
    assert _qp(at)["n"] == "7" and _qp(at)["mode"] == "relative" and _qp(at)["span"] == "1.5"
    at.radio(key="w_trav_start").set_value("prior").run()
    assert _qp(at)["start"] == "prior"


def test_traversals_link_with_a_dimension_the_run_does_not_have(open_app, assert_page_ok):
    at = open_app(TRAV, query={"dims": "1,9", "n": "1", "span": "nan"})  # the tiny run has 4 dimensions
    assert_page_ok(at)
    assert at.number_input(key="w_trav_n").value == 9
    assert at.number_input(key="w_trav_span").value == 3.0
    assert 9 not in at.multiselect(key="w_trav_dims").value
    toasts = _toasts(at)
    assert "dims" in toasts and "n" in toasts and "span" in toasts


# --------------------------------------------------------------------------- Latent map


def test_latent_map_link_draws_that_map(open_app, assert_page_ok):
    at = open_app(MAP, query={"method": "pca", "n": "40", "mdims": "2", "mseed": "3", "q": "doctor"})
    assert_page_ok(at)
    assert at.selectbox(key="w_map_method").value == "pca"
    assert at.slider(key="w_map_n").value == 40
    assert at.text_input(key="w_map_search").value == "doctor"
    assert any("PCA 2-D" in c.value for c in at.caption)  # drawn from the link, without pressing Draw
    qp = _qp(at)
    assert qp["method"] == "pca" and qp["n"] == "40" and qp["mseed"] == "3" and qp["q"] == "doctor"
    at.text_input(key="w_map_search").input("horse").run()
    assert _qp(at)["q"] == "horse"
    color = at.selectbox(key="w_map_color")
    other = next(o for o in color.options if o != color.value)
    color.set_value(other).run()
    assert _qp(at)["color"] == other


def test_latent_map_bad_link_is_ignored(open_app, assert_page_ok):
    at = open_app(MAP, query={"method": "umapx", "mdims": "4", "nn": "-1"})
    assert_page_ok(at)
    toasts = _toasts(at)
    assert "method" in toasts and "mdims" in toasts and "nn" in toasts
    assert at.selectbox(key="w_map_method").value == "umap"
    assert any("Draw the map" in i.value for i in at.info)  # no map fitted for a link it could not read


# --------------------------------------------------------------------------- bookmarks


def _bookmarks_file() -> Path:
    return Path(os.environ["VAE_RUNS_DIR"]) / "bookmarks.json"


def test_bookmarks_save_list_open_delete(open_app, assert_page_ok):
    at = open_app(INTERP, query={"s": A, "s2": B, "interp": "slerp", "steps": "6"})
    at.sidebar.text_input(key="w_bookmark_name").input("lesson <b>1</b>").run()
    at.sidebar.button(key="w_bookmark_save").click().run()
    assert_page_ok(at)
    saved = json.loads(_bookmarks_file().read_text(encoding="utf-8"))["bookmarks"]
    assert [b["name"] for b in saved] == ["lesson <b>1</b>"]
    assert saved[0]["page"] == "interpolation"
    assert saved[0]["params"]["interp"] == "slerp" and saved[0]["params"]["steps"] == "6"
    assert saved[0]["params"]["s2"] == B and "run" in saved[0]["params"]
    assert any("Saved" in s.value and "&lt;b&gt;" in s.value for s in at.sidebar.success)  # escaped
    assert at.sidebar.selectbox(key="w_bookmark_pick").value == "lesson <b>1</b>"

    # Elsewhere, with other settings: opening the bookmark brings the whole view back.
    at.switch_page(SLIDERS).run()
    at.text_input(key="w_sliders_text").input("the cat sleeps .").run()
    at.sidebar.button(key="w_bookmark_open").click().run()
    assert_page_ok(at)
    assert at.radio(key="w_interp_method").value == "slerp"
    assert at.slider(key="w_interp_steps").value == 6
    assert at.text_input(key="w_interp_a_text").value == A
    assert at.text_input(key="w_interp_b_text").value == B
    assert len(_path_table(at)) == 6

    at.sidebar.button(key="w_bookmark_delete").click().run()
    assert json.loads(_bookmarks_file().read_text(encoding="utf-8"))["bookmarks"] == []
    assert any("No bookmarks yet" in c.value for c in at.sidebar.caption)


def test_malformed_bookmarks_file_is_reported_and_kept(open_app, assert_page_ok):
    _bookmarks_file().write_text("{not json", encoding="utf-8")
    at = open_app(SLIDERS)
    assert_page_ok(at)
    assert any("cannot be read" in w.value for w in at.sidebar.warning)
    assert at.sidebar.button(key="w_bookmark_save").disabled
    assert _bookmarks_file().read_text(encoding="utf-8") == "{not json"  # never overwritten


def test_bad_bookmark_entries_are_skipped_with_a_reason(open_app, assert_page_ok):
    _bookmarks_file().write_text(json.dumps({"version": 1, "bookmarks": [
        {"name": "good", "page": "sliders", "params": {"s": A}},
        {"name": "bad page", "page": "../../etc", "params": {}},
        {"name": "bad params", "page": "sliders", "params": {"s": 3}},
        "not an object",
    ]}), encoding="utf-8")
    at = open_app(INTERP)
    assert_page_ok(at)
    assert at.sidebar.selectbox(key="w_bookmark_pick").options == ["good · Sliders"]
    captions = "\n".join(c.value for c in at.sidebar.caption)
    assert "entry 2 skipped" in captions and "entry 3 skipped" in captions and "entry 4 skipped" in captions
    at.sidebar.button(key="w_bookmark_open").click().run()
    assert_page_ok(at)
    assert at.text_input(key="w_sliders_text").value == A
