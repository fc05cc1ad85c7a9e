"""Overview: what a β-VAE is, the loaded run's card, and sentences sampled from the prior."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from ui import figures, loaders, state, widgets
from vae_core.config import to_dict
from vae_core.model import parameter_count
from vae_core.runs import effective_state, read_metrics
from vae_core.synthetic import parse

N_SAMPLES_DEFAULT = 8

st.title("β-VAE Text Lab")
st.markdown(
    "A **variational autoencoder** (VAE) reads a sentence *x*, squeezes it into a short code *z* of a "
    "few numbers, and writes a sentence back from that code. The encoder gives, for each sentence, a "
    "small Gaussian cloud *q(z|x)* of codes rather than one point; the decoder is a language model "
    "that writes word by word while looking at *z*. Training maximises:"
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
synthetic = loaders.is_synthetic(run)
DECODER_NAMES = {"rnn": "autoregressive RNN", "positional": "positional (non-autoregressive)",
                 "additive": "additive (one term per latent dimension)"}

# --------------------------------------------------------------------------- the run card

st.header(f"Model: {run.name}")
corpus_info = run.config.get("corpus") if isinstance(run.config.get("corpus"), dict) else {}
mcfg, tcfg = run.model_config, run.train_config
card = st.columns(4)
card[0].metric("Corpus", str(corpus_info.get("name") or corpus_info.get("spec") or "unknown"))
card[1].metric("Latent dimensions", mcfg.latent_dim)
card[2].metric("Vocabulary", f"{len(run.vocab):,} words")
card[3].metric("Parameters", f"{parameter_count(mcfg):,}")
status = effective_state(run.path)
source = "shipped with the app" if loaders.is_shipped(run.path) else "your run"
st.caption(
    f"Corpus spec: {corpus_info.get('spec', '?')} · decoder: {DECODER_NAMES.get(mcfg.decoder, mcfg.decoder)} · "
    f"β {tcfg.beta} ({tcfg.schedule}) · status: {status} · {source} · "
    f"created {run.config.get('created', '?')} · directory: {run.path}"
)

summary = loaders.read_summary(run.path)
ev = summary.get("eval") if isinstance(summary.get("eval"), dict) else None


def _num(d: dict, key: str) -> float | None:
    v = d.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


if ev:
    nll = _num(ev, "nll")
    nll_label = "NLL (importance-sampled)" if nll is not None else "NLL ≤ (−ELBO)"
    nll = nll if nll is not None else _num(ev, "nll_bound")
    ppl = _num(ev, "ppl") if _num(ev, "ppl") is not None else _num(ev, "ppl_bound")
    cols = st.columns(5)
    cols[0].metric(nll_label, "—" if nll is None else f"{nll:.2f}")
    cols[1].metric("Perplexity", "—" if ppl is None else f"{ppl:.2f}")
    cols[2].metric("KL (nats)", "—" if _num(ev, "kl") is None else f"{_num(ev, 'kl'):.2f}")
    au = ev.get("active_units")
    cols[3].metric("Active units", "—" if not isinstance(au, int) else f"{au} / {mcfg.latent_dim}")
    cols[4].metric("Mutual information I(x;z)", "—" if _num(ev, "mi") is None else f"{_num(ev, 'mi'):.2f}")
    extra = []
    if _num(ev, "token_accuracy") is not None:
        extra.append(f"reconstruction token accuracy {_num(ev, 'token_accuracy'):.1%}")
    if _num(ev, "bleu") is not None:
        extra.append(f"BLEU {_num(ev, 'bleu'):.3f}")
    prior = ev.get("prior_samples") if isinstance(ev.get("prior_samples"), dict) else {}
    if _num(prior, "validity") is not None:
        extra.append(f"valid prior samples {_num(prior, 'validity'):.1%}")
    st.caption(
        f"Evaluated on the {ev.get('split', '?')} split ({ev.get('n_sentences', '?')} sentences)"
        + (f" at {ev.get('evaluated_at')}" if ev.get("evaluated_at") else "")
        + ("; " + ", ".join(extra) if extra else "")
    )
else:
    st.info(f"Not evaluated yet: run `python -m vae_core eval {run.path}` to add NLL, KL, active units and MI.")
    training = summary.get("training") if isinstance(summary.get("training"), dict) else {}
    valid = training.get("valid") if isinstance(training.get("valid"), dict) else {}
    if valid:
        st.caption(
            "From the last validation during training: "
            + ", ".join(
                f"{name} {valid[key]:.3f}"
                for key, name in (("recon", "reconstruction"), ("kl", "KL"), ("nll_bound", "−ELBO"))
                if isinstance(valid.get(key), (int, float))
            )
            + (f", active units {valid['active_units']}" if isinstance(valid.get("active_units"), int) else "")
        )

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
    st.plotly_chart(figures.kl_per_dim_bar(stats.kl, stats.active))
    st.caption(f"{len(stats.active_dims)} of {mcfg.latent_dim} dimensions active (measured from: {stats.source}).")

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
generator = torch.Generator().manual_seed(seed)
z = torch.randn(n_samples, mcfg.latent_dim, generator=generator)  # (N, D) ~ N(0, I)
texts = loaders.decode_texts(run, z)
table = pd.DataFrame({"sample": texts})
if synthetic:
    parsed = [parse(t) for t in texts]
    table["valid"] = [p is not None for p in parsed]
    table["factors"] = [widgets.factor_text(p) for p in parsed]
    st.caption(
        f"{sum(p is not None for p in parsed)} of {len(texts)} samples are valid sentences of the built-in corpus "
        f"({len(set(texts))} distinct)."
    )
table.index = range(1, len(table) + 1)
st.dataframe(table)
st.caption(f"Prior seed {seed}.")
