"""Sliders: a sentence → its posterior mean → one slider per latent dimension → the decoded sentence, live.

The slider panel is an st.fragment: moving a slider reruns only the panel (one memoised, batched
decode), not the page, so the new sentence appears fast. Charts stay outside the fragment.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import loaders, metric_figures, state, widgets
from ui.textdiff import changed_words, escape, mark_changes
from vae_core.grammar import Grammar
from vae_core.runs import Run
from vae_core.text import tokenize

SLIDER_KEY = "w_z_{}"


def slider_key(d: int) -> str:
    return SLIDER_KEY.format(d)


def to_slider(x: float) -> float:
    """A latent value as a slider position: clipped to the range, on the 0.05 grid, 2 decimals."""
    x = min(state.SLIDER_MAX, max(state.SLIDER_MIN, float(x)))
    return round(round(x / state.SLIDER_STEP) * state.SLIDER_STEP, 2)


def _set_sliders(values: list[float]) -> None:
    for d, v in enumerate(values):
        st.session_state[slider_key(d)] = to_slider(v)
    st.session_state[state.SLIDER_VALUES] = [to_slider(v) for v in values]


def _random_sliders(dim: int) -> None:
    _set_sliders(np.random.default_rng().standard_normal(dim).tolist())


def _link_view() -> None:
    values = st.session_state.get(state.SLIDER_VALUES)
    if values:
        state.set_query_params(z=state.format_z(values))


@st.fragment
def sliders_panel(
    run: Run, z0: np.ndarray, kl: tuple[float, ...], active: list[int], inactive: list[int], grammar: Grammar | None,
    typed: tuple[str, ...] = (),
) -> None:
    """Buttons, sliders and the decoded sentence; reruns alone when a slider moves. z0: (D,) posterior mean;
    typed: the words of the sentence as the model reads them (the reconstruction is marked against them);
    grammar: the run's factor grammar (the decodes are parsed into factors), None without one."""
    dim = run.model_config.latent_dim
    start = [to_slider(v) for v in z0.tolist()]
    # A wrapping row of content-wide buttons, not fixed columns: at 1024×768 columns cut the labels to
    # "Reset …" (issue 20.5); here a button that does not fit moves to the next line, whole.
    b1 = b2 = b3 = st.container(horizontal=True, wrap=True, gap="small")
    b1.button("Reset to the sentence", on_click=_set_sliders, args=(start,), icon=":material/restart_alt:")
    b2.button(
        "Random code",
        on_click=_random_sliders,
        args=(dim,),
        icon=":material/casino:",
        help="Every slider drawn from N(0, 1): a sample from the prior.",
    )
    b3.button(
        "Link to this view",
        on_click=_link_view,
        icon=":material/link:",
        help="Put the sentence and every slider value in the address bar: send that link to open this view.",
    )
    output = st.container()  # filled after the sliders are read, shown above them

    def draw(dims: list[int], n_cols: int) -> None:
        cols = st.columns(n_cols)
        for i, d in enumerate(dims):
            with cols[i % n_cols]:
                st.slider(
                    f"z{d} · KL {kl[d]:.2f}",
                    state.SLIDER_MIN,
                    state.SLIDER_MAX,
                    step=state.SLIDER_STEP,
                    key=slider_key(d),
                    format="%.2f",
                )

    if active:
        st.markdown(f"**Active dimensions** ({len(active)}), most informative first")
        draw(active, 2)
    if inactive:
        with st.expander(f"Inactive dimensions ({len(inactive)}): the decoder (almost) ignores them"):
            draw(inactive, 3)

    values = [float(st.session_state.get(slider_key(d), start[d])) for d in range(dim)]
    # Untouched sliders keep the exact posterior mean, so the untouched view is the true reconstruction.
    z = np.array([z0[d] if abs(values[d] - start[d]) < 1e-9 else values[d] for d in range(dim)], dtype=np.float32)
    recon, current = loaders.decode_texts(run, np.stack([z0, z]))  # (2, D) in one call
    st.session_state[state.SLIDER_VALUES] = values

    with output:
        moved = sum(abs(values[d] - start[d]) > 1e-9 for d in range(dim))
        widgets.sentence_block(
            mark_changes(recon.split(), current.split()),
            caption=f"Decoded from the sliders ({moved} moved; changed words marked)",
        )
        differs = changed_words(list(typed), recon.split()) if typed else 0
        marked_recon = mark_changes(list(typed), recon.split()) if typed else escape(recon)
        widgets.show_html(
            f'<div class="vae-muted">Reconstruction at the posterior mean: {marked_recon or "(empty)"}</div>'
        )
        if typed and (differs or len(recon.split()) != len(typed)):
            st.caption(
                f"The reconstruction differs from what you typed ({differs} word(s) marked"
                + (", some left out" if len(recon.split()) < len(typed) else "")
                + "): the sliders start from what the model reads back, not from your sentence."
            )
        if grammar is not None:
            now, before = grammar.parse(current), grammar.parse(recon)
            if now is None:
                st.caption(f"Factors: not a valid sentence of the grammar '{escape(grammar.name)}'")
            else:
                changed = grammar.factor_changes(before, now)
                st.caption(
                    f"Factors: {escape(widgets.factor_text(now))}"
                    + (f" — changed: {escape(', '.join(changed))}" if changed else "")
                )
    # The address bar follows every slider move (issue 20: a stale link reopened another view). Written
    # last, after the sentence has been sent; only z changes here, and only when it changed.
    state.write_link("sliders", only=("z",))


