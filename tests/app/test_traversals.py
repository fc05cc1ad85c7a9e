"""Traversals page: a dims × values grid from one batched decode, factor effects, CSV export."""

from __future__ import annotations

import io

import pandas as pd

PAGE = "app_pages/traversals.py"


def _grid_table(at) -> pd.DataFrame:
    return at.dataframe[0].value


def test_traversal_grid_has_one_row_per_dimension_and_one_column_per_value(open_app, assert_page_ok):
    at = open_app(PAGE)
    assert_page_ok(at)
    at.multiselect(key="w_trav_dims").set_value([0, 1, 2]).run()
    at.number_input(key="w_trav_n").set_value(7).run()
    assert_page_ok(at)
    table = _grid_table(at)
    assert set(table["dim"]) == {"z0", "z1", "z2"}
    assert len(table) == 3
    value_columns = [c for c in table.columns if c not in ("dim", "factor effect", "validity")]
    assert len(value_columns) == 7
    assert value_columns[3] == "+0.00"  # odd count: the centre value is 0
    assert "factor effect" in table.columns  # built-in corpus: each row says what it changes
    html = next(m.value for m in at.markdown if 'class="vae-table"' in m.value)
    assert html.count("<tr>") == 1 + 3


def test_traversal_offers_csv_download(open_app):
    at = open_app(PAGE)
    downloads = at.get("download_button")
    assert downloads, "a CSV download button is shown"
    table = _grid_table(at)
    assert not table.empty


def test_traversal_relative_mode_and_prior_start(open_app, assert_page_ok):
    at = open_app(PAGE)
    at.radio(key="w_trav_mode").set_value("relative").run()
    assert_page_ok(at)
    assert any("σ" in c for c in _grid_table(at).columns)
    at.radio(key="w_trav_start").set_value("prior").run()
    assert_page_ok(at)
    assert not any("σ" in c for c in _grid_table(at).columns)


def test_traversal_with_no_dimension_asks_for_one(open_app):
    at = open_app(PAGE)
    at.multiselect(key="w_trav_dims").set_value([]).run()
    assert any("at least one dimension" in i.value for i in at.info)


def test_traversal_across_many_sentences(open_app, assert_page_ok):
    at = open_app(PAGE)
    at.button(key="w_trav_many").click().run()
    assert_page_ok(at)
    assert any("have a dimension of their own" in m.value for m in at.markdown)


def test_csv_roundtrip_of_grid(open_app):
    from ui.widgets import safe_csv

    at = open_app(PAGE)
    table = _grid_table(at)
    back = pd.read_csv(io.BytesIO(safe_csv(table)))
    assert back.shape == table.shape
