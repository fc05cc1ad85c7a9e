"""Interpolation page: N steps → N rows, collapsed repeats, factors, arithmetic and attribute vectors."""

from __future__ import annotations

PAGE = "app_pages/interpolation.py"
A = "the doctor sees the small cat ."
B = "did the pilots not follow the red horse ?"


def _path_table(at):
    return next(df.value for df in at.dataframe if "t" in df.value.columns)


def test_interpolation_with_n_steps_shows_n_rows(open_app, assert_page_ok):
    at = open_app(PAGE)
    assert_page_ok(at)
    for steps in (2, 5, 13):
        at.slider(key="w_interp_steps").set_value(steps).run()
        assert_page_ok(at)
        table = _path_table(at)
        assert len(table) == steps
        assert table["step"].tolist() == list(range(steps))
        assert {"sentence", "valid", "factors", "repeats"} <= set(table.columns)
        # The repeats column counts each run of identical decodes; the runs cover every step.
        assert all(n >= 1 for n in table["repeats"])


def test_interpolation_collapses_repeated_decodes(open_app):
    at = open_app(PAGE)
    at.slider(key="w_interp_steps").set_value(30).run()
    table = _path_table(at)
    html = next(m.value for m in at.markdown if 'class="vae-table"' in m.value)
    distinct_runs = sum(1 for i, s in enumerate(table["sentence"]) if i == 0 or s != table["sentence"][i - 1])
    assert html.count("<tr>") == 1 + distinct_runs
    if distinct_runs < 30:
        assert "×" in html
    at.checkbox(key="w_interp_collapse").uncheck().run()
    html = next(m.value for m in at.markdown if 'class="vae-table"' in m.value)
    assert html.count("<tr>") == 1 + 30


def test_interpolation_query_params_and_slerp(open_app, assert_page_ok):
    at = open_app(PAGE, query={"s": A, "s2": B})
    assert_page_ok(at)
    assert at.text_input(key="w_interp_a_text").value == A
    assert at.text_input(key="w_interp_b_text").value == B
    at.radio(key="w_interp_method").set_value("slerp").run()
    assert_page_ok(at)
    assert len(_path_table(at)) == 8
    assert at.query_params["s2"] == B


def test_interpolation_escapes_typed_html(open_app):
    at = open_app(PAGE)
    at.text_input(key="w_interp_a_text").input("<script>alert(1)</script> the cat").run()
    joined = "\n".join([m.value for m in at.markdown] + [w.value for w in at.warning])
    assert "&lt;script&gt;" in joined
    assert "<script" not in joined.lower()


def test_arithmetic_and_attribute_vectors(open_app, assert_page_ok):
    at = open_app(PAGE)
    assert_page_ok(at)
    assert any("a − b + c" in m.value for m in at.markdown)
    at.selectbox(key="w_attr_col").set_value("tense").run()
    at.selectbox(key="w_attr_val").set_value("past").run()
    at.slider(key="w_attr_n").set_value(5).run()
    assert_page_ok(at)
    attr = next(df.value for df in at.dataframe if "scale" in df.value.columns)
    assert len(attr) == 5
    assert attr["scale"].tolist() == ["0.00", "0.50", "1.00", "1.50", "2.00"]
    assert "tense = past" in attr.columns


def test_empty_sentences_ask_for_input(open_app, assert_page_ok):
    at = open_app(PAGE)
    at.text_input(key="w_interp_b_text").input("").run()
    assert_page_ok(at)
    assert any("two sentences" in i.value for i in at.info)
