"""A run trained on a grammar file keeps its own copy (hash in config.json) and never reads the original again;
uploads are validated from bytes; the CLI names grammar specs and refuses --mmap on for them;
comparison rows number a grammar's factors in its value order."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vae_core import comparison
from vae_core.cli import build_parser, main
from vae_core.config import ModelConfig, TrainConfig
from vae_core.corpus import load_corpus
from vae_core.explore import run_grammar
from vae_core.grammar import (
    RUN_COPY,
    SHA256_KEY,
    GrammarError,
    grammar_for_corpus,
    grammar_from_bytes,
    grammar_snapshot,
    run_copy,
    run_corpus_spec,
    shipped_grammar,
)
from vae_core.runs import load_run, make_config
from vae_core.subsets import corpus_subset
from vae_core.train import train

PETS = {
    "grammar": 1,
    "name": "pets",
    "factors": {
        "who": ["the cat", "the dog", "a bird", "my fish"],
        "what": ["sleeps", "eats", "runs", "sings"],
        "when": {"now": "", "later": "later"},
    },
    "templates": ["{who} {what} {when} ."],
}
TINY_MODEL = ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4)
TINY_TRAIN = TrainConfig(max_steps=3, batch_size=8, log_every=1)


def _write(path: Path, grammar: dict) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(grammar, indent=1).encode("utf-8")
    path.write_bytes(data)
    return data


@pytest.fixture
def grammar_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, bytes]:
    """(run dir, original grammar file, its bytes): a 3-step run trained on a grammar file in a data folder."""
    monkeypatch.setenv("VAE_DATA_DIRS", str(tmp_path / "data"))
    original = tmp_path / "data" / "pets.json"
    data = _write(original, PETS)
    run = tmp_path / "runs" / "pets"
    train(run, load_corpus(str(original)), TINY_MODEL, TINY_TRAIN)
    return run, original, data


def test_training_on_a_grammar_file_copies_it_into_the_run_with_its_hash(grammar_run) -> None:
    run, original, data = grammar_run
    assert (run / RUN_COPY).read_bytes() == data
    corpus_info = json.loads((run / "config.json").read_text())["corpus"]
    assert corpus_info[SHA256_KEY] == hashlib.sha256(data).hexdigest()
    assert corpus_info["spec"] == str(original.resolve())  # what the run was trained on, as before
    assert run_corpus_spec(run, corpus_info) == str((run / RUN_COPY).resolve())


def test_a_grammar_run_does_not_need_the_original_file(grammar_run) -> None:
    run, original, _ = grammar_run
    original.unlink()  # moved away or deleted after training
    loaded = load_run(run)
    grammar = run_grammar(loaded, strict=True)
    assert grammar is not None and tuple(grammar.factors) == ("who", "what", "when")
    assert grammar.parse("the dog sings later .") == {"who": "the dog", "what": "sings", "when": "later"}
    corpus = load_corpus(run_corpus_spec(run, loaded.config["corpus"]), seed=loaded.train_config.seed)
    assert sorted(corpus.train.sentences + corpus.valid.sentences + corpus.test.sentences) == sorted(
        grammar.sentences())
    from vae_core.evaluate import evaluate_run

    result = evaluate_run(run, write_summary=False, disentanglement=False)  # reloads the run's own corpus
    assert result["n_sentences"] == len(corpus.test)


def test_an_edited_original_changes_nothing(grammar_run) -> None:
    run, original, data = grammar_run
    edited = {**PETS, "factors": {**PETS["factors"], "who": ["the cow", "the hen"]}}
    _write(original, edited)
    grammar = run_grammar(load_run(run), strict=True)
    assert grammar is not None and grammar.factors["who"] == ("the cat", "the dog", "a bird", "my fish")


def test_a_changed_or_missing_copy_is_a_clear_error(grammar_run) -> None:
    run, _, data = grammar_run
    loaded = load_run(run)
    (run / RUN_COPY).write_bytes(data.replace(b"sleeps", b"snores"))
    with pytest.raises(GrammarError, match="has changed since training"):
        run_grammar(loaded, strict=True)
    with pytest.raises(GrammarError, match="has changed since training"):
        run_corpus_spec(run, loaded.config["corpus"])
    assert run_grammar(loaded) is None  # the lenient form: no grammar (the app says why: ui.loaders.run_grammar)
    (run / RUN_COPY).unlink()
    with pytest.raises(GrammarError, match="is missing"):
        run_grammar(loaded, strict=True)


def test_a_copy_that_is_a_link_or_a_bad_hash_is_refused(grammar_run, tmp_path: Path) -> None:
    run, original, data = grammar_run
    sha = hashlib.sha256(data).hexdigest()
    (run / RUN_COPY).unlink()
    (run / RUN_COPY).symlink_to(original)  # same bytes, but not the run's own file
    with pytest.raises(GrammarError, match="is a link"):
        run_copy(run, sha)
    with pytest.raises(GrammarError, match="64 hex digits"):
        grammar_for_corpus(str(original), run, "../../etc/passwd")


def test_shipped_grammars_and_text_corpora_get_no_copy(tmp_path: Path) -> None:
    run = tmp_path / "shipped"
    train(run, load_corpus("grammar:passive"), TINY_MODEL, TINY_TRAIN)
    corpus_info = json.loads((run / "config.json").read_text())["corpus"]
    assert corpus_info["spec"] == "grammar:passive" and SHA256_KEY not in corpus_info
    assert not (run / RUN_COPY).exists()
    assert run_grammar(load_run(run), strict=True) is shipped_grammar("passive")
    assert grammar_snapshot("grammar:passive") is None and grammar_snapshot("synthetic") is None
    assert SHA256_KEY not in make_config(TINY_MODEL, TINY_TRAIN, "synthetic", "synthetic")["corpus"]


def test_retraining_a_run_name_on_another_corpus_drops_the_old_copy(grammar_run) -> None:
    run, _, _ = grammar_run
    train(run, load_corpus("grammar:passive"), TINY_MODEL, TINY_TRAIN, overwrite=True)
    assert not (run / RUN_COPY).exists()
    assert run_grammar(load_run(run), strict=True) is shipped_grammar("passive")


def test_grammar_from_bytes_names_the_file_and_the_entry_at_fault() -> None:
    good = grammar_from_bytes(json.dumps(PETS).encode(), "pets.json")
    assert good.size == 32 and good.name == "pets"
    unnamed = grammar_from_bytes(json.dumps({k: v for k, v in PETS.items() if k != "name"}).encode(), "mine.json")
    assert unnamed.name == "mine"
    with pytest.raises(GrammarError, match=r"grammar up\.json is not valid JSON: .* line 1"):
        grammar_from_bytes(b"{not json", "up.json")
    bad_slot = {**PETS, "templates": ["{who} {wat} ."]}
    with pytest.raises(GrammarError, match=r"grammar up\.json: templates\[0\]: unknown slot \{wat\}"):
        grammar_from_bytes(json.dumps(bad_slot).encode(), "up.json")
    ambiguous = {**PETS, "templates": ["{who} {what} ."]}  # 'when' never appears: two settings, one sentence
    with pytest.raises(GrammarError, match="ambiguous"):
        grammar_from_bytes(json.dumps(ambiguous).encode(), "up.json")
    with pytest.raises(GrammarError, match="not UTF-8"):
        grammar_from_bytes(b"\xff\xfe{}", "up.json")


def test_cli_corpus_help_names_grammar_specs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "grammar:NAME" in text and "GRAMMAR.json" in text and "passive" in text


@pytest.mark.parametrize("spec", ["grammar:passive", "synthetic", "my_grammar.json"])
def test_cli_mmap_on_with_a_grammar_is_refused_clearly(spec: str, tmp_path: Path, capsys) -> None:
    rc = main(["train", "--corpus", spec, "--mmap", "on", "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--mmap on needs a .txt corpus" in err and "factor grammar" in err and repr(spec) in err
    assert not (tmp_path / "r" / "config.json").exists()


def test_comparison_numbers_a_grammar_corpus_in_its_value_order(monkeypatch: pytest.MonkeyPatch) -> None:
    grammar = shipped_grammar("passive")
    subset = corpus_subset(load_corpus("grammar:passive"), ("test",), 60)
    assert subset.factor_values == grammar.factors
    seen = {}
    real = comparison.label_factors

    def spy(labels, factor_names=(), *args, **kwargs):
        out = real(labels, factor_names, *args, **kwargs)
        seen["values"] = out[2]
        return out

    monkeypatch.setattr(comparison, "label_factors", spy)

    class Enc:  # what measure_comparison reads of an encoding
        mu = np.random.default_rng(0).standard_normal((len(subset), 4)).astype(np.float32)
        logvar = np.zeros_like(mu)
        exact_match = 0.0

    row = comparison.measure_comparison("r", {}, subset, Enc())
    assert row["MIG"] is not None
    assert seen["values"] == [list(v) for v in grammar.factors.values()]  # the grammar's order, not sorted


def test_cli_train_then_resume_after_the_original_is_gone(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("VAE_RUNS_DIR", str(tmp_path / "runs"))
    original = tmp_path / "elsewhere" / "pets.json"
    data = _write(original, PETS)
    run = tmp_path / "runs" / "cli-pets"
    tiny = ["--embed-dim", "8", "--hidden-dim", "16", "--latent-dim", "4", "--batch-size", "8", "--quiet"]
    assert main(["train", "--corpus", str(original), "--max-steps", "2", "--out", str(run), *tiny]) == 0
    assert (run / RUN_COPY).read_bytes() == data
    original.unlink()
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--quiet"]) == 0, capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["corpus"][SHA256_KEY] == hashlib.sha256(data).hexdigest()
