"""Label classifiers: what a dimension changes on a labelled corpus without a grammar (issue 17, item 2).

On the built-in corpus the classifiers, trained on its text and factor labels, are checked against the grammar's
parser: near-perfect held-out accuracy on the content factors, and the same dimension owning the same factor
on a shipped model. On a small labelled CSV (sentiment from good/bad words), accuracies are reported, a
label that no classifier can predict is refused, and `vae_core eval` gives the traversal and interpolation
measures with the accuracies beside them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core.config import ModelConfig, TrainConfig
from vae_core.corpus import load_corpus
from vae_core.label_classifiers import accuracy_rows, ownership_rows, train_labeller
from vae_core.textset import Corpus, TextSet
from vae_core.validity import _label_path, as_labeller, interpolation_validity, traversal_factor_effects

MODELS = Path(__file__).resolve().parents[2] / "models"
CONTENT = ("subject", "verb", "object", "adjective")
GOOD = ("good", "great", "lovely", "fine")
BAD = ("bad", "awful", "poor", "dull")
TOPICS = {"movie": "film", "film": "film", "book": "reading", "novel": "reading", "song": "music", "album": "music"}
OPENERS = ("the", "i think the", "my friend said the", "honestly the", "we all agreed the")
VERBS = ("was", "is", "seemed")


def write_sentiment_csv(path: Path, noise_name: str = "noise") -> Path:
    """A CSV of 360 sentences: 'sentiment' is a function of one word (good/bad lists), 'topic' of the noun,
    `noise_name` is a seeded coin (no classifier can predict it) and 'id' is unique (not a factor)."""
    rng = np.random.default_rng(0)
    rows = []
    for opener in OPENERS:
        for noun, topic in TOPICS.items():
            for verb in VERBS:
                for adjective in GOOD + BAD:
                    sentiment = "positive" if adjective in GOOD else "negative"
                    rows.append((f"{opener} {noun} {verb} {adjective} .", sentiment, topic))
    rows = [rows[i] for i in rng.permutation(len(rows))[:360]]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "sentiment", "topic", noise_name, "id"])
        for i, (text, sentiment, topic) in enumerate(rows):
            writer.writerow([text, sentiment, topic, "heads" if rng.random() < 0.5 else "tails", f"row{i}"])
    return path


@pytest.fixture(scope="module")
def builtin_labeller():
    return train_labeller(load_corpus("synthetic"), max_rows=3000)


@pytest.fixture(scope="module")
def sentiment_corpus(tmp_path_factory):
    return load_corpus(str(write_sentiment_csv(tmp_path_factory.mktemp("csv") / "reviews.csv")))


def test_builtin_corpus_classifiers_are_near_perfect_and_beat_their_baselines(builtin_labeller):
    described = builtin_labeller.describe()
    assert described["kind"] == "classifiers" and described["heldout"] == "valid + test splits"
    by_factor = {c["factor"]: c for c in described["classifiers"]}
    assert set(CONTENT) <= set(by_factor)
    for f in CONTENT:
        c = by_factor[f]
        assert c["accuracy"] >= 0.99, c
        assert c["baseline"] < 0.3 and c["usable"] and c["n_heldout"] == 2074 and c["n_train"] == 3000
    assert described["unusable"] == {}
    labels = builtin_labeller.label(["the doctor saw the small cat .", "did the pilots not follow the red bird ?"])
    assert {f: labels[0][f] for f in CONTENT} == {"subject": "doctor", "verb": "see", "object": "cat",
                                                    "adjective": "small"}
    assert labels[1]["subject"] == "pilot" and labels[1]["mood"] == "question" and labels[1]["number"] == "plural"
    _, confidence = builtin_labeller.label_with_confidence(["the doctor saw the small cat ."])
    assert all(0.5 < p <= 1.0 for p in confidence[0].values())


def test_ownership_from_classifiers_agrees_with_the_parser_on_a_shipped_model(builtin_labeller):
    """additive-b06: the grammar's parser and the classifiers name the same owner for every factor."""
    from vae_core.encoding import posterior_means
    from vae_core.evaluate import _sample
    from vae_core.runs import load_run

    run_dir = MODELS / "additive-b06"
    run = load_run(run_dir)
    recorded = json.loads((run_dir / "summary.json").read_text())["eval"]["traversals"]
    dims = [int(v["dim"]) for v in recorded["per_dim"]]
    data = load_corpus(run.corpus_spec, seed=run.train_config.seed).test
    base = [data.sentences[i] for i in _sample(len(data), 30, 1)]
    base_z, _, _ = posterior_means(run.model, run.vocab, base)
    parsed = traversal_factor_effects(run.model, run.vocab, base_z, dims=dims)
    labelled = traversal_factor_effects(run.model, run.vocab, base_z, dims=dims, grammar=builtin_labeller)
    assert parsed["labeller"]["kind"] == "grammar" and labelled["labeller"]["kind"] == "classifiers"
    assert len(parsed["owners"]) >= 3
    assert labelled["owners"] == parsed["owners"]
    for p, c in zip(parsed["per_dim"], labelled["per_dim"], strict=True):
        assert c["top_factor"] == p["top_factor"]
        assert c["validity"] is None and p["validity"] is not None  # classifiers cannot say "not a sentence"
    rows = ownership_rows(labelled)
    assert [r["dim"] for r in rows] == [f"z{d}" for d in dims] and set(CONTENT) <= set(rows[0])


