"""Train and evaluate a sentence VAE on Penn Treebank from a path; print NLL, PPL, KL, MI, AU as JSON.

Published figures printed beside ours (PTB test set):
  Bowman et al. 2016, VAE-LSTM:     NLL 101 (KL 2),  PPL 119
  Texar VAE-LSTM (examples/vae_text): NLL 102.10,      PPL 105.48
  He et al. 2019, aggressive inference:                PPL 99.83 (KL 0.93)
  Li et al. 2019, AE pretraining + free bits:          PPL 96.86 (KL 6.54, MI 5.31, AU 32)

    python benchmarks/ptb_quality.py --data ../shared/data/ptb --recipe vae-lstm --minutes 60 --out runs/ptb-vae-lstm

Training stops at the recipe's epochs or after --minutes, whichever comes first (the run directory
is a normal run: it can be resumed with `python -m vae_core train --out DIR --resume`). NLL is
importance-sampled with --nll-samples (500 for reported numbers) on --max-sentences test sentences
(0 = all 3,761), the samples decoded in chunks sized by --nll-memory-mb.

Counting rule: the recipes read PTB's files as given (`tokenization="whitespace"`: "mr.", "u.s." and
hyphenated words stay one token, as in Mikolov's text), and PPL = exp(total NLL / n_tokens) with n_tokens =
the words plus one <eos> per sentence (the test set: 78,669 words + 3,761 <eos> = 82,430 tokens), the
convention of Mikolov et al. and of Li et al. 2019 / He et al. 2019 (the figures printed beside ours). A run
trained before the setting existed reads PTB with the lab tokenizer, which splits those words: its
`n_tokens` is larger and its PPL not comparable; the JSON says which tokenization and token count it used.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_core.config import ModelConfig, TrainConfig  # noqa: E402
from vae_core.corpus import load_corpus  # noqa: E402
from vae_core.metrics import NLL_MEMORY_MB, evaluate_model  # noqa: E402
from vae_core.runs import load_run  # noqa: E402
from vae_core.train import train  # noqa: E402

RECIPES: dict[str, tuple[ModelConfig, TrainConfig]] = {
    # Texar's VAE-LSTM on PTB: embed 256, hidden 256, latent 32, linear KL annealing over 10 epochs.
    "vae-lstm": (
        ModelConfig(embed_dim=256, hidden_dim=256, latent_dim=32, rnn_type="lstm", bidirectional=False,
                    embed_dropout=0.5, word_dropout=0.0),
        TrainConfig(beta=1.0, schedule="linear", warmup_steps=13000, epochs=40, batch_size=32, lr=1e-3,
                    max_len=100, max_vocab=10002, tokenization="whitespace"),
    ),
    # Cyclical annealing (Fu et al. 2019) with free bits, which keeps more information in z.
    "cyclical-fb": (
        ModelConfig(embed_dim=256, hidden_dim=256, latent_dim=32, rnn_type="lstm", bidirectional=False,
                    embed_dropout=0.5),
        TrainConfig(beta=1.0, schedule="cyclical", cycles=4, cycle_ratio=0.5, free_bits=0.1, epochs=40,
                    batch_size=32, max_len=100, max_vocab=10002, tokenization="whitespace"),
    ),
    # Full size (GPU): embed 512, hidden 1024, latent 32.
    "full": (
        ModelConfig(embed_dim=512, hidden_dim=1024, latent_dim=32, rnn_type="lstm", bidirectional=False,
                    embed_dropout=0.5),
        TrainConfig(beta=1.0, schedule="linear", warmup_steps=13000, epochs=40, batch_size=32, max_len=100,
                    max_vocab=10002, tokenization="whitespace"),
    ),
}

PUBLISHED = {
    "Bowman et al. 2016 VAE-LSTM": {"nll": 101.0, "kl": 2.0, "ppl": 119.0},
    "Texar VAE-LSTM": {"nll": 102.10, "ppl": 105.48},
    "He et al. 2019 aggressive inference": {"ppl": 99.83, "kl": 0.93},
    "Li et al. 2019 AE + free bits": {"ppl": 96.86, "kl": 6.54, "mi": 5.31, "active_units": 32},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/ptb")
    ap.add_argument("--recipe", choices=sorted(RECIPES), default="vae-lstm")
    ap.add_argument("--out", default="runs/ptb-quality")
    ap.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    ap.add_argument("--epochs", type=int, default=0, help="override the recipe's epochs")
    ap.add_argument("--nll-samples", type=int, default=500)
    ap.add_argument("--nll-memory-mb", type=float, default=NLL_MEMORY_MB,
                    help="memory for the decoder outputs of one importance-sampling chunk")
    ap.add_argument("--max-sentences", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--eval-only", action="store_true")
    a = ap.parse_args()
    import dataclasses

    mcfg, tcfg = RECIPES[a.recipe]
    if a.epochs:
        tcfg = dataclasses.replace(tcfg, epochs=a.epochs)
    corpus = load_corpus(a.data)
    out = Path(a.out)
    t0 = time.time()
    summary = {}
    if not a.eval_only:
        deadline = t0 + a.minutes * 60
        if out.exists() and not a.resume:
            shutil.rmtree(out)
        summary = train(out, corpus, None if a.resume else mcfg, None if a.resume else tcfg, resume=a.resume,
                        should_stop=lambda: time.time() > deadline, device=a.device)
    train_s = time.time() - t0
    run = load_run(out, device=a.device)
    sents = list(corpus.test.sentences)
    if a.max_sentences:
        sents = sents[: a.max_sentences]
    t1 = time.time()
    ev = evaluate_model(run.model, run.vocab, sents, nll_samples=a.nll_samples, seed=0,
                        lowercase=run.train_config.lowercase, max_len=run.train_config.max_len,
                        nll_memory_mb=a.nll_memory_mb)
    result = {
        "benchmark": "ptb_quality",
        "recipe": a.recipe,
        "device": a.device,
        "train_minutes": round(train_s / 60, 1),
        "steps": summary.get("step"),
        "epochs_done": summary.get("epoch"),
        "train_tokens_per_s": round(summary.get("tokens_per_s", 0)),
        "test_sentences": len(sents),
        "nll_samples": a.nll_samples,
        "eval_minutes": round((time.time() - t1) / 60, 1),
        "test": {k: ev.get(k) for k in ("nll", "ppl", "kl", "mi", "active_units", "recon", "elbo",
                                        "ppl_counts_eos", "n_tokens", "n_words", "tokenization", "truncated")},
        "ppl_rule": ev["ppl_rule"],
        "nll_memory_mb": a.nll_memory_mb,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "published": PUBLISHED,
        "command": " ".join(sys.argv),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
