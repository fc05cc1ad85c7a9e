"""Train: pick a corpus, set β and the schedule, start a background training, watch it live, stop it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from ui import loaders, state, train_figures
from vae_core import jobs
from vae_core.config import DECODERS, RNN_TYPES, SCHEDULES, ModelConfig, TrainConfig
from vae_core.corpus import CorpusError
from vae_core.runs import read_metrics

# Session-state keys of this page.
UPLOAD = "train_upload"  # {"name": str, "data": bytes}: the uploaded corpus, kept until training starts
WATCH = "train_watch_run"  # the run shown in the watch section
NOTICE = "train_notice"  # (kind, text) shown once after Start
SEEN = "train_seen_state"  # {run name: last state seen by the watch fragment}
POLL_S = 2.0
PREVIEW_ROWS = 10

m0, t0 = ModelConfig(), TrainConfig()
runs_root = loaders.runs_dir()


def _md(text: str) -> str:
    """Plain text made safe inside Streamlit markdown (no formatting, links or LaTeX from user data)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(text))


def _code(text: object) -> str:
    """Text as an inline code span (paths, commands)."""
    return "`" + str(text).replace("`", "'") + "`"


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def _store_upload() -> None:
    up = st.session_state.get("w_train_upload")
    if up is None:
        st.session_state.pop(UPLOAD, None)
    else:
        st.session_state[UPLOAD] = {"name": up.name, "data": up.getvalue()}


@st.cache_data(max_entries=8, show_spinner="Reading the corpus…")
def _path_preview(path: str, mtime: float, text_column: str | None) -> dict:
    """Counts and first rows of a corpus at a path (cached on its mtime); raises CorpusError."""
    del mtime
    from vae_core.corpus import load_path

    c = load_path(path, text_column)
    head = c.train.select(range(min(PREVIEW_ROWS, len(c.train))))
    return {"counts": {"train": len(c.train), "valid": len(c.valid), "test": len(c.test)},
            "labels": list(c.label_columns), "rows": {"sentence": list(head.sentences),
                                                      **{k: list(v) for k, v in head.labels.items()}}}


# --------------------------------------------------------------------------- page

st.title("Train a β-VAE")
st.markdown(
    "Training runs as a background process (`python -m vae_core train … --out <run>`): closing the browser "
    "or refreshing loses nothing, and a run started from a shell in the runs folder shows up below too. "
    f"Runs are written to {_code(runs_root)}."
)
jobs.start_queued(runs_root)

# ---- 1. corpus
st.header("1 · Corpus")
SOURCES = {"synthetic": "Built-in corpus (known factors)", "path": "A file or folder on the server",
           "upload": "Upload a file"}
source = st.radio("Corpus", list(SOURCES), format_func=SOURCES.get, key="train_corpus_source", horizontal=True,
                  help="The built-in corpus has known generative factors (tense, number, negation, …), so the "
                       "app can tell which latent dimension controls what and measure disentanglement.")
corpus_args: list[str] = []
files: dict[str, bytes] = {}
upload_ext = ""
corpus_ok = False
if source == "synthetic":
    st.caption("Generated on the fly, deterministic, no download: every combination of the factors is one "
               "sentence, with a fixed train/valid/test split.")
    corpus_args, corpus_ok = ["--corpus", "synthetic"], True
elif source == "path":
    allowed = jobs.data_dirs()
    st.caption("PTB-style text: one sentence a line (.txt), or a folder with files named like *train*, *valid*, "
               "*test*; .csv/.jsonl with a text column. Allowed folders (set `VAE_DATA_DIRS` to change): "
               + ", ".join(_code(d) for d in allowed))
    typed = st.text_input("Path", key="train_corpus_path", placeholder="ptb  or  /path/to/sentences.txt",
                          help="Absolute, or relative to one of the allowed folders. "
                               "`python -m vae_core data download-ptb` puts PTB in the cache folder.")
    column = st.text_input("Text column (CSV/JSONL; blank = guess)", key="train_path_column").strip() or None
    if typed.strip():
        try:
            path = jobs.resolve_data_path(typed)
            preview = _path_preview(str(path), path.stat().st_mtime, column)
        except (ValueError, CorpusError, OSError) as e:
            st.error(_md(e))
        else:
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("Train", f"{preview['counts']['train']:,}")
            c2.metric("Valid", f"{preview['counts']['valid']:,}")
            c3.metric("Test", f"{preview['counts']['test']:,}")
            c4.metric("Label columns", len(preview["labels"]))
            st.dataframe(pd.DataFrame(preview["rows"]), hide_index=True, width="stretch")
            if preview["counts"]["train"] < jobs.MIN_SENTENCES:
                st.error(f"Only {preview['counts']['train']} training sentences; at least {jobs.MIN_SENTENCES} "
                         "are needed.")
            else:
                corpus_args, corpus_ok = ["--corpus", str(path)], True
                if column:
                    corpus_args += ["--text-column", column]
