"""Pre-tokenised corpora (Penn Treebank) read as given, and perplexity stated with its token count."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.core.helpers import tiny_model_config, tiny_train_config
from vae_core.cli import build_parser, main
from vae_core.cli_flags import configs_from_args
from vae_core.config import TrainConfig, training_settings
from vae_core.corpus import encode_sentences, load_path
from vae_core.encoding import sentence_ids
from vae_core.metrics import PPL_RULE, evaluate_model, perplexity
from vae_core.runs import RunError, load_run
from vae_core.text import EOS_ID, Vocab, sentence_tokens, tokenize
from vae_core.tokcache import TokenCorpus, split_stores
from vae_core.train import build_vocab, train

# PTB's own text: leading/trailing spaces, <unk>, N, and the words the lab tokenizer would split
PTB_LIKE = (
    " mr. <unk> is chairman of the u.s. unit N years ago \n"
    " the company 's stock fell N N to $ N a share \n"
    " a well-known co-author said it was n't clear \n"
    " mr. smith and mrs. jones visited the u.s. \n"
    " it was a one-time charge of $ N million \n"
    " the <unk> inc. unit 's chief executive resigned \n"
)


@pytest.fixture()
def ptb_dir(tmp_path):
    d = tmp_path / "ptb"
    d.mkdir()
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        (d / name).write_text(PTB_LIKE, encoding="utf-8")
    return d


def _whitespace_words(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


def test_whitespace_tokenization_keeps_words_as_given():
    line = " mr. smith of the u.s. said a-b <unk> N "
    assert tokenize(line, tokenization="whitespace") == ["mr.", "smith", "of", "the", "u.s.", "said", "a-b",
                                                         "<unk>", "N"]
    # the lab tokenizer splits them (and stays the default: the built-in corpus tokenises as before)
    assert tokenize(line) == ["mr", ".", "smith", "of", "the", "u.s", ".", "said", "a", "-", "b", "<unk>", "N"]
    assert sentence_tokens(line, max_len=3, tokenization="whitespace") == (["mr.", "smith", "of"], True)
    assert tokenize(" MR. x\x01y ", lowercase=True, tokenization="whitespace") == ["mr.", "x", "y"]
    with pytest.raises(ValueError, match="tokenization"):
        tokenize("a", tokenization="bpe")  # type: ignore[arg-type]


def test_pretokenised_file_round_trips_token_counts_exactly(ptb_dir):
    corpus = load_path(ptb_dir)
    tcfg = TrainConfig(tokenization="whitespace", max_len=100)
    vocab = build_vocab(corpus, tcfg)
    assert vocab.tokenization == "whitespace"
    assert {"mr.", "u.s.", "well-known", "co-author", "one-time", "inc.", "n't", "'s"} <= set(vocab.itos)
    assert not {"mr", "u.s", "well", "-"} & set(vocab.itos)
    ids, cut = encode_sentences(corpus.test.sentences, vocab, tcfg.max_len)
    words = _whitespace_words(PTB_LIKE)
    assert cut == 0 and [len(x) for x in ids] == [len(w) + 1 for w in words]  # each word one id, plus <eos>
    assert all(x[-1] == EOS_ID for x in ids)
    assert [vocab.decode(x) for x in ids] == words  # nothing split, nothing lost
    got, oov = sentence_ids(vocab, ["mr. jones visited the u.s. a-b"])
    assert oov == [["a-b"]] and len(got[0]) == 7
    lab = build_vocab(corpus, TrainConfig(max_len=100))  # the default: more tokens than the file has
    lab_ids, _ = encode_sentences(corpus.test.sentences, lab, 100)
    assert sum(map(len, lab_ids)) > sum(map(len, ids))


def test_vocabulary_carries_its_tokenization_and_old_files_are_unchanged():
    lab = Vocab.build([["a", "b"]])
    assert "tokenization" not in json.loads(lab.to_json())  # vocab.json and its hash as before the setting
    ws = Vocab.build([["mr.", "a-b"]], tokenization="whitespace")
    back = Vocab.from_json(ws.to_json())
    assert back == ws and back.tokenization == "whitespace" and back.sha256() != Vocab(ws.itos).sha256()
    with pytest.raises(ValueError, match="tokenization"):
        Vocab.from_json(json.dumps({"itos": list(ws.itos), "tokenization": "bpe"}))


def test_setting_is_declared_once_and_reaches_the_run(ptb_dir, tmp_path, capsys):
    s = training_settings()["tokenization"]
    assert s.default == "lab" and s.choices == ("lab", "whitespace") and s.group == "data"
    _, tcfg = configs_from_args(build_parser().parse_args(["train", "--out", "x", "--tokenization", "whitespace"]))
    assert tcfg.tokenization == "whitespace"
    corpus = load_path(ptb_dir)
    mcfg = tiny_model_config()
    train(tmp_path / "run", corpus, mcfg, tiny_train_config(tokenization="whitespace", epochs=1, max_len=100))
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train"]["tokenization"] == "whitespace"
    run = load_run(tmp_path / "run")
    assert run.train_config.tokenization == "whitespace" and run.vocab.tokenization == "whitespace"
    assert "u.s." in run.vocab
    ev = evaluate_model(run.model, run.vocab, corpus.test.sentences, nll_samples=4, seed=0, max_len=100)
    words = _whitespace_words(PTB_LIKE)
    assert ev["n_words"] == sum(map(len, words)) and ev["n_tokens"] == ev["n_words"] + len(words)
    assert ev["tokenization"] == "whitespace" and ev["ppl_rule"] == PPL_RULE
    assert main(["eval", str(tmp_path / "run"), "--nll-samples", "2", "--no-write", "--no-disentanglement"]) == 0
    shown = capsys.readouterr().out
    n_words = sum(map(len, words))
    assert f"ppl counted over: {n_words + len(words)} tokens = {n_words} words (whitespace tokenization) + " \
           f"{len(words)} <eos>" in shown
    # the rule is part of the vocabulary's hash: a vocab.json switched back to the lab tokenizer is refused
    vocab_file = tmp_path / "run" / "vocab.json"
    vocab_file.write_text(Vocab(run.vocab.itos).to_json(), encoding="utf-8")
    with pytest.raises(RunError, match="not the vocabulary"):
        load_run(tmp_path / "run")


def test_streamed_corpus_reads_the_same_tokens(ptb_dir):
    tc = TokenCorpus.from_path(ptb_dir / "ptb.train.txt", seed=0)
    tcfg = TrainConfig(tokenization="whitespace", max_len=100)
    vocab = tc.build_vocab(tcfg)
    assert vocab.tokenization == "whitespace" and "u.s." in vocab
    store = split_stores(tc.token_store(vocab, tcfg))
    n = sum(len(store[k]) for k in store)
    total = sum(int(store[k].lengths.sum()) for k in store)
    words = _whitespace_words(PTB_LIKE)
    assert n == len(words) and total == sum(map(len, words)) + len(words)
    lab_vocab = tc.build_vocab(TrainConfig(max_len=100))  # another rule: another count cache, other words
    assert "u.s." not in lab_vocab and "u.s" in lab_vocab


def test_perplexity_from_total_nll_and_token_count():
    assert perplexity(82_430 * math.log(100.0), 82_430) == pytest.approx(100.0, rel=1e-12)
    assert perplexity(0.0, 5) == 1.0
    with pytest.raises(ValueError):
        perplexity(1.0, 0)


def test_evaluate_model_ppl_is_total_nll_over_counted_tokens():
    torch.manual_seed(0)
    sents = ["mr. a-b went", "u.s. went"]
    vocab = Vocab.build([s.split() for s in sents], tokenization="whitespace")
    from vae_core.model import SentenceVAE

    model = SentenceVAE(tiny_model_config(vocab_size=len(vocab))).double().eval()
    ev = evaluate_model(model, vocab, sents, nll_samples=6, seed=1)
    assert ev["n_tokens"] == 3 + 1 + 2 + 1 and ev["n_words"] == 5 and ev["ppl_counts_eos"] is True
    assert ev["ppl"] == pytest.approx(math.exp(ev["nll"] * 2 / 7), rel=1e-12)
    assert ev["ppl_bound"] == pytest.approx(math.exp(ev["nll_bound"] * 2 / 7), rel=1e-12)
