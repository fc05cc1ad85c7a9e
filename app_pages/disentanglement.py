"""Disentanglement: how much each latent dimension is used (KL, active units, I(x;z), prior vs aggregate
posterior), how the dimensions line up with known factors or uploaded labels (MI heat map, MIG, DCI, SAP,
modularity, linear probes), what each dimension changes when decoded (a corpus with a factor grammar), and runs
side by side."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from ui import analysis, figures, loaders, metric_figures, widgets
from ui.textdiff import escape
from vae_core.comparison import COMPARE_COLUMNS, COMPARE_SENTENCES
from vae_core.evaluate import N_TRAVERSAL_BASES
from vae_core.label_classifiers import accuracy_rows, ownership_rows
from vae_core.metric_conventions import CONVENTIONS
from vae_core.subsets import MAX_LABEL_VALUES, label_factors, sample_subset
from vae_core.summary import PriorValidity

SOURCES = {"test": "Test sentences of the run's corpus", "upload": "Your uploaded file"}
DEFAULT_N = 2000  # sentences analysed by default: DCI and SAP fit in a few seconds on 2 cores
MAX_N = 5000  # disentanglement_lib's DCI/SAP subsample; more adds time, not precision
MAX_HIST_DIMS = 12  # prior-vs-posterior panels drawn at most
METRIC_HELP = {
    "MIG": "Mutual information gap: per factor, (best dim's MI − second best's) / H(factor), averaged. "
    "1 = each factor lives in one dimension.",
    "DCI disentanglement": "Does each dimension predict one factor only? (1 − entropy of its importance over factors)",
    "DCI completeness": "Is each factor predicted by one dimension only?",
    "DCI informativeness": "Held-out accuracy of the DCI classifier predicting each factor from all dims (mean).",
    "SAP": "Separated attribute predictability: best minus second-best single-dimension accuracy per factor.",
    "Modularity": "Does each dimension carry information about at most one factor? (Ridgeway & Zemel 2018)",
    "Explicitness": "Mean one-vs-rest ROC-AUC of a logistic regression from all dims to each factor "
    "(0.5 = chance; Ridgeway & Zemel 2018).",
    "BetaVAE score": "Accuracy telling which factor a batch of pairs shared from mean |z1 − z2| "
    "(z-diff, Higgins et al. 2017); chance = 1 / factors.",
    "FactorVAE score": "Accuracy of a majority vote from the dim of least variance, in batches sharing one factor, "
    "to that factor (z-min-var, Kim & Mnih 2018); chance = 1 / factors.",
}
METRIC_ESTIMATOR = {  # metric row → the convention's "describe" entry that says how it was estimated
    "MIG": "MIG", "DCI disentanglement": "DCI", "DCI completeness": "DCI", "DCI informativeness": "DCI",
    "SAP": "SAP", "Modularity": "modularity", "Explicitness": "explicitness", "BetaVAE score": "BetaVAE",
    "FactorVAE score": "FactorVAE",
}
CONVENTION_LABELS = {
    "lab": "lab (perfect ≈ 1, random ≈ 0 at any number of values)",
    "published": "published (disentanglement_lib; comparable with papers, slower)",
}

run = loaders.require_run()
widgets.inject_css()
dim = run.model_config.latent_dim
st.title("Disentanglement")
st.markdown(
    "A **disentangled** code puts each generative factor (who, what, tense, negation, …) in its own "
    "dimension. Raising **β** pushes the posterior towards the prior N(0, I): fewer dimensions stay active, and "
    "those that do tend to line up with single factors — at the price of worse reconstructions. "
    "Whether that happens for text is what this page measures."
)

# --------------------------------------------------------------------------- which sentences

corpus = analysis.run_corpus(run)
grammar = loaders.run_grammar(run)  # the corpus's factor grammar: its factor and value order; None without one
ev = loaders.read_summary(run.path).evaluation
with st.expander("Sentences analysed (and your own labelled sentences)", expanded=corpus is None):
    upload = analysis.label_upload("dis")
sources = (["test"] if corpus is not None and len(corpus.test) >= 10 else []) + (["upload"] if upload else [])
if not sources:
    st.info(
        "This run's corpus is not available here. Upload a CSV with a text column and label columns above to "
        "measure the latent space on your own sentences."
    )
    st.stop()
analysis.preselect_source(sources, upload, "w_dis_source", "dis_upload_seen")
c1, c2 = st.columns([2, 3])
source = c1.radio("Sentences", sources, format_func=SOURCES.get, horizontal=True, key="w_dis_source")
total = len(upload) if source == "upload" else len(corpus.test)
max_n = min(total, MAX_N)
if max_n < 10:
    st.info(f"Only {total} sentence(s): too few to measure anything.")
    st.stop()
n = c2.slider(
    "Sentences analysed (a seeded sample when fewer than all)",
    10,
    max_n,
    min(max_n, DEFAULT_N),
    step=10 if max_n >= 200 else 1,
    key="w_dis_n",
)
subset = sample_subset(upload, n) if source == "upload" else analysis.run_subset(run, ("test",), n)
with st.spinner(f"Encoding {len(subset):,} sentences…"):
    enc = analysis.encode_subset(run, subset)
stats = analysis.latent_stats(run, subset, enc)
st.caption(f"Measured on {escape(subset.source)}.")

# --------------------------------------------------------------------------- usage of each dimension

st.header("How much each dimension is used")
ev_mi = ev.mi if ev is not None else None
m1, m2, m3, m4 = st.columns(4)
m1.metric(
    "Active units",
    f"{stats.n_active} of {dim}",
    help=f"Dimensions whose posterior mean varies across sentences (variance > {stats.threshold:g}).",
)
m2.metric("KL (nats per sentence)", f"{sum(stats.kl):.2f}", help="Sum over dimensions of KL(q(z_d|x) ‖ N(0, 1)).")
if ev_mi is not None:
    m3.metric("I(x; z) (nats)", f"{ev_mi:.2f}", help="From the evaluation in summary.json.")
    mi_note = (
        (
            f"I(x; z) from the evaluation in summary.json ({ev.mi_n:,} {escape(ev.split or '')} "
            f"sentences); on these sentences it is {stats.mi:.2f}."
        )
        if ev.mi_n is not None
        else ("I(x; z) from the evaluation in summary.json.")
    )
else:
    m3.metric("I(x; z) (nats)", f"{stats.mi:.2f}", help="Estimated on the sentences analysed here.")
    mi_note = (
        f"I(x; z) estimated on these {stats.n:,} sentences (no evaluation in summary.json; run "
        f"`python -m vae_core eval {run.path}` for one). It cannot exceed log N = {math.log(stats.n):.2f}."
    )
m4.metric(
    "Reconstructed exactly",
    f"{enc.exact_match:.0%}",
    help="Greedy decode of the posterior mean equals the input, word for word.",
)
st.caption(mi_note)
order = st.radio("Order", ("by index", "largest KL first"), horizontal=True, key="w_dis_kl_sort")
k1, k2 = st.columns(2)
k1.plotly_chart(metric_figures.kl_per_dim_bar(stats.kl, stats.active, sort=order != "by index"), key="w_dis_kl_chart")
k2.plotly_chart(metric_figures.variance_bar(stats.variances, stats.threshold), key="w_dis_var_chart")
dims_table = pd.DataFrame(
    {
        "dim": [f"z{d}" for d in range(dim)],
        "KL (nats)": list(stats.kl),
        "Var(μ)": list(stats.variances),
        "active": list(stats.active),
    }
)
with st.expander("Per-dimension numbers"):
    st.dataframe(dims_table, hide_index=True, key="w_dis_dims_table")
    widgets.csv_download(dims_table, f"dimensions-{run.name}.csv", key="w_dis_dims_csv")

# --------------------------------------------------------------------------- prior vs aggregate posterior

st.header("Prior vs aggregate posterior")
active_dims = sorted(np.flatnonzero(stats.active).tolist(), key=lambda d: -stats.kl[d])
shown = (active_dims or sorted(range(dim), key=lambda d: -stats.kl[d]))[:MAX_HIST_DIMS]
what = st.radio("Histogram of", ("posterior means", "samples z ~ q(z|x)"), horizontal=True, key="w_dis_agg")
if what == "posterior means":
    values = np.asarray(enc.mu[:, shown], dtype=np.float64)
else:
    rng = np.random.default_rng(0)
    std = np.exp(0.5 * np.asarray(enc.logvar[:, shown], dtype=np.float64))
    values = np.asarray(enc.mu[:, shown], dtype=np.float64) + rng.standard_normal(std.shape) * std
st.plotly_chart(metric_figures.prior_vs_posterior(values, shown, what), key="w_dis_prior_chart")
st.caption(
    ("Active dimensions, largest KL first" if active_dims else "No active dimension; the largest-KL ones")
    + (f" (first {MAX_HIST_DIMS})" if len(active_dims) > MAX_HIST_DIMS else "")
    + ". Samples of the aggregate posterior should look like the prior (red) if the prior is to generate "
    "sentences like the corpus; posterior means spread over a narrower range, and a collapsed dimension's "
    "means all sit at 0."
)

# --------------------------------------------------------------------------- factors and labels

st.header("Dimensions × factors")
labelled = label_factors(subset.labels, subset.factor_names, factor_values=subset.factor_values)
report = None
if labelled is None:
    st.info(
        f"These sentences have no label columns with 2 to {MAX_LABEL_VALUES} values. Upload a CSV with a text "
        "column and label columns (in the box at the top) to measure how the latent dimensions capture your labels."
    )
else:
    factors, names, _values, skipped = labelled
    kind = (f"factors of the grammar '{escape(grammar.name)}'" if grammar is not None and subset.factor_names
            else "known generative factors" if subset.factor_names else "label columns")
    convention = st.radio(
        "Estimators", CONVENTIONS, format_func=CONVENTION_LABELS.get, horizontal=True, key="w_dis_convention",
        help="Which estimator each metric uses (bins, classifier, sample sizes): see the table's 'estimator' "
        "column and the README's 'Metric conventions'.",
    )
    with st.spinner(f"Measuring MIG, DCI, SAP, modularity and linear probes on {len(subset):,} sentences…"):
        report = analysis.disentanglement(run, subset, enc.mu, factors, names, stats.active, convention=convention)
    describe = report["convention"]["describe"]
    metrics_table = pd.DataFrame(
        {
            "metric": list(METRIC_HELP),
            "value": [
                report["mig"],
                report["dci"]["disentanglement"],
                report["dci"]["completeness"],
                report["dci"]["informativeness"],
                report["sap"],
                report["modularity"],
                report["explicitness"],
                report["beta_vae"]["score"],
                report["factor_vae"]["score"],
            ],
            "estimator": [describe[METRIC_ESTIMATOR[m]] for m in METRIC_HELP],
            "what it measures": list(METRIC_HELP.values()),
        }
    )
    t1, t2 = st.columns([3, 2])
    t1.plotly_chart(metric_figures.mi_heatmap(report["mi_matrix"], names), key="w_dis_mi_chart")
    with t2:
        st.dataframe(
            metrics_table,
            hide_index=True,
            key="w_dis_metrics_table",
            column_config={"value": st.column_config.NumberColumn(format="%.3f")},
        )
        st.caption(
            f"Against {len(names)} {kind}; MIG uses the active dimensions only. Values near 0 mean "
            f"entangled (or unused), near 1 disentangled. Estimators: the **{escape(report['convention']['name'])}** "
            f"convention; {escape(describe['sample'])}; BetaVAE/FactorVAE batches are drawn from these "
            "sentences, sharing one factor's value."
        )
        for why in report["caveats"].values():
            st.warning(f"No value: {escape(why)}.")
    probe = report["probe"]
    per_factor = pd.DataFrame(
        {
            "factor": names,
            "values": [p["n_classes"] for p in probe],
            "H (nats)": report["factor_entropies"],
            "MIG": [report["mig_per_factor"][f] for f in names],
            "top dim": [f"z{report['mig_top_dim'][f]}" if report["mig_top_dim"][f] >= 0 else "—" for f in names],
            "probe accuracy": [p["accuracy"] for p in probe],
            "majority baseline": [p["baseline"] for p in probe],
        }
    )
    p1, p2 = st.columns([2, 3])
    p1.plotly_chart(
        metric_figures.probe_bars(names, [p["accuracy"] for p in probe], [p["baseline"] for p in probe]),
        key="w_dis_probe_chart",
    )
    with p2:
        st.dataframe(
            per_factor,
            hide_index=True,
            key="w_dis_factor_table",
            column_config={
                c: st.column_config.NumberColumn(format="%.3f")
                for c in ("H (nats)", "MIG", "probe accuracy", "majority baseline")
            },
        )
        st.caption(
            "Linear probe: a logistic regression from all latent dimensions to the factor, accuracy on a "
            "held-out 20%; the baseline always answers the most common value."
        )
    if skipped:
        st.caption(
            f"Not used (fewer than 2 or more than {MAX_LABEL_VALUES} distinct values): "
            + ", ".join(escape(c) for c in skipped)
        )
    widgets.csv_download(
        pd.concat(
            [metrics_table.drop(columns=["what it measures", "estimator"]),
             per_factor.rename(columns={"factor": "metric"})],
            ignore_index=True,
        ),
        f"disentanglement-{run.name}.csv",
        key="w_dis_csv",
    )

# --------------------------------------------------------------------------- generation side (a factor grammar)

if grammar is not None and subset.factor_names:
    st.header("What each dimension changes when decoded")
    trav_dims = active_dims or list(range(dim))
    with st.spinner(f"Traversing each dimension from {N_TRAVERSAL_BASES} sentences and parsing the decodes…"):
        effects = analysis.traversal_effects(run, subset, enc, trav_dims)
    per_dim = effects["per_dim"]
    factor_names = list(grammar.factors)
    share = pd.DataFrame(
        {
            "dim": [f"z{s['dim']}" for s in per_dim],
            "change rate": [s["change_rate"] for s in per_dim],
            "validity": [s["validity"] for s in per_dim],
            "top factor": [s["top_factor"] or "—" for s in per_dim],
        }
        | {f: [s["factor_share"].get(f, 0.0) for s in per_dim] for f in factor_names}
    )
    sole = pd.DataFrame(
        {"dim": [f"z{s['dim']}" for s in per_dim]}
        | {f: [s["sole_share"].get(f, 0.0) for s in per_dim] for f in factor_names}
    )
    st.markdown(
        f"Each {'active ' if active_dims else ''}dimension is moved from −3 to +3 (9 values) starting at "
        f"{effects['n_base']} sentences' codes; each decode is parsed back into factors. A cell is the share of the "
        "steps that change something in which that factor changes (**sole share**: that factor alone)."
    )
    g1, g2 = st.columns([3, 2])
    g1.plotly_chart(
        figures.factor_share_heatmap(
            [s["factor_share"] for s in per_dim], [f"z{s['dim']}" for s in per_dim], factor_names
        ),
        key="w_dis_trav_chart",
    )
    owners = effects["owners"]
    g2.metric(
        "Factors owned by one dimension",
        f"{len(owners)} of {len(factor_names)}",
        help=f"A dimension owns a factor when ≥ {effects['min_sole_share']:.0%} of its changing steps change "
        f"that factor alone and it changes something in ≥ {effects['min_change_rate']:.0%} of its steps.",
    )
    g2.caption(", ".join(f"{escape(f)}: {', '.join(f'z{d}' for d in ds)}" for f, ds in owners.items()) or "None yet.")
    prior = ev.prior_samples if ev is not None else None
    prior_note = "from the evaluation in summary.json"
    if prior is None or None in (prior.n, prior.validity, prior.distinct_valid, prior.coverage):
        with st.spinner("Decoding samples from the prior…"):
            prior = PriorValidity.from_json(analysis.prior_validity(run))
        prior_note = "measured here"
    g2.metric("Prior samples that are valid sentences", f"{prior.validity:.0%}")
    g2.metric(
        "Distinct valid samples",
        f"{prior.distinct_valid:.0%}",
        help="Distinct valid sentences / samples: low means the prior keeps decoding the same few sentences.",
    )
    g2.caption(
        f"{prior.n:,} samples z ~ N(0, I), greedy decoding, {prior_note}; they cover "
        f"{prior.coverage:.2%} of the corpus."
    )
    pct = {c: st.column_config.NumberColumn(format="%.2f") for c in ["change rate", "validity", *factor_names]}
    st.dataframe(share, hide_index=True, key="w_dis_trav_table", column_config=pct)
    with st.expander("Sole share: steps where only that factor changes"):
        st.dataframe(sole, hide_index=True, key="w_dis_sole_table", column_config=pct)

# --------------------------------------------------------------------------- generation side (labels, no grammar)

if grammar is None and source == "test" and labelled is not None:
    st.header("What each dimension changes when decoded")
    label_dims = active_dims or list(range(dim))
    with st.spinner("Training the label classifiers, traversing each dimension and labelling the decodes…"):
        effects = analysis.traversal_effects(run, subset, enc, label_dims)
    described = effects["labeller"]
    if described.get("kind") != "classifiers":
        st.info("The label classifiers could not be trained on this run's corpus.")
    else:
        st.markdown(
            f"This corpus has label columns but no grammar: each {'active ' if active_dims else ''}dimension is "
            f"moved from −3 to +3 (9 values) starting at {effects['n_base']} sentences' codes, and each decode is "
            "labelled by classifiers trained on the corpus's own sentences and labels (TF-IDF word 1–2-grams + "
            "logistic regression). A label changes when its predicted value changes."
        )
        st.dataframe(
            pd.DataFrame(accuracy_rows(described)), hide_index=True, key="w_dis_label_acc",
            column_config={c: st.column_config.NumberColumn(format="%.3f")
                           for c in ("held-out accuracy", "majority baseline")},
        )
        st.caption(f"Classifier accuracy on the {escape(described.get('heldout', ''))} (not used in training); "
                   "the baseline always answers the most common value.")
        for name, why in described.get("unusable", {}).items():
            st.warning(f"'{escape(name)}' is not analysed: its classifier's {escape(why)}.")
        label_names = list(described.get("factors", ()))
        if label_names and effects["per_dim"]:
            accuracy = {c["factor"]: c["accuracy"] for c in described["classifiers"]}
            l1, l2 = st.columns([3, 2])
            l1.plotly_chart(
                figures.factor_share_heatmap([s["factor_share"] for s in effects["per_dim"]],
                                             [f"z{s['dim']}" for s in effects["per_dim"]], label_names),
                key="w_dis_label_chart",
            )
            l2.metric(
                "Labels owned by one dimension",
                f"{effects['n_owned']} of {effects['n_factors']}",
                help=f"A dimension owns a label when ≥ {effects['min_sole_share']:.0%} of its changing steps change "
                f"that label's prediction alone and it changes something in ≥ {effects['min_change_rate']:.0%} "
                "of its steps.",
            )
            l2.caption(", ".join(
                f"{escape(f)} (classifier accuracy {accuracy[f]:.0%}): {', '.join(f'z{d}' for d in ds)}"
                for f, ds in effects["owners"].items()
            ) or "None yet.")
            st.dataframe(pd.DataFrame(ownership_rows(effects)), hide_index=True, key="w_dis_label_table")
            st.caption("Label columns: share of changing steps in which only that label's prediction changes.")

# --------------------------------------------------------------------------- several runs

st.header("Runs side by side")
runs = loaders.available_runs()
labels = {str(p): loaders.run_label(p) for p in runs}
if str(run.path) not in labels:
    labels[str(run.path)] = run.name
chosen = st.multiselect(
    "Runs",
    list(labels),
    default=[str(run.path)],
    format_func=labels.get,
    key="w_dis_runs",
    help="Pick runs trained with different β to see the trade-off.",
)
if chosen:
    with st.spinner("Measuring the runs that have no evaluation…"):
        rows = [analysis.comparison_row(p) for p in chosen]
    compare = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    st.dataframe(
        compare,
        hide_index=True,
        key="w_dis_compare_table",
        column_config={
            c: st.column_config.NumberColumn(format="%.3f") for c in ("KL", "MI", "MIG", "DCI-D", "SAP", "exact match")
        },
    )
    widgets.csv_download(compare, "runs-disentanglement.csv", key="w_dis_compare_csv")
    if len(rows) >= 2:
        st.plotly_chart(
            metric_figures.beta_tradeoff(
                compare["run"].tolist(),
                [r["β"] for r in rows],
                [r["MIG"] for r in rows],
                [r["active units"] for r in rows],
            ),
            key="w_dis_beta_chart",
        )
    st.caption(
        "Numbers from each run's evaluation in summary.json where there is one, else measured on up to "
        f"{COMPARE_SENTENCES:,} of its test sentences (the 'source' column says which)."
    )
