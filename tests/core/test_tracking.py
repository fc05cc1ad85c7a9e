"""Experiment tracking: a run's metrics.jsonl mirrored to TensorBoard event files, read back by TensorBoard."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.core.helpers import tiny_model_config, tiny_train_config, toy_corpus
from vae_core.config import ModelConfig, TrainConfig, training_settings
from vae_core.tracking import LOG_FOLDER, TensorBoardTracker, TrackingUnavailable, scalars_of
from vae_core.train import train


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _read_events(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard itself reads from the event files: {tag: [(step, value), ...]}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _assert_events_equal_metrics(run: Path) -> dict[str, list[tuple[int, float]]]:
    events = _read_events(run / LOG_FOLDER)
    expected: dict[str, list[tuple[int, float]]] = {}
    for rec in _records(run):
        for tag, value in scalars_of(rec).items():
            expected.setdefault(tag, []).append((rec["step"], value))
    assert set(events) == set(expected)
    for tag, points in expected.items():
        got = events[tag]
        assert [s for s, _ in got] == [s for s, _ in points], tag
        for (_, a), (_, b) in zip(got, points, strict=True):
            assert a == pytest.approx(b, rel=1e-6, abs=1e-6), tag  # event files hold float32
    return events


def test_scalars_of_a_record():
    rec = {"kind": "valid", "step": 7, "time": 1.5, "elbo": -3.0, "kl_per_dim": [0.5, 0.25], "amp": "off",
           "tc": None, "flag": True, "bad": float("nan")}
    assert scalars_of(rec) == {"valid/elbo": -3.0, "valid/kl_per_dim/00": 0.5, "valid/kl_per_dim/01": 0.25}


def test_setting_is_declared_off_by_default():
    s = training_settings()["tracking"]
    assert s.default == "off" and s.choices == ("off", "tensorboard") and s.cli_flag == "--tracking"


def test_run_logs_the_same_scalars_as_metrics_jsonl(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    train(run, toy_corpus(4), tiny_model_config(), tiny_train_config(tracking="tensorboard", epochs=3))
    events = _assert_events_equal_metrics(run)
    n_train = sum(r["kind"] == "train" for r in _records(run))
    n_valid = sum(r["kind"] == "valid" for r in _records(run))
    assert n_train > 3 and n_valid == 3
    assert len(events["train/loss"]) == n_train and len(events["valid/elbo"]) == n_valid
    assert {f"train/kl_per_dim/{d:02d}" for d in range(4)} <= set(events)


def test_tracking_off_writes_no_event_files(tmp_path):
    train(tmp_path / "run", toy_corpus(), tiny_model_config(), tiny_train_config(epochs=1))
    assert not (tmp_path / "run" / LOG_FOLDER).exists()


def test_missing_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(TrackingUnavailable, match="pip install tensorboard"):
        TensorBoardTracker(tmp_path / "tb")
    with pytest.raises(TrackingUnavailable, match="tracking='off'"):
        train(tmp_path / "run", toy_corpus(), tiny_model_config(), tiny_train_config(tracking="tensorboard"))


@pytest.mark.slow
def test_each_sweep_trial_logs_under_the_sweep_folder(tmp_path):
    pytest.importorskip("tensorboard")
    from vae_core.sweep import SweepSpace, run_sweep

    study = run_sweep("tb2", None, SweepSpace(beta_values=(0.5, 2.0)), "grid", None,
                      ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4),
                      TrainConfig(max_steps=10, batch_size=32, log_every=5, warmup_steps=10, tracking="tensorboard"),
                      "synthetic", tmp_path, objectives=("nll",), seed=0)
    runs = [Path(t.user_attrs["run_dir"]) for t in study.get_trials()]
    assert len(runs) == 2
    for run in runs:
        assert run.parent == tmp_path.resolve() and (run / LOG_FOLDER).is_dir()
        assert "train/loss" in _assert_events_equal_metrics(run)