else:
    cap_mb = int(st.get_option("server.maxUploadSize") or jobs.DEFAULT_UPLOAD_MB)
    st.file_uploader(
        f"Corpus file (.txt one sentence a line, .csv or .jsonl with a text column; at most {cap_mb} MB)",
        type=list(jobs.UPLOAD_FORMATS), key="w_train_upload", on_change=_store_upload,
    )
    upload = st.session_state.get(UPLOAD)
    if upload:
        name, data = str(upload.get("name", "upload")), upload.get("data") or b""
        columns = jobs.upload_columns(name, data)
        column = None
        if columns:
            choice = st.selectbox("Text column", ["(guess)"] + columns, key="train_upload_column",
                                  help="The column holding the sentence; every other column becomes a label.")
            column = None if choice == "(guess)" else choice
        texts, err = jobs.validate_upload(name, data, column, max_bytes=cap_mb * 1024 * 1024)
        if err:
            st.error(f"Cannot use this file: {_md(err)}")
        else:
            assert texts is not None
            upload_ext = jobs.upload_format(name)
            c1, c2, c3 = st.columns(3)
            c1.metric("Sentences", f"{len(texts):,}")
            c2.metric("Label columns", len(texts.labels))
            c3.metric("Size", f"{len(data) / 1024:,.0f} KB")
            if texts.labels:
                st.caption("Labels: " + ", ".join(_code(c) for c in texts.labels))
            head = texts.select(range(min(PREVIEW_ROWS, len(texts))))
            st.dataframe(pd.DataFrame({"sentence": list(head.sentences),
                                       **{k: list(v) for k, v in head.labels.items()}}),
                         hide_index=True, width="stretch")
            st.caption("The file is saved into the run folder (as corpus." + upload_ext + ") when training starts; "
                       "it is split 90/5/5 into train/valid/test with the seed below.")
            files = {f"corpus.{upload_ext}": bytes(data)}
            corpus_ok = True
            if column:
                corpus_args += ["--text-column", column]
    else:
        st.caption("Nothing uploaded yet.")

# ---- 2. hyperparameters
st.header("2 · Objective and model")
c1, c2, c3 = st.columns(3)
with c1:
    st.subheader("Objective")
    beta = st.number_input("β", 0.0, 1000.0, float(t0.beta), 0.1, key="train_beta",
                           help="Weight on KL. 1 = plain VAE; > 1 pushes towards a factorised (disentangled) code "
                                "and blurrier reconstructions; < 1 lets more through.")
    schedule = st.selectbox("KL schedule", list(SCHEDULES), index=list(SCHEDULES).index(t0.schedule),
                            key="train_schedule",
                            help="constant: β from step 0. linear/sigmoid: warm up from 0 to β. cyclical: repeated "
                                 "warm-ups. capacity: γ·|KL − C| with C rising to C_max (Burgess et al.).")
    warmup = cycles = cycle_ratio = c_max = gamma = cap_steps = None
    if schedule in ("linear", "sigmoid"):
        warmup = st.number_input("Warm-up steps", 0, 10**8, int(t0.warmup_steps), 100, key="train_warmup",
                                 help="Steps for the KL weight to reach β (fights posterior collapse).")
    elif schedule == "cyclical":
        cycles = st.number_input("Cycles", 1, 10**5, int(t0.cycles), 1, key="train_cycles",
                                 help="Number of warm-up cycles over the whole training (Fu et al. 2019).")
        cycle_ratio = st.slider("Rising share of a cycle", 0.05, 1.0, float(t0.cycle_ratio), 0.05,
                                key="train_cycle_ratio", help="Part of each cycle spent rising from 0 to β.")
    elif schedule == "capacity":
        c_max = st.number_input("C_max (nats)", 0.0, 10_000.0, float(t0.capacity_max), 1.0, key="train_cmax",
                                help="Target KL at the end of the capacity ramp.")
        gamma = st.number_input("γ", 0.0, 10_000.0, float(t0.gamma), 1.0, key="train_gamma",
                                help="Weight on |KL − C|: how hard the KL is held to the current capacity.")
        cap_steps = st.number_input("Capacity steps", 0, 10**8, int(t0.capacity_steps), 100, key="train_cap_steps",
                                    help="Steps for C to rise from 0 to C_max.")
    free_bits = st.number_input("Free bits (nats per dimension)", 0.0, 100.0, float(t0.free_bits), 0.05,
                                key="train_free_bits",
                                help="KL below this floor per dimension is not penalised (Kingma et al. 2016); "
                                     "0 = off.")
    tc_weight = st.number_input("Total-correlation weight", 0.0, 1000.0, float(t0.tc_weight), 0.5,
                                key="train_tc",
                                help="β-TCVAE: extra penalty on dependence between dimensions; 0 = off.")
    tc_start = tc_warmup = None
    if tc_weight > 0:
        tc_start = st.number_input("TC starts at step", 0, 10**9, int(t0.tc_start), 100, key="train_tc_start",
                                   help="Penalise TC only once a code has formed: from the first step it can make "
                                        "the model throw information away instead of factorising it.")
        tc_warmup = st.number_input("TC warm-up steps", 0, 10**9, int(t0.tc_warmup_steps), 100,
                                    key="train_tc_warmup", help="Steps for the TC weight to rise from 0; 0 = at once.")
