"""Runs and checkpoints: only safetensors and JSON are read, nothing is ever unpickled, and a bad run is
refused with a clear message while the other runs keep working.

Already covered in tests/core/test_train_runs.py (not repeated here):
- missing files ............................. test_missing_files_refused
- truncated or corrupted safetensors ........ test_truncated_or_corrupted_safetensors_refused
- config of another format version .......... test_other_format_version_refused
- weights that do not match the config ...... test_weights_not_matching_config_refused,
                                               test_extra_or_missing_tensors_refused
- absurd sizes (latent_dim = 10^9) .......... test_absurd_sizes_refused_before_allocation
- garbage config.json ....................... test_garbage_config_json_refused
- half-written last line of metrics.jsonl ... test_half_written_metrics_line_is_skipped
- SIGKILL mid-training, load and resume ..... test_sigkill_mid_training_leaves_a_loadable_resumable_run
Here: pickle payloads in every weights file (load, best, resume), a pickled or binary vocab.json,
JSON nested deeper than Python's recursion limit, the app with a broken run selected, and a scan of the
repository for unpickling calls.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from tests.app.conftest import REPO, TINY_RUN
from tests.core.helpers import tiny_model_config, tiny_train_config, toy_corpus
from vae_core import jobs
from vae_core.runs import RunError, Status, load_run, read_metrics, read_status
from vae_core.train import train


class _Payload:
    """Unpickling this creates the marker file (a stand-in for any code a checkpoint could run)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def _pickle_bytes(marker: Path) -> bytes:
    return pickle.dumps({"weights": torch.zeros(2), "x": _Payload(marker)})


def _torch_save_bytes(marker: Path, tmp: Path) -> bytes:
    f = tmp / "torch-save.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": _Payload(marker)}, f)
    return f.read_bytes()


def test_payload_is_live(tmp_path):
    """Control: the payload really runs when unpickled, so its absence below means nothing unpickled it."""
    marker = tmp_path / "control"
    pickle.loads(_pickle_bytes(marker))
    assert marker.exists()


@pytest.fixture
def run_copy(tiny_run_dir, tmp_path) -> Path:
    """A private copy of the tiny run (the shared one must stay intact)."""
    dst = tmp_path / "copy"
    shutil.copytree(tiny_run_dir, dst, ignore=shutil.ignore_patterns("cache"))
    return dst


@pytest.mark.parametrize("kind", ["pickle", "torch_save"])
@pytest.mark.parametrize("target", ["model.safetensors", "best.safetensors"])
def test_pickled_weights_are_refused_and_never_run(run_copy, tmp_path, kind, target):
    marker = tmp_path / "pwned"
    data = _pickle_bytes(marker) if kind == "pickle" else _torch_save_bytes(marker, tmp_path)
    (run_copy / target).write_bytes(data)
    with pytest.raises(RunError, match="corrupted or truncated|cannot read"):
        load_run(run_copy, checkpoint="best" if target.startswith("best") else "model")
    assert not marker.exists(), "the pickle payload ran"


def test_resume_from_pickled_checkpoints_never_runs_them(tmp_path):
    run = tmp_path / "run"
    train(run, toy_corpus(2), tiny_model_config(), tiny_train_config(epochs=1))
    marker = tmp_path / "pwned"
    for name in ("weights.safetensors", "optimizer.safetensors"):
        (run / "checkpoint" / name).write_bytes(_pickle_bytes(marker))
    assert not (run / "checkpoint.prev").exists()  # one epoch, one checkpoint
    with pytest.raises(RunError, match="no complete checkpoint"):
        train(run, toy_corpus(2), resume=True)
    shutil.rmtree(run / "checkpoint")
    for name in ("model.safetensors", "optimizer.safetensors"):  # the old layout
        (run / name).write_bytes(_pickle_bytes(marker))
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do; what matters is the payload
        train(run, toy_corpus(2), resume=True)
    assert not marker.exists(), "resume unpickled a checkpoint"


