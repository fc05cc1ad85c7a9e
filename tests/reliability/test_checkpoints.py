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
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from tests.app.conftest import REPO, TINY_RUN
from tests.core.helpers import tiny_model_config, tiny_train_config, toy_corpus
from vae_core import jobs
from vae_core.runs import RunError, load_run, read_metrics, read_status
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
    for name in ("model.safetensors", "optimizer.safetensors"):
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
    assert read_status(run_copy) == {}  # unreadable status: no state, no crash
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
