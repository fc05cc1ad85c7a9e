"""Train: pick a corpus, set β and the schedule, start a background training, watch it live, stop it."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from ui import loaders, state, train_figures
from ui.safe_text import code, escape
from ui.settings import initial, invalid_setting_message, planned_steps, setting_widgets, warmup_warning
from vae_core import jobs, run_management
from vae_core.config import ModelConfig, TrainConfig, configs_with, training_settings
from vae_core.corpus import CorpusError, text_encoding
from vae_core.presets import PRESETS, preset_values
from vae_core.runs import read_metrics
from vae_core.units import format_bytes, mib

# Session-state keys of this page.
UPLOAD = "train_upload"  # {"name": str, "data": bytes}: the uploaded corpus, kept until training starts
GRAMMAR_UPLOAD = "train_grammar_upload"  # {"name": str, "data": bytes}: an uploaded grammar file, the same way
WATCH = "train_watch_run"  # the run shown in the watch section
NOTICE = "train_notice"  # (kind, text) shown once after Start
SEEN = "train_seen_state"  # {run name: last state seen by the watch fragment}
CONFIRM_DELETE = "train_confirm_delete"  # the run whose Delete waits for its confirmation
CONFIRM_CLEANUP = "train_confirm_cleanup"  # the leftover runs Clean up listed, waiting for the confirmation
MANAGE_NOTICE = "train_manage_notice"  # (kind, text) after Delete, Resume, Evaluate or Clean up
MAIN_GROUPS = ("objective", "model", "optimisation")  # one column each; the other settings go under "More settings"
KEY_PREFIX = "train_"  # a setting's widget key is train_<setting name>
POLL_S = 2.0
ETA_SAMPLE = 2000  # training sentences the time estimate reads for vocabulary and length
PREVIEW_ROWS = 10

runs_root = loaders.runs_dir()


_md, _code = escape, code  # user/file text in markdown, and code spans: ui.safe_text (one home)


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


def _store_grammar_upload() -> None:
    up = st.session_state.get("w_train_grammar_upload")
    if up is None:
        st.session_state.pop(GRAMMAR_UPLOAD, None)
    else:
        st.session_state[GRAMMAR_UPLOAD] = {"name": up.name, "data": up.getvalue()}


@st.cache_resource(max_entries=4, show_spinner="Reading the grammar…")
def _uploaded_grammar(digest: str, name: str, _data: bytes):
    """(grammar, its corpus split with seed 0) of an uploaded grammar file, cached on its content hash;
    GrammarError naming the entry at fault."""
    from vae_core.grammar import grammar_from_bytes

    del digest  # the key: the content hash of _data
    grammar = grammar_from_bytes(_data, name)
    return grammar, grammar.generate(seed=0)


def _grammar_preview(grammar, corpus) -> None:
    """A grammar's description, size, factors and first training sentences with their factor values."""
    st.caption(_md(grammar.description))
    c1, c2, c3 = st.columns(3)
    c1.metric("Sentences", f"{grammar.size:,}")
    c2.metric("Factors", len(grammar.factors))
    c3.metric("Words", len(grammar.vocabulary()))
    st.dataframe(pd.DataFrame({"factor": list(grammar.factors),
                               "values": [len(v) for v in grammar.factors.values()],
                               "e.g.": [", ".join(v[:6]) for v in grammar.factors.values()]}),
                 hide_index=True, width="stretch")
    sample = corpus.train
    st.dataframe(pd.DataFrame({"sentence": sample.sentences[:PREVIEW_ROWS],
                               **{f: sample.labels[f][:PREVIEW_ROWS] for f in grammar.factors}}),
                 hide_index=True, width="stretch")


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
SOURCES = {"synthetic": "Built-in corpus (known factors)", "grammar": "A factor grammar (shipped or yours)",
           "path": "A file or folder on the server", "upload": "Upload a file"}
source = st.radio("Corpus", list(SOURCES), format_func=SOURCES.get, key="train_corpus_source", horizontal=True,
                  help="The built-in corpus has known generative factors (tense, number, negation, …), so the "
                       "app can tell which latent dimension controls what and measure disentanglement.")
corpus_spec, corpus_column = "synthetic", None  # what the run's train_config.json names as its corpus
files: dict[str, bytes] = {}
upload_ext = ""
corpus_ok = False
n_train = 0  # training sentences, for the warm-up check before Start (issue 20.4)
sample: list[str] = []  # some training sentences: vocabulary and length for the time estimate before Start
if source == "synthetic":
    st.caption("Generated on the fly, deterministic, no download: every combination of the factors is one "
               "sentence, with a fixed train/valid/test split.")
    corpus_ok = True
    n_train = len(loaders.load_corpus_cached("synthetic").train)
    sample = list(loaders.load_corpus_cached("synthetic").train.sentences[:ETA_SAMPLE])
