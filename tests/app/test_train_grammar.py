"""Train page (AppTest): the corpus picker offers the shipped factor grammars, previews one and starts a run on it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest

from vae_core.grammar import shipped_grammar, shipped_grammars
from vae_core.runs import read_status

PAGE = "app_pages/train.py"


@pytest.fixture
def runs_dir(tiny_models_dir) -> Path:
    """The per-test runs dir; a training still alive at the end is killed."""
    runs = Path(os.environ["VAE_RUNS_DIR"])
    yield runs
    for status in runs.glob("*/status.json"):
        pid = read_status(status.parent).pid
        if isinstance(pid, int) and pid != os.getpid():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def test_grammar_source_previews_the_grammar(open_app, runs_dir):
    at = open_app(PAGE)
    at.radio(key="train_corpus_source").set_value("grammar").run()
    assert not at.exception, [e.value for e in at.exception]
    picker = at.selectbox(key="train_grammar")
    assert list(picker.options) == [n for n in shipped_grammars() if n != "builtin"]
    picker.set_value("passive").run()
    g = shipped_grammar("passive")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sentences"] == f"{g.size:,}" and metrics["Factors"] == str(len(g.factors))
    factor_table, sentences = at.dataframe[0].value, at.dataframe[1].value
    assert list(factor_table["factor"]) == list(g.factors)
    assert list(sentences.columns) == ["sentence", *g.factors]
    row = sentences.iloc[0]
    assert g.parse(row["sentence"]) == {f: row[f] for f in g.factors}
    assert not at.button(key="train_start").disabled


@pytest.mark.slow  # starts a training process
def test_start_on_a_shipped_grammar_records_its_spec(open_app, runs_dir):
    at = open_app(PAGE)
    at.radio(key="train_corpus_source").set_value("grammar").run()
    at.selectbox(key="train_grammar").set_value("passive").run()
    for key, value in {"train_embed_dim": 8, "train_hidden_dim": 16, "train_latent_dim": 4, "train_batch_size": 32,
                       "train_max_steps": 3}.items():
        at.number_input(key=key).set_value(value)
    at.text_input(key="train_run_name").set_value("grammar-run")
    at.run()
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    config = json.loads((runs_dir / "grammar-run" / "train_config.json").read_text())
    assert config["corpus"]["spec"] == "grammar:passive"
