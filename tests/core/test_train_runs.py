import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.core.helpers import tiny_model_config, tiny_train_config, toy_corpus
from vae_core.runs import (
    FORMAT_VERSION,
    RunError,
    effective_state,
    load_run,
    read_metrics,
    read_status,
)
from vae_core.train import Callbacks, evaluate_elbo, train


def _train(tmp_path, name="run", **tkw):
    return train(tmp_path / name, toy_corpus(4), tiny_model_config(), tiny_train_config(**tkw))


def test_run_directory_contract(tmp_path):
    steps, evals = [], []
    summary = train(tmp_path / "r", toy_corpus(4), tiny_model_config(), tiny_train_config(),
                    callbacks=Callbacks(steps.append, evals.append))
    d = tmp_path / "r"
    for f in ("config.json", "vocab.json", "model.safetensors", "best.safetensors", "metrics.jsonl",
              "summary.json", "status.json", "checkpoint/weights.safetensors", "checkpoint/optimizer.safetensors",
              "checkpoint/rng.safetensors", "checkpoint/trainer.json", "checkpoint/manifest.json"):
        assert (d / f).is_file(), f
    assert not (d / "trainer.json").exists() and not (d / "optimizer.safetensors").exists()  # one unit only
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["format_version"] == FORMAT_VERSION and cfg["corpus"]["spec"] == "toy"
    assert cfg["versions"]["torch"] == torch.__version__
    assert read_status(d).state == "finished" and summary["state"] == "finished"
    assert summary["step"] == 2 * 8  # 24 sentences / batch 3 × 2 epochs
    recs = read_metrics(d)
    assert [r["step"] for r in recs if r["kind"] == "train"] == [r["step"] for r in steps]
    assert len(evals) == 2 and all("kl_per_dim" in e for e in evals)
    assert {"loss", "recon", "kl", "weight", "weighted_kl", "kl_per_dim", "tokens_per_s", "eta_s"} <= set(steps[0])


def test_round_trip_every_tensor_equal(tmp_path):
    _train(tmp_path)
    run = load_run(tmp_path / "run")
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    assert not run.model.training
    assert run.model_config.vocab_size == len(run.vocab)


def test_same_seed_same_weights_and_different_seed_differs(tmp_path):
    _train(tmp_path, "a", seed=3)
    _train(tmp_path, "b", seed=3)
    _train(tmp_path, "c", seed=4)
    a, b, c = (load_file(str(tmp_path / n / "model.safetensors")) for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_train_step_changes_weights_eval_does_not(tmp_path):
    _train(tmp_path, max_steps=1, epochs=1)
    run = load_run(tmp_path / "run")
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    from vae_core.corpus import encode_sentences

    ids, _ = encode_sentences(toy_corpus().train.sentences, run.vocab, 50)
    evaluate_elbo(run.model, ids)
    assert all(torch.equal(before[k], v) for k, v in run.model.state_dict().items())
    # one more step of training does change them
    from vae_core.train import train as train_again

    train_again(tmp_path / "run2", toy_corpus(4), tiny_model_config(), tiny_train_config(max_steps=2, epochs=1))
    w1 = load_file(str(tmp_path / "run" / "model.safetensors"))
    w2 = load_file(str(tmp_path / "run2" / "model.safetensors"))
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)


