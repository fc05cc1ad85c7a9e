"""Adding an option touches its declaration and its use, nothing else: one option, end to end.

`fourier_features` is declared once (vae_core.config). Every surface below is derived from that one
declaration — the train CLI flag, the sweep flag, the Train page's widget (shown only with the additive
decoder) — and a value set on each reaches config.json and the model built from it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ui.settings import help_text
from vae_core.cli import build_parser
from vae_core.cli_flags import configs_from_args
from vae_core.cli_sweep import configs_from_args as sweep_configs
from vae_core.cli_sweep import space_from_args
from vae_core.config import training_settings
from vae_core.runs import load_run, read_status

OPTION = "fourier_features"
PAGE = "app_pages/train.py"


def _flag_action(command: str, dest: str):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    return next(a for a in sub._actions if a.dest == dest)


def test_cli_and_sweep_flags_come_from_the_declaration():
    s = training_settings()[OPTION]
    assert (s.lo, s.hi, s.when) == (0, 64, ("decoder", ("additive",)))
    train_flag = _flag_action("train", OPTION)
    assert train_flag.option_strings == [s.cli_flag] == ["--fourier-features"]
    assert train_flag.default == s.default and train_flag.help.startswith(s.help.replace("%", "%%"))
    assert "[0 … 64]" in train_flag.help
    m, _ = configs_from_args(build_parser().parse_args(["train", "--out", "x", "--decoder", "additive",
                                                        "--fourier-features", "5"]))
    assert m.fourier_features == 5
    sweep_flag = _flag_action("sweep", OPTION)
    assert sweep_flag.option_strings == [s.cli_flag] and sweep_flag.help.startswith(s.help.replace("%", "%%"))
    a = build_parser().parse_args(["sweep", "--name", "s", "--decoder", "additive", "--fourier-features", "2,5"])
    assert space_from_args(a).grid() == {OPTION: [2, 5]}
    assert sweep_configs(a)[0].decoder == "additive"


def _wait(run: Path, timeout: float = 120.0) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = read_status(run).state
        if state in ("finished", "failed", "killed"):
            return state
        time.sleep(0.5)
    raise AssertionError(f"{run.name} did not finish: {read_status(run)}")


@pytest.mark.slow
def test_page_widget_to_config_json_to_model(open_app, tiny_models_dir, tmp_path):
    import os

    s = training_settings()[OPTION]
    runs = Path(os.environ["VAE_RUNS_DIR"])
    at = open_app(PAGE)
    key = "train_" + OPTION
    assert key not in {n.key for n in at.number_input}  # the RNN decoder: not shown
    at.selectbox(key="train_decoder").set_value("additive").run()
    box = at.number_input(key=key)
    assert (box.label, box.help, box.value) == (s.label, help_text(s), s.suggested)
    assert "Between 0 and 64" in box.help
    box.set_value(65).run()  # issue 20.3: an invalid number must refuse the start, not keep the previous value
    assert any("must be between 0 and 64, got 65" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="train_start").disabled
    for k, v in {"train_embed_dim": 8, "train_hidden_dim": 16, "train_latent_dim": 4, "train_batch_size": 32,
                 "train_max_steps": 3, "train_log_every": 1, key: 5}.items():
        at.number_input(key=k).set_value(v)
    at.text_input(key="train_run_name").set_value("fourier-e2e")
    at.run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="train_start").click().run()
    run = runs / "fourier-e2e"
    launched = json.loads((run / "train_config.json").read_text())  # the run's configuration, not argv flags
    assert launched["model"][OPTION] == 5 and launched["model"]["decoder"] == "additive"
    assert "--fourier-features" not in read_status(run).args
    assert _wait(run) == "finished", (run / "train.log").read_text()
    assert json.loads((run / "config.json").read_text())["model"][OPTION] == 5
    model = load_run(run).model
    assert model.decoder.omega.shape == (5,)  # the decoder built from it has K = 5 Fourier frequencies
