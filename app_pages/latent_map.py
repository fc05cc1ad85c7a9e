"""Latent map: UMAP / PCA / t-SNE of encoded sentences, coloured by factor, label, length, reconstruction or
any dimension; box/lasso selection listed and exported; your own sentences placed on the map, with an
interpolation path between two of them; text search; nearest neighbours in latent space."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from ui import analysis, loaders, map_figures, selection, state, widgets
from ui.textdiff import escape
from vae_core import explore, map_cache, subset_encodings, subsets
from vae_core.config import DecodeConfig
from vae_core.latent import INTERPOLATION_METHODS
from vae_core.projection import knn_place

METHOD_NAMES = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}
UMAP_METRICS = ("euclidean", "cosine", "manhattan", "correlation")
SOURCES = {"test+valid": "Test + valid sentences", "all": "All splits (train too)", "upload": "Your uploaded file"}
SPLITS = {"test+valid": ("test", "valid"), "all": ("train", "valid", "test")}
MAX_PLACED = 20  # own sentences placed at once
MAX_SENTENCE_CHARS = state.MAX_SENTENCE_CHARS  # a placed line is cut here, as a typed sentence is everywhere
SEARCH_MAX_CHARS = 200  # a search is a phrase
NN_OPTIONS = 500  # rows offered as nearest-neighbour queries (search to narrow them)
UMAP_EPOCHS = 200  # UMAP picks 500 below 10,000 points; 200 fits 2.5x faster and looks alike
SPEC = "latent_map_spec"  # session state: {run path: the map spec last drawn}
GREEDY = DecodeConfig(strategy="greedy", max_len=60)

run = loaders.require_run()
widgets.inject_css()
dim = run.model_config.latent_dim
st.title("Latent map")
st.markdown(
    "Every dot is one sentence's **posterior mean**, squeezed from "
    f"{dim} dimensions to 2 or 3 by **UMAP** (keeps neighbourhoods), **PCA** (a linear view: the directions of "
    "largest variance) or **t-SNE** (clusters; distances between clusters mean little). Colour by a factor to "
    "see whether the model groups sentences by it; select a region (box or lasso) to read what lives there."
)
if dim < 2:
    st.info("This model has a 1-dimensional latent space: there is nothing to map.")
    st.stop()

# --------------------------------------------------------------------------- which sentences

corpus = analysis.run_corpus(run)
with st.expander("Sentences on the map", expanded=corpus is None):
    upload = analysis.label_upload("map")
sources = [s for s in ("test+valid", "all") if corpus is not None] + (["upload"] if upload is not None else [])
if not sources:
    st.info(
        "This run's corpus is not available here (PTB is downloaded from the Train page). Upload a CSV of "
        "sentences above to map them."
    )
    st.stop()
# A link's map settings, colour and search (ui.state.LINKS), once; a link with a method draws its map.
linked = state.restore_link("latent-map", choices={"src": [s for s in sources if s != "upload"]})
analysis.preselect_source(sources, upload, "w_map_source", "map_upload_seen")
source = st.radio("Sentences", sources, format_func=SOURCES.get, horizontal=True, key="w_map_source")
if source == "upload":
    total = len(upload)
else:
    total = sum(len(corpus.split(s)) for s in SPLITS[source])
if total < 4:
    st.info(f"Only {total} sentence(s) to map; a map needs at least 4.")
    st.stop()

# --------------------------------------------------------------------------- settings (a form: no fit until submitted)

specs = st.session_state.setdefault(SPEC, {})
last = specs.get(str(run.path))
default_n = min(total, analysis.MAP_CAP)
max_n = min(total, analysis.MAX_SENTENCES)
widget_defaults = {
    "w_map_n": default_n,
    "w_map_method": "umap",
    "w_map_dims": 2,
    "w_map_seed": 0,
    "w_map_nn": 15,
    "w_map_min_dist": 0.1,
    "w_map_metric": "euclidean",
    "w_map_epochs": UMAP_EPOCHS,
    "w_map_perplexity": 30.0,
}
if last:  # coming back to the page: the form shows the map that is drawn
    widget_defaults.update({k: v for k, v in last["widgets"].items() if k in widget_defaults})
for k, v in widget_defaults.items():
    st.session_state.setdefault(k, v)
st.session_state["w_map_n"] = int(min(max(st.session_state["w_map_n"], min(10, max_n)), max_n))

with st.form("w_map_form"):
    c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
    if max_n > 10:
        c1.slider(
            "Sentences (a seeded sample when fewer than all)", 10, max_n, step=10 if max_n >= 200 else 1, key="w_map_n"
        )
    else:
        c1.caption(f"All {max_n} sentences.")
    c2.selectbox("Method", list(METHOD_NAMES), format_func=METHOD_NAMES.get, key="w_map_method")
    c3.radio("Dimensions", (2, 3), key="w_map_dims", horizontal=True)
    c4.number_input("Seed", 0, 2**31 - 1, step=1, key="w_map_seed")
    u1, u2, u3, u4, u5 = st.columns(5)
    u1.slider(
        "UMAP neighbours",
        2,
        200,
        key="w_map_nn",
        help="Small: local detail, many small clusters. Large: more of the global layout.",
    )
    u2.slider(
        "UMAP min distance",
        0.0,
        0.99,
        step=0.01,
        key="w_map_min_dist",
        help="How tightly UMAP packs points together (0 = clumps, near 1 = evenly spread).",
    )
    u3.selectbox("UMAP metric", UMAP_METRICS, key="w_map_metric")
    u4.slider(
        "UMAP epochs",
        50,
        500,
        step=50,
        key="w_map_epochs",
        help="Optimisation passes: fit time grows with them; 200 is UMAP's own choice for large data.",
    )
    u5.slider("t-SNE perplexity", 5.0, 100.0, step=1.0, key="w_map_perplexity")
    submitted = st.form_submit_button("Draw the map", type="primary")


def _spec_from_widgets() -> dict:
    method = st.session_state["w_map_method"]
    params: dict = {}
    if method == "umap":
        params = {
            "n_neighbors": int(st.session_state["w_map_nn"]),
            "min_dist": float(st.session_state["w_map_min_dist"]),
            "metric": st.session_state["w_map_metric"],
            "n_epochs": int(st.session_state["w_map_epochs"]),
        }
    elif method == "tsne":
        params = {"perplexity": float(st.session_state["w_map_perplexity"])}
    n = int(st.session_state["w_map_n"]) if max_n > 10 else max_n
    return {
        "source": source,
        "n": n,
        "method": method,
        "n_components": int(st.session_state["w_map_dims"]),
        "seed": int(st.session_state["w_map_seed"]),
        "params": params,
        "widgets": {k: st.session_state[k] for k in widget_defaults},
    }


def _subset(spec: dict) -> subsets.Subset | None:
    if spec["source"] == "upload":
        return None if upload is None else subsets.sample_subset(upload, spec["n"])
    return analysis.run_subset(run, SPLITS[spec["source"]], spec["n"])


spec = None
if submitted or "method" in linked:
    spec = _spec_from_widgets()
    specs[str(run.path)] = spec
elif last and last["source"] == source:
    spec = last
else:  # never drawn in this session: draw the default map only if it is already on disk
    candidate = _spec_from_widgets()
    cand_subset = _subset(candidate)
    if cand_subset is not None and map_cache.disk_cached(
        run.path,
        map_cache.map_key(
            run.path,
            cand_subset.subset_id,
            candidate["method"],
            candidate["n_components"],
            candidate["seed"],
            candidate["params"],
        ),
    ):
        spec = candidate
        specs[str(run.path)] = spec
if spec is None:
    st.info(
        f"Choose the settings and press **Draw the map**: {default_n:,} sentences are encoded and mapped. "
        "PCA is instant; UMAP of 5,000 points takes about half a minute on a 2-core machine (more the first "
        "time a server process uses it). The map is then cached in memory and in the run directory, so "
        "changing colours or coming back never refits."
    )
    st.stop()

subset = _subset(spec)
if subset is None:
    st.info("Upload the file again to map its sentences (uploads are not kept when you leave the page).")
    st.stop()
method_name = METHOD_NAMES[spec["method"]]
# Progress in two steps (issue 20: a first map is a wait; say what is being done and how far it has got).
with st.status(f"Step 1 of 2: encoding {len(subset):,} sentences and decoding their reconstructions…") as progress:
    started = time.perf_counter()
    enc = analysis.encode_subset(run, subset)
    progress.update(
        label=f"Step 2 of 2: fitting {method_name} on {len(subset):,} points… (UMAP: about 6 s per 1,000 points "
        "on 2 cores; only the first time, then it is cached)"
    )
    try:
        proj, proj_source, proj_key = analysis.map_projection(
            run.path, subset.subset_id, enc.mu, spec["method"], spec["n_components"], spec["seed"], spec["params"]
        )
    except ValueError as e:
        progress.update(label="The map could not be drawn", state="error")
        st.error(f"Cannot draw this map: {escape(e)}")
        st.stop()
    progress.update(label=f"Map of {len(subset):,} sentences ready in {time.perf_counter() - started:.1f} s",
                    state="complete", expanded=False)
coords = proj.coords  # (N, C)


def _knn_place(codes: np.ndarray) -> np.ndarray:
    """(M, D) -> (M, C): the inverse-distance-weighted mean of the 5 nearest fitted points (instant)."""
    return knn_place(proj.fitted_codes, proj.coords, codes)


where = {
    "memory": "kept in memory",
    "disk": "loaded from the disk cache",
    "fitted": f"fitted in {proj.fit_seconds:.1f} s and cached",
}[proj_source]
params_text = escape(", ".join(f"{k}={v}" for k, v in proj.params.items() if v is not None))
st.caption(
    f"{method_name} {proj.n_components}-D of {escape(subset.source)} · {where} · "
    + (f"{params_text} · " if params_text else "")
    + f"reconstructed exactly: {enc.exact_match:.0%}"
)

# --------------------------------------------------------------------------- colour and search

options = subset_encodings.color_options(subset, dim)
if st.session_state.get("w_map_color") not in options:
    st.session_state["w_map_color"] = options[0]
c1, c2 = st.columns([1, 2])
color_choice = c1.selectbox(
    "Colour by",
    options,
    key="w_map_color",
    help="A factor or label column, the number of words, whether the greedy reconstruction "
    "equals the input, or the value of one latent dimension.",
)
query = c2.text_input("Search the sentences (case-insensitive)", key="w_map_search")  # no max_chars: a longer
if len(query.strip()) > SEARCH_MAX_CHARS:  # paste would be dropped silently in the browser; cut it and say so
    c2.warning(f"Only the first {SEARCH_MAX_CHARS} characters of the search are used (it has {len(query.strip()):,}).")
    query = query.strip()[:SEARCH_MAX_CHARS]
matches = subsets.text_matches(subset.sentences, query) if query.strip() else []
state.write_link("latent-map")  # the drawn map's settings, colour and search: the address bar shows this view
if query.strip():
    c2.caption(
        f"{len(matches):,} sentence(s) contain “{escape(query.strip())}”." if matches else "No sentence matches."
    )

# --------------------------------------------------------------------------- your own sentences and a path

placed_overlay = path_overlay = None
placed_sentences: list[str] = []
placed_mu = None
with st.expander("Place your own sentences (and draw a path between two)", expanded=False):
    raw = st.text_area(
        "One sentence a line",
        key="w_map_place",
        height=110,
        placeholder="the doctor sees the small cat .\nthe pilots will not follow the red horse .",
    )
    typed_lines = [" ".join(s.split()) for s in raw.splitlines() if s.strip()]
    placed_sentences = [s[:MAX_SENTENCE_CHARS] for s in typed_lines[:MAX_PLACED]]
    cut = [str(i + 1) for i, s in enumerate(typed_lines[:MAX_PLACED]) if len(s) > MAX_SENTENCE_CHARS]
    if len(typed_lines) > MAX_PLACED or cut:  # say what was left out, never drop it silently
        st.warning(" ".join(
            ([f"Only the first {MAX_PLACED} of {len(typed_lines)} lines are placed."]
             if len(typed_lines) > MAX_PLACED else [])
            + ([f"Line(s) {', '.join(cut)} cut to their first {MAX_SENTENCE_CHARS} characters."] if cut else [])))
    if placed_sentences:
        placed_mu, _, placed_oov = loaders.encode(run, placed_sentences)  # (M, D)
        for i, words in enumerate(placed_oov):
            widgets.oov_warning(words, f"Sentence {i + 1}")
        placed_recon = loaders.decode_texts(run, placed_mu, GREEDY)
        exact = True
        if proj.method == "umap" and proj.placement == "reducer":
            exact = st.checkbox(
                "Place with UMAP's own transform",
                value=False,
                key="w_map_umap_transform",
                help="Exact UMAP placement. Its first use in a server process compiles code for a minute or more "
                "on a small machine; off, a sentence lands at the weighted mean of its 5 nearest map points "
                "in latent space (instant).",
            )
        place = proj.transform if exact else _knn_place  # (M, D) -> (M, C): placed, not refitted
        placed_xy = place(placed_mu)
        placed_overlay = map_figures.Overlay(
            placed_xy,
            [str(i + 1) for i in range(len(placed_sentences))],
            map_figures.hover_lines(placed_sentences, placed_recon),
            "your sentences",
        )
        st.caption(
            f"Placed by the fitted {METHOD_NAMES[proj.method]} transform."
            if exact and proj.placement == "reducer"
            else "Placed at the weighted mean of their 5 nearest map points in latent space"
            + ("." if not exact else " (t-SNE, or a UMAP loaded from the disk cache, has no transform for new points).")
        )
        if len(placed_sentences) >= 2:
            p1, p2, p3, p4 = st.columns(4)
            labels = [f"{i + 1}: {s[:50]}" for i, s in enumerate(placed_sentences)]
            a = p1.selectbox("Path from", range(len(labels)), format_func=labels.__getitem__, key="w_map_path_a")
            b = p2.selectbox("to", range(len(labels)), index=1, format_func=labels.__getitem__, key="w_map_path_b")
            steps = p3.slider("Steps", 3, 30, 8, key="w_map_path_steps")
            interp = p4.radio("Interpolation", INTERPOLATION_METHODS, horizontal=True, key="w_map_path_method")
            draw_path = st.checkbox("Draw the path on the map", value=True, key="w_map_path_on")
            if draw_path and a != b:
                path_z = explore.interpolate(placed_mu[a], placed_mu[b], steps, interp)  # (steps, D)
                path_texts = loaders.decode_texts(run, path_z)
                path_overlay = map_figures.Overlay(
                    place(path_z),
                    [str(i) for i in range(steps)],
                    [f"{i}: {map_figures.escape_hover(t)}" for i, t in enumerate(path_texts)],
                    "path",
                )
                st.dataframe(
                    {
                        "step": list(range(steps)),
                        "decoded": path_texts,
                        "x": path_overlay.coords[:, 0].tolist(),
                        "y": path_overlay.coords[:, 1].tolist(),
                    },
                    hide_index=True,
                    key="w_map_path_table",
                )
    else:
        st.caption("Type sentences to see where the encoder puts them; they are placed, not refitted.")

# --------------------------------------------------------------------------- nearest neighbours (latent space)

nn_rows: list[int] = []
nn_query_row = None
nn_table = None
with st.expander("Nearest neighbours in latent space", expanded=False):
    show_nn = st.checkbox("Find the nearest neighbours of a sentence", key="w_map_nn_on")
    candidates = [f"p{i}" for i in range(len(placed_sentences))]
    candidates += [f"r{r}" for r in (matches if matches else range(len(subset)))[:NN_OPTIONS]]

    def _name(c: str) -> str:
        if c.startswith("p"):
            return f"your sentence {int(c[1:]) + 1}: {placed_sentences[int(c[1:])]}"
        return f"{int(c[1:])}: {subset.sentences[int(c[1:])]}"

    q1, q2, q3 = st.columns([4, 1, 1])
    if candidates and st.session_state.get("w_map_nn_query") not in candidates:
        # Set, not popped: a popped value leaves the browser showing the old sentence while the page
        # computes the neighbours of the first candidate (issue 20.1); a value set before the widget is
        # drawn is sent to the browser too.
        st.session_state["w_map_nn_query"] = candidates[0]
    choice = q1.selectbox(
        "Sentence (search above to narrow the list)", candidates, format_func=_name, key="w_map_nn_query"
    )
    k = q2.number_input("k", 1, 100, 10, key="w_map_nn_k")
    metric = q3.radio("Distance", ("euclidean", "cosine"), key="w_map_nn_metric")
    if show_nn and choice:
        if choice.startswith("p"):
            q_code = placed_mu[int(choice[1:])]
        else:
            nn_query_row = int(choice[1:])
            q_code = enc.mu[nn_query_row]
        idx, dist = explore.nearest(enc.mu, q_code, k=int(k) + 1, metric=metric)
        pairs = [(int(i), float(d)) for i, d in zip(idx[0], dist[0], strict=True) if int(i) != nn_query_row]
        pairs = pairs[: int(k)]
        nn_rows = [i for i, _ in pairs]
        nn_table = subset_encodings.rows_frame(subset, enc, coords, nn_rows)
        nn_table.insert(1, "distance", [d for _, d in pairs])
        st.caption(
            f"Neighbours of {escape(_name(choice))} by {metric} distance between posterior means ({dim}-D), "
            "not on the map: close on the map is not always close in latent space."
        )
        st.dataframe(nn_table, hide_index=True, key="w_map_nn_table")

# --------------------------------------------------------------------------- the map

kind, values, categories = subset_encodings.color_values(color_choice, subset, enc)
color = map_figures.ColorSpec(
    color_choice, kind, values, categories,
    map_figures.BOOL_COLORS if color_choice == subset_encodings.COLOR_RECON else {},
)
hover = analysis.hover_texts(run, subset, enc)
fig = map_figures.map_figure(
    coords,
    hover,
    color,
    highlight=matches,
    neighbours=nn_rows,
    query_row=nn_query_row,
    placed=placed_overlay,
    path=path_overlay,
)
event = st.plotly_chart(
    fig,
    on_select="rerun",
    selection_mode=("points", "box", "lasso"),
    key=f"w_map_chart_{proj_key[:8]}",
    config={"scrollZoom": True, "displaylogo": False},
)
rows = selection.selected_rows(event, len(subset))
if proj.n_components == 3:
    st.caption("Drag to rotate. Box and lasso selection need a 2-D map; in 3-D, click a point to list it.")
if rows:
    st.subheader(f"Selected: {len(rows):,} sentence(s)")
    table = subset_encodings.rows_frame(subset, enc, coords, rows)
    st.dataframe(table, hide_index=True, key="w_map_selection_table")
    widgets.csv_download(
        table, f"latent-map-selection-{run.name}.csv", "Download the selection (CSV)", key="w_map_selection_csv"
    )
else:
    st.caption("Select points with the box or lasso tool (top right of the chart) to list their sentences here.")
if matches:
    with st.expander(f"Search matches ({len(matches):,})"):
        match_table = subset_encodings.rows_frame(subset, enc, coords, matches)
        st.dataframe(match_table, hide_index=True, key="w_map_match_table")
        widgets.csv_download(
            match_table, f"latent-map-search-{run.name}.csv", "Download the matches (CSV)", key="w_map_match_csv"
        )
