"""Self-BLEU, distinct-n and interpolation smoothness on texts whose answer is known."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from vae_core import generation_metrics as gm
from vae_core.metrics import _ngrams, bleu_from_counts, corpus_bleu


def _split(*texts: str) -> list[list[str]]:
    return [t.split() for t in texts]


def _brute_self_bleu(sents: list[list[str]], max_n: int) -> float:
    """Self-BLEU the slow way: every hypothesis against every other sentence, clipping by the max count."""
    total = 0.0
    for i, hyp in enumerate(sents):
        refs = [s for j, s in enumerate(sents) if j != i]
        matches, counts = [], []
        for n in range(1, max_n + 1):
            h = _ngrams(hyp, n)
            most: Counter = Counter()
            for r in refs:
                most |= _ngrams(r, n)  # element-wise max
            matches.append(sum(min(c, most[g]) for g, c in h.items()))
            counts.append(max(0, len(hyp) - n + 1))
        ref_len = min((len(r) for r in refs), key=lambda ln: (abs(ln - len(hyp)), ln))
        total += bleu_from_counts(matches, counts, len(hyp), ref_len)
    return total / len(sents)


def test_self_bleu_of_identical_samples_is_one_and_of_disjoint_ones_zero() -> None:
    same = _split(*["the doctor sees the small cat ."] * 5)
    assert gm.self_bleu(same) == pytest.approx(1.0)
    disjoint = _split("a b c d", "e f g h", "i j k l")
    assert gm.self_bleu(disjoint) == 0.0
    assert math.isnan(gm.self_bleu(same[:1]))  # one sample has no others


def test_self_bleu_of_two_sentences_is_their_mean_sentence_bleu() -> None:
    a, b = _split("the doctor sees the small cat .", "the pilot sees the old cat .")
    expected = (corpus_bleu([b], [a]) + corpus_bleu([a], [b])) / 2  # the reconstruction BLEU, one reference
    assert gm.self_bleu([a, b]) == pytest.approx(expected)
    assert 0.0 < expected < 1.0


def test_self_bleu_matches_the_brute_force_multi_reference_definition() -> None:
    sents = _split(
        "the doctor sees the small cat .", "the doctor sees the small dog .", "will the pilot help the red bird ?",
        "the the the the", "cats .", "the doctor did not see the cat .", "the small cat sees the doctor .",
    )
    for n in (1, 2, 3, 4):
        assert gm.self_bleu(sents, n) == pytest.approx(_brute_self_bleu(sents, n), abs=1e-12)


def test_distinct_n() -> None:
    sents = _split("a b a b", "a b c")
    assert gm.distinct_n(sents, 1) == pytest.approx(3 / 7)  # a, b, c over 7 words
    assert gm.distinct_n(sents, 2) == pytest.approx(3 / 5)  # ab, ba, bc over 5 bigrams
    assert math.isnan(gm.distinct_n(_split("a"), 2))
    div = gm.generation_diversity(_split("x y", "x y", "x z"))
    assert div["distinct_sentences"] == pytest.approx(2 / 3) and div["n"] == 3


def test_word_edit_distance() -> None:
    assert gm.word_edit_distance("a b c".split(), "a x c".split()) == 1
    assert gm.word_edit_distance("a b c".split(), "".split()) == 3
    assert gm.word_edit_distance("a b".split(), "b a".split()) == 2


def test_interpolation_smoothness_known_paths() -> None:
    straight = _split("the doctor sees the cat .", "the pilot sees the cat .", "the pilot sees the dog .")
    assert gm.interpolation_smoothness(straight) == 1.0  # every step moves towards the end
    detour = _split("the doctor sees the cat .", "the doctor sees the dog .", "the doctor sees the cat .",
                    "the pilot sees the cat .")
    assert gm.interpolation_smoothness(detour) == pytest.approx(1 / 3)  # 1 word apart, 3 word changes
    back = _split("a b", "a c", "a b")
    assert gm.interpolation_smoothness(back) == 0.0  # came back where it started
    assert math.isnan(gm.interpolation_smoothness(_split("a b", "a b")))  # never changes
    summary = gm.path_smoothness([straight, detour, _split("a", "a")])
    assert summary["smoothness"] == pytest.approx((1 + 1 / 3) / 2)
    assert summary["n_paths"] == 3 and summary["n_unchanged"] == 1
    with pytest.raises(ValueError, match="at least 2"):
        gm.interpolation_smoothness(_split("a"))


# ----------------------------------------------------------------------------- through `eval --json`


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import torch

    from tests.core.helpers import tiny_model_config, tiny_train_config
    from vae_core import synthetic
    from vae_core.corpus import Corpus
    from vae_core.train import train

    full = synthetic.generate()
    corpus = Corpus("synthetic", full.train.select(range(300)), full.valid.select(range(40)),
                    full.test.select(range(60)), factors=full.factors, spec="synthetic")
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    torch.manual_seed(0)
    train(run_dir, corpus, tiny_model_config(), tiny_train_config(epochs=1, max_steps=10, batch_size=32))
    return run_dir


@pytest.mark.slow  # trains a tiny run and evaluates it
def test_eval_json_has_generation_figures_and_the_metric_convention(tiny_run, capsys) -> None:
    import json

    from vae_core.cli import main
    from vae_core.summary import Evaluation

    assert main(["eval", str(tiny_run), "--max-sentences", "40", "--no-write", "--json",
                 "--metric-convention", "published"]) == 0
    result = json.loads(capsys.readouterr().out)
    div, smooth = result["generation"]["diversity"], result["generation"]["smoothness"]
    assert div["n"] == 1000 and 0.0 <= div["self_bleu"] <= 1.0 and 0.0 < div["distinct_1"] <= 1.0
    assert smooth["n_paths"] == 500 and smooth["steps"] == gm.INTERPOLATION_STEPS
    dis = result["disentanglement"]
    assert dis["convention"]["name"] == "published" and dis["convention"]["dci_model"] == "gbt"
    assert dis["dci"]["model"] == "gbt" and dis["mig_bins"] == 20
    for key in ("explicitness", "beta_vae", "factor_vae"):
        assert key in dis
    ev = Evaluation.from_json(result)
    assert ev.disentanglement.convention == "published"
    assert ev.generation.self_bleu == pytest.approx(div["self_bleu"]) and ev.generation.n_paths == 500
    with pytest.raises(SystemExit):
        main(["eval", str(tiny_run), "--metric-convention", "paper"])