with c2:
    st.subheader("Model")
    latent = st.number_input("Latent size", 1, 1024, int(m0.latent_dim), 1, key="train_latent",
                             help="Dimensions of z. More than the number of factors leaves room for inactive units.")
    embed = st.number_input("Embedding size", 1, 8192, int(m0.embed_dim), 8, key="train_embed",
                            help="Word embedding width.")
    hidden = st.number_input("Hidden size", 1, 8192, int(m0.hidden_dim), 16, key="train_hidden",
                             help="RNN state width (per direction in the encoder).")
    rnn = st.selectbox("RNN", list(RNN_TYPES), index=list(RNN_TYPES).index(m0.rnn_type), key="train_rnn",
                       help="GRU trains a little faster; LSTM is the classic choice (Bowman et al. 2016).")
    decoder = st.selectbox("Decoder", list(DECODERS), index=list(DECODERS).index(m0.decoder), key="train_decoder",
                           format_func=lambda d: {"rnn": "RNN (autoregressive)",
                                                  "positional": "positional (non-autoregressive)",
                                                  "additive": "additive (one term per dimension)"}[d],
                           help="positional: each word is predicted from z and its position alone, so z has to "
                                "carry the whole sentence (no posterior collapse; each dimension's effect is "
                                "easier to read). additive: the same, with word scores that are a sum of one "
                                "term per latent dimension, so a dimension can only add its own evidence "
                                "(favours one factor per dimension). RNN: the classic Sentence-VAE decoder.")
    dec_layers = st.number_input("Decoder layers", 1, 8, int(m0.decoder_layers), 1, key="train_decoder_layers",
                                 help="RNN decoder: stacked layers. Positional / additive: hidden layers of the "
                                      "per-position (additive: per-dimension) network.")
    fourier = st.number_input("Fourier features (additive decoder)", 0, 64, 8, 1, key="train_fourier",
                              disabled=decoder != "additive",
                              help="Each z_d reaches its own network as sin/cos(k·π/3·z_d), k = 1…K, beside z_d: "
                                   "lets one dimension hold a factor with many values (the shipped additive-b06 "
                                   "uses 8). 0 = z_d alone.")
    word_dropout = st.slider("Word dropout", 0.0, 1.0, float(m0.word_dropout), 0.05, key="train_word_dropout",
                             help="Chance a decoder input word becomes <unk>: makes the decoder rely on z.")