elif source == "grammar":
    from vae_core.grammar import MAX_FILE_BYTES as GRAMMAR_MAX_BYTES
    from vae_core.grammar import RUN_COPY, SPEC_PREFIX, GrammarError, shipped_grammar, shipped_grammars

    kinds = {"shipped": "Shipped with the lab", "upload": "Upload your own (.json)"}
    kind = st.radio("Grammar file", list(kinds), format_func=kinds.get, key="train_grammar_kind", horizontal=True)
    if kind == "shipped":
        names = [n for n in shipped_grammars() if n != "builtin"]  # builtin = the built-in corpus above
        name = st.selectbox("Grammar", names, key="train_grammar",
                            help="Corpora with known factors written as grammar files in vae_core/grammars "
                                 "(README: Factor grammars); `--corpus grammar:NAME` in the shell.")
        try:
            grammar_corpus = loaders.load_corpus_cached(SPEC_PREFIX + name)
            grammar = shipped_grammar(name)
        except (CorpusError, GrammarError) as e:
            st.error(_md(e))
        else:
            _grammar_preview(grammar, grammar_corpus)
            corpus_spec, corpus_ok, n_train = SPEC_PREFIX + name, True, len(grammar_corpus.train)
            sample = list(grammar_corpus.train.sentences[:ETA_SAMPLE])
    else:
        st.file_uploader(
            f"Grammar file (.json, at most {format_bytes(GRAMMAR_MAX_BYTES)}; the format is in the README, "
            "'Factor grammars')", type=["json"], key="w_train_grammar_upload", on_change=_store_grammar_upload,
        )
        upload = st.session_state.get(GRAMMAR_UPLOAD)
        if upload:
            name, data = str(upload.get("name", "grammar.json")), bytes(upload.get("data") or b"")
            try:
                grammar, grammar_corpus = _uploaded_grammar(hashlib.sha256(data).hexdigest(), name, data)
            except GrammarError as e:
                st.error(f"Cannot use this grammar: {_md(e)}")
            else:
                _grammar_preview(grammar, grammar_corpus)
                st.caption(f"The file is saved into the run folder (as {RUN_COPY}) when training starts; the "
                           "run keeps that copy (its sha256 goes into config.json).")
                files = {RUN_COPY: data}
                corpus_ok, n_train = True, len(grammar_corpus.train)
                sample = list(grammar_corpus.train.sentences[:ETA_SAMPLE])
        else:
            st.caption("Nothing uploaded yet.")
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
                n_train = preview["counts"]["train"]
                sample = list(preview["rows"]["sentence"])  # the first rows: a rough vocabulary
