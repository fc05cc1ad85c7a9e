"""Interpolation between two sentences' codes (lerp / slerp), sentence arithmetic and attribute vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ui import analysis, figures, loaders, state, widgets
from ui.textdiff import escape, mark_changes
from vae_core import explore
from vae_core.generation_metrics import INTERPOLATION_STEPS, interpolation_smoothness
from vae_core.grammar import Grammar
from vae_core.latent import INTERPOLATION_METHODS
from vae_core.subsets import label_values


def collapse_repeats(texts: list[str]) -> list[tuple[int, int, str]]:
    """Runs of identical consecutive decodes as (first index, count, text)."""
    runs: list[tuple[int, int, str]] = []
    for i, t in enumerate(texts):
        if runs and runs[-1][2] == t:
            first, n, _ = runs[-1]
            runs[-1] = (first, n + 1, t)
        else:
            runs.append((i, 1, t))
    return runs


def path_html(texts: list[str], labels: list[str], grammar: Grammar | None, collapse: bool) -> str:
    """The decoded path as an escaped HTML table, each row marked against the previous distinct one (and, with
    the run's grammar, parsed: which factors changed, or not a valid sentence)."""
    header = ["step", "sentence (changes vs previous marked)"] + (["factors"] if grammar is not None else [])
    rows = []
    previous: list[str] | None = None
    previous_factors = None
    groups = collapse_repeats(texts) if collapse else [(i, 1, t) for i, t in enumerate(texts)]
    for first, count, text in groups:
        tokens = text.split()
        marked = escape(text) if previous is None else mark_changes(previous, tokens)
        step = escape(labels[first]) if count == 1 else f"{escape(labels[first])} … {escape(labels[first + count - 1])}"
        if count > 1:
            step += f' <span class="vae-muted">×{count}</span>'
        row = [step, marked or "<i>(empty)</i>"]
        if grammar is not None:
            factors = grammar.parse(text)
            if factors is None:
                row.append('<span class="vae-muted">not a valid corpus sentence</span>')
            else:
                changed = grammar.factor_changes(previous_factors, factors) if previous_factors else ()
                row.append(escape(", ".join(f"{f}→{factors[f]}" for f in changed) if changed else "valid"))
            previous_factors = factors
        rows.append(row)
        previous = tokens
    return widgets.html_table(header, rows)


def path_table(texts: list[str], labels: list[str], grammar: Grammar | None, label_name: str) -> pd.DataFrame:
    """One row per step (nothing collapsed): label, sentence, and with the run's grammar validity and factors."""
    df = pd.DataFrame({label_name: labels, "sentence": texts})
    if grammar is not None:
        parsed = [grammar.parse(t) for t in texts]
        df["valid"] = [p is not None for p in parsed]
        df["factors"] = [widgets.factor_text(p) for p in parsed]
    repeats = [n for _first, n, _t in collapse_repeats(texts) for _ in range(n)]
    df["repeats"] = repeats
    return df


run = loaders.require_run()
widgets.inject_css()
grammar = loaders.run_grammar(run)  # parses the decodes into factors; None without one
st.title("Interpolation")
st.markdown(
    "Encode two sentences, walk the straight line (**lerp**) or the great circle (**slerp**) between their "
    "codes, and decode every step. A smooth latent space changes one or two words at a time and stays on "
    "grammatical sentences; holes in it show up as broken sentences in the middle of the path."
)

state.restore_link("interp")  # s, s2, interp (lerp/slerp), steps, collapse: declared in ui.state.LINKS

options = loaders.corpus_sentences(run, "test", 300)
sentence_a = widgets.sentence_input(
    "From", key="interp_a", options=options, default=options[0] if options else "", persist_key=state.SENTENCE
)
sentence_b = widgets.sentence_input(
    "To", key="interp_b", options=options, default=options[1] if len(options) > 1 else "", persist_key=state.SENTENCE_2
)
c1, c2, c3 = st.columns([1, 2, 1])
method = c1.radio(
    "Method",
    INTERPOLATION_METHODS,
    horizontal=True,
    key="w_interp_method",
    help="lerp: straight line. slerp: along the sphere, keeping codes at a typical distance from 0.",
)
steps = c2.slider("Steps (both ends included)", 2, 30, 8, key="w_interp_steps")
collapse = c3.checkbox(
    "Collapse repeats", value=True, key="w_interp_collapse", help="Show consecutive identical decodes once, with ×n."
)

state.write_link("interp")  # after every change, so the address bar shows this view
if not sentence_a or not sentence_b:
    st.info("Type (or pick) two sentences to interpolate between.")
else:
    mu, _, oov = loaders.encode(run, [sentence_a, sentence_b])
    widgets.oov_warning(oov[0], "The first sentence")
    widgets.oov_warning(oov[1], "The second sentence")
    path = explore.interpolate(mu[0], mu[1], steps, method)  # (steps, D)
    texts = loaders.decode_texts(run, path)
    labels = [f"{i} (t={i / (steps - 1):.2f})" for i in range(steps)]
    table = path_table(texts, [f"{i / (steps - 1):.3f}" for i in range(steps)], grammar, "t")
    table.insert(0, "step", list(range(steps)))

    if grammar is not None:
        inner = table["valid"].iloc[1:-1] if steps > 2 else table["valid"]
        st.caption(
            f"{int(table['valid'].sum())} of {steps} steps decode to valid corpus sentences "
            f"({int(inner.sum())} of {len(inner)} in between); {table['sentence'].nunique()} distinct sentences."
        )
    smooth = interpolation_smoothness([t.split() for t in texts])
    ev_gen = loaders.read_summary(run.path).evaluation
    ev_gen = ev_gen.generation if ev_gen is not None else None
    st.metric(
        "Interpolation smoothness of this path",
        "—" if np.isnan(smooth) else f"{smooth:.2f}",
        help="LangSpace's measure: words between the two ends ÷ words changed along the path (word edit "
        "distance; LangSpace uses the word mover's distance). 1 = every change moves towards the end; lower = "
        "the path wanders or comes back. — when the path never changes.",
    )
    if ev_gen is not None and ev_gen.smoothness is not None:
        st.caption(
            f"The evaluation in summary.json: mean smoothness {ev_gen.smoothness:.2f} over {ev_gen.n_paths:,} "
            f"lerp paths of {INTERPOLATION_STEPS} steps between random test sentences."
        )
    # Lazy tabs: the map (encoding 500 test sentences and a PCA) is computed only when its tab is open.
    tab_path, tab_table, tab_map = st.tabs(["Path", "Table", "On a map"], key="w_interp_tab", on_change="rerun")
    with tab_path:
        widgets.show_html(path_html(texts, labels, grammar, collapse))
    with tab_table:
        st.dataframe(table, hide_index=True)
    with tab_map:
        proj = analysis.path_background(run) if tab_map.open else None  # cached per run
        if proj is not None:
            st.plotly_chart(
                figures.latent_path(proj.coords, proj.transform(path), texts),
                key="w_interp_map",
            )
            st.caption(f"PCA of {len(proj.coords)} test sentences' codes (grey) with the path drawn over it.")
        elif tab_map.open:
            st.caption("The corpus is not available here, so there is nothing to draw the path over.")
    widgets.csv_download(table, f"interpolation-{run.name}.csv", key="w_interp_csv")

# --------------------------------------------------------------------------- sentence arithmetic

st.header("Sentence arithmetic")
st.markdown(
    '**a − b + c**: take what separates *a* from *b* and add it to *c* ("*a* is to *b* as ? is to *c*"). '
    "On a disentangled code, a pair that differs in one factor moves *c* in that factor only."
)
defaults = options[2:5] if len(options) >= 5 else ["", "", ""]
arith = [
    widgets.sentence_input(f"{name}", key=f"arith_{name}", options=options, default=defaults[i])
    for i, name in enumerate(("a", "b", "c"))
]
if all(arith):
    codes, _, oov = loaders.encode(run, arith)
    for name, words in zip(("a", "b", "c"), oov, strict=True):
        widgets.oov_warning(words, f"Sentence {name}")
    result = explore.arithmetic(codes[0], codes[1], codes[2])  # (D,)
    decoded = loaders.decode_texts(run, np.concatenate([codes, result[None]]))  # (4, D) in one call
    rows = [[escape(n), escape(t) or "<i>(empty)</i>"] for n, t in zip(("a", "b", "c"), decoded[:3], strict=True)]
    rows.append(["<b>a − b + c</b>", mark_changes(decoded[2].split(), decoded[3].split()) or "<i>(empty)</i>"])
    widgets.show_html(widgets.html_table(["code", "decoded (result: changes vs c marked)"], rows))
    if grammar is not None:
        fa, fb, fc = (grammar.parse(t) for t in arith)  # the typed sentences' factors
        fr = grammar.parse(decoded[3])
        if fa is None or fb is None or fc is None:
            st.caption(f"a, b and c must be sentences of the grammar '{escape(grammar.name)}' to compare factors.")
        else:
            wanted = grammar.factor_changes(fa, fb)
            if fr is None:
                outcome = "the result is not a valid corpus sentence"
            else:
                got = grammar.factor_changes(fc, fr)
                outcome = f"the result differs from c in: {escape(', '.join(got)) or 'nothing'}"
                outcome += " (a match)" if set(got) == set(wanted) else ""
            st.caption(f"a and b differ in: {escape(', '.join(wanted)) or 'nothing'} · {outcome}")
else:
    st.info("Fill in a, b and c.")

# --------------------------------------------------------------------------- attribute vectors

st.header("Attribute vectors")
DEFAULT_ATTRIBUTE = ("mood", "question")  # (label column, value) shown first when the corpus has it
_, labels = loaders.corpus_sample(run, "train", loaders.ENCODE_LIMIT)  # the sentences: analysis.attribute_direction
usable = label_values(labels)  # the label columns that are factors, with their values
if not usable:
    st.caption("This run's corpus has no label columns here, so there are no attribute vectors to move along.")
    st.stop()
st.markdown(
    "The mean code of the sentences **with** a label value minus the mean code of the rest is a direction "
    "that adds that value. Move a sentence along it and decode each step."
)
c1, c2, c3 = st.columns(3)
# The default example must change something (issue 20.8): the built-in corpus's first pair, subject = doctor,
# leaves the default model's first sentence as it was; turning a statement into a question changes it.
default_col, default_val = DEFAULT_ATTRIBUTE if DEFAULT_ATTRIBUTE[1] in usable.get(DEFAULT_ATTRIBUTE[0], ()) else (
    next(iter(usable)), None)
column = c1.selectbox("Label column", list(usable), index=list(usable).index(default_col), key="w_attr_col")
value = c2.selectbox("Value to add", usable[column], key="w_attr_val",
                     index=usable[column].index(default_val) if default_val in usable[column] else 0)
n_scales = c3.slider("Steps from 0 to 2", 3, 21, 9, key="w_attr_n")
base = sentence_a or (options[0] if options else "")
if not base:
    st.info("Type a first sentence above to move it.")
    st.stop()
try:
    direction, n_with, n_all = analysis.attribute_direction(run, column, value)  # (D,), encoded once per run
except ValueError as e:
    st.warning(f"Cannot build this direction: {escape(e)}")
    st.stop()
z_base, _, _ = loaders.encode(run, [base])
scales = np.linspace(0.0, 2.0, n_scales).tolist()
moved = explore.move_along(z_base[0], direction, scales)  # (n_scales, D)
moved_texts = loaders.decode_texts(run, moved)
st.caption(
    f"Direction from {n_with} of {n_all} training sentences with {escape(column)} = {escape(value)}; "
    f"its length is {float(np.linalg.norm(direction)):.2f}. Moving: the first sentence above."
)
scale_labels = [f"{s:.2f}" for s in scales]
widgets.show_html(path_html(moved_texts, [f"×{s}" for s in scale_labels], grammar, collapse=True))
attr_table = path_table(moved_texts, scale_labels, grammar, "scale")
if grammar is not None:
    attr_table[f"{column} = {value}"] = [
        (p is not None and p.get(column) == value) for p in (grammar.parse(t) for t in moved_texts)
    ]
st.dataframe(attr_table, hide_index=True)
widgets.csv_download(attr_table, f"attribute-{run.name}.csv", key="w_attr_csv")
