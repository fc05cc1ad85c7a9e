"""One definition per setting: validation, the train CLI, the sweep CLI and --config all come from vae_core.config."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from vae_core.cli import build_parser, corpus_from_args
from vae_core.cli_flags import configs_from_args
from vae_core.cli_sweep import configs_from_args as sweep_configs
from vae_core.cli_sweep import parse_search, space_from_args
from vae_core.config import (
    DecodeConfig,
    ModelConfig,
    TrainConfig,
    check_value,
    declared,
    from_dict,
    parse_value,
    training_settings,
)
from vae_core.sweep import SweepError, SweepSpace

REPO = Path(__file__).resolve().parents[2]


def _train(*flags: str):
    return build_parser().parse_args(["train", "--out", "x", *flags])


def _subparser(name: str):
    return build_parser()._subparsers._group_actions[0].choices[name]


def _sweep(*flags: str):
    return build_parser().parse_args(["sweep", "--name", "s", *flags])


def test_every_field_is_declared_with_a_valid_default():
    for cls in (ModelConfig, TrainConfig, DecodeConfig):
        for s in declared(cls):
            assert s.help and s.owner and s.kind in ("bool", "int", "float", "choice"), s
            check_value(s, s.default)  # the default passes its own check
            if s.kind in ("int", "float"):
                assert s.lo is not None and s.hi is not None and s.lo <= s.default <= s.hi, s.name
            if s.kind == "choice":
                assert s.default in s.choices


@pytest.mark.parametrize("cls,kw", [
    (TrainConfig, {"lowercase": "no"}),  # a string is not a bool (issue 19.10: "no" was read as true)
    (TrainConfig, {"lowercase": 1}),
    (ModelConfig, {"bidirectional": "false"}),
    (ModelConfig, {"z_to_inputs": 0}),
    (TrainConfig, {"epochs": 2.0}),  # ints are not floats ...
    (TrainConfig, {"batch_size": True}),  # ... nor bools
    (TrainConfig, {"beta": True}),
    (TrainConfig, {"beta": float("nan")}),
    (TrainConfig, {"lr": "0.001"}),
    (ModelConfig, {"decoder": "transformer"}),
    (TrainConfig, {"optimizer": "lion"}),
    (ModelConfig, {"fourier_features": 65}),
])
def test_config_files_are_type_checked(cls, kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        from_dict(cls, kw)


def test_cross_field_rule_stays_explicit():
    with pytest.raises(ValueError, match="additive decoder only"):
        ModelConfig(fourier_features=4)
    assert ModelConfig(decoder="additive", fourier_features=4).fourier_features == 4


def test_train_cli_has_one_flag_per_setting_with_the_declared_default_and_help():
    actions = {a.dest: a for a in _subparser("train")._actions}
    assert actions["beta"].help.startswith(training_settings()["beta"].help)
    for s in training_settings().values():
        assert s.name in actions, f"no train flag for {s.name}"
        assert s.cli_flag in actions[s.name].option_strings
        assert actions[s.name].default == s.default
    assert not any(s.internal for s in training_settings().values())
    assert "vocab_size" not in actions and "max_positions" not in actions  # set from the corpus, never typed


def test_existing_flags_keep_working():
    m, t = configs_from_args(_train("--rnn", "lstm", "--unidirectional", "--no-z-inputs", "--lowercase",
                                    "--decoder", "additive", "--fourier-features", "8", "--tc-bank", "256",
                                    "--beta", "0.6", "--epochs", "3"))
    assert (m.rnn_type, m.bidirectional, m.z_to_inputs, m.decoder, m.fourier_features) == ("lstm", False, False,
                                                                                           "additive", 8)
    assert (t.lowercase, t.tc_bank, t.beta, t.epochs) == (True, 256, 0.6, 3)
    assert configs_from_args(_train()) == (ModelConfig(), TrainConfig())
    with pytest.raises(SystemExit):
        _train("--epochs", "2.5")
    with pytest.raises(SystemExit):
        _train("--rnn", "transformer")
    with pytest.raises(ValueError, match="fourier_features must be between 0 and 64"):
        configs_from_args(_train("--decoder", "additive", "--fourier-features", "65"))


def test_config_file_reproduces_a_run_and_flags_override_it(tmp_path):
    from vae_core.runs import make_config

    m = ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4, decoder="additive", fourier_features=3,
                    vocab_size=60, max_positions=51)  # sizes set from the corpus: reset, then set again by train
    t = TrainConfig(beta=0.6, tc_weight=2.0, tc_bank=64, lowercase=True, max_steps=7)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(make_config(m, t, "synthetic", "synthetic")))
    a = _train("--config", str(path))
    assert configs_from_args(a) == (dataclasses.replace(m, vocab_size=0, max_positions=0), t)
    assert corpus_from_args(a) == ("synthetic", None)
    m2, t2 = configs_from_args(_train("--config", str(path), "--beta", "2", "--latent-dim", "6"))
    assert (t2.beta, m2.latent_dim, m2.fourier_features, t2.tc_bank) == (2.0, 6, 3, 64)
    assert corpus_from_args(_train("--config", str(path), "--corpus", "other.txt"))[0] == "other.txt"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {}, "train": {"lowercase": "no"}}))
    with pytest.raises(ValueError, match="lowercase must be true or false"):
        configs_from_args(_train("--config", str(bad)))
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="model"):
        configs_from_args(_train("--config", str(bad)))


def test_train_config_file_trains_the_run_it_describes(tmp_path):
    from vae_core import jobs
    from vae_core.cli import main
    from vae_core.runs import load_run

    m, t = ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4), TrainConfig(max_steps=2, batch_size=16, tc_bank=8,
                                                                               tc_weight=1.0, log_every=1)
    run = tmp_path / "run"
    run.mkdir()
    path = jobs.write_train_config(run, m, t, "synthetic")
    assert main(["train", "--config", str(path), "--out", str(run), "--overwrite", "--quiet"]) == 0
    loaded = load_run(run)
    assert loaded.train_config == t
    assert dataclasses.replace(loaded.model_config, vocab_size=0) == m
    again = tmp_path / "again"  # a user reproduces the run from its own config.json
    assert main(["train", "--config", str(run / "config.json"), "--out", str(again), "--quiet"]) == 0
    assert load_run(again).train_config == t and load_run(again).model_config == loaded.model_config


def test_sweep_cli_can_fix_or_search_every_setting():
    actions = {a.dest for a in _subparser("sweep")._actions}
    assert set(training_settings()) <= actions  # including decoder, fourier_features and the TC options
    a = _sweep("--decoder", "additive", "--fourier-features", "8", "--beta", "0.3,0.6,1", "--tc-weight", "0,2",
               "--tc-bank", "64", "--unidirectional", "--lowercase")
    m, t = sweep_configs(a)
    assert (m.decoder, m.fourier_features, m.bidirectional, t.tc_bank, t.lowercase) == ("additive", 8, False, 64, True)
    space = space_from_args(a)
    assert space.grid() == {"beta": [0.3, 0.6, 1.0], "tc_weight": [0.0, 2.0]}
    r = space_from_args(_sweep("--sampler", "tpe", "--lr", "1e-4:1e-2", "--tc-bank", "0:512:linear",
                               "--unidirectional", "true,false"))
    assert set(r.ranges) == {("lr", 1e-4, 1e-2, True), ("tc_bank", 0, 512, False)}  # lr is declared log-scale
    assert r.values == (("bidirectional", (False, True)),)


def test_sweep_search_parsing_and_checks():
    s = training_settings()
    assert parse_search(s["decoder"], "rnn,additive") == ("values", ("rnn", "additive"))
    assert parse_search(s["latent_dim"], "8") == ("fixed", 8)
    assert parse_search(s["beta"], "0.1:8") == ("range", (0.1, 8.0, True))
    assert parse_search(s["z_to_inputs"], "true") == ("fixed", False)  # --no-z-inputs true: z_to_inputs false
    for setting, text in (("decoder", "rnn,lstm"), ("latent_dim", "4.5"), ("beta", "1:x"), ("lowercase", "maybe"),
                          ("beta", "1,1")):
        with pytest.raises(ValueError):
            parse_search(s[setting], text)
    with pytest.raises(SweepError, match="between 0 and 64"):
        SweepSpace(values={"fourier_features": (8, 100)})
    with pytest.raises(SweepError, match="not a model or training setting"):
        SweepSpace(values={"warp": (1, 2)})
    with pytest.raises(SweepError, match="not a number"):
        SweepSpace(ranges={"decoder": (0, 1)})
    space = SweepSpace(values={"fourier_features": (0, 8)})
    with pytest.raises(SweepError, match="additive decoder only"):  # searched with the RNN decoder: refused upfront
        space.check(ModelConfig(), TrainConfig(), "grid")
    space.check(ModelConfig(decoder="additive"), TrainConfig(), "grid")


def test_parse_value_is_strict():
    s = training_settings()
    assert parse_value(s["lowercase"], "no") is False and parse_value(s["lowercase"], "Yes") is True
    with pytest.raises(ValueError):
        parse_value(s["epochs"], "1e3")


def test_cli_modules_import_no_circle_and_fail_loudly():
    for name in ("cli_sweep", "cli_explore", "cli_flags"):
        tree = ast.parse((REPO / "vae_core" / f"{name}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "vae_core.cli" not in imported, f"{name} imports vae_core.cli: an import circle"
    cli = ast.parse((REPO / "vae_core" / "cli.py").read_text())
    handlers = [h for h in ast.walk(cli) if isinstance(h, ast.ExceptHandler)]
    assert not any(isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in handlers)
    assert not (REPO / "vae_core" / "cli_extra.py").exists()


def test_every_shipped_recipe_can_be_swept_as_it_is_trained():
    """The shipped recipes (additive-b06 among them) give the same configs to `train` and to every `sweep` trial."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("shipped_models", REPO / "scripts" / "shipped_models.py")
    shipped = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shipped)
    for name, (_, flags) in shipped.RECIPES.items():
        trained = configs_from_args(_train(*flags))
        a = _sweep(*flags)
        assert sweep_configs(a) == trained, name
        assert set(space_from_args(a).names) <= {"beta"}  # at most the one-cell β axis: everything else is fixed
    a = _sweep(*shipped.ADDITIVE_B06, "--beta", "0.3,0.6,1", "--fourier-features", "4,8")
    assert space_from_args(a).grid() == {"fourier_features": [4, 8], "beta": [0.3, 0.6, 1.0]}
    assert sweep_configs(a)[0].decoder == "additive"


def test_the_widget_builder_needs_no_torch():
    import subprocess
    import sys

    code = "import sys, ui.settings, vae_core.config; assert 'torch' not in sys.modules, 'ui.settings imports torch'"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
