"""Train: pick a corpus, set β and the schedule, start a background training, watch it live, stop it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from ui import loaders, state, train_figures
from ui.settings import setting_widgets
from vae_core import jobs
from vae_core.config import ModelConfig, TrainConfig, configs_with, training_settings
from vae_core.corpus import CorpusError
from vae_core.runs import read_metrics

# Session-state keys of this page.
UPLOAD = "train_upload"  # {"name": str, "data": bytes}: the uploaded corpus, kept until training starts
WATCH = "train_watch_run"  # the run shown in the watch section
NOTICE = "train_notice"  # (kind, text) shown once after Start
SEEN = "train_seen_state"  # {run name: last state seen by the watch fragment}
MAIN_GROUPS = ("objective", "model", "optimisation")  # one column each; the other settings go under "More settings"
KEY_PREFIX = "train_"  # a setting's widget key is train_<setting name>
POLL_S = 2.0
PREVIEW_ROWS = 10

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
    "Training runs as a background process (`python -m vae_core train --config <run>/train_config.json --out "
    "<run>`): closing the browser "
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
corpus_spec, corpus_column = "synthetic", None  # what the run's train_config.json names as its corpus
files: dict[str, bytes] = {}
upload_ext = ""
corpus_ok = False
if source == "synthetic":
    st.caption("Generated on the fly, deterministic, no download: every combination of the factors is one "
               "sentence, with a fixed train/valid/test split.")
    corpus_ok = True
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
                corpus_spec, corpus_column, corpus_ok = str(path), column, True
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
            corpus_ok, corpus_column = True, column
    else:
        st.caption("Nothing uploaded yet.")

# ---- 2. hyperparameters: one widget per declared setting (vae_core.config), shown where it applies
st.header("2 · Objective and model")
declared_settings = training_settings()
values: dict[str, object] = {}


def _section(group: str) -> None:
    setting_widgets([s for s in declared_settings.values() if s.group == group and not s.advanced], values,
                    KEY_PREFIX)


c1, c2, c3 = st.columns(3)
with c1:
    st.subheader("Objective")
    _section("objective")
with c2:
    st.subheader("Model")
    _section("model")
with c3:
    st.subheader("Optimisation")
    _section("optimisation")
    device = st.selectbox("Device", ["cpu", "auto"], key="train_device",
                          help="auto: a GPU (CUDA or Apple MPS) when there is one, else the CPU.")
with st.expander("More settings"):  # every setting the columns above do not show
    rest = [s for s in declared_settings.values() if s.advanced or s.group not in MAIN_GROUPS]
    for column, group in zip(st.columns(3), ("model", "optimisation", "data"), strict=True):
        with column:
            setting_widgets([s for s in rest if s.group == group], values, KEY_PREFIX)
    setting_widgets([s for s in rest if s.group not in ("model", "optimisation", "data")], values, KEY_PREFIX)

config_error = None
model_config, train_config = ModelConfig(), TrainConfig()
try:  # the validation the CLI does, before anything starts; these configs are what the run is given
    model_config, train_config = configs_with(ModelConfig(), TrainConfig(), values)
except ValueError as e:
    config_error = str(e)
    st.error(f"Invalid setting: {_md(e)}")

# ---- 3. start
st.header("3 · Start")
auto_name = jobs.default_run_name(float(train_config.beta))
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
        spec = str(run_dir / f"corpus.{upload_ext}") if files else corpus_spec
        pid = jobs.start_training(run_dir, ["--device", device], model=model_config, train=train_config,
                                  corpus=spec, text_column=corpus_column, overwrite=overwrite, files=files)
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
