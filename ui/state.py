"""Session-state keys, query parameters (parsed defensively) and the decode settings.

Query parameters make a view shareable: `run` (run directory name), `s` and `s2` (sentences),
`z` (slider values, comma-separated, 2 decimals), and each page's own (LINKS). Anything malformed is
ignored, never raised.

Links, one mechanism for every page: LINKS declares, per page, which session-state keys (widget keys or
the keys a widget is restored from) belong in its link, with each value's type and bounds. A page calls
restore_link(page) before drawing its widgets (the link applies once per session, or again when a bookmark
is opened) and write_link(page) after them, on every run, so the address bar always shows the view. A link
is untrusted input: a value of the wrong type or out of bounds is ignored and named in a toast.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

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


# --------------------------------------------------------------------------- links: every page's state in its URL

LinkKind = Literal["sentence", "choice", "int", "float", "bool", "ints", "z", "text"]
LINK_TEXT_CHARS = 200  # a search box or a column name in a link
INTERPOLATION_METHODS = ("lerp", "slerp")  # vae_core.latent.INTERPOLATION_METHODS (not imported: it pulls torch)
_BAD = object()  # a value a link cannot set


@dataclass(frozen=True, slots=True)
class LinkParam:
    """One query parameter of a page's link and the session-state key(s) it restores and is written from."""

    name: str  # the query parameter
    keys: tuple[str, ...]  # session-state keys set from the link (widget keys, persist keys)
    kind: LinkKind
    lo: float | None = None  # bounds (int, float, each of ints), inclusive
    hi: float | None = None
    choices: tuple = ()  # allowed values of a choice
    default: Any = None  # a value equal to it is left out of the link (None: always written)
    source: str | None = None  # the key written from (default keys[0])
    clear: tuple[str, ...] = ()  # keys dropped when the link sets this one (so the page re-reads it)

    @property
    def read_key(self) -> str:
        return self.source or self.keys[0]


_D = DecodeConfig()
# The sidebar's decode widgets (ui/widgets.decode_settings) use these bounds: a linked value outside a
# slider's range would stop the page, so a link may only hold what the widget can show.
DECODE_BOUNDS = {"beam": (1, 16), "temp": (0.1, 2.0), "topk": (0, 1000), "topp": (0.05, 1.0), "seed": (0, 2**31 - 1),
                 "maxlen": (5, 100)}


def _dec(name: str, key: str, kind: LinkKind, default: Any) -> LinkParam:
    lo, hi = DECODE_BOUNDS[name]
    return LinkParam(name, (key,), kind, lo, hi, default=default)


