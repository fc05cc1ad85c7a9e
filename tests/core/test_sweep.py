"""vae_core.sweep: the search space, a 2-trial grid sweep, and two workers sharing one SQLite study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from vae_core.cli import main as cli_main
from vae_core.config import ModelConfig, TrainConfig
from vae_core.runs import load_run, read_json
from vae_core.sweep import SweepError, SweepSpace, check_study_name, default_storage, run_sweep, sweep_status

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4)
TINY_TRAIN = TrainConfig(max_steps=20, batch_size=32, log_every=5, warmup_steps=10)
TINY_FLAGS = ["--embed-dim", "8", "--hidden-dim", "16", "--latent-dim", "4", "--max-steps", "10", "--batch-size", "32",
              "--log-every", "5", "--quiet"]


def test_space_grid_and_validation():
    space = SweepSpace(beta_values=(0.5, 2.0), latent_dims=(4, 8), schedules=("linear", "constant"))
    assert space.grid() == {"beta": [0.5, 2.0], "latent_dim": [4, 8], "schedule": ["linear", "constant"]}
    assert space.n_cells() == 8
    with pytest.raises(SweepError, match="needs β values"):
        SweepSpace(beta_range=(0.1, 8.0)).grid()
    with pytest.raises(SweepError, match="varies nothing"):
        SweepSpace().grid()
    for bad in ({"beta_values": (-1.0,)}, {"beta_range": (0.0, 4.0)}, {"schedules": ("warp",)},
                {"latent_dims": (0,)}, {"beta_values": (1.0,), "beta_range": (0.1, 2.0)}):
        with pytest.raises(SweepError):
            SweepSpace(**bad)
    for bad in ("", "../x", "a/b", ".x", "x" * 65):
        with pytest.raises(SweepError):
            check_study_name(bad)


def test_sweep_cli_parses_ranges_and_rejects_garbage(capsys):
    from vae_core.cli import build_parser
    from vae_core.cli_sweep import configs_from_args, space_from_args

    a = build_parser().parse_args(["sweep", "--name", "s", "--beta-range", "0.1:8", "log", "--latent-dim", "8,16",
                                   "--schedule", "cyclical", "--free-bits", "0.5"])
    space = space_from_args(a)
    assert space.beta_range == (0.1, 8.0) and space.beta_log and space.latent_dims == (8, 16)
    assert space.schedules == () and space.free_bits == ()  # one value = fixed, not swept
    mcfg, tcfg = configs_from_args(a)
    assert tcfg.schedule == "cyclical" and tcfg.free_bits == 0.5
    assert cli_main(["sweep", "--name", "s", "--beta", "one,two"]) == 2
    assert "comma-separated numbers" in capsys.readouterr().err


@pytest.mark.slow
def test_two_trial_grid_sweep(tmp_path, capsys):
    study = run_sweep("grid2", None, SweepSpace(beta_values=(0.5, 2.0)), "grid", None, TINY_MODEL, TINY_TRAIN,
                      "synthetic", tmp_path, objectives=("nll", "mig"), seed=0)
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert sorted(t.params["beta"] for t in trials) == [0.5, 2.0]
    for t in trials:
        run_dir = Path(t.user_attrs["run_dir"])
        assert run_dir.parent == tmp_path.resolve() and run_dir.name == f"grid2-trial{t.number}"
        assert load_run(run_dir).train_config.beta == t.params["beta"] == t.user_attrs["beta"]
        nll, mig = t.values
        assert nll == pytest.approx(t.user_attrs["recon"] + t.user_attrs["kl"]) and nll > 0
        assert 0.0 <= mig <= 1.0
        assert read_json(run_dir / "summary.json")["sweep"]["study"] == "grid2"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["grid2-trial0", "grid2-trial1"]
    status = sweep_status("grid2", default_storage(tmp_path))
    assert status["done"] == 2 and status["target_trials"] == 2 and status["counts"] == {"COMPLETE": 2}
    assert status["directions"] == ["minimize", "maximize"]
    # Running the finished study again trains nothing new.
    run_sweep("grid2", None, SweepSpace(beta_values=(0.5, 2.0)), "grid", None, TINY_MODEL, TINY_TRAIN,
              "synthetic", tmp_path, objectives=("nll", "mig"))
    assert len(sweep_status("grid2", default_storage(tmp_path))["trials"]) == 2
    assert cli_main(["sweep-status", "--name", "grid2", "--out-root", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [t["state"] for t in printed["trials"]] == ["COMPLETE", "COMPLETE"]


@pytest.mark.slow
def test_two_workers_share_one_grid_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    cmd = [sys.executable, "-m", "vae_core", "sweep", "--name", "shared", "--storage", storage, "--sampler", "grid",
           "--beta", "0.25,0.5,1,2", "--out-root", str(tmp_path / "runs"), *TINY_FLAGS]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for _ in range(2)]
    outs = []
    for w in workers:
        out, _ = w.communicate(timeout=300)
        outs.append(out.decode())
        assert w.returncode == 0, outs[-1]
    status = sweep_status("shared", storage)
    trials = [t for t in status["trials"] if t["state"] == "COMPLETE"]
    assert len(trials) == 4, status["counts"]
    assert sorted(t["params"]["beta"] for t in trials) == [0.25, 0.5, 1.0, 2.0], "a grid cell was trained twice"
    run_dirs = sorted(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert run_dirs == [f"shared-trial{i}" for i in range(4)]
    assert len({t["user_attrs"]["run_dir"] for t in trials}) == 4
