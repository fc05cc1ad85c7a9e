"""Widgets and renderers shared by the pages: sentence input, escaped sentence display, CSV export,
the sidebar's model picker and decode settings."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from ui import loaders, state
from ui.safe_text import escape
from vae_core.config import DecodeConfig

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # spreadsheet formula starters (OWASP CSV injection)
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # "-3.00" is a number, not a formula


# --------------------------------------------------------------------------- CSV export (pure)


def _neutralise(value):
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_csv(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV of df where every text cell (and header) beginning with = + - @ (or tab, CR) is prefixed
    with ' so a spreadsheet shows it as text instead of running it; plain numbers such as "-3.00" are kept."""
    out = df.copy()
    out.columns = [_neutralise(str(c)) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(_neutralise)
    # CRLF rows (RFC 4180) make the csv writer quote any cell holding a bare CR; with "\n" rows it wrote
    # "'\r=1+1" unquoted, and a spreadsheet split it into a new row starting "=1+1".
    return out.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def csv_download(df: pd.DataFrame, file_name: str, label: str = "Download CSV", key: str | None = None) -> None:
    st.download_button(label, data=safe_csv(df), file_name=file_name, mime="text/csv", key=key)


# --------------------------------------------------------------------------- escaped display


SENTENCE_CSS = """
<style>
.vae-sentence { font-size: 1.35rem; line-height: 1.9; padding: .5rem .8rem; border-radius: .5rem;
  background: rgba(127,127,127,.08); margin-bottom: .4rem; }
.vae-sentence mark, .vae-table mark { background: #fde68a; color: inherit; padding: 0 .15rem; border-radius: .2rem; }
.vae-muted { opacity: .65; font-size: .9rem; }
.vae-table { border-collapse: collapse; width: 100%; font-size: .92rem; }
.vae-table th, .vae-table td { border: 1px solid rgba(127,127,127,.25); padding: .25rem .45rem; vertical-align: top; }
.vae-table th { background: rgba(127,127,127,.08); font-weight: 600; }
.vae-table td.center { background: rgba(37,99,235,.07); }
.vae-table td:first-child { min-width: 6.5rem; }
.vae-oov { text-decoration: underline wavy #dc2626; }
</style>
"""


def inject_css() -> None:
    """The small stylesheet of marked sentences and tables (static text, no user input)."""
    st.markdown(SENTENCE_CSS, unsafe_allow_html=True)


def show_html(body: str) -> None:
    """Render HTML built only from escaped text (ui.textdiff.escape / mark_changes) and fixed tags."""
    st.markdown(body, unsafe_allow_html=True)


def sentence_block(html_body: str, caption: str | None = None) -> None:
    """A decoded sentence (already escaped/marked HTML) in a large box, with an optional plain caption."""
    cap = f'<div class="vae-muted">{escape(caption)}</div>' if caption else ""
    show_html(f'{cap}<div class="vae-sentence">{html_body or "<i>(empty)</i>"}</div>')


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], center_col: int | None = None) -> str:
    """An HTML table; header cells are escaped here, row cells must already be escaped HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="center">{c}</td>' if i == center_col else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f'<table class="vae-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def oov_warning(oov: Sequence[str], what: str = "Your sentence") -> None:
    """Warn about out-of-vocabulary words (listed, escaped): they are read as <unk>, not dropped."""
    if not oov:
        return
    words = list(dict.fromkeys(oov))
    shown = ", ".join(f"“{escape(w)}”" for w in words[:20])
    if len(words) > 20:
        shown += f" and {len(words) - 20} more"
    st.warning(
        f"{escape(what)} has {len(oov)} word(s) the model does not know: {shown}. "
        "The model reads each as &lt;unk&gt;, so its code carries less of what you typed."
    )


def model_reads(tokens: Sequence[str], oov: Sequence[str]) -> str:
    """Escaped HTML of the input as the model reads it, unknown words underlined."""
    unknown = set(oov)
    return " ".join(f'<span class="vae-oov">{escape(t)}</span>' if t in unknown else escape(t) for t in tokens)


def factor_text(factors: Mapping[str, str] | None) -> str:
    """Plain text of parsed factors, or a note that the sentence is not a corpus sentence."""
    if factors is None:
        return "not a valid corpus sentence"
    return ", ".join(f"{k}={v}" for k, v in factors.items())


# --------------------------------------------------------------------------- sentence input


def sentence_input(
    label: str,
    key: str,
    options: Sequence[str],
    default: str = "",
    persist_key: str | None = None,
    help: str | None = None,
) -> str:
    """A sentence typed in a text box or picked from `options` (picking fills the box); returns it stripped.

    The value survives page switches through `persist_key` in session state (widget state does not).
    """
    text_key, pick_key = f"w_{key}_text", f"w_{key}_pick"
    persist_key = persist_key or f"{key}_value"
    if text_key not in st.session_state:
        st.session_state[text_key] = st.session_state.get(persist_key, default)

    def _picked() -> None:
        choice = st.session_state.get(pick_key)
        if choice:
            st.session_state[text_key] = choice

    col_text, col_pick = st.columns([3, 2])
    with col_text:
        # No max_chars: the browser would silently drop a longer paste and keep the old sentence.
        text = st.text_input(label, key=text_key, help=help)
    with col_pick:
        if options:
            st.selectbox(
                "…or pick one from the corpus",
                options=[""] + list(options),
                key=pick_key,
                on_change=_picked,
                format_func=lambda s: s if s else "(choose a sentence)",
            )
        else:
            st.caption("The run's corpus is not available here: type a sentence.")
    cleaned = state.parse_sentence(text) or ""
    if (typed := len(" ".join(text.split()))) > state.MAX_SENTENCE_CHARS:
        st.warning(f"{label}: only the first {state.MAX_SENTENCE_CHARS:,} characters are used (the text has "
                   f"{typed:,}); type or paste one sentence.")
    st.session_state[persist_key] = cleaned
    return cleaned


# --------------------------------------------------------------------------- sidebar


def run_picker() -> None:
    """The sidebar's model picker over shipped models and the user's runs; writes state.RUN_PATH."""
    runs = loaders.available_runs()
    if not runs:
        st.session_state.pop(state.RUN_PATH, None)
        st.caption("No trained model yet: train one on the Train page.")
        unlisted_runs_note()
        return
    paths = [str(p) for p in runs]
    labels = {str(p): loaders.run_label(p) for p in runs}
    # First visit: the `run` query parameter (a run name) wins over the default.
    if not st.session_state.get(state.QP_RUN_APPLIED):
        st.session_state[state.QP_RUN_APPLIED] = True
        wanted = state.query_params().get("run")
        chosen = next((str(p) for p in runs if p.name == wanted), None)
        if wanted and chosen is None:
            st.toast(f"No run named “{escape(wanted)}”; opened the default model.")
        if chosen:
            st.session_state[state.RUN_PICKER] = chosen
    if (requested := state.take_requested_run()) is not None:  # "Open this run" on the Train page
        match = next((str(p) for p in runs if p.resolve() == Path(requested).resolve()), None)
        if match:
            st.session_state[state.RUN_PICKER] = match
    current = st.session_state.get(state.RUN_PICKER) or st.session_state.get(state.RUN_PATH)
    if current not in paths:
        default = loaders.default_run_path()
        st.session_state[state.RUN_PICKER] = str(default) if default else paths[0]
    chosen = st.selectbox("Model", options=paths, key=state.RUN_PICKER, format_func=lambda p: labels.get(p, p))
    st.session_state[state.RUN_PATH] = chosen
    state.set_query_params(run=Path(chosen).name)
    unlisted_runs_note()


def unlisted_runs_note() -> None:
    """Run folders the picker leaves out, with why (as plain text: folder names are not the app's own text)."""
    unlisted = loaders.unlisted_runs()
    if unlisted:
        with st.expander(f"{len(unlisted)} run folder(s) not in the list"):
            st.text("\n".join(f"{p.name}: {why}" for p, why in unlisted))


def decode_settings() -> DecodeConfig:
    """The sidebar's decoding settings (greedy / beam / sampling); returns the resulting DecodeConfig."""
    d = DecodeConfig()
    defaults = {
        state.DECODE_STRATEGY: d.strategy,
        state.DECODE_BEAM: d.beam_width,
        state.DECODE_TEMPERATURE: d.temperature,
        state.DECODE_TOP_K: d.top_k,
        state.DECODE_TOP_P: d.top_p,
        state.DECODE_SEED: d.seed,
        state.DECODE_MAX_LEN: d.max_len,
    }
    state.restore_link("decode")  # a link's decoding settings, once (values out of the widgets' bounds ignored)
    for k, v in defaults.items():
        st.session_state.setdefault(k, v)
    names = {"greedy": "Greedy (most likely word)", "beam": "Beam search", "sample": "Sampling"}
    with st.expander("Decoding", expanded=False):
        strategy = st.radio("Strategy", list(names), key=state.DECODE_STRATEGY, format_func=names.get)
        # Every control is always drawn (disabled when it does not apply), so its value is kept.
        st.slider("Beam width", 1, 16, key=state.DECODE_BEAM, disabled=strategy != "beam")
        no_sampling = strategy != "sample"
        st.slider("Temperature", 0.1, 2.0, step=0.05, key=state.DECODE_TEMPERATURE, disabled=no_sampling)
        st.number_input("Top-k (0 = off)", 0, 1000, step=1, key=state.DECODE_TOP_K, disabled=no_sampling)
        st.slider("Top-p (1 = off)", 0.05, 1.0, step=0.05, key=state.DECODE_TOP_P, disabled=no_sampling)
        st.number_input("Seed", 0, 2**31 - 1, step=1, key=state.DECODE_SEED, disabled=no_sampling)
        st.slider("Max words", 5, 100, key=state.DECODE_MAX_LEN)
    state.write_link("decode")  # settings other than the defaults go into the address bar
    return state.get_decode_config()
