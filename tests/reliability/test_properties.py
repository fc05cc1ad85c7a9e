"""Property-based tests (hypothesis) on arbitrary unicode: query-parameter parsing, escaping and change
marking, and the text → code → text path of the model.

Already covered elsewhere (not repeated here): the tokenizer and the vocabulary on arbitrary unicode
(tests/core/test_config_text.py::test_tokenize_never_fails_and_is_deterministic,
test_vocab_build_round_trip_on_arbitrary_unicode) and the corpus readers on arbitrary bytes
(tests/core/test_corpus.py::test_readers_on_arbitrary_bytes_raise_only_corpus_errors).
"""

from __future__ import annotations

import html
import math
import re

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ui import state
from ui.textdiff import changed_words, escape, mark_changes
from ui.widgets import html_table, model_reads
from vae_core.config import DecodeConfig, ModelConfig
from vae_core.decode import decode
from vae_core.encoding import posterior_means
from vae_core.model import SentenceVAE
from vae_core.text import Vocab, tokenize

# Unicode including surrogate-free control, format (bidi, joiners), combining and astral characters.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
QUERY_VALUE = st.one_of(TEXT, st.lists(TEXT, max_size=3), st.none(), st.integers(), st.floats(), st.binary(max_size=8))
QUERY = st.dictionaries(st.one_of(st.sampled_from(["run", "s", "s2", "z"]), TEXT), QUERY_VALUE, max_size=6)
FLOATS_TEXT = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers()), max_size=8).map(
    lambda xs: ",".join(str(x) for x in xs))

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
OWN_TAGS = {"mark", "span", "table", "thead", "tbody", "tr", "th", "td"}
TAG = re.compile(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9-]*)")
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _check_parsed(out: dict) -> None:
    assert set(out) <= {"run", "s", "s2", "z"}
    if "run" in out:
        assert isinstance(out["run"], str) and out["run"] == state.parse_run_name(out["run"])
        assert "/" not in out["run"] and out["run"] not in (".", "..")
    for key in ("s", "s2"):
        if key in out:
            s = out[key]
            assert isinstance(s, str) and s and s == s.strip() and len(s) <= state.MAX_SENTENCE_CHARS
            assert not CONTROL.search(s)
    if "z" in out:
        z = out["z"]
        assert isinstance(z, list) and 0 < len(z) <= state.MAX_Z_VALUES
        assert all(isinstance(x, float) and math.isfinite(x) and state.SLIDER_MIN <= x <= state.SLIDER_MAX for x in z)


@settings(max_examples=300, deadline=None)
@given(QUERY)
def test_query_params_never_raise_and_have_sane_types(params):
    _check_parsed(state.parse_query_params(params))


@settings(max_examples=200, deadline=None)
@given(st.one_of(FLOATS_TEXT, TEXT), st.one_of(st.none(), st.integers(0, 64)))
def test_parse_z_on_number_lists_and_text(text, dim):
    z = state.parse_z(text, dim)
    if z is not None:
        _check_parsed({"z": z})
        assert dim is None or len(z) == dim


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(state.SLIDER_MIN, state.SLIDER_MAX), min_size=1, max_size=32))
def test_z_round_trips_through_the_url(values):
    back = state.parse_z(state.format_z(values), len(values))
    assert back is not None and all(abs(a - b) <= 0.005 + 1e-9 for a, b in zip(back, values, strict=True))


def test_a_broken_query_mapping_is_no_query():
    class Broken(dict):
        def __contains__(self, key):
            raise RuntimeError("boom")

    assert state.parse_query_params(Broken(s="x")) == {}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([state.DECODE_STRATEGY, state.DECODE_BEAM, state.DECODE_TEMPERATURE,
                                        state.DECODE_TOP_K, state.DECODE_TOP_P, state.DECODE_SEED,
                                        state.DECODE_MAX_LEN]), QUERY_VALUE))
def test_decode_settings_from_any_session_state(values):
    assert isinstance(state.decode_config_from(values), DecodeConfig)


# --------------------------------------------------------------------------- escaping and change marking


def _strip_marks(html_text: str) -> str:
    return html_text.replace("<mark>", "").replace("</mark>", "")


@settings(max_examples=400, deadline=None)
@given(st.lists(TEXT, max_size=8), st.lists(TEXT, max_size=8))
def test_mark_changes_never_lets_a_tag_through(reference, tokens):
    out = mark_changes(reference, tokens)
    bare = _strip_marks(out)
    assert "<" not in bare and ">" not in bare and '"' not in bare and "'" not in bare
    assert out.count("<mark>") == out.count("</mark>") == changed_words(reference, tokens)
    assert not BIDI.search(out)
    plain = [t for t in tokens if not re.search(r"[\n\r\t\u202a-\u202e\u2066-\u2069]", t)]
    if len(plain) == len(tokens):  # what is shown is the words themselves, once decoded
        assert html.unescape(bare).replace("\u2060", "") == " ".join(tokens)  # U+2060: the invisible link breaker


@settings(max_examples=400, deadline=None)
@given(TEXT)
@example("gpj.\u202eexe <b>")
@example("\u2067x\u2069 :red[x] $x$")
def test_escape_leaves_no_markup_or_markdown(text):
    out = escape(text)
    bare = re.sub(r"&#\d+;|&[a-z]+;", "", out)
    assert not re.match(r"[-+= ]|\d+\.", out)  # no list marker or indentation where the text starts a block
    assert not set(bare) & set("<>&\"'*_`[]()#\\~|$:{}^\n\r\t")  # ("-", "+", "!": syntax only at a block start)
    assert not BIDI.search(out)
    if BIDI.search(text):
        assert "U&#43;202E" in out or "U&#43;206" in out  # shown as its code point


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, max_size=6), st.lists(TEXT, max_size=6))
def test_model_reads_and_tables_only_hold_their_own_tags(tokens, oov):
    body = model_reads(tokens, oov) + html_table(tokens or ["h"], [[escape(t) for t in tokens]])
    assert {t.lower() for t in TAG.findall(body)} <= OWN_TAGS


# --------------------------------------------------------------------------- text → code → text


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    vocab = Vocab.build([tokenize("the doctor sees the small cat . a pilot follows")])
    model = SentenceVAE(ModelConfig(vocab_size=len(vocab), embed_dim=8, hidden_dim=16, latent_dim=4)).eval()
    return model, vocab


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=200), min_size=1, max_size=4))
def test_any_text_encodes_and_decodes(tiny_model, sentences):
    model, vocab = tiny_model
    mu, logvar, oov = posterior_means(model, vocab, sentences, max_len=60)  # (N, D) each
    assert mu.shape == logvar.shape == (len(sentences), 4) and len(oov) == len(sentences)
    assert torch.isfinite(mu).all() and torch.isfinite(logvar).all()
    texts = decode(model, mu, vocab, DecodeConfig(max_len=10)).texts
    assert len(texts) == len(sentences) and all(isinstance(t, str) for t in texts)
