"""Session-state keys, query parameters (parsed defensively) and the decode settings.

Query parameters make a view shareable: `run` (run directory name), `s` and `s2` (sentences),
`z` (slider values, comma-separated, 2 decimals). Anything malformed is ignored, never raised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from vae_core.config import STRATEGIES, DecodeConfig

# --------------------------------------------------------------------------- session-state keys

RUN_PATH = "run_path"  # str: the selected run directory (set by the sidebar picker)
RUN_PICKER = "w_run_picker"  # the picker widget's key
QP_RUN_APPLIED = "qp_run_applied"  # the `run` query parameter has been read once
OPEN_RUN = "open_run_request"  # str: a run another page asked the picker to open (request_run)

# Decode settings (sidebar widgets write these keys).
DECODE_STRATEGY = "decode_strategy"
DECODE_BEAM = "decode_beam_width"
DECODE_TEMPERATURE = "decode_temperature"
DECODE_TOP_K = "decode_top_k"
DECODE_TOP_P = "decode_top_p"
DECODE_SEED = "decode_seed"
DECODE_MAX_LEN = "decode_max_len"

# Sentences shared across pages (persist across page switches; widget keys do not).
SENTENCE = "sentence"  # the sentence of Sliders / Traversals
SENTENCE_2 = "sentence_2"  # the second sentence of Interpolation
SLIDER_VALUES = "slider_values"  # list[float]: the slider positions last shown
SLIDERS_FOR = "sliders_for"  # (run path, sentence) the sliders were last reset for
QP_SLIDERS_APPLIED = "qp_sliders_applied"
QP_INTERP_APPLIED = "qp_interp_applied"
PRIOR_SEED = "prior_seed"  # seed of the Overview's prior samples (the re-sample button bumps it)

# --------------------------------------------------------------------------- limits

SLIDER_MIN, SLIDER_MAX, SLIDER_STEP = -4.0, 4.0, 0.05
MAX_SENTENCE_CHARS = 500  # typed or linked sentences are cut here (a sentence, not a book)
MAX_Z_VALUES = 1024  # vae_core.config.MAX_LATENT
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_RUN_NAME = re.compile(r"^[\w.\-]{1,200}$")


# --------------------------------------------------------------------------- parsing (pure)


def _first(value: Any) -> str | None:
    """A query value as one string (the last one if repeated), or None."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    return value if isinstance(value, str) else None


def parse_sentence(value: Any) -> str | None:
    """A sentence query value: control characters become spaces, cut to MAX_SENTENCE_CHARS; else None."""
    text = _first(value)
    if text is None:
        return None
    text = " ".join(_CONTROL.sub(" ", text).split())[:MAX_SENTENCE_CHARS]
    return text or None


def parse_z(value: Any, dim: int | None = None) -> list[float] | None:
    """Comma-separated floats, clipped to the slider range; None for garbage or the wrong length."""
    text = _first(value)
    if text is None or len(text) > 16 * MAX_Z_VALUES:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not parts or len(parts) > MAX_Z_VALUES:
        return None
    out: list[float] = []
    for p in parts:
        try:
            x = float(p)
        except ValueError:
            return None
        if not math.isfinite(x):
            return None
        out.append(min(SLIDER_MAX, max(SLIDER_MIN, x)))
    if dim is not None and len(out) != dim:
        return None
    return out


def format_z(values: Any) -> str:
    """Slider values as the `z` query parameter: comma-separated, 2 decimals."""
    return ",".join(f"{float(v):.2f}" for v in values)


def parse_run_name(value: Any) -> str | None:
    """A run directory name (no separators, no '..'), or None."""
    text = _first(value)
    if text is None or not _RUN_NAME.match(text) or text in (".", ".."):
        return None
    return text


def parse_query_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The app's query parameters, each parsed or dropped: keys run, s, s2, z (z unvalidated length)."""
    out: dict[str, Any] = {}
    try:
        items = {k: params[k] for k in ("run", "s", "s2", "z") if k in params}
    except Exception:  # noqa: BLE001 - a broken mapping is no query parameters
        return out
    if (run := parse_run_name(items.get("run"))) is not None:
        out["run"] = run
    for key in ("s", "s2"):
        if (s := parse_sentence(items.get(key))) is not None:
            out[key] = s
    if (z := parse_z(items.get("z"))) is not None:
        out["z"] = z
    return out


def decode_config_from(values: Mapping[str, Any]) -> DecodeConfig:
    """A DecodeConfig from the sidebar's session-state values; bad or missing values take defaults."""
    d = DecodeConfig()
    strategy = values.get(DECODE_STRATEGY, d.strategy)
    if strategy not in STRATEGIES:
        strategy = d.strategy
    kwargs: dict[str, Any] = {"strategy": strategy}
    if strategy == "beam":
        kwargs["beam_width"] = values.get(DECODE_BEAM, d.beam_width)
    if strategy == "sample":
        kwargs["temperature"] = values.get(DECODE_TEMPERATURE, d.temperature)
        kwargs["top_k"] = values.get(DECODE_TOP_K, d.top_k)
        kwargs["top_p"] = values.get(DECODE_TOP_P, d.top_p)
        kwargs["seed"] = values.get(DECODE_SEED, d.seed)
    kwargs["max_len"] = values.get(DECODE_MAX_LEN, d.max_len)
    try:
        return DecodeConfig(**kwargs)
    except (TypeError, ValueError):
        return DecodeConfig(strategy=strategy) if strategy in STRATEGIES else d


# --------------------------------------------------------------------------- streamlit side


def query_params() -> dict[str, Any]:
    """The current page's query parameters, parsed (see parse_query_params)."""
    import streamlit as st

    try:
        raw = {k: st.query_params.get_all(k) for k in st.query_params}
    except Exception:  # noqa: BLE001
        return {}
    return parse_query_params(raw)


def set_query_params(**values: str | None) -> None:
    """Set (or with None, remove) query parameters, touching only those that changed."""
    import streamlit as st

    for key, value in values.items():
        current = st.query_params.get(key)
        if value is None or value == "":
            if key in st.query_params:
                del st.query_params[key]
        elif current != value:
            st.query_params[key] = value


def request_run(path: str) -> None:
    """Ask the sidebar's model picker to open `path` on the next full run (then call st.rerun(scope="app")).

    Writing the picker's key from a button inside a fragment does not stick: the browser still holds the
    picker's old value and sends it back on the next full run (issue 20.2). The picker applies the request
    before it draws itself (take_requested_run), which also sends the new value to the browser.
    """
    import streamlit as st

    st.session_state[OPEN_RUN] = str(path)


def take_requested_run() -> str | None:
    """The run requested by request_run, once (None when there is none)."""
    import streamlit as st

    value = st.session_state.pop(OPEN_RUN, None)
    return value if isinstance(value, str) else None


def get_decode_config() -> DecodeConfig:
    """The decode settings chosen in the sidebar (defaults until the sidebar has run)."""
    import streamlit as st

    return decode_config_from(st.session_state)