LINKS: dict[str, tuple[LinkParam, ...]] = {
    # Shared by every page (the sidebar): left out of the link while they hold the defaults.
    "decode": (
        LinkParam("dec", (DECODE_STRATEGY,), "choice", choices=STRATEGIES, default=_D.strategy),
        _dec("beam", DECODE_BEAM, "int", min(_D.beam_width, 16)),
        _dec("temp", DECODE_TEMPERATURE, "float", _D.temperature),
        _dec("topk", DECODE_TOP_K, "int", _D.top_k),
        _dec("topp", DECODE_TOP_P, "float", _D.top_p),
        _dec("seed", DECODE_SEED, "int", _D.seed),
        _dec("maxlen", DECODE_MAX_LEN, "int", _D.max_len),
    ),
    "sliders": (
        LinkParam("s", (SENTENCE, "w_sliders_text"), "sentence"),
        LinkParam("z", ("pending_z",), "z", source=SLIDER_VALUES, clear=(SLIDERS_FOR,)),
    ),
    "interp": (
        LinkParam("s", (SENTENCE, "w_interp_a_text"), "sentence"),
        LinkParam("s2", (SENTENCE_2, "w_interp_b_text"), "sentence"),
        LinkParam("interp", ("w_interp_method",), "choice", choices=INTERPOLATION_METHODS, default="lerp"),
        LinkParam("steps", ("w_interp_steps",), "int", 2, 30, default=8),
        LinkParam("collapse", ("w_interp_collapse",), "bool", default=True),
    ),
    "traversals": (
        LinkParam("start", ("w_trav_start",), "choice", choices=("sentence", "prior"), default="sentence"),
        LinkParam("s", (SENTENCE, "w_trav_text"), "sentence"),
        LinkParam("dims", ("w_trav_dims",), "ints", 0, MAX_Z_VALUES - 1),  # hi: the run's latent size - 1
        LinkParam("mode", ("w_trav_mode",), "choice", choices=("absolute", "relative"), default="absolute"),
        LinkParam("span", ("w_trav_span",), "float", 0.25, 10.0, default=3.0),
        LinkParam("n", ("w_trav_n",), "int", 2, 21, default=9),
    ),
    "latent-map": (
        LinkParam("src", ("w_map_source",), "choice", choices=("test+valid", "all")),  # an upload cannot be linked
        LinkParam("n", ("w_map_n",), "int", 1, 1_000_000),  # the page clamps it to the sentences there are
        LinkParam("method", ("w_map_method",), "choice", choices=("umap", "pca", "tsne")),
        LinkParam("mdims", ("w_map_dims",), "int", 2, 3),
        LinkParam("mseed", ("w_map_seed",), "int", 0, 2**31 - 1),
        LinkParam("nn", ("w_map_nn",), "int", 2, 200, default=15),
        LinkParam("mindist", ("w_map_min_dist",), "float", 0.0, 0.99, default=0.1),
        LinkParam("metric", ("w_map_metric",), "choice", choices=("euclidean", "cosine", "manhattan", "correlation"),
                  default="euclidean"),
        LinkParam("epochs", ("w_map_epochs",), "int", 50, 500, default=200),
        LinkParam("perp", ("w_map_perplexity",), "float", 5.0, 100.0, default=30.0),
        LinkParam("color", ("w_map_color",), "text"),  # the page falls back to its first option if unknown
        LinkParam("q", ("w_map_search",), "text", default=""),
    ),
}
SHARED_LINKS = ("decode",)  # written by the sidebar on every page; never removed by a page


def link_params_of(page: str) -> tuple[LinkParam, ...]:
    return LINKS.get(page, ())


def _bounded(x: float, p: LinkParam, lo: float | None, hi: float | None) -> bool:
    return math.isfinite(x) and (lo is None or x >= lo) and (hi is None or x <= hi)


def parse_link_value(p: LinkParam, raw: Any, lo: float | None = None, hi: float | None = None,
                     choices: Iterable | None = None) -> Any:
    """The value of query parameter `p` from its raw text, or _BAD (see is_bad) for a value it cannot hold.

    lo/hi/choices override the declaration (a run's latent size, a page's options)."""
    lo = p.lo if lo is None else lo
    hi = p.hi if hi is None else hi
    allowed = tuple(p.choices if choices is None else choices)
    text = _first(raw)
    if text is None:
        return _BAD
    try:
        if p.kind == "sentence":
            value = parse_sentence(text)
            return _BAD if value is None else value
        if p.kind == "z":
            value = parse_z(text)
            return _BAD if value is None else value
        if p.kind == "text":
            value = " ".join(_CONTROL.sub(" ", text).split())
            return value if len(value) <= LINK_TEXT_CHARS else _BAD
        if p.kind == "choice":
            for c in allowed:  # choices may be ints (the map's 2 or 3 dimensions)
                if str(c) == text:
                    return c
            return _BAD
        if p.kind == "bool":
            return {"1": True, "true": True, "0": False, "false": False}.get(text.lower(), _BAD)
        if p.kind == "int":
            if len(text) > 20:
                return _BAD
            value = int(text)
            return value if _bounded(value, p, lo, hi) else _BAD
        if p.kind == "float":
            if len(text) > 30:
                return _BAD
            value = float(text)
            return value if _bounded(value, p, lo, hi) else _BAD
        if p.kind == "ints":
            parts = [x.strip() for x in text.split(",")] if text.strip() else []
            if len(parts) > MAX_Z_VALUES or any(len(x) > 20 for x in parts):
                return _BAD
            values = [int(x) for x in parts]
            if len(set(values)) != len(values) or not all(_bounded(v, p, lo, hi) for v in values):
                return _BAD
            return values
    except (ValueError, OverflowError):
        return _BAD
    return _BAD