@pytest.mark.parametrize("content", ["pickle", "binary", "not_a_vocab"])
def test_bad_vocab_json_is_a_run_error(run_copy, tmp_path, content):
    marker = tmp_path / "pwned"
    data = {"pickle": _pickle_bytes(marker), "binary": b"\xff\xfe\x00garbage",
            "not_a_vocab": b'{"itos": ["a", "b"]}'}[content]
    (run_copy / "vocab.json").write_bytes(data)
    with pytest.raises(RunError, match="vocab.json is not a valid vocabulary"):
        load_run(run_copy)
    assert not marker.exists()


def test_json_nested_past_the_recursion_limit_is_refused_not_crashing(run_copy):
    deep = "[" * 100_000 + "]" * 100_000
    (run_copy / "status.json").write_text(deep, encoding="utf-8")
    assert read_status(run_copy) == Status()  # unreadable status: no state, no crash
    assert jobs.training_progress(run_copy)["state"] == "unknown"
    (run_copy / "metrics.jsonl").write_text('{"step": 1, "kind": "train"}\n' + deep + "\n", encoding="utf-8")
    assert read_metrics(run_copy) == [{"step": 1, "kind": "train"}]
    (run_copy / "config.json").write_text(deep, encoding="utf-8")
    with pytest.raises(RunError, match="config.json"):
        load_run(run_copy)


# --------------------------------------------------------------------------- in the app


@pytest.fixture
def broken_runs(tiny_run_dir, tmp_path) -> dict[str, Path]:
    """In the runs folder: a truncated run, a run whose weights are a pickle payload, and a good copy."""
    runs = Path(os.environ["VAE_RUNS_DIR"])
    out = {}
    for name in ("a-truncated", "b-pickled", "c-good"):
        out[name] = runs / name
        shutil.copytree(tiny_run_dir, out[name], ignore=shutil.ignore_patterns("cache"))
    weights = out["a-truncated"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (out["b-pickled"] / "model.safetensors").write_bytes(_pickle_bytes(tmp_path / "pwned"))
    return out


@pytest.mark.parametrize("broken", ["a-truncated", "b-pickled"])
def test_app_with_a_broken_run_shows_an_error_and_other_runs_work(open_app, broken_runs, tmp_path, broken):
    at = open_app("app_pages/sliders.py", query={"run": broken})
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any(f"Cannot open the run **{broken}**" in e and ("corrupted" in e or "cannot read" in e)
               for e in errors), errors
    page_sliders = [s for s in at.slider if not (s.key or "").startswith("decode_")]  # sidebar: decode settings
    assert not page_sliders, "nothing of the page is drawn from a broken run"
    # The same session picks a good run: the page works again.
    at.selectbox(key="w_run_picker").set_value(str(broken_runs["c-good"])).run()
    assert not at.exception and not at.error
    assert any('class="vae-sentence"' in m.value for m in at.markdown)
    assert not (tmp_path / "pwned").exists()


def test_compare_page_with_broken_runs_still_shows_the_good_ones(open_app, broken_runs, tmp_path):
    at = open_app("app_pages/compare.py", session={"compare_runs": [TINY_RUN, "a-truncated", "b-pickled", "c-good"]})
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value.replace("\\", "") for e in at.error]
    assert sum("Cannot use this run" in e for e in errors) == 2, errors
    blocks = [m.value for m in at.markdown if 'class="vae-sentence"' in m.value]
    assert len(blocks) == 2, "the two good runs still show their reconstruction"
    assert not (tmp_path / "pwned").exists()


# --------------------------------------------------------------------------- no unpickling anywhere

