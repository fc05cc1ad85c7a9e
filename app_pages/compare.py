"""Compare & sweeps: runs side by side (config diff, figures, curves, the same sentence through each),
the rate–distortion plane, and β sweeps (grid / random / TPE on Optuna) launched in the background."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from ui import loaders, train_figures, widgets
from ui.settings import setting_widget
from ui.textdiff import escape, mark_changes
from vae_core import comparison, explore, jobs
from vae_core.config import SCHEDULES, check_value, training_settings
from vae_core.runs import RunError, read_json, read_metrics, read_summary
from vae_core.text import tokenize

MAX_COLUMNS = 4  # runs shown side by side in the sentence section
TRAVERSE_VALUES = (-2.0, -1.0, 0.0, 1.0, 2.0)
INTERP_STEPS = 5
POLL_S = 3.0
SWEEP_SHOWN = "compare_sweep_shown"

runs_root = loaders.runs_dir()


_md = escape  # user/file text in markdown: ui.safe_text (one home)


def _read(path: Path, name: str) -> dict:
    try:
        obj = read_json(path / name)
    except (RunError, OSError):
        return {}
    return obj if isinstance(obj, dict) else {}


def config_diff(configs: dict[str, dict]) -> pd.DataFrame:
    """Rows = config keys whose values differ between runs (model.*, train.*, corpus.*), columns = runs."""
    rows = comparison.config_diff(configs)
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(configs)).astype(str) if rows else pd.DataFrame()


def _numbers(text: str, what: str) -> list[str]:
    """The comma-separated numbers of a text box (as typed); ValueError naming the box on garbage.

    A function, not a bare `[float(v) for v in vals]` statement: Streamlit's magic renders every
    expression statement of a page, and that one showed `[0: 0.5, 1: 2]` after "Launch sweep" (issue 20.6).
    """
    vals = [v.strip() for v in str(text).split(",") if v.strip()]
    for v in vals:
        try:
            float(v)
        except ValueError:
            raise ValueError(f"{what}: {v!r} is not a number") from None
    return vals


def _load(path: Path):
    mtime = (path / "model.safetensors").stat().st_mtime
    return loaders.load_run_cached(str(path), mtime)


# --------------------------------------------------------------------------- page

st.title("Compare runs & sweep β")
st.markdown("Put runs side by side to see what β (and the schedule, the sizes…) changes: in the numbers, in the "
            "training curves, in the rate–distortion plane, and in what each model does to the same sentence.")
widgets.inject_css()

available = loaders.available_runs()
by_name: dict[str, Path] = {}
for p in available:
    by_name.setdefault(p.name, p)
names = list(by_name)
if "compare_runs" not in st.session_state:
    st.session_state["compare_runs"] = names[: min(3, len(names))]
else:  # drop runs that disappeared
    st.session_state["compare_runs"] = [n for n in st.session_state["compare_runs"] if n in by_name]
chosen = st.multiselect("Runs to compare (two or more)", names, key="compare_runs",
                        help="Shipped models and your runs; finished sweeps' trials are runs too.")
configs = {n: _read(by_name[n], "config.json") for n in chosen}
summaries = {n: read_summary(by_name[n]) for n in chosen}

if len(chosen) < 2:
    st.info("Pick at least two runs to compare them." if names else
            "No runs yet: train some on the Train page or launch a sweep below.")
else:
    st.header("Configuration differences")
    diff = config_diff(configs)
    if diff.empty:
        st.caption("The chosen runs have the same configuration.")
    else:
        st.dataframe(diff, width="stretch")

    st.header("Final figures")
    table = pd.DataFrame({n: comparison.final_figures(summaries[n]) for n in chosen})
    table = table.dropna(how="all")
    st.dataframe(table.style.format(lambda v: "–" if v is None or pd.isna(v) else f"{v:.3f}"), width="stretch")
    st.caption("Per sentence, in nats. 'valid' = the last validation of training; 'eval' = "
               "`python -m vae_core eval` (NLL importance-sampled when run with --nll-samples). AU = active units.")

    st.header("Disentanglement and generation")
    evals = {n: summaries[n].evaluation for n in chosen}
    dis = {n: (e.disentanglement if e is not None else None) for n, e in evals.items()}
    gen = {n: (e.generation if e is not None else None) for n, e in evals.items()}
    field = pd.DataFrame({
        n: {
            "MIG": dis[n].mig if dis[n] else None,
            "DCI disentanglement": dis[n].dci_disentanglement if dis[n] else None,
            "SAP": dis[n].sap if dis[n] else None,
            "explicitness": dis[n].explicitness if dis[n] else None,
            "BetaVAE score": dis[n].beta_vae if dis[n] else None,
            "FactorVAE score": dis[n].factor_vae if dis[n] else None,
            "prior samples: Self-BLEU-4": gen[n].self_bleu if gen[n] else None,
            "prior samples: distinct-1": gen[n].distinct_1 if gen[n] else None,
            "prior samples: distinct-2": gen[n].distinct_2 if gen[n] else None,
            "interpolation smoothness": gen[n].smoothness if gen[n] else None,
        }
        for n in chosen
    }).dropna(how="all")
    if field.empty:
        st.caption("None of these runs has an evaluation with these figures: `python -m vae_core eval RUN`.")
    else:
        st.dataframe(field.style.format(lambda v: "–" if v is None or pd.isna(v) else f"{v:.3f}"), width="stretch")
        conventions = {n: (dis[n].convention or "before conventions were recorded") for n in chosen if dis[n]}
        st.caption(
            "From each run's evaluation. Disentanglement estimators: "
            + "; ".join(f"{escape(n)}: {escape(c)}" for n, c in conventions.items())
            + " (README, 'Metric conventions'; figures under different conventions are not comparable). "
            "Self-BLEU: each of 1,000 greedy prior samples against the others (1 = they repeat each other); "
            "distinct-n: distinct n-grams / n-grams; smoothness: LangSpace's, word edit distance, over 500 "
            "lerp paths between test sentences."
        )

    st.header("Training curves")
    records = {n: read_metrics(by_name[n]) for n in chosen}
    c1, c2 = st.columns(2)
    c1.plotly_chart(train_figures.overlay_curves(records, "recon", title="Reconstruction (train)"), key="cmp_recon")
    c2.plotly_chart(train_figures.overlay_curves(records, "kl", title="KL (train)"), key="cmp_kl")

# ---- rate–distortion
st.header("Rate–distortion")
st.markdown("Each run is a point: how many nats its code carries (**rate**, KL) against how badly it rebuilds the "
            "sentence (**distortion**, reconstruction). Larger β moves a model up and to the left.")
include_sweeps = st.checkbox("Add every sweep trial in the runs folder", value=True, key="compare_rd_sweeps")
rd_paths = [by_name[n] for n in chosen]
if include_sweeps:
    rd_paths += [p for p in available if p.name not in chosen and read_summary(p).sweep is not None]
points = [comparison.rd_point(p.name, _read(p, "config.json"), read_summary(p)) for p in rd_paths]
st.plotly_chart(train_figures.rate_distortion(points), key="compare_rd")

# ---- the same sentence through each run
if len(chosen) >= 2:
    st.header("The same sentence through each model")
    shown = chosen[:MAX_COLUMNS]
    if len(chosen) > MAX_COLUMNS:
        st.caption(f"The first {MAX_COLUMNS} chosen runs are shown.")
    try:
        first = _load(by_name[shown[0]])
        options = loaders.corpus_sentences(first, "test", 50)
    except (RunError, OSError, ValueError):
        options = []
    sentence = widgets.sentence_input("Sentence", "compare_s1", options, default=options[0] if options else "",
                                      persist_key="compare_sentence")
    sentence2 = widgets.sentence_input("Second sentence (for the interpolation)", "compare_s2", options,
                                       default=options[1] if len(options) > 1 else "",
                                       persist_key="compare_sentence_2")
    if not sentence:
        st.info("Type or pick a sentence.")
    else:
        cols = st.columns(len(shown))
        for col, name in zip(cols, shown, strict=True):
            with col:
                st.subheader(escape(name))
                try:
                    run = _load(by_name[name])
                    mu, _, oov = loaders.encode(run, [sentence, sentence2 or sentence])  # (2, D)
                    recon = loaders.decode_texts(run, mu[:1])[0]
                    stats = loaders.dim_stats(run)
                    dim = stats.active_dims[0] if stats.active_dims else stats.order[0]
                    grid = np.repeat(mu[:1], len(TRAVERSE_VALUES), axis=0)  # (V, D)
                    grid[:, dim] = TRAVERSE_VALUES
                    traversal = loaders.decode_texts(run, grid)
                    path = explore.interpolate(mu[0], mu[1], INTERP_STEPS, "lerp")  # (S, D)
                    interp = loaders.decode_texts(run, path)
                except (RunError, OSError, ValueError, RuntimeError) as e:
                    st.error(f"Cannot use this run: {_md(e)}")
                    continue
                beta = run.train_config.beta
                st.caption(f"β = {beta:g} · {escape(run.train_config.schedule)} · latent {run.model_config.latent_dim}")
                if oov[0]:
                    widgets.oov_warning(oov[0])
                ref = tokenize(recon)
                widgets.sentence_block(mark_changes(tokenize(sentence), ref), "reconstruction")
                rows = [[f"{v:+.1f}", mark_changes(ref, tokenize(t))] for v, t in zip(TRAVERSE_VALUES, traversal,
                                                                                     strict=True)]
                widgets.show_html(f'<div class="vae-muted">traversal of z{dim} (most active)</div>'
                                  + widgets.html_table(["z" + str(dim), "decoded"], rows))
                if sentence2:
                    rows = [[f"{i / (INTERP_STEPS - 1):.2f}", escape(t)] for i, t in enumerate(interp)]
                    widgets.show_html('<div class="vae-muted">interpolation to the second sentence</div>'
                                      + widgets.html_table(["t", "decoded"], rows))

# ---- sweeps
st.header("Sweeps")
st.markdown("A sweep trains one run per trial (`python -m vae_core sweep`, in the background) and records them in "
            "an Optuna study (`" + str(runs_root / "sweeps.db").replace("`", "'") + "`). The trials appear above "
            "as runs and as points in the rate–distortion plane. Several machines can share one sweep through a "
            "database URL: see the README.")
with st.expander("Launch a sweep", expanded=False):
    c1, c2, c3 = st.columns(3)
    with c1:
        sw_name = st.text_input("Sweep name", value=f"sweep-{time.strftime('%Y%m%d-%H%M')}", key="sw_name",
                                max_chars=jobs.MAX_RUN_NAME, help="Trials are saved as <name>-trial<N>.")
        sampler = st.selectbox("Search", ["grid", "random", "tpe"], key="sw_sampler",
                               help="grid: every combination once. random: draws from the ranges. tpe: Optuna's "
                                    "Bayesian optimiser, which learns from finished trials.")
        trials = st.number_input("Trials", 1, 500, 5, 1, key="sw_trials",
                                 help="Total trials (a grid stops when every cell is done).")
        objectives = st.multiselect("Objectives", ["nll", "mig"], default=["nll"], key="sw_objectives",
                                    help="nll: −ELBO on the valid split (lower is better). mig: disentanglement "
                                         "(higher is better; needs a corpus with factors or labels).")
    with c2:
        beta_mode = st.radio("β", ["values", "range"], horizontal=True, key="sw_beta_mode",
                             help="Grid search needs values; random/TPE can draw from a range.")
        beta_values = st.text_input("β values", "0.25,0.5,1,2,4", key="sw_beta_values",
                                    disabled=beta_mode != "values")
        r1, r2 = st.columns(2)
        beta_lo = r1.number_input("β from", 0.0, 1000.0, 0.1, key="sw_beta_lo", disabled=beta_mode != "range")
        beta_hi = r2.number_input("β to", 0.0, 1000.0, 8.0, key="sw_beta_hi", disabled=beta_mode != "range")
        latents = st.text_input("Latent sizes (comma-separated; one = fixed)", "16", key="sw_latents")
        schedules = st.multiselect("Schedules (one = fixed)", list(SCHEDULES), default=["linear"], key="sw_schedules")
        free_bits = st.text_input("Free bits (comma-separated; one = fixed)", "0", key="sw_free_bits")
    with c3:
        corpus = st.text_input("Corpus", "synthetic", key="sw_corpus",
                               help="synthetic, or a path inside the allowed data folders.")
        # fixed in every trial; widgets from the setting declarations (vae_core.config), with sweep-sized defaults
        sw = training_settings()
        fixed = {setting_name: setting_widget(sw[setting_name], key, value) for setting_name, key, value in (
            ("embed_dim", "sw_embed", 64), ("hidden_dim", "sw_hidden", 128), ("epochs", "sw_epochs", 2),
            ("max_steps", "sw_max_steps", 500), ("batch_size", "sw_batch", 32), ("decoder", "sw_decoder", None))}
        if fixed["decoder"] == "additive":
            fixed["fourier_features"] = setting_widget(sw["fourier_features"], "sw_fourier", None)
    launch = st.button("Launch sweep", type="primary", key="sw_launch")
    if launch:
        try:
            name = jobs.sanitize_run_name(sw_name)
            if not objectives or objectives[0] != "nll":
                raise ValueError("the objectives must start with nll")
            if corpus.strip() != "synthetic":
                corpus = str(jobs.resolve_data_path(corpus))
            args = ["--sampler", sampler, "--trials", str(int(trials)), "--objectives", ",".join(objectives),
                    "--corpus", corpus.strip(), "--quiet"]
            for setting_name, value in fixed.items():  # checked as the config checks it, passed as its flag
                check_value(sw[setting_name], value)
                args += [sw[setting_name].cli_flag, str(value)]
            if beta_mode == "values":
                vals = _numbers(beta_values, "β values")
                args += ["--beta", ",".join(vals)]
            else:
                if sampler == "grid":
                    raise ValueError("a grid sweep needs β values, not a range")
                args += ["--beta-range", f"{beta_lo:g}:{beta_hi:g}", "log" if beta_lo > 0 else "linear"]
            for flag, text in (("--latent-dim", latents), ("--free-bits", free_bits)):
                vals = _numbers(text, flag.lstrip("-").replace("-", " "))
                if vals:
                    args += [flag, ",".join(vals)]
            if schedules:
                args += ["--schedule", ",".join(schedules)]
            pid = jobs.start_sweep(runs_root, name, args)
        except ValueError as e:
            st.error(f"Cannot launch: {_md(e)}")
        else:
            st.session_state[SWEEP_SHOWN] = name
            st.success(f"Sweep {_md(name)} started (process {pid}).")


def _studies() -> list[str]:
    from vae_core.sweep import default_storage, list_studies

    names = list(jobs.list_sweeps(runs_root))
    try:
        names += [n for n in list_studies(default_storage(runs_root)) if n not in names]
    except Exception:  # noqa: BLE001 - a damaged database must not break the page
        pass
    return names


studies = _studies()
if not studies:
    st.caption("No sweeps yet.")
else:
    if st.session_state.get(SWEEP_SHOWN) not in studies:
        st.session_state[SWEEP_SHOWN] = studies[0]
    shown_sweep = st.selectbox("Sweep", studies, key=SWEEP_SHOWN)

    def _sweep_panel(name: str) -> None:
        from vae_core.sweep import SweepError, default_storage, sweep_status

        rec = jobs.read_sweep(runs_root, name)
        try:
            status = sweep_status(name, default_storage(runs_root))
        except (SweepError, KeyError, ValueError):
            status = None
        except Exception as e:  # noqa: BLE001 - e.g. a locked or damaged database
            st.warning(f"Cannot read the sweep database: {_md(e)}")
            status = None
        alive = bool(rec.get("alive"))
        st.badge("running" if alive else "not running", color="blue" if alive else "gray")
        if status is None:
            st.caption("No trial recorded yet." if alive else "This sweep has no study in the database.")
        else:
            target = status.get("target_trials") or 0
            done = int(status.get("done") or 0)
            st.progress(min(1.0, done / target) if target else 0.0,
                        text=f"{done} / {target} trials done · " + ", ".join(
                            f"{k.lower()} {v}" for k, v in sorted(status["counts"].items())))
            rows = []
            for t in status["trials"]:
                ua = t["user_attrs"]
                rows.append({"trial": t["number"], "state": t["state"], "β": ua.get("beta"),
                             "latent": ua.get("latent_dim"), "schedule": ua.get("schedule"), "NLL": ua.get("nll"),
                             "KL": ua.get("kl"), "recon": ua.get("recon"), "MIG": ua.get("mig"),
                             "run": Path(str(ua.get("run_dir", ""))).name})
            if rows:
                st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        if alive:
            if st.button("Stop sweep", key="sw_stop",
                         help="The current trial stops and is saved; no new trial starts."):
                with st.spinner("Stopping…"):
                    jobs.stop_sweep(runs_root, name)
                st.rerun()
        elif rec.get("log_tail") and (status is None or status.get("counts", {}).get("FAIL")):
            st.caption("End of the sweep's log:")
            st.code(rec["log_tail"], language=None)

    sweep_alive = bool(jobs.read_sweep(runs_root, shown_sweep).get("alive"))
    st.fragment(run_every=POLL_S if sweep_alive else None)(_sweep_panel)(shown_sweep)
