"""Compare & sweeps: runs side by side (config diff, figures, curves, the same sentence through each),
the rate–distortion plane, and β sweeps (grid / random / TPE on Optuna) launched in the background."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
import streamlit as st
import torch

from ui import loaders, train_figures, widgets
from ui.analysis import finite_number
from ui.textdiff import escape, mark_changes
from vae_core import jobs
from vae_core.config import SCHEDULES
from vae_core.latent import interpolate
from vae_core.runs import RunError, read_json, read_metrics
from vae_core.text import tokenize

MAX_COLUMNS = 4  # runs shown side by side in the sentence section
TRAVERSE_VALUES = (-2.0, -1.0, 0.0, 1.0, 2.0)
INTERP_STEPS = 5
POLL_S = 3.0
SWEEP_SHOWN = "compare_sweep_shown"

runs_root = loaders.runs_dir()


def _md(text: object) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(text))


def _read(path: Path, name: str) -> dict:
    try:
        obj = read_json(path / name)
    except (RunError, OSError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        elif isinstance(v, list):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


def config_diff(configs: dict[str, dict]) -> pd.DataFrame:
    """Rows = config keys whose values differ between runs (model.*, train.*, corpus.*), columns = runs."""
    flat = {name: {k: v for k, v in _flat(cfg).items() if k.split(".")[0] in ("model", "train", "corpus")}
            for name, cfg in configs.items()}
    keys = sorted(set().union(*(f.keys() for f in flat.values()))) if flat else []
    rows = {k: [flat[n].get(k, "–") for n in flat] for k in keys
            if len({json.dumps(flat[n].get(k), sort_keys=True, default=str) for n in flat}) > 1}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(flat)).astype(str) if rows else pd.DataFrame()


def final_figures(summary: dict) -> dict[str, float | None]:
    """The figures of one run: validation at the end of training, and the evaluation when present."""
    training = summary.get("training") if isinstance(summary.get("training"), dict) else {}
    valid = training.get("valid") if isinstance(training.get("valid"), dict) else {}
    ev = summary.get("eval") if isinstance(summary.get("eval"), dict) else {}
    dis = ev.get("disentanglement") if isinstance(ev.get("disentanglement"), dict) else {}
    sweep = summary.get("sweep") if isinstance(summary.get("sweep"), dict) else {}
    return {
        "valid recon": finite_number(valid.get("recon")),
        "valid KL": finite_number(valid.get("kl")),
        "valid ELBO": finite_number(valid.get("elbo")),
        "valid AU": finite_number(valid.get("active_units")),
        "eval recon": finite_number(ev.get("recon")),
        "eval KL": finite_number(ev.get("kl")),
        "eval ELBO": finite_number(ev.get("elbo")),
        "eval NLL": finite_number(ev.get("nll", ev.get("nll_bound"))),
        "eval AU": finite_number(ev.get("active_units")),
        "eval MI": finite_number(ev.get("mi")),
        "MIG": finite_number(dis.get("mig", sweep.get("mig"))),
        "exact match": finite_number(ev.get("exact_match")),
    }


def rd_point(path: Path, cfg: dict, summary: dict) -> dict:
    training = summary.get("training") if isinstance(summary.get("training"), dict) else {}
    valid = training.get("valid") if isinstance(training.get("valid"), dict) else {}
    tcfg = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    return {"name": path.name, "kl": valid.get("kl"), "recon": valid.get("recon"), "beta": tcfg.get("beta"),
            "schedule": tcfg.get("schedule"), "source": "sweep" if "sweep" in summary else "run"}


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
summaries = {n: _read(by_name[n], "summary.json") for n in chosen}

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
    table = pd.DataFrame({n: final_figures(summaries[n]) for n in chosen})
    table = table.dropna(how="all")
    st.dataframe(table.style.format(lambda v: "–" if v is None or pd.isna(v) else f"{v:.3f}"), width="stretch")
    st.caption("Per sentence, in nats. 'valid' = the last validation of training; 'eval' = "
               "`python -m vae_core eval` (NLL importance-sampled when run with --nll-samples). AU = active units.")

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
    rd_paths += [p for p in available if p.name not in chosen and "sweep" in _read(p, "summary.json")]
points = [rd_point(p, _read(p, "config.json"), _read(p, "summary.json")) for p in rd_paths]
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
                st.subheader(name)
                try:
                    run = _load(by_name[name])
                    mu, _, oov = loaders.encode(run, [sentence, sentence2 or sentence])  # (2, D)
                    recon = loaders.decode_texts(run, mu[:1])[0]
                    stats = loaders.dim_stats(run)
                    dim = stats.active_dims[0] if stats.active_dims else stats.order[0]
                    grid = mu[:1].repeat(len(TRAVERSE_VALUES), 1)  # (V, D)
                    grid[:, dim] = torch.tensor(TRAVERSE_VALUES)
                    traversal = loaders.decode_texts(run, grid)
                    path = interpolate(mu[0], mu[1], INTERP_STEPS, "lerp")  # (S, D)
                    interp = loaders.decode_texts(run, path)
                except (RunError, OSError, ValueError, RuntimeError) as e:
                    st.error(f"Cannot use this run: {_md(e)}")
                    continue
                beta = run.train_config.beta
                st.caption(f"β = {beta:g} · {run.train_config.schedule} · latent {run.model_config.latent_dim}")
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
        embed = st.number_input("Embedding", 1, 8192, 64, 8, key="sw_embed")
        hidden = st.number_input("Hidden", 1, 8192, 128, 16, key="sw_hidden")
        epochs = st.number_input("Epochs", 1, 10_000, 2, 1, key="sw_epochs")
        max_steps = st.number_input("Max steps per trial (0 = all epochs)", 0, 10**8, 500, 50, key="sw_max_steps")
        batch = st.number_input("Batch size", 1, 65_536, 32, 8, key="sw_batch")
    launch = st.button("Launch sweep", type="primary", key="sw_launch")
    if launch:
        try:
            name = jobs.sanitize_run_name(sw_name)
            if not objectives or objectives[0] != "nll":
                raise ValueError("the objectives must start with nll")
            if corpus.strip() != "synthetic":
                corpus = str(jobs.resolve_data_path(corpus))
            args = ["--sampler", sampler, "--trials", str(int(trials)), "--objectives", ",".join(objectives),
                    "--corpus", corpus.strip(), "--embed-dim", str(int(embed)), "--hidden-dim", str(int(hidden)),
                    "--epochs", str(int(epochs)), "--max-steps", str(int(max_steps)), "--batch-size", str(int(batch)),
                    "--quiet"]
            if beta_mode == "values":
                vals = [v.strip() for v in beta_values.split(",") if v.strip()]
                [float(v) for v in vals]  # noqa: B018 - raises ValueError on garbage
                args += ["--beta", ",".join(vals)]
            else:
                if sampler == "grid":
                    raise ValueError("a grid sweep needs β values, not a range")
                args += ["--beta-range", f"{beta_lo:g}:{beta_hi:g}", "log" if beta_lo > 0 else "linear"]
            for flag, text in (("--latent-dim", latents), ("--free-bits", free_bits)):
                vals = [v.strip() for v in text.split(",") if v.strip()]
                [float(v) for v in vals]  # noqa: B018
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