def is_bad(value: Any) -> bool:
    """True for the value parse_link_value gives a parameter it cannot use."""
    return value is _BAD


def format_link_value(p: LinkParam, value: Any) -> str | None:
    """The query text of a session value, or None when it is missing or the default (left out of the link)."""
    if value is None or (p.default is not None and value == p.default):
        return None
    if p.kind == "z":
        return format_z(value) if value else None
    if p.kind == "ints":
        return ",".join(str(int(v)) for v in value)
    if p.kind == "bool":
        return "1" if value else "0"
    if p.kind == "float":
        return f"{float(value):g}"
    if p.kind == "int":
        return str(int(value))
    return str(value) or None


def parse_link(page: str, params: Mapping[str, Any], limits: Mapping[str, tuple] | None = None,
               choices: Mapping[str, Iterable] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The page's link values found in `params` (by query name) and the names of those present but unusable.

    limits: {name: (lo, hi)} and choices: {name: options} override the declarations for this run."""
    values: dict[str, Any] = {}
    bad: list[str] = []
    for p in link_params_of(page):
        try:
            present = p.name in params
            raw = params[p.name] if present else None
        except Exception:  # noqa: BLE001 - a broken mapping holds no link
            return {}, []
        if not present:
            continue
        lo, hi = (limits or {}).get(p.name, (None, None))
        value = parse_link_value(p, raw, lo, hi, (choices or {}).get(p.name))
        if is_bad(value):
            bad.append(p.name)
        else:
            values[p.name] = value
    return values, bad


def applied_flag(page: str) -> str:
    """Session key: the page's link has been read in this session (sliders → qp_sliders_applied)."""
    return f"qp_{page}_applied"


def _raw_query() -> dict[str, Any]:
    import streamlit as st

    try:
        return {k: st.query_params.get_all(k) for k in st.query_params}
    except Exception:  # noqa: BLE001
        return {}


def restore_link(page: str, limits: Mapping[str, tuple] | None = None,
                 choices: Mapping[str, Iterable] | None = None) -> set[str]:
    """Apply the page's link to session state, once per session (again after a bookmark is opened); call it
    before the page's widgets. Returns the names applied; unusable ones are named in a toast and ignored."""
    import streamlit as st

    flag = applied_flag(page)
    if st.session_state.get(flag):
        return set()
    st.session_state[flag] = True
    values, bad = parse_link(page, _raw_query(), limits, choices)
    by_name = {p.name: p for p in link_params_of(page)}
    for name, value in values.items():
        p = by_name[name]
        for key in p.clear:
            st.session_state.pop(key, None)
        for key in p.keys:
            st.session_state[key] = value
    if bad:
        from ui.safe_text import escape

        st.toast(f"The link's {escape(', '.join(bad))} could not be used (wrong type or out of range) and "
                 "was ignored.", icon=":material/link_off:")
    return set(values)


def link_values(page: str, values: Mapping[str, Any]) -> dict[str, str | None]:
    """The query texts of the page's link from session `values` (None: left out)."""
    return {p.name: format_link_value(p, values.get(p.read_key)) for p in link_params_of(page)}


def write_link(page: str, only: Iterable[str] | None = None) -> None:
    """Write the page's link from session state (call it after the widgets, on every run): the address bar
    shows this view. Parameters of the other pages' links are removed (they would restore a view not shown)."""
    import streamlit as st

    texts = link_values(page, st.session_state)
    if only is not None:
        texts = {k: v for k, v in texts.items() if k in set(only)}
    own = {p.name for p in link_params_of(page)}
    shared = {p.name for s in SHARED_LINKS for p in link_params_of(s)} | {"run"}
    stale = {p.name for other, ps in LINKS.items() if other != page for p in ps} - own - shared
    if page in SHARED_LINKS:  # the sidebar runs before the page: the page's own link is not read yet
        stale = set()
    set_query_params(**texts, **dict.fromkeys(stale - set(texts)))


def reopen_links() -> None:
    """Forget that the links were read, so the next run applies the current query parameters again
    (a bookmark being opened) — the run picker's and the decode settings' included."""
    import streamlit as st

    st.session_state[QP_RUN_APPLIED] = False
    for page in LINKS:
        st.session_state.pop(applied_flag(page), None)
