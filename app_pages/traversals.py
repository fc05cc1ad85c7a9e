"""Traversals: rows = latent dimensions, columns = values; one batched decode for the whole grid.

On a corpus with a factor grammar (the built-in one, a shipped or your own grammar) each row says which
factor(s) it changes and how often.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ui import figures, loaders, state, widgets
from ui.textdiff import escape, mark_changes
from vae_core import explore
from vae_core.evaluate import N_TRAVERSAL_BASES as N_BASES  # sentences traversed by "across many sentences"
from vae_core.label_classifiers import accuracy_rows, ownership_rows
from vae_core.subsets import categorical_columns
from vae_core.validity import summarise_traversals

run = loaders.require_run()
widgets.inject_css()
st.title("Traversals")
st.markdown(
    "Start from one code and move **one dimension at a time** across a range of values, keeping the others "
    "fixed. Each row is a dimension, each column a value; words that differ from the row's centre are marked. "
    "A disentangled dimension changes one thing along its row."
)

dim = run.model_config.latent_dim
grammar = loaders.run_grammar(run)  # parses each decode into factors; None without one
stats = loaders.dim_stats(run)

# The link's start, sentence, dimensions, mode, span and number of values (ui.state.LINKS), once.
state.restore_link("traversals", limits={"dims": (0, dim - 1)})
start_options = {"sentence": "A sentence's posterior mean", "prior": "The centre of the prior (z = 0)"}
start_from = st.radio(
    "Start from", list(start_options), format_func=start_options.get, horizontal=True, key="w_trav_start"
)
mu = logvar = None
if start_from == "sentence":
    options = loaders.corpus_sentences(run, "test", 300)
    sentence = widgets.sentence_input(
        "Sentence", key="trav", options=options, default=options[0] if options else "", persist_key=state.SENTENCE
    )
    if not sentence:
        st.info("Type a sentence (or pick one), or start from the centre of the prior.")
        st.stop()
    mus, logvars, oov = loaders.encode(run, [sentence])
    widgets.oov_warning(oov[0])
    mu, logvar = mus[0], logvars[0]
    z0 = mu
else:
    z0 = np.zeros(dim, dtype=np.float32)

default_dims = stats.active_dims or stats.order[: min(dim, 8)]
c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
dims = c1.multiselect(
    "Dimensions (rows)",
    options=list(range(dim)),
    default=default_dims,
    key="w_trav_dims",
    format_func=lambda d: f"z{d} (KL {stats.kl[d]:.2f}{'' if stats.active[d] else ', inactive'})",
)
modes = {"absolute": "Absolute: ± span in prior std", "relative": "Relative: posterior mean ± span × posterior std"}
mode = c2.radio(
    "Values",
    list(modes),
    format_func=modes.get,
    key="w_trav_mode",
    disabled=mu is None,
    help="Relative needs a sentence: it walks around that sentence's code.",
)
if mu is None:
    mode = "absolute"
span = c3.number_input("Span", 0.25, 10.0, 3.0, step=0.25, key="w_trav_span")
n_values = c4.number_input("Values", 2, 21, 9, step=1, key="w_trav_n", help="Columns; an odd number has a centre.")
state.write_link("traversals")  # after every change, so the address bar shows this view
if not dims:
    st.info("Choose at least one dimension.")
    st.stop()

dims = sorted(dims, key=stats.order.index)
values = explore.traversal_values(int(n_values), float(span))  # (V,)
posterior_std = np.exp(0.5 * logvar) if (mode == "relative" and logvar is not None) else None
grid = explore.traversal_grid(z0, dims, values, mode, posterior_std)  # (R, V, D)
R, V = grid.shape[0], grid.shape[1]
texts = loaders.decode_texts(run, np.concatenate([z0[None], grid.reshape(R * V, dim)]))  # one batched call
base_text, cells = texts[0], [texts[1 + r * V : 1 + (r + 1) * V] for r in range(R)]
center = V // 2 if V % 2 else None

if mode == "absolute":
    headers = [f"{v:+.2f}" for v in values.tolist()]
else:
    headers = [f"μ{v:+.2f}σ" for v in values.tolist()]

widgets.sentence_block(escape(base_text) or "<i>(empty)</i>", caption="Decoded from the starting code")

row_summaries = []
if grammar is not None:
    for row in cells:
        row_summaries.append(summarise_traversals([[grammar.parse(t) for t in row]], tuple(grammar.factors)))


def _effect_text(s: dict) -> str:
    steps = s["n_steps"]
    changing = round(s["change_rate"] * steps)
    if changing == 0:
        return f"no change in {steps} steps"
    shares = sorted(((f, v) for f, v in s["factor_share"].items() if v > 0), key=lambda fv: -fv[1])
    parts = [f"{f} {v:.0%}" for f, v in shares[:3]]
    invalid = s["invalid_step_rate"]
    if invalid > 0:
        parts.append(f"to/from invalid {invalid * steps / changing:.0%}")
    return f"changes in {changing}/{steps} steps: " + ", ".join(parts)


html_rows, plain_rows = [], []
for r, d in enumerate(dims):
    row = cells[r]
    reference = row[center] if center is not None else base_text
    marked = [mark_changes(reference.split(), t.split()) or "<i>(empty)</i>" for t in row]
    label = f"<b>z{d}</b><br><span class='vae-muted'>KL {stats.kl[d]:.2f}</span>"
    extra = []
    if grammar is not None:
        s = row_summaries[r]
        label += f"<br><span class='vae-muted'>{escape(_effect_text(s))}; valid {s['validity']:.0%}</span>"
        extra = [_effect_text(s), round(s["validity"], 3)]
    html_rows.append([label, *marked])
    plain_rows.append([f"z{d}", *row, *extra])

tab_grid, tab_table = st.tabs(["Marked grid", "Plain table"])
with tab_grid:
    center_col = None if center is None else center + 1  # +1: the first column is the dimension
    # In a box that scrolls sideways: a wide grid (21 values, or 9 on a 1024×768 projector) was clipped on
    # the right with no way to reach its last columns (issue 20.5). Cells keep a readable width.
    widgets.show_html(
        "<style>.vae-scroll .vae-table td, .vae-scroll .vae-table th { min-width: 8rem; }</style>"
        '<div class="vae-scroll" style="overflow-x:auto;max-width:100%;padding-bottom:.4rem">'
        + widgets.html_table(["dim", *headers], html_rows, center_col=center_col).replace(
            '<table class="vae-table">', '<table class="vae-table" style="width:auto;min-width:100%">', 1
        )
        + "</div>"
    )
    if V > 7:
        st.caption("Scroll the grid sideways to see every column.")
    st.caption(
        (
            "Columns are values of the dimension in prior standard deviations (the prior is N(0, 1)). "
            if mode == "absolute"
            else "Columns are the sentence's posterior mean plus multiples of its posterior std. "
        )
        + (
            "Marked words differ from the centre column."
            if center is not None
            else "Marked words differ from the starting sentence (an even number of values has no centre)."
        )
    )
columns = ["dim", *headers] + (["factor effect", "validity"] if grammar is not None else [])
table = pd.DataFrame(plain_rows, columns=columns)
with tab_table:
    st.dataframe(table, hide_index=True)
widgets.csv_download(table, f"traversal-{run.name}.csv", key="w_trav_csv")

if grammar is not None and row_summaries:
    factor_names = list(grammar.factors)
    st.subheader("Which factor does each dimension change?")
    st.plotly_chart(
        figures.factor_share_heatmap([s["factor_share"] for s in row_summaries], [f"z{d}" for d in dims], factor_names)
    )
    st.caption("Share of the steps along each row (that change anything) in which each factor changes.")
    with st.expander(f"Across {N_BASES} test sentences (more reliable than one row)"):
        if st.button("Traverse from many sentences", key="w_trav_many"):
            bases = loaders.corpus_sentences(run, "test", N_BASES)
            base_mu, _, _ = loaders.encode(run, bases)
            with st.spinner("Decoding the traversals…"):
                report = explore.traversal_effects(run, base_mu, dims, values)
            per_dim = pd.DataFrame(
                {
                    "dim": [f"z{s['dim']}" for s in report["per_dim"]],
                    "top factor": [s["top_factor"] or "—" for s in report["per_dim"]],
                    "change rate": [round(s["change_rate"], 3) for s in report["per_dim"]],
                    "validity": [round(s["validity"], 3) for s in report["per_dim"]],
                    **{f: [round(s["sole_share"][f], 3) for s in report["per_dim"]] for f in factor_names},
                }
            )
            st.dataframe(per_dim, hide_index=True)
            owners = report["owners"]
            owned = ", ".join(f"{escape(f)} ← {', '.join(f'z{d}' for d in ds)}" for f, ds in owners.items())
            st.markdown(
                f"**{len(owners)} of {len(factor_names)} factors** have a dimension of their own"
                + (f": {owned}" if owners else ".")
            )
            st.caption("Factor columns: share of changing steps in which only that factor changes.")

if grammar is None and (labelled_corpus := loaders.corpus_for_run(run)) is not None and categorical_columns(
    labelled_corpus.train.labels
):
    # A corpus with label columns and no grammar: classifiers trained on its own text and labels label the decodes.
    st.subheader("Which label does each dimension change?")
    st.caption(
        "This corpus has label columns but no grammar, so each decode is labelled by classifiers trained on the "
        "corpus's own sentences and labels (TF-IDF word 1–2-grams + logistic regression); a label changes along a "
        "row when its predicted value changes. Each classifier's accuracy on held-out sentences is shown with "
        "the results."
    )
    with st.expander(f"Across {N_BASES} test sentences, labelled by classifiers", expanded=True):
        if st.button("Traverse from many sentences", key="w_trav_labels"):
            bases = loaders.corpus_sentences(run, "test", N_BASES)
            base_mu, _, _ = loaders.encode(run, bases)
            with st.spinner("Training the label classifiers and decoding the traversals…"):
                report = explore.traversal_effects(run, base_mu, dims, values)
            described = report["labeller"]
            if described.get("kind") != "classifiers":
                st.info("The label classifiers could not be trained on this run's corpus.")
                st.stop()
            st.dataframe(pd.DataFrame(accuracy_rows(described)), hide_index=True, key="w_trav_label_acc")
            st.caption(f"Classifier accuracy on the {escape(described.get('heldout', ''))} (not used in training); "
                       "the baseline always answers the most common value.")
            for name, why in described.get("unusable", {}).items():
                st.warning(f"'{escape(name)}' is not analysed: its classifier's {escape(why)}.")
            if report["per_dim"] and report["n_factors"]:
                st.dataframe(pd.DataFrame(ownership_rows(report)), hide_index=True, key="w_trav_label_table")
                accuracy = {c["factor"]: c["accuracy"] for c in described["classifiers"]}
                owned = ", ".join(
                    f"{escape(f)} (classifier accuracy {accuracy[f]:.0%}) ← {', '.join(f'z{d}' for d in ds)}"
                    for f, ds in report["owners"].items()
                )
                st.markdown(
                    f"**{report['n_owned']} of {report['n_factors']} labels** have a dimension of their own"
                    + (f": {owned}" if owned else ".")
                )
                st.caption("Label columns: share of changing steps in which only that label's prediction changes.")
