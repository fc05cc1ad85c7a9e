"""Issue 19.7/19.9/19.10: a run directory is untrusted input. Weights carry their own hashes, a replaced
vocabulary or flipped bit is refused, NaN weights are refused, run files linking outside are not read,
a corpus spec may not point outside the allowed folders, and malformed inputs give messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from vae_core import jobs
from vae_core.corpus import CorpusError, check_run_corpus_spec, parse_text
from vae_core.runs import TENSORS_SHA_KEY, VOCAB_SHA_KEY, RunError, load_run, read_metrics, save_tensors
from vae_core.text import Vocab


@pytest.fixture
def run_copy(tiny_run_dir, tmp_path) -> Path:
    d = tmp_path / "r"
    shutil.copytree(tiny_run_dir, d)
    return d


def test_saved_weights_record_their_hashes_and_load(run_copy):
    run = load_run(run_copy)
    save_tensors(run_copy / "model.safetensors", run.model.state_dict())
    with safe_open(str(run_copy / "model.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert TENSORS_SHA_KEY in meta and meta[VOCAB_SHA_KEY] == run.vocab.sha256()
    again = load_run(run_copy)
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k])


def test_a_flipped_bit_is_refused(run_copy):
    run = load_run(run_copy)
    save_tensors(run_copy / "model.safetensors", run.model.state_dict())
    data = bytearray((run_copy / "model.safetensors").read_bytes())
    data[-5] ^= 0x01  # inside the last tensor's bytes
    (run_copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(RunError, match="content hash"):
        load_run(run_copy)


def test_a_shuffled_vocabulary_of_the_same_size_is_refused(run_copy):
    run = load_run(run_copy)
    save_tensors(run_copy / "model.safetensors", run.model.state_dict())
    itos = list(run.vocab.itos)
    itos[4:] = itos[4:][::-1]
    (run_copy / "vocab.json").write_text(Vocab(tuple(itos)).to_json(), encoding="utf-8")
    with pytest.raises(RunError, match="vocab.json is not the vocabulary"):
        load_run(run_copy)


def test_nan_weights_are_refused(run_copy):
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
             for k, v in load_run(run_copy).model.state_dict().items()}
    save_tensors(run_copy / "model.safetensors", state)
    with pytest.raises(RunError, match="NaN or infinite"):
        load_run(run_copy)


def test_corpus_given_as_a_string_is_a_run_error(run_copy):
    cfg = json.loads((run_copy / "config.json").read_text())
    cfg["corpus"] = "/etc/passwd"
    (run_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RunError, match='"corpus" must be an object'):
        load_run(run_copy)


@pytest.mark.parametrize("name", ["config.json", "vocab.json", "model.safetensors"])
def test_run_files_linking_outside_are_refused(run_copy, tmp_path, name):
    outside = tmp_path / ("outside-" + name)
    shutil.move(run_copy / name, outside)
    (run_copy / name).symlink_to(outside)
    with pytest.raises(RunError, match="outside its folder"):
        load_run(run_copy)


def test_symlinked_log_and_metrics_are_not_followed(run_copy, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text('{"kind": "train", "step": 1}\nroot:x:0:0\n')
    (run_copy / "train.log").symlink_to(secret)
    assert jobs.log_tail(run_copy / "train.log") == ""
    (run_copy / "metrics.jsonl").unlink(missing_ok=True)
    (run_copy / "metrics.jsonl").symlink_to(secret)
    assert read_metrics(run_copy) == []


def test_run_corpus_spec_may_not_point_outside(tmp_path):
    run_dir, data = tmp_path / "run", tmp_path / "data"
    run_dir.mkdir()
    data.mkdir()
    (data / "c.txt").write_text("a\n")
    (run_dir / "own.txt").write_text("a\n")
    (data / "link.txt").symlink_to("/etc/passwd")
    for ok in ("synthetic", "ptb", str(run_dir / "own.txt"), str(data / "c.txt")):
        assert check_run_corpus_spec(ok, run_dir, [data]) == ok
    for bad in ("/etc/passwd", str(data / "link.txt"), str(data / ".." / "run" / ".." / "x.txt"), ""):
        with pytest.raises(CorpusError):
            check_run_corpus_spec(bad, run_dir, [data])


def test_deeply_nested_jsonl_is_a_corpus_error():
    deep = ("{\"text\": \"a\", \"x\": " + "[" * 100_000 + "]" * 100_000 + "}\n").encode()
    with pytest.raises(CorpusError, match="nested too deeply"):
        parse_text(deep, "jsonl", "up.jsonl")


def test_run_files_get_the_usual_file_mode_not_mkstemps_private_one(tmp_path):
    """Issue 19.12: atomic writes went through mkstemp and left run files 0600 beside 0644 ones."""
    import os

    from vae_core.runs import write_json

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        save_tensors(tmp_path / "w.safetensors", {"w": torch.zeros(2)})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "a.json", tmp_path / "w.safetensors", plain)}
    assert modes == {"a.json": 0o644, "w.safetensors": 0o644, "plain.txt": 0o644}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "no temporary file is left behind"


def test_resume_of_a_missing_directory_is_a_message_not_a_traceback(tmp_path, capsys):
    """Issue 19.9: `train --resume` on a directory that holds no run said FileNotFoundError with a traceback."""
    from vae_core.cli import main

    code = main(["train", "--out", str(tmp_path / "nothere"), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "has no config.json" in err and "Traceback" not in err
    assert not (tmp_path / "nothere").exists(), "a failed resume creates nothing"