_UNPICKLING = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "cPickle.load", "cPickle.loads", "_pickle.load",
    "_pickle.loads", "dill.load", "dill.loads", "cloudpickle.load", "cloudpickle.loads", "joblib.load",
    "pd.read_pickle", "pandas.read_pickle", "shelve.open", "marshal.load", "marshal.loads", "jsonpickle.decode",
}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _kw_is(call: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


def unpickling_calls(source: str, filename: str = "<src>") -> list[str]:
    """Calls that can unpickle: pickle/dill/joblib loads, torch.load without weights_only=True, np.load with
    allow_pickle=True, and `from pickle import load`-style imports."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.module in ("pickle", "_pickle", "cPickle", "dill", "joblib"):
            found += [f"{filename}:{node.lineno} from {node.module} import {a.name}" for a in node.names
                      if a.name in ("load", "loads", "Unpickler", "*")]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        bad = name in _UNPICKLING
        bad |= name in ("torch.load", "torch.serialization.load") and not _kw_is(node, "weights_only", True)
        bad |= name in ("np.load", "numpy.load") and _kw_is(node, "allow_pickle", True)
        if bad:
            found.append(f"{filename}:{node.lineno} {name}(...)")
    return found


def test_the_scanner_finds_what_it_should():
    src = ("import pickle, torch, numpy as np\nfrom pickle import loads\npickle.load(f)\ntorch.load(p)\n"
           "torch.load(p, weights_only=False)\nnp.load(p, allow_pickle=True)\n"
           "torch.load(p, weights_only=True)\nnp.load(p)\nnp.load(p, allow_pickle=False)\n")
    assert [f.split(" ", 1)[1] for f in unpickling_calls(src)] == [
        "from pickle import loads", "pickle.load(...)", "torch.load(...)", "torch.load(...)", "np.load(...)"]


def _project_python_files() -> list[Path]:
    """Every .py file of the project (not the tests, not virtual environments or run folders)."""
    skip = {"tests", "node_modules", "runs", "__pycache__"}
    out = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".") and d != "venv"]
        out += [Path(root) / f for f in files if f.endswith(".py")]
    return out


def test_nothing_in_the_project_unpickles():
    files = _project_python_files()
    assert any(p.name == "runs.py" for p in files) and len(files) > 20
    found = []
    for p in files:
        found += unpickling_calls(p.read_text(encoding="utf-8"), str(p.relative_to(REPO)))
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------- a checkpoint is one atomic unit


def _resumable(run: Path, **train_kw) -> None:
    """Let a run trained with max_steps go on to the end of its epochs when resumed."""
    import json

    cfg = json.loads((run / "config.json").read_text())
    cfg["train"].update(max_steps=0, **train_kw)
    (run / "config.json").write_text(json.dumps(cfg))


def _train_steps(run: Path) -> list[int]:
    return [r["step"] for r in read_metrics(run) if r["kind"] == "train"]


def _manifest_step(d: Path) -> int:
    import json

    return json.loads((d / "manifest.json").read_text())["step"]


def test_kill_between_checkpoint_parts_keeps_the_previous_checkpoint_and_resume_never_repeats_a_step(
        tmp_path, monkeypatch):
    from vae_core import checkpoint

    run = tmp_path / "run"
    real, calls = checkpoint._write_part, {"n": 0}

    def dies_after_the_first_part(directory, name, data):
        calls["n"] += 1
        if calls["n"] == len(checkpoint.PARTS) + 2:  # the second checkpoint: its weights land, then the "kill"
            raise OSError(28, "No space left on device")
        real(directory, name, data)

    monkeypatch.setattr(checkpoint, "_write_part", dies_after_the_first_part)
    with pytest.raises(OSError, match="No space"):
        train(run, toy_corpus(4), tiny_model_config(), tiny_train_config(epochs=3, eval_every=3))
    monkeypatch.setattr(checkpoint, "_write_part", real)
    assert read_status(run).state == "failed"
    assert _manifest_step(run / "checkpoint") == 3 and not (run / "checkpoint.prev").exists()
    assert not list(run.glob(".checkpoint-tmp-*")), "the half-written checkpoint was not cleaned"
    assert max(_train_steps(run)) == 6  # logged past the checkpoint that survived
    summary = train(run, toy_corpus(4), resume=True)
    assert summary["state"] == "finished" and summary["step"] == 24
    steps = _train_steps(run)
    assert steps == sorted(set(steps)) == list(range(1, 25)), "a step repeats (or is missing) across the resume"


def test_a_kill_between_the_two_renames_resumes_from_the_previous_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(run, toy_corpus(4), tiny_model_config(), tiny_train_config(epochs=2, eval_every=4))
    assert _manifest_step(run / "checkpoint.prev") == 12 and _manifest_step(run / "checkpoint") == 16
    # killed inside a swap: the old .prev removed, checkpoint/ renamed to .prev, the new one still a tmp dir
    shutil.rmtree(run / "checkpoint.prev")
    (run / "checkpoint").rename(run / "checkpoint.prev")
    shutil.copytree(run / "checkpoint.prev", run / ".checkpoint-tmp-999-20")
    _resumable(run, epochs=3)
    summary = train(run, toy_corpus(4), resume=True)
    assert summary["step"] == 24 and _manifest_step(run / "checkpoint") == 24
    assert _train_steps(run) == list(range(1, 25)) and not list(run.glob(".checkpoint-tmp-*"))


@pytest.mark.parametrize("damage", ["flip_weights", "drop_optimizer", "mixed_step", "no_manifest"])
def test_a_damaged_checkpoint_is_never_used_resume_falls_back_or_refuses(tmp_path, damage):
    import json

    run = tmp_path / "run"
    train(run, toy_corpus(4), tiny_model_config(), tiny_train_config(epochs=2, eval_every=4))
    cur = run / "checkpoint"
    if damage == "flip_weights":
        data = bytearray((cur / "weights.safetensors").read_bytes())
        data[-3] ^= 0xFF  # same size, one weight changed
        (cur / "weights.safetensors").write_bytes(bytes(data))
    elif damage == "drop_optimizer":
        (cur / "optimizer.safetensors").unlink()
    elif damage == "mixed_step":  # trainer state of the previous checkpoint beside this one's weights, hash updated
        import hashlib

        data = (run / "checkpoint.prev" / "trainer.json").read_bytes()
        (cur / "trainer.json").write_bytes(data)
        manifest = json.loads((cur / "manifest.json").read_text())
        manifest["parts"]["trainer.json"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        (cur / "manifest.json").write_text(json.dumps(manifest))
    else:
        (cur / "manifest.json").unlink()
    from vae_core import checkpoint

    with pytest.raises(RunError):
        checkpoint._read(cur)
    assert checkpoint.load_latest(run).step == 12  # checkpoint.prev
    _resumable(run, epochs=3)
    summary = train(run, toy_corpus(4), resume=True)
    assert summary["state"] == "finished" and summary["step"] == 24
    assert _train_steps(run) == list(range(1, 25))
    assert (run / "checkpoint.damaged").is_dir(), "the refused checkpoint is kept aside, not rotated into .prev"
    assert _manifest_step(run / "checkpoint") == 24 and checkpoint.load_latest(run).step == 24
    assert checkpoint._read(run / "checkpoint.prev").step in (12, 16, 20)  # complete, not the damaged one
    # with both damaged, resume refuses with a message and trains nothing
    for d in (run / "checkpoint", run / "checkpoint.prev"):
        (d / "manifest.json").unlink()
    before = (run / "model.safetensors").read_bytes()
    with pytest.raises(RunError, match="no complete checkpoint"):
        train(run, toy_corpus(4), resume=True)
    assert (run / "model.safetensors").read_bytes() == before


def test_fallback_is_said_in_the_status_while_running(tmp_path):
    run = tmp_path / "run"
    train(run, toy_corpus(4), tiny_model_config(), tiny_train_config(epochs=2, eval_every=4))
    (run / "checkpoint" / "rng.safetensors").write_bytes(b"garbage")
    _resumable(run, epochs=3)
    seen = []
    train(run, toy_corpus(4), resume=True, callbacks=None,
          should_stop=lambda: seen.append(read_status(run).message) or False)
    assert "resumed from checkpoint.prev/ (step 12)" in seen[0] and "rng.safetensors" in seen[0]
    assert "checkpoint.damaged/" in seen[0]


def test_leftover_temporary_checkpoints_are_cleaned_and_ignored(tmp_path):
    run = tmp_path / "run"
    train(run, toy_corpus(4), tiny_model_config(), tiny_train_config(epochs=1, max_steps=5))
    junk = run / ".checkpoint-tmp-4242-99"
    junk.mkdir()
    (junk / "weights.safetensors").write_bytes(b"half")
    _resumable(run)
    summary = train(run, toy_corpus(4), resume=True)
    assert summary["step"] == 8 and not junk.exists()


def test_resume_continues_exactly_as_the_uninterrupted_run(tmp_path):
    """Same batches, same noise (the generator state is in the checkpoint), same optimizer moments."""
    from safetensors.torch import load_file

    cfg = tiny_train_config(epochs=2, tc_weight=0.0)
    train(tmp_path / "full", toy_corpus(4), tiny_model_config(), cfg)
    train(tmp_path / "part", toy_corpus(4), tiny_model_config(), dataclasses.replace(cfg, max_steps=5))
    _resumable(tmp_path / "part")
    train(tmp_path / "part", toy_corpus(4), resume=True)
    a, b = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("full", "part"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_old_layout_runs_still_resume(tmp_path):
    """A run written before checkpoint/ existed (model + optimizer safetensors + trainer.json) resumes."""
    import json

    from safetensors.torch import save_file

    from vae_core import checkpoint

    run = tmp_path / "old"
    train(run, toy_corpus(4), tiny_model_config(), tiny_train_config(epochs=1, max_steps=5))
    ck = checkpoint.load_latest(run)
    checkpoint.remove_all(run)  # what an old run holds instead:
    save_file({k: v.contiguous() for k, v in ck.optimizer.items()}, str(run / "optimizer.safetensors"))
    (run / "trainer.json").write_text(json.dumps({"step": 5, "epoch": 0, "batch_in_epoch": 5, "best_elbo": None,
                                                  "elapsed": 1.0}))
    old = checkpoint.load_latest(run)
    assert old.step == 5 and old.rng is None and set(old.optimizer) == set(ck.optimizer)
    _resumable(run)
    summary = train(run, toy_corpus(4), resume=True)
    assert summary["step"] == 8 and _train_steps(run) == list(range(1, 9))
    assert _manifest_step(run / "checkpoint") == 8 and not (run / "trainer.json").exists()


def test_divergence_before_any_checkpoint_says_so_and_trainer_state_is_json(tmp_path, monkeypatch):
    import json

    from vae_core import train as train_mod

    real = train_mod.beta_vae_loss

    def nan_loss(*a, **k):
        parts = real(*a, **k)
        parts.total = parts.total * float("nan")
        return parts

    monkeypatch.setattr(train_mod, "beta_vae_loss", nan_loss)
    summary = train(tmp_path / "r", toy_corpus(4), tiny_model_config(), tiny_train_config())
    msg = read_status(tmp_path / "r").message
    assert summary["state"] == "failed" and "no checkpoint had been written yet" in msg and "kept" not in msg
    monkeypatch.setattr(train_mod, "beta_vae_loss", real)
    # a best ELBO of -inf (or NaN) is written as null: the trainer state stays JSON
    monkeypatch.setattr(train_mod, "evaluate_elbo", lambda *a, **k: {"elbo": float("-inf"), "recon": 1.0})
    train(tmp_path / "s", toy_corpus(4), tiny_model_config(), tiny_train_config(epochs=1))
    text = (tmp_path / "s" / "checkpoint" / "trainer.json").read_text()
    assert "Infinity" not in text and "NaN" not in text and json.loads(text)["best_elbo"] is None