def test_sentiment_csv_accuracies_are_reported_and_a_label_without_signal_is_refused(sentiment_corpus):
    labeller = train_labeller(sentiment_corpus)
    described = labeller.describe()
    by_factor = {c["factor"]: c for c in described["classifiers"]}
    assert set(by_factor) == {"sentiment", "topic", "noise"}
    assert described["skipped_labels"] == ["id"]  # 342 distinct values: an id, not a factor
    for f in ("sentiment", "topic"):
        assert by_factor[f]["usable"] and by_factor[f]["accuracy"] >= 0.9 > by_factor[f]["baseline"]
        assert by_factor[f]["n_heldout"] == len(sentiment_corpus.valid) + len(sentiment_corpus.test) >= 30
    noise = by_factor["noise"]
    assert not noise["usable"] and "baseline" in noise["why_not"]
    assert list(labeller.factors) == ["sentiment", "topic"] and described["unusable"] == {"noise": noise["why_not"]}
    assert labeller.label(["the movie was great .", "the album is awful ."]) == [
        {"sentiment": "positive", "topic": "film"}, {"sentiment": "negative", "topic": "music"}]
    rows = accuracy_rows(described)
    assert [r["factor"] for r in rows] == ["sentiment", "topic", "noise"] and rows[2]["used"] is False


def test_lowercased_runs_label_as_they_tokenise(sentiment_corpus):
    labeller = train_labeller(sentiment_corpus, lowercase=True)
    assert labeller.label(["THE MOVIE WAS GREAT ."]) == [{"sentiment": "positive", "topic": "film"}]


def test_a_corpus_without_held_out_splits_holds_out_part_of_train(sentiment_corpus):
    train = sentiment_corpus.train
    corpus = Corpus("only-train", train, TextSet(()), TextSet(()))
    described = train_labeller(corpus).describe()
    assert "held out" in described["heldout"]
    assert all(c["n_heldout"] == round(len(train) * 0.2) for c in described["classifiers"])


def test_a_corpus_without_label_columns_has_no_labeller():
    corpus = Corpus("plain", TextSet(("a b .", "c d .") * 10), TextSet(("a b .",)), TextSet(("c d .",)))
    assert train_labeller(corpus) is None


def test_label_paths_count_changes_and_returns():
    a, b, c = {"s": "pos"}, {"s": "neg"}, {"s": "neu"}
    assert _label_path([a, a, b, b], ["s"]) == (1, True)
    assert _label_path([a, b, c], ["s"]) == (2, True)
    assert _label_path([a, b, a], ["s"]) == (2, False)  # came back to a value it left
    assert _label_path([a, None, b], ["s"]) == (1, True)  # invalid points are skipped
    assert _label_path([None, None], ["s"]) == (0, True)


def test_grammars_and_labellers_share_one_interface(builtin_labeller):
    from vae_core.grammar import builtin_grammar

    grammar = as_labeller(None)
    assert grammar.validates and tuple(grammar.factors) == tuple(builtin_grammar().factors)
    assert grammar.label(["the doctor saw the small cat .", "not a sentence"])[1] is None
    assert as_labeller(builtin_labeller) is builtin_labeller and not builtin_labeller.validates


def _train_tiny(run_dir: Path, corpus: Corpus) -> None:
    from vae_core.train import train

    torch.manual_seed(0)
    train(run_dir, corpus, ModelConfig(embed_dim=16, hidden_dim=32, latent_dim=4),
          TrainConfig(max_steps=60, batch_size=32, log_every=20))


def test_eval_on_a_labelled_csv_reports_classifier_traversals_and_interpolation(sentiment_corpus, tmp_path, capsys):
    from vae_core.cli import main
    from vae_core.evaluate import evaluate_run
    from vae_core.runs import load_run

    run_dir = tmp_path / "run"
    _train_tiny(run_dir, sentiment_corpus)
    result = evaluate_run(run_dir, write_summary=False, max_sentences=40)
    described = result["label_classifiers"]
    assert {c["factor"]: c["usable"] for c in described["classifiers"]} == {
        "sentiment": True, "topic": True, "noise": False}
    traversals = result["traversals"]
    assert traversals["labeller"]["kind"] == "classifiers"
    assert traversals["n_factors"] == 2 and set(traversals["per_dim"][0]["sole_share"]) == {"sentiment", "topic"}
    assert all(s["validity"] is None for s in traversals["per_dim"])
    interpolation = result["interpolation"]
    assert interpolation["path_validity"] is None and 0.0 <= interpolation["label_monotone"] <= 1.0
    assert "prior_samples" not in result  # validity needs a parser
    # the CLI prints each accuracy beside the traversal result
    assert main(["eval", str(run_dir), "--max-sentences", "40", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "label classifiers" in out and "owned (classifier labels)" in out
    sentiment = next(c for c in described["classifiers"] if c["factor"] == "sentiment")
    assert f"accuracy {sentiment['accuracy']:.3f} (majority baseline {sentiment['baseline']:.3f}" in out
    assert "NOT USED" in out  # the noise column, said so
    # interpolation between codes works with a labeller too
    run = load_run(run_dir)
    got = interpolation_validity(run.model, run.vocab, torch.zeros(3, 2, 4), steps=4,
                                 grammar=train_labeller(sentiment_corpus))
    assert got["label_changes"] == 0.0 and got["label_monotone"] == 1.0 and got["step_validity"] is None