else:
    cap_mb = int(st.get_option("server.maxUploadSize") or jobs.DEFAULT_UPLOAD_MB)
    st.file_uploader(
        f"Corpus file (.txt one sentence a line, .csv or .jsonl with a text column; at most "
        f"{format_bytes(mib(cap_mb))})",
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
        texts, err = jobs.validate_upload(name, data, column, max_bytes=mib(cap_mb))
        if err:
            st.error(f"Cannot use this file: {_md(err)}")
        else:
            assert texts is not None
            upload_ext = jobs.upload_format(name)
            c1, c2, c3 = st.columns(3)
            c1.metric("Sentences", f"{len(texts):,}")
            c2.metric("Label columns", len(texts.labels))
            c3.metric("Size", format_bytes(len(data)))
            if (encoding := text_encoding(data)[1]) != "UTF-8":
                st.caption(f"Read as {encoding} (from the file's byte-order mark).")
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
            n_train = round(0.9 * len(texts))  # the 90/5/5 split
            sample = list(texts.sentences[:ETA_SAMPLE])
    else:
        st.caption("Nothing uploaded yet.")

# ---- 2. hyperparameters: one widget per declared setting (vae_core.config), shown where it applies
st.header("2 · Objective and model")
declared_settings = training_settings()
values: dict[str, object] = {}


def _apply_preset(name: str) -> None:
    """Fill every setting's widget from a preset (vae_core.presets; the rest back to its start) and its corpus."""
    chosen = preset_values(name)
    for s in declared_settings.values():
        st.session_state[KEY_PREFIX + s.name] = chosen.get(s.name, initial(s))
    st.session_state["train_corpus_source"] = PRESETS[name].corpus


for preset_name, preset in PRESETS.items():
    st.button(preset.title, key=f"train_preset_{preset_name}", help=preset.help, icon=":material/bolt:",
              on_click=_apply_preset, args=(preset_name,))


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
    st.error(f"Invalid setting: {_md(invalid_setting_message(e, declared_settings))}")

# ---- 3. start
st.header("3 · Start")
if not config_error and (warmup_note := warmup_warning(train_config, n_train)):
    st.warning(_md(warmup_note))
if not config_error and corpus_ok and (planned := planned_steps(train_config, n_train)) > 0:
    words, mean_words = run_management.corpus_shape(sample, train_config)
    try:
        with st.spinner("Timing a few steps of this model…"):
            estimate = run_management.estimate_training(model_config, train_config, planned, words, mean_words)
    except (ValueError, RuntimeError, MemoryError) as e:  # a model this machine cannot build: say so, go on
        st.caption(f"No time estimate: timing this model failed ({_md(e)}).")
    else:
        st.info(_md(run_management.describe_estimate(estimate))
                + ("" if device == "cpu" else " A GPU, if the run gets one, is usually much faster."),
                icon=":material/timer:")
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
        spec = str(run_dir / next(iter(files))) if files else corpus_spec  # an upload: its copy in the run
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
if MANAGE_NOTICE in st.session_state:  # after Delete, Resume, Evaluate or Clean up (the run list has changed)
    st.success(_md(st.session_state.pop(MANAGE_NOTICE)[1]))
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
EVAL_ACTIVE = ("queued", "running")  # jobs.evaluation_status states of an evaluation still going


def _evaluation(run_dir: Path, ev: dict) -> None:
    """The app's evaluation of the run: waiting, running, its figures, or why it failed."""
    if ev["state"] == "queued":
        st.info("Evaluation queued: it waits for a free training slot (`VAE_MAX_TRAININGS`).")
    elif ev["state"] == "running":
        st.info(f"Evaluating ({_code(f'python -m vae_core eval {run_dir.name}')}, process {ev['pid']})…")
    elif ev["state"] == "failed":
        st.error("The evaluation failed. The end of its log:")
        st.code(ev["log_tail"] or "(no log)", language=None)
    figures = run_management.evaluation_figures(run_dir)
    if figures and ev["state"] not in EVAL_ACTIVE:
        st.markdown("**Evaluation** (summary.json, test split)")
        st.dataframe(pd.DataFrame(figures, columns=["figure", "value"]), hide_index=True)


def _manage(run_dir: Path, p: dict, ev: dict) -> None:
    """Resume, Evaluate and Delete for a run of the runs folder; the logic is vae_core.run_management's."""
    if p["state"] in jobs.ACTIVE_STATES or ev["state"] in EVAL_ACTIVE:
        return
    c1, c2, c3 = st.columns(3)
    resumable = p["state"] in run_management.ENDED_STATES and run_management.has_checkpoint(run_dir)
    action = None
    if c1.button("Resume", key="train_resume", icon=":material/play_arrow:", disabled=not resumable,
                 help="Continue from the last checkpoint (`train --resume`), through the training queue. For a "
                      "stopped, killed or failed run with a checkpoint."):
        action = ("Resumed", lambda: run_management.resume_run(run_dir, runs_root, device))
    if c2.button("Evaluate", key="train_evaluate", icon=":material/analytics:",
                 disabled=not run_management.has_weights(run_dir),
                 help="`python -m vae_core eval` in the background (it takes a training slot): ELBO, perplexity, "
                      "active units and, on a corpus with factors, disentanglement; written to summary.json."):
        action = ("Evaluation started for", lambda: run_management.evaluate_run_job(run_dir, runs_root))
    if c3.button("Delete…", key="train_delete", icon=":material/delete:",
                 help="Remove this run's folder from the runs folder (asks first)."):
        st.session_state[CONFIRM_DELETE] = run_dir.name
    if st.session_state.get(CONFIRM_DELETE) == run_dir.name:
        st.warning(f"Delete run {_md(run_dir.name)} and everything in its folder? This cannot be undone.")
        y, n = st.columns(2)
        if y.button("Yes, delete it", key="train_delete_confirm", type="primary"):
            st.session_state.pop(CONFIRM_DELETE, None)
            action = ("Deleted", lambda: run_management.delete_run(run_dir, runs_root))
        if n.button("Cancel", key="train_delete_cancel"):
            st.session_state.pop(CONFIRM_DELETE, None)
            st.rerun()
    if action is not None:
        done, call = action
        try:
            call()
        except ValueError as e:
            st.error(_md(e))
        else:
            st.session_state[MANAGE_NOTICE] = ("success", f"{done} run {run_dir.name}.")
            st.rerun(scope="app")  # the run list and the polling change


def _watch(run_dir: Path) -> None:
    """Status, progress and live curves of one run; polled every POLL_S seconds while it is active."""
    jobs.start_queued(runs_root)
    p = jobs.training_progress(run_dir)
    seen = st.session_state.setdefault(SEEN, {})
    before, seen[run_dir.name] = seen.get(run_dir.name), p["state"]
    if before in jobs.ACTIVE_STATES and p["state"] not in jobs.ACTIVE_STATES:
        st.rerun()  # the run just ended: redraw the page (the model picker now lists it)
    color, icon = BADGE.get(p["state"], ("gray", ":material/help:"))
    st.badge(escape(p["state"]), color=color, icon=icon)
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
                   "press Resume below, or resume it from a shell: "
                   + _code(f"python -m vae_core train --resume --out {run_dir}"))
        if p["error"]:
            st.code(p["error"], language=None)
    elif p["state"] in ("finished", "stopped"):
        loadable = (run_dir / "model.safetensors").is_file()
        if loadable:
            st.success(f"Run {_md(run_dir.name)} is {p['state']}: it is in the model picker (sidebar) and can be "
                       "opened on every page.")
            if st.button("Open this run in the explorer", key="train_open", icon=":material/open_in_new:"):
                state.request_run(str(run_dir))
                st.rerun(scope="app")  # the picker is outside this fragment: a full run applies the request
    ev = jobs.evaluation_status(run_dir)
    if seen.get(("eval", run_dir.name)) in EVAL_ACTIVE and ev["state"] not in EVAL_ACTIVE:
        seen[("eval", run_dir.name)] = ev["state"]
        st.rerun()  # the evaluation just ended: a full run shows its figures and stops the polling
    seen[("eval", run_dir.name)] = ev["state"]
    _evaluation(run_dir, ev)
    _manage(run_dir, p, ev)
    records = read_metrics(run_dir)
    c1, c2 = st.columns(2)
    c1.plotly_chart(train_figures.loss_curves(records), key="train_fig_loss")
    c2.plotly_chart(train_figures.validation_curves(records), key="train_fig_valid")
    st.plotly_chart(train_figures.kl_heatmap(records), key="train_fig_heat")
    st.caption(f"Updated {time.strftime('%H:%M:%S')}" + (f" · every {POLL_S:g} s while active"
                                                           if p["state"] in jobs.ACTIVE_STATES else ""))


