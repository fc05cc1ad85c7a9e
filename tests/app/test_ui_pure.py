"""Pure parts of the UI: change marking and escaping, CSV neutralisation, query-parameter parsing, figures."""

from __future__ import annotations

import html
import io
import math
import re

import pandas as pd
import pytest

from ui import figures, metric_figures
from ui.state import (
    DECODE_BEAM,
    DECODE_STRATEGY,
    DECODE_TEMPERATURE,
    decode_config_from,
    format_z,
    parse_query_params,
    parse_run_name,
    parse_sentence,
    parse_z,
)
from ui.textdiff import changed_words, escape, mark_changes
from ui.widgets import safe_csv
from vae_core.config import DecodeConfig

# --------------------------------------------------------------------------- mark_changes


def test_mark_changes_marks_replaced_and_inserted_words_only():
    ref = "the doctor sees the cat .".split()
    new = "the pilots saw the small cat .".split()
    html = mark_changes(ref, new)
    assert html == "the <mark>pilots</mark> <mark>saw</mark> the <mark>small</mark> cat ."
    assert changed_words(ref, new) == 3


def test_mark_changes_identical_and_empty():
    words = "a b c".split()
    assert mark_changes(words, words) == "a b c"
    assert mark_changes(words, []) == ""
    assert mark_changes([], words) == "<mark>a</mark> <mark>b</mark> <mark>c</mark>"


def test_mark_changes_escapes_every_word():
    html = mark_changes(["<b>"], ["<b>", "<script>alert(1)</script>", "&", '"x"'])
    assert "<script" not in html and "<b>" not in html
    assert html.startswith("&lt;b&gt; <mark>&lt;script&gt;alert&#40;1&#41;&lt;/script&gt;</mark>")
    assert "&amp;" in html and "&quot;x&quot;" in html


@pytest.mark.parametrize("text", ["*bold*", "_it_", "`code`", "[link](http://x)", "$x^2$", ":red[x]", "# h", "a|b"])
def test_escape_neutralises_markdown_syntax(text):
    out = escape(text)
    bare = re.sub(r"&#\d+;|&[a-z]+;", "", out)  # what is left outside character references
    assert not set(bare) & set("*_`[]()$:#|<>")
    assert html.unescape(out).replace("\u2060", "") == text  # shown exactly as typed (U+2060 is invisible)


def test_escape_is_a_single_pass():
    assert escape("&#35;") == "&amp;&#35;35;"  # the & is escaped once, the # once: no double decoding
    assert escape("a\nb") == "a b"


# --------------------------------------------------------------------------- safe_csv


def test_safe_csv_neutralises_formula_cells():
    df = pd.DataFrame(
        {
            "sentence": ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "plain", "-3.00", "+0.50"],
            "n": [1, 2, 3, 4, 5, 6, 7, 8],
        }
    )
    back = pd.read_csv(io.BytesIO(safe_csv(df)), dtype=str, keep_default_na=False)
    assert back["sentence"].tolist()[:5] == ["'=1+1", "'+cmd", "'-2+3", "'@SUM(A1)", "'\tx"]
    assert back["sentence"].tolist()[5:] == ["plain", "-3.00", "+0.50"]  # plain numbers are not formulas
    assert back["n"].tolist() == [str(i) for i in range(1, 9)]


def test_safe_csv_neutralises_headers_and_keeps_unicode():
    df = pd.DataFrame({"=HYPERLINK(x)": ["ünïcödé 🙂"]})
    text = safe_csv(df).decode("utf-8")
    assert text.splitlines()[0] == "'=HYPERLINK(x)"
    assert "ünïcödé 🙂" in text


# --------------------------------------------------------------------------- query parameters


@pytest.mark.parametrize(
    "garbage",
    [None, "", "nan", "1,2,x", "inf,1", ",", "1,,2", "1e999", ["1", None], 12, {"a": 1}, "1" * 100_000, "−1"],
)
def test_parse_z_ignores_garbage(garbage):
    assert parse_z(garbage) is None


