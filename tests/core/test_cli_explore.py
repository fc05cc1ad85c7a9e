"""generate / interpolate / encode / reconstruct subcommands, run in-process on a tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.core.helpers import MIXED
from vae_core.cli import main
from vae_core.config import ModelConfig, TrainConfig
from vae_core.corpus import Corpus, TextSet

SENTENCES = list(MIXED)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from vae_core.train import train

    out = tmp_path_factory.mktemp("cli") / "run"
    corpus = Corpus("tiny", TextSet(tuple(SENTENCES)), TextSet(tuple(SENTENCES[:2])), TextSet(tuple(SENTENCES[:2])))
    train(out, corpus, ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4),
          TrainConfig(epochs=2, batch_size=3, schedule="constant", log_every=50))
    return out


def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1]  # print() ends every line with "\n"; empty sentences are empty lines


def test_generate_lines_and_json(run_dir: Path, capsys) -> None:
    assert main(["generate", str(run_dir), "--n", "5"]) == 0
    lines = _lines(capsys.readouterr().out)
    assert len(lines) == 5
    assert main(["generate", str(run_dir), "--n", "5"]) == 0
    assert _lines(capsys.readouterr().out) == lines  # seeded
    assert main(["generate", str(run_dir), "--n", "3", "--strategy", "sample", "--top-p", "0.9",
                 "--temperature", "0.7", "--seed", "4", "--json"]) == 0
    texts = json.loads(capsys.readouterr().out)
    assert isinstance(texts, list) and len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert main(["generate", str(run_dir), "--n", "2", "--strategy", "beam", "--beam-width", "3"]) == 0
    assert len(_lines(capsys.readouterr().out)) == 2


def test_generate_rejects_bad_options(run_dir: Path, capsys) -> None:
    assert main(["generate", str(run_dir), "--temperature", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "temperature" in err and len(err.strip().splitlines()) == 1


def test_interpolate_prints_each_step_and_warns_on_oov(run_dir: Path, capsys) -> None:
    assert main(["interpolate", str(run_dir), SENTENCES[0], "the zebra sees a cat .", "--steps", "4"]) == 0
    captured = capsys.readouterr()
    assert len(_lines(captured.out)) == 4
    assert "zebra" in captured.err and "warning" in captured.err
    assert main(["interpolate", str(run_dir), SENTENCES[0], SENTENCES[1], "--steps", "3", "--slerp", "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 3 and captured.err == ""


def test_encode_writes_means(run_dir: Path, tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "sents.txt"
    corpus.write_text("\n".join(SENTENCES + ["an unseen sentence"]) + "\n", encoding="utf-8")
    out, lv = tmp_path / "means.npy", tmp_path / "logvar.npy"
    assert main(["encode", str(run_dir), str(corpus), "--out", str(out), "--logvar-out", str(lv)]) == 0
    msg = capsys.readouterr().out
    assert "7 sentences" in msg
    means = np.load(out)
    assert means.shape == (7, 4) and means.dtype == np.float32
    assert np.load(lv).shape == (7, 4)


def test_reconstruct_prints_input_and_output(run_dir: Path, capsys) -> None:
    assert main(["reconstruct", str(run_dir), SENTENCES[0], SENTENCES[1]]) == 0
    lines = _lines(capsys.readouterr().out)
    assert len(lines) == 2 and lines[0].startswith(SENTENCES[0] + " → ")


@pytest.mark.parametrize("command", [
    ["generate", "{missing}"],
    ["interpolate", "{missing}", "a", "b"],
    ["encode", "{missing}", "x.txt", "--out", "m.npy"],
    ["reconstruct", "{missing}", "a"],
])
def test_missing_run_is_one_line_error(tmp_path: Path, capsys, command: list[str]) -> None:
    argv = [a.format(missing=tmp_path / "nope") for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err and len(err.strip().splitlines()) == 1


def test_encode_missing_corpus_is_one_line_error(run_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["encode", str(run_dir), str(tmp_path / "none.txt"), "--out", str(tmp_path / "m.npy")]) == 2
    err = capsys.readouterr().err
    assert "none.txt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.npy").exists()