active = (jobs.training_progress(watch_dir)["state"] in jobs.ACTIVE_STATES
          or jobs.evaluation_status(watch_dir)["state"] in EVAL_ACTIVE)
st.fragment(run_every=POLL_S if active else None)(_watch)(watch_dir)

# ---- 5. clean up: runs that ended with nothing to open or resume (vae_core.run_management.leftover_runs)
if st.button("Clean up leftover runs…", key="train_cleanup", icon=":material/cleaning_services:",
             help="Lists the runs that were stopped, cancelled, killed or failed before writing any weights or "
                  "checkpoint (e.g. a folder with only status.json), and deletes them once you confirm."):
    st.session_state[CONFIRM_CLEANUP] = [p.name for p, _ in run_management.leftover_runs(runs_root)]
if (listed := st.session_state.get(CONFIRM_CLEANUP)) is not None:
    leftovers = [(p, why) for p, why in run_management.leftover_runs(runs_root) if p.name in listed]
    if not leftovers:
        st.info("Nothing to clean up: every run in the runs folder has weights or a checkpoint, or is active.")
        st.session_state.pop(CONFIRM_CLEANUP, None)
    else:
        st.warning(f"Delete these {len(leftovers)} run folder(s)? They hold no weights and no checkpoint.")
        st.dataframe(pd.DataFrame({"run": [p.name for p, _ in leftovers], "why": [w for _, w in leftovers]}),
                     hide_index=True, width="stretch")
        y, n = st.columns(2)
        if y.button(f"Yes, delete {len(leftovers)} run(s)", key="train_cleanup_confirm", type="primary"):
            st.session_state.pop(CONFIRM_CLEANUP, None)
            try:
                gone = run_management.delete_leftovers(runs_root, [p.name for p, _ in leftovers])
            except ValueError as e:
                st.error(_md(e))
            else:
                st.session_state[MANAGE_NOTICE] = ("success", f"Deleted {len(gone)} leftover run(s): "
                                                   + ", ".join(gone) + ".")
                st.rerun()
        if n.button("Cancel", key="train_cleanup_cancel"):
            st.session_state.pop(CONFIRM_CLEANUP, None)
            st.rerun()