with c3:
    st.subheader("Optimisation")
    epochs = st.number_input("Epochs", 1, 100_000, int(t0.epochs), 1, key="train_epochs",
                             help="Passes over the training split.")
    max_steps = st.number_input("Max steps (0 = all epochs)", 0, 10**9, int(t0.max_steps), 100, key="train_max_steps",
                                help="Stop after this many optimisation steps, whatever the epochs.")
    batch = st.number_input("Batch size", 1, 65_536, int(t0.batch_size), 8, key="train_batch",
                            help="Sentences per step (length-bucketed).")
    lr = st.number_input("Learning rate", 1e-6, 1.0, float(t0.lr), 1e-4, format="%.5f", key="train_lr",
                         help="Adam step size.")
    seed = st.number_input("Seed", 0, 2**31 - 1, int(t0.seed), 1, key="train_seed",
                           help="Same seed, same corpus split, same run.")
    log_every = st.number_input("Log every N steps", 1, 10**6, int(t0.log_every), 1, key="train_log_every",
                                help="How often a metrics line (and a point on the curves) is written.")
    device = st.selectbox("Device", ["cpu", "auto"], key="train_device",
                          help="auto: a GPU (CUDA or Apple MPS) when there is one, else the CPU.")
    eval_every = st.number_input("Validate every N steps (0 = per epoch)", 0, 10**8, int(t0.eval_every), 50,
                                 key="train_eval_every", help="Validation and checkpoint besides each epoch's end.")

options = dict(
    beta=float(beta), schedule=schedule, warmup_steps=warmup, cycles=cycles, cycle_ratio=cycle_ratio,
    capacity_max=c_max, gamma=gamma, capacity_steps=cap_steps, free_bits=float(free_bits), tc_weight=float(tc_weight),
    tc_start=tc_start, tc_warmup_steps=tc_warmup, decoder=decoder, decoder_layers=int(dec_layers),
    fourier_features=int(fourier) if decoder == "additive" else None,
    latent_dim=int(latent), embed_dim=int(embed), hidden_dim=int(hidden), rnn_type=rnn,
    word_dropout=float(word_dropout), epochs=int(epochs), max_steps=int(max_steps), batch_size=int(batch),
    lr=float(lr), seed=int(seed), log_every=int(log_every), eval_every=int(eval_every), device=device,
)
config_error = None
try:  # the same validation the CLI does, before anything starts
    ModelConfig(embed_dim=int(embed), hidden_dim=int(hidden), latent_dim=int(latent), rnn_type=rnn,
                word_dropout=float(word_dropout), decoder=decoder, decoder_layers=int(dec_layers),
                fourier_features=int(fourier) if decoder == "additive" else 0)
    TrainConfig(**{k: v for k, v in options.items()
                   if k in TrainConfig.__dataclass_fields__ and v is not None})
except ValueError as e:
    config_error = str(e)
    st.error(f"Invalid setting: {_md(e)}")

# ---- 3. start
st.header("3 · Start")
auto_name = jobs.default_run_name(float(beta))
c1, c2 = st.columns([3, 1])
typed_name = c1.text_input("Run name", key="train_run_name", placeholder=auto_name, max_chars=jobs.MAX_RUN_NAME,
                           help="Letters, digits, '-', '_' and '.'; blank = " + auto_name)
overwrite = c2.checkbox("Overwrite an existing run of this name", key="train_overwrite")
start = st.button("Start training", type="primary", key="train_start", disabled=not corpus_ok or bool(config_error))
if not corpus_ok:
    st.caption("Choose a usable corpus above to start.")
if start and corpus_ok and not config_error:
    try:
        if typed_name.strip():
            name = jobs.sanitize_run_name(typed_name)
        else:  # an automatic name never overwrites: add -2, -3, … when taken
            name, k = auto_name, 1
            while (runs_root / name).exists():
                k += 1
                name = f"{auto_name}-{k}"
        run_dir = jobs.run_path(runs_root, name)
        args = list(corpus_args)
        if files:
            args = ["--corpus", str(run_dir / f"corpus.{upload_ext}"), *corpus_args]
        args += jobs.build_train_args(**options)
        pid = jobs.start_training(run_dir, args, overwrite=overwrite, files=files)
    except ValueError as e:
        st.error(_md(e))
    else:
        st.session_state[WATCH] = name
        if pid is None:
            st.session_state[NOTICE] = ("info", f"Run {name} is queued: {jobs.max_concurrent()} training(s) may run "
                                                "at once. It starts when one finishes.")
        else:
            st.session_state[NOTICE] = ("success", f"Started run {name} (process {pid}).")
if NOTICE in st.session_state:
    kind, text = st.session_state.pop(NOTICE)
    (st.info if kind == "info" else st.success)(_md(text))