run = loaders.require_run()
widgets.inject_css()
st.title("Sliders")
st.markdown(
    "Type a sentence or pick one. Its code is the **posterior mean**; each slider is one dimension of it. "
    "Move a slider and read what the decoder writes: a disentangled dimension changes one thing "
    "(tense, subject, negation…) and leaves the rest alone."
)

dim = run.model_config.latent_dim
max_len = run.train_config.max_len
grammar = loaders.run_grammar(run)  # parses the decodes into factors; None without one

# The link's sentence and slider values apply on the first visit only.
state.restore_link("sliders")  # s → the sentence, z → "pending_z" (declared in ui.state.LINKS)

options = loaders.corpus_sentences(run, "test", 300)
sentence = widgets.sentence_input(
    "Sentence",
    key="sliders",
    options=options,
    default=options[0] if options else "",
    persist_key=state.SENTENCE,
    help="Words the model does not know are read as <unk> (you will be told which).",
)
if not sentence:
    st.info("Type a sentence (or pick one from the corpus) to see its code and move through it.")
    st.stop()

tokens = tokenize(sentence, run.train_config.lowercase, run.vocab.tokenization)
if not tokens:
    st.info("That sentence has no words the tokenizer can read: type some words.")
    st.stop()
if len(tokens) > max_len:
    st.warning(f"The sentence has {len(tokens)} words; the model reads only the first {max_len}.")
mu, logvar, oov = loaders.encode(run, [sentence])
widgets.oov_warning(oov[0])
widgets.show_html(f'<div class="vae-muted">The model reads: {widgets.model_reads(tokens[:max_len], oov[0])}</div>')
z0 = mu[0]  # (D,)

# New sentence or run: the sliders jump to its posterior mean (or to the link's values, once).
view = [str(run.path), sentence]
pending = st.session_state.pop("pending_z", None)
if st.session_state.get(state.SLIDERS_FOR) != view:
    st.session_state[state.SLIDERS_FOR] = view
    start = pending if pending is not None and len(pending) == dim else z0.tolist()
    _set_sliders(start)
else:  # the same view: restore sliders whose widget state was dropped by a page switch
    saved = st.session_state.get(state.SLIDER_VALUES) or []
    for d in range(dim):
        if slider_key(d) not in st.session_state:
            st.session_state[slider_key(d)] = to_slider(saved[d] if len(saved) == dim else float(z0[d]))
state.set_query_params(s=sentence)

stats = loaders.dim_stats(run)
sliders_panel(run, z0, stats.kl, stats.active_dims, stats.inactive_dims, grammar, tuple(tokens[:max_len]))
state.write_link("sliders")  # a full rerun keeps the link up to date (and drops other pages' parameters)

st.divider()
c1, c2 = st.columns(2)
with c1:
    st.plotly_chart(metric_figures.kl_per_dim_bar(stats.kl, stats.active, height=260))
with c2:
    std = np.exp(0.5 * logvar[0])  # (D,)
    st.markdown("**This sentence's posterior**")
    order = stats.order
    st.dataframe(
        {
            "dimension": [f"z{d}" for d in order],
            "mean": [round(float(z0[d]), 3) for d in order],
            "std": [round(float(std[d]), 3) for d in order],
            "KL (corpus)": [round(stats.kl[d], 3) for d in order],
        },
        hide_index=True,
    )
    st.caption(f"Active dimensions measured from: {stats.source}.")