def test_resume_continues_step_count_and_matches_uninterrupted(tmp_path):
    full = _train(tmp_path, "full", epochs=2)
    part = _train(tmp_path, "part", epochs=2, max_steps=5)
    assert part["step"] == 5
    # resuming needs a config that allows more steps: rewrite max_steps in the saved config
    cfgp = tmp_path / "part" / "config.json"
    cfg = json.loads(cfgp.read_text())
    cfg["train"]["max_steps"] = 0
    cfgp.write_text(json.dumps(cfg))
    resumed = train(tmp_path / "part", toy_corpus(4), resume=True)
    assert resumed["step"] == full["step"]
    steps = [r["step"] for r in read_metrics(tmp_path / "part") if r["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == full["step"]


def test_nan_guard_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from vae_core import train as train_mod

    real = train_mod.beta_vae_loss
    calls = {"n": 0}

    def poisoned(*a, **k):
        parts = real(*a, **k)
        calls["n"] += 1
        if calls["n"] > 8:  # after the first epoch's checkpoint
            parts.total = parts.total * float("nan")
        return parts

    monkeypatch.setattr(train_mod, "beta_vae_loss", poisoned)
    summary = _train(tmp_path)
    assert summary["state"] == "failed"
    st = read_status(tmp_path / "run")
    assert st.state == "failed" and "nan" in st.message.lower()
    run = load_run(tmp_path / "run")  # the last good checkpoint loads
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


def test_stop_flag_stops_and_saves(tmp_path):
    n = {"i": 0}

    def should_stop():
        n["i"] += 1
        return n["i"] > 3

    s = train(tmp_path / "r", toy_corpus(4), tiny_model_config(), tiny_train_config(), should_stop=should_stop)
    assert s["state"] == "stopped" and s["step"] == 3
    assert read_status(tmp_path / "r").state == "stopped"
    load_run(tmp_path / "r")


def test_refuses_to_overwrite_existing_run(tmp_path):
    _train(tmp_path)
    with pytest.raises(RunError, match="already exists"):
        _train(tmp_path)


# ---------------------------------------------------------------------------- bad run directories


@pytest.fixture
def good_run(tmp_path):
    _train(tmp_path)
    return tmp_path / "run"


def test_missing_files_refused(good_run):
    (good_run / "vocab.json").unlink()
    with pytest.raises(RunError, match="missing vocab.json"):
        load_run(good_run)


def test_other_format_version_refused(good_run):
    p = good_run / "config.json"
    cfg = json.loads(p.read_text())
    cfg["format_version"] = 99
    p.write_text(json.dumps(cfg))
    with pytest.raises(RunError, match="format version 99"):
        load_run(good_run)


def test_absurd_sizes_refused_before_allocation(good_run):
    p = good_run / "config.json"
    cfg = json.loads(p.read_text())
    cfg["model"]["latent_dim"] = 10**9
    p.write_text(json.dumps(cfg))
    with pytest.raises(RunError, match="latent_dim"):
        load_run(good_run)
    cfg["model"]["latent_dim"] = 4
    cfg["model"]["hidden_dim"] = 8000
    cfg["model"]["vocab_size"] = 400_000
    p.write_text(json.dumps(cfg))
    with pytest.raises(RunError):
        load_run(good_run)


def test_weights_not_matching_config_refused(good_run):
    p = good_run / "config.json"
    cfg = json.loads(p.read_text())
    cfg["model"]["hidden_dim"] = 17
    p.write_text(json.dumps(cfg))
    with pytest.raises(RunError, match="shape"):
        load_run(good_run)


def test_extra_or_missing_tensors_refused(good_run):
    w = load_file(str(good_run / "model.safetensors"))
    w.pop("out.bias")
    save_file(w, str(good_run / "model.safetensors"))
    with pytest.raises(RunError, match="missing out.bias"):
        load_run(good_run)


@pytest.mark.parametrize("cut", [10, 500])
def test_truncated_or_corrupted_safetensors_refused(good_run, cut):
    p = good_run / "model.safetensors"
    data = p.read_bytes()
    p.write_bytes(data[:cut])
    with pytest.raises(RunError, match="corrupted|truncated|cannot read"):
        load_run(good_run)


def test_garbage_config_json_refused(good_run):
    (good_run / "config.json").write_text("{ nope")
    with pytest.raises(RunError, match="not valid JSON"):
        load_run(good_run)


def test_half_written_metrics_line_is_skipped(good_run):
    n = len(read_metrics(good_run))
    with open(good_run / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "step": 99, "lo')
    assert len(read_metrics(good_run)) == n


def _checkpoint_step(run) -> int:
    try:
        return json.loads((run / "checkpoint" / "manifest.json").read_text())["step"]
    except (OSError, ValueError):  # between the two renames of a checkpoint swap
        return json.loads((run / "checkpoint.prev" / "manifest.json").read_text())["step"]


@pytest.mark.slow
def test_sigkill_mid_training_leaves_a_loadable_resumable_run(tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "vae_core", "train", "--corpus", "synthetic", "--out", str(out), "--quiet",
           "--embed-dim", "8", "--hidden-dim", "16", "--latent-dim", "4", "--epochs", "3", "--batch-size", "64",
           "--eval-every", "20", "--log-every", "5"]
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if (out / "checkpoint" / "manifest.json").is_file() and _checkpoint_step(out) >= 20:
                break
            time.sleep(0.2)
        else:
            pytest.fail("training did not write a checkpoint in time")
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert effective_state(out) == "killed"
    load_run(out)
    step_before = _checkpoint_step(out)
    cfg = json.loads((out / "config.json").read_text())
    cfg["train"]["max_steps"] = step_before + 10
    (out / "config.json").write_text(json.dumps(cfg))
    r = subprocess.run([sys.executable, "-m", "vae_core", "train", "--out", str(out), "--resume", "--quiet"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert read_status(out).state == "finished"
    assert _checkpoint_step(out) == step_before + 10
    steps = [r["step"] for r in read_metrics(out) if r["kind"] == "train"]
    assert steps == sorted(set(steps)), "a step was logged twice across the kill and the resume"