def test_parse_z_clips_and_checks_length():
    assert parse_z("1.5,-2,0.25") == [1.5, -2.0, 0.25]
    assert parse_z("10,-10") == [4.0, -4.0]
    assert parse_z("1,2", dim=3) is None
    assert parse_z(["0,0", "1,2"]) == [1.0, 2.0]  # repeated key: the last one wins
    assert format_z([1.5, -2, 0.254]) == "1.50,-2.00,0.25"
    assert parse_z(format_z([0.1, -3.95])) == [0.1, -3.95]


def test_parse_sentence_and_run_name():
    assert parse_sentence("  the  cat \x00 sat\n") == "the cat sat"
    assert parse_sentence("x" * 10_000) == "x" * 500
    assert parse_sentence("") is None and parse_sentence(None) is None and parse_sentence(3) is None
    assert parse_run_name("beta-4_latent16.v2") == "beta-4_latent16.v2"
    for bad in ("..", "../etc", "a/b", "a\\b", "", "x" * 300, None, ["a", 1]):
        assert parse_run_name(bad) is None


def test_parse_query_params_drops_what_it_cannot_read():
    out = parse_query_params({"run": "../x", "s": "the cat", "s2": "", "z": "1,a", "other": "kept out"})
    assert out == {"s": "the cat"}
    assert parse_query_params({"run": "tiny", "z": "0.5"}) == {"run": "tiny", "z": [0.5]}

    class Broken(dict):
        def __getitem__(self, key):
            raise RuntimeError("boom")

    assert parse_query_params(Broken(run="x")) == {}


def test_decode_config_from_session_values():
    assert decode_config_from({}) == DecodeConfig()
    cfg = decode_config_from({DECODE_STRATEGY: "beam", DECODE_BEAM: 6})
    assert cfg.strategy == "beam" and cfg.beam_width == 6
    assert decode_config_from({DECODE_STRATEGY: "sample", DECODE_TEMPERATURE: 0.5}).temperature == 0.5
    # Bad values fall back to defaults instead of raising.
    assert decode_config_from({DECODE_STRATEGY: "nonsense"}) == DecodeConfig()
    assert decode_config_from({DECODE_STRATEGY: "beam", DECODE_BEAM: -3}) == DecodeConfig(strategy="beam")


# --------------------------------------------------------------------------- figures


def test_training_curve_has_train_valid_and_beta_traces():
    records = [
        {"kind": "train", "step": 10, "recon": 30.0, "kl": 2.0, "weighted_kl": 0.2, "weight": 0.1},
        {"kind": "train", "step": 20, "recon": 25.0, "kl": 3.0, "weighted_kl": 0.6, "weight": 0.2},
        {"kind": "valid", "step": 20, "recon": 26.0, "kl": 3.1},
        {"kind": "train", "step": 30, "recon": None},  # partial records are skipped
    ]
    fig = figures.training_curve(records)
    names = [t.name for t in fig.data]
    assert names == ["reconstruction", "KL", "β·KL", "valid reconstruction", "valid KL", "β (KL weight)"]
    assert list(fig.data[0].x) == [10.0, 20.0]


def test_kl_bar_and_heatmap_shapes():
    fig = metric_figures.kl_per_dim_bar([0.5, 0.0, 1.5], [True, False, True])
    assert list(fig.data[0].x) == ["z0", "z1", "z2"]
    assert fig.data[0].marker.color[1] == metric_figures.INACTIVE_COLOR
    heat = figures.factor_share_heatmap([{"tense": 1.0}, {"number": 0.5}], ["z0", "z1"], ["tense", "number"])
    assert [list(r) for r in heat.data[0].z] == [[1.0, 0.0], [0.0, 0.5]]
    path = figures.latent_path([[0, 0], [1, 1]], [[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]], ["a", "b", "c"])
    assert len(path.data[-1].x) == 3 and not math.isnan(path.data[-1].x[0])
