"""Memory-mapped token ids: same split, vocabulary and ids as the in-memory path; built once, keyed by vocab."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.core.helpers import TOY, tiny_model_config, tiny_train_config
from vae_core.corpus import CorpusError, bucket_batches, collate, encode_sentences, load_path
from vae_core.runs import load_run, read_status
from vae_core.tokcache import BatchPlan, TokenCorpus, split_stores, wants_stream
from vae_core.train import build_vocab, train

LINES = [*(s for _ in range(8) for s in TOY), "", "   ", "Ünïcode wörds , and a very long line " + "x " * 30,
         "the dog sat .\u2028a cat ran ."]


@pytest.fixture
def corpus_file(tmp_path):
    p = tmp_path / "data" / "corpus.txt"
    p.parent.mkdir()
    p.write_text("\r\n".join(LINES) + "\n", encoding="utf-8")
    return p


def _cache_dirs(directory):
    return sorted(directory.glob(".*.tokcache"))


def test_same_split_vocab_and_ids_as_in_memory(corpus_file):
    tcfg = tiny_train_config(max_len=8, seed=3)
    mem = load_path(corpus_file, seed=3)
    tc = TokenCorpus.from_path(corpus_file, seed=3)
    assert tc.spec == mem.spec and tc.name == mem.name
    vocab = build_vocab(tc, tcfg)
    assert vocab == build_vocab(mem, tcfg)
    stores = split_stores(tc.token_store(vocab, tcfg))
    for split in ("train", "valid", "test"):
        ids, cut = encode_sentences(mem.split(split).sentences, vocab, tcfg.max_len)
        store = stores[split]
        assert len(store) == len(ids) and [store[i] for i in range(len(store))] == ids
        assert store.lengths.tolist() == [len(x) for x in ids] and store.truncated == cut
    idx = [3, 0, 5]
    t1, l1 = stores["train"].collate(idx)
    t2, l2 = collate([stores["train"][i] for i in idx])
    assert torch.equal(t1, t2) and torch.equal(l1, l2)


def test_cache_built_once_then_reused(corpus_file):
    tcfg = tiny_train_config()
    tc = TokenCorpus.from_path(corpus_file)
    vocab = tc.build_vocab(tcfg)
    first = tc.token_store(vocab, tcfg)
    (cache,) = _cache_dirs(corpus_file.parent)
    stamps = {f.name: f.stat().st_mtime_ns for f in cache.iterdir()}
    counts = next(corpus_file.parent.glob(".*.counts.json")).stat().st_mtime_ns
    again = TokenCorpus.from_path(corpus_file)
    second = again.token_store(again.build_vocab(tcfg), tcfg)
    assert {f.name: f.stat().st_mtime_ns for f in cache.iterdir()} == stamps
    assert next(corpus_file.parent.glob(".*.counts.json")).stat().st_mtime_ns == counts
    assert isinstance(second.ids, np.memmap) and np.array_equal(first.ids, second.ids)
    assert _cache_dirs(corpus_file.parent) == [cache]


def test_different_vocab_or_source_gives_another_cache(corpus_file):
    tcfg = tiny_train_config()
    tc = TokenCorpus.from_path(corpus_file)
    full = tc.build_vocab(tcfg)
    small = tc.build_vocab(dataclasses.replace(tcfg, max_vocab=8))
    assert len(small) < len(full)
    assert tc.cache_path(full, tcfg) != tc.cache_path(small, tcfg)
    a = split_stores(tc.token_store(full, tcfg))["train"]
    b = split_stores(tc.token_store(small, tcfg))["train"]
    assert len(_cache_dirs(corpus_file.parent)) == 2
    assert len(a) == len(b) and int(np.max(b.ids)) < len(small) and not np.array_equal(a.ids, b.ids)
    before = tc.cache_path(full, tcfg)
    corpus_file.write_text("a new corpus .\nwith other lines .\nand a third .\n", encoding="utf-8")
    assert tc.cache_path(full, tcfg) != before  # the source's sha256 is part of the name


def test_unwritable_source_directory_uses_the_cache_dir(corpus_file, tmp_path, monkeypatch):
    from vae_core import tokcache

    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tokcache, "_writable_dir", lambda d: d != corpus_file.parent)
    tcfg = tiny_train_config()
    tc = TokenCorpus.from_path(corpus_file)
    tc.token_store(tc.build_vocab(tcfg), tcfg)
    assert not _cache_dirs(corpus_file.parent)
    assert len(_cache_dirs(tmp_path / "cache" / "tokcache")) == 1


@pytest.mark.parametrize("seed", [None, 0, 7])
def test_batch_plan_equals_bucket_batches(seed):
    lengths = np.random.default_rng(1).integers(1, 20, size=263)
    plan = BatchPlan(lengths, 8, seed, bucket_factor=5)
    ref = bucket_batches(lengths.tolist(), 8, seed=seed, bucket_factor=5)
    assert [plan[j].tolist() for j in range(len(plan))] == ref
    trimmed = BatchPlan(lengths, 8, seed, bucket_factor=5, min_size=8)
    assert [trimmed[j].tolist() for j in range(len(trimmed))] == [b for b in ref if len(b) == 8]


def test_training_streamed_equals_training_in_memory(corpus_file, tmp_path):
    mcfg, tcfg = tiny_model_config(), tiny_train_config(epochs=1, batch_size=4, max_len=8)
    s_mem = train(tmp_path / "mem", load_path(corpus_file), mcfg, tcfg)
    s_mmap = train(tmp_path / "mmap", TokenCorpus.from_path(corpus_file), mcfg, tcfg)
    a, b = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("mem", "mmap"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert s_mem["step"] == s_mmap["step"] > 0 and s_mem["valid"]["elbo"] == s_mmap["valid"]["elbo"]
    load_run(tmp_path / "mmap")


def test_cli_streams_with_mmap_on_and_refuses_other_formats(corpus_file, tmp_path, monkeypatch):
    from vae_core.cli import load_train_corpus, main

    monkeypatch.setattr("signal.signal", lambda *a: None)  # the CLI's stop handlers stay out of pytest

    assert not wants_stream(str(corpus_file)) and wants_stream(str(corpus_file), threshold=10)
    csv = tmp_path / "c.csv"
    csv.write_text("text\na b .\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"\.txt"):
        load_train_corpus(str(csv), None, 0, "on")
    rc = main(["train", "--corpus", str(corpus_file), "--mmap", "on", "--out", str(tmp_path / "r"), "--quiet",
               "--embed-dim", "8", "--hidden-dim", "16", "--latent-dim", "4", "--max-steps", "2", "--batch-size", "4"])
    assert rc == 0 and read_status(tmp_path / "r").state == "finished"
    assert _cache_dirs(corpus_file.parent)
