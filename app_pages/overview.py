"""Overview: what a β-VAE is, the loaded run's card, and sentences sampled from the prior."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui import figures, loaders, metric_figures, state, widgets
from ui.safe_text import code, escape
from vae_core import explore
from vae_core.config import to_dict
from vae_core.model import decoder_description, parameter_count
from vae_core.runs import effective_state, read_metrics

N_SAMPLES_DEFAULT = 8

st.title("β-VAE Text Lab")
st.markdown(
    "A **variational autoencoder** (VAE) reads a sentence *x*, squeezes it into a short code *z* of a "
    "few numbers, and writes a sentence back from that code. The encoder gives, for each sentence, a "
    "small Gaussian cloud *q(z|x)* of codes rather than one point; the decoder writes a sentence from *z* "
    "(how depends on the model: see its card below). Training maximises:"
)
st.latex(
    r"\mathcal{L}_\beta(x) \;=\; \underbrace{\mathbb{E}_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]}"
    r"_{\text{reconstruction}} \;-\; \beta\,\underbrace{D_{\mathrm{KL}}\big(q_\phi(z\mid x)\,\|\,"
    r"\mathcal{N}(0, I)\big)}_{\text{rate: nats the code carries}}"
)
with st.expander("What β trades, and what can go wrong", expanded=True):
    st.markdown(
        "- **β = 1** is the plain VAE: the bound on the log-likelihood of the sentence.\n"
        "- **β > 1** charges more for every nat the code carries. The code is pushed towards the prior "
        "N(0, I), whose dimensions are independent, so the model is encouraged to spend each dimension "
        "on one thing that varies (tense, subject, negation…): a **factorised, disentangled** code. "
        "The price is reconstruction: fewer details get through, and the decoded sentence drifts from the input.\n"
        "- **β < 1** lets more through: sharper reconstructions, a more tangled code.\n"
        "- **Posterior collapse**: the decoder is a strong language model and can write fluent sentences "
        "while ignoring *z*. Then the KL of every dimension falls to 0, every sentence gets the same code, "
        "and the sliders do nothing. KL warm-up, cyclical β, free bits and word dropout (see Train) fight it.\n"
        "- A dimension is **active** when its posterior mean changes from sentence to sentence "
        "(variance over the corpus > 0.01); inactive dimensions are ignored by the decoder."
    )

run = loaders.require_run()
grammar = loaders.run_grammar(run)  # the corpus's factor grammar (parses the prior samples); None without one



def beta_text(tcfg, records: list[dict]) -> str:
    """The run's β as trained: the configured β and schedule, and the largest KL weight its metrics logged
    when that fell short of β (a warm-up longer than the run: issue 20.4)."""
    text = f"β {tcfg.beta:g} ({escape(tcfg.schedule)})"
    weights = [float(r["weight"]) for r in records
               if r.get("kind") == "train" and isinstance(r.get("weight"), (int, float))]
    if not weights or tcfg.schedule == "capacity":  # capacity runs weight |KL − C| by γ, not by β
        return text
    reached = max(weights)
    if reached < 0.995 * tcfg.beta:
        text += f", but the KL weight reached only {reached:.3g} (the warm-up was longer than the training)"
    return text


# --------------------------------------------------------------------------- the run card

st.header(f"Model: {escape(run.name)}")
corpus_info = run.config.get("corpus") if isinstance(run.config.get("corpus"), dict) else {}
mcfg, tcfg = run.model_config, run.train_config
card = st.columns(4)
card[0].metric("Corpus", escape(corpus_info.get("name") or corpus_info.get("spec") or "unknown"))
card[1].metric("Latent dimensions", mcfg.latent_dim)
card[2].metric("Vocabulary", f"{len(run.vocab):,} words")
card[3].metric("Parameters", f"{parameter_count(mcfg):,}")
status = effective_state(run.path)
source = "shipped with the app" if loaders.is_shipped(run.path) else "your run"
st.caption(
    f"Corpus spec: {escape(corpus_info.get('spec', '?'))} · "
    f"decoder: {escape(decoder_description(mcfg))} · "
    f"{beta_text(tcfg, read_metrics(run.path))} · status: {escape(status)} · {source} · "
    f"created {escape(run.config.get('created', '?'))} · directory: {escape(run.path)}"
)

summary = loaders.read_summary(run.path)
ev = summary.evaluation


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


if ev:
    nll_label = "NLL (importance-sampled)" if ev.nll is not None else "NLL ≤ (−ELBO)"
    nll = ev.nll if ev.nll is not None else ev.nll_bound
    ppl = ev.ppl if ev.ppl is not None else ev.ppl_bound
    cols = st.columns(5)
    cols[0].metric(nll_label, _fmt(nll))
    cols[1].metric("Perplexity", _fmt(ppl))
    cols[2].metric("KL (nats)", _fmt(ev.kl))
    cols[3].metric("Active units", "—" if ev.active_units is None else f"{ev.active_units} / {mcfg.latent_dim}")
    cols[4].metric("Mutual information I(x;z)", _fmt(ev.mi))
    extra = []
    if ev.token_accuracy is not None:
        extra.append(f"reconstruction token accuracy {ev.token_accuracy:.1%}")
    if ev.bleu is not None:
        extra.append(f"BLEU {ev.bleu:.3f}")
    if ev.prior_samples is not None and ev.prior_samples.validity is not None:
        extra.append(f"valid prior samples {ev.prior_samples.validity:.1%}")
    st.caption(
        f"Evaluated on the {escape(ev.split or '?')} split ({'?' if ev.n_sentences is None else ev.n_sentences} "
        "sentences)"
        + (f" at {escape(ev.evaluated_at)}" if ev.evaluated_at else "")
        + ("; " + ", ".join(extra) if extra else "")
    )
else:
    eval_command = code(f"python -m vae_core eval {run.path}")
    st.info(f"Not evaluated yet: run {eval_command} to add NLL, KL, active units and MI.")
    valid = summary.valid
    if valid is not None:
        figures_shown = [
            f"{name} {value:.3f}"
            for value, name in ((valid.recon, "reconstruction"), (valid.kl, "KL"), (valid.nll_bound, "−ELBO"))
            if value is not None
        ]
        if valid.active_units is not None:
            figures_shown.append(f"active units {valid.active_units}")
        st.caption("From the last validation during training: " + ", ".join(figures_shown))

left, right = st.columns([3, 2])
with left:
    st.subheader("Training curve")
    records = read_metrics(run.path)
    if records:
        st.plotly_chart(figures.training_curve(records))
    else:
        st.caption("No metrics.jsonl in this run.")
with right:
    st.subheader("Latent dimensions")
    stats = loaders.dim_stats(run)
    st.plotly_chart(metric_figures.kl_per_dim_bar(stats.kl, stats.active, height=260))
    st.caption(f"{len(stats.active_dims)} of {mcfg.latent_dim} dimensions active (measured from: {stats.source}).")

if grammar is not None:
    with st.expander(f"Factors of the corpus: the grammar '{escape(grammar.name)}' ({len(grammar.factors)} factors, "
                     f"{grammar.size:,} sentences)"):
        if grammar.description:
            st.caption(escape(grammar.description))
        st.dataframe(
            pd.DataFrame({"factor": list(grammar.factors), "values": [len(v) for v in grammar.factors.values()],
                          "e.g.": [", ".join(v[:6]) for v in grammar.factors.values()]}),
            hide_index=True,
            key="w_overview_factors",
        )
        st.caption("Every combination of the factors' values is one sentence; the Sliders, Traversals, "
                   "Interpolation and Disentanglement pages parse decodes back into these factors.")

with st.expander("Configuration"):
    c1, c2 = st.columns(2)
    c1.markdown("**Model**")
    c1.dataframe(
        pd.DataFrame({"option": list(to_dict(mcfg)), "value": [str(v) for v in to_dict(mcfg).values()]}),
        hide_index=True,
    )
    c2.markdown("**Training**")
    c2.dataframe(
        pd.DataFrame({"option": list(to_dict(tcfg)), "value": [str(v) for v in to_dict(tcfg).values()]}),
        hide_index=True,
    )

# --------------------------------------------------------------------------- prior samples

st.header("Samples from the prior")
st.markdown(
    "Codes drawn at random from N(0, I) and decoded with the sidebar's decoding settings. A good model "
    "writes fluent sentences from anywhere the prior puts weight; a collapsed one writes the same sentence every time."
)
st.session_state.setdefault(state.PRIOR_SEED, 0)
c1, c2 = st.columns([3, 1])
n_samples = c1.slider("Number of samples", 1, 30, N_SAMPLES_DEFAULT, key="w_prior_n")
if c2.button("Re-sample", icon=":material/casino:"):
    st.session_state[state.PRIOR_SEED] += 1
seed = int(st.session_state[state.PRIOR_SEED])
z = explore.prior_codes(n_samples, mcfg.latent_dim, seed)  # (N, D) ~ N(0, I)
texts = loaders.decode_texts(run, z)
table = pd.DataFrame({"sample": texts})
if grammar is not None:
    parsed = [grammar.parse(t) for t in texts]
    table["valid"] = [p is not None for p in parsed]
    table["factors"] = [widgets.factor_text(p) for p in parsed]
    st.caption(
        f"{sum(p is not None for p in parsed)} of {len(texts)} samples are valid sentences of the grammar "
        f"'{escape(grammar.name)}' ({len(set(texts))} distinct)."
    )
table.index = range(1, len(table) + 1)
st.dataframe(table)
st.caption(f"Prior seed {seed}.")