# ---- 4. watch
st.header("Watch a run")
watchable = jobs.watchable_runs(runs_root)
if not watchable:
    st.info("No runs yet. Start one above, or from a shell: "
            + _code(f"python -m vae_core train --corpus synthetic --out {runs_root / 'my-run'}"))
    st.stop()
names = [p.name for p in watchable]
if st.session_state.get(WATCH) not in names:
    st.session_state[WATCH] = names[0]
watch_name = st.selectbox("Run", names, key=WATCH, help="Every run in the runs folder, newest first; runs started "
                                                          "from a shell appear here too.")
watch_dir = runs_root / watch_name

BADGE = {"running": ("blue", ":material/play_circle:"), "queued": ("gray", ":material/schedule:"),
         "finished": ("green", ":material/check_circle:"), "failed": ("red", ":material/error:"),
         "stopped": ("orange", ":material/stop_circle:"), "killed": ("red", ":material/cancel:")}


def _open_run(path: str) -> None:
    st.session_state[state.RUN_PICKER] = path
    st.session_state[state.RUN_PATH] = path


def _watch(run_dir: Path) -> None:
    """Status, progress and live curves of one run; polled every POLL_S seconds while it is active."""
    jobs.start_queued(runs_root)
    p = jobs.training_progress(run_dir)
    seen = st.session_state.setdefault(SEEN, {})
    before, seen[run_dir.name] = seen.get(run_dir.name), p["state"]
    if before in jobs.ACTIVE_STATES and p["state"] not in jobs.ACTIVE_STATES:
        st.rerun()  # the run just ended: redraw the page (the model picker now lists it)
    color, icon = BADGE.get(p["state"], ("gray", ":material/help:"))
    st.badge(p["state"], color=color, icon=icon)
    if p["state"] == "queued":
        st.info(_md(p["message"] or "Waiting for a free training slot."))
    text = f"step {p['step']:,} / {p['total_steps']:,}" if p["total_steps"] else f"step {p['step']:,}"
    if p["eta_s"] is not None and p["state"] == "running":
        text += f" · ETA {_fmt_s(p['eta_s'])}"
    if p["tokens_per_s"]:
        text += f" · {p['tokens_per_s']:,.0f} tokens/s"
    if p["elapsed_s"]:
        text += f" · {_fmt_s(p['elapsed_s'])} elapsed"
    st.progress(float(p["progress"]), text=text)
    if p["state"] in jobs.ACTIVE_STATES:
        if st.button("Stop", key="train_stop", icon=":material/stop:",
                     help="Sends SIGTERM: the run saves a checkpoint and ends as 'stopped' (SIGKILL after 15 s)."):
            with st.spinner("Stopping…"):
                final = jobs.stop_training(run_dir)
            seen[run_dir.name] = final
            st.rerun()
    elif p["state"] == "failed":
        st.error("Training failed. The end of its log:")
        st.code(p["error"] or "(no log)", language=None)
    elif p["state"] == "killed":
        st.warning("The training process ended without saying why (killed?). The last checkpoint is kept; "
                   "resume it from a shell: " + _code(f"python -m vae_core train --resume --out {run_dir}"))
        if p["error"]:
            st.code(p["error"], language=None)
    elif p["state"] in ("finished", "stopped"):
        loadable = (run_dir / "model.safetensors").is_file()
        if loadable:
            st.success(f"Run {_md(run_dir.name)} is {p['state']}: it is in the model picker (sidebar) and can be "
                       "opened on every page.")
            st.button("Open this run in the explorer", key="train_open", on_click=_open_run,
                      args=(str(run_dir),), icon=":material/open_in_new:")
    records = read_metrics(run_dir)
    c1, c2 = st.columns(2)
    c1.plotly_chart(train_figures.loss_curves(records), key="train_fig_loss")
    c2.plotly_chart(train_figures.validation_curves(records), key="train_fig_valid")
    st.plotly_chart(train_figures.kl_heatmap(records), key="train_fig_heat")
    st.caption(f"Updated {time.strftime('%H:%M:%S')}" + (f" · every {POLL_S:g} s while active"
                                                           if p["state"] in jobs.ACTIVE_STATES else ""))


active = jobs.training_progress(watch_dir)["state"] in jobs.ACTIVE_STATES
st.fragment(run_every=POLL_S if active else None)(_watch)(watch_dir)
