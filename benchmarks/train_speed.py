"""Training throughput (tokens/s) of vae_core vs a straightforward PyTorch sentence VAE, as JSON.

The baseline follows the widely used public Sentence-VAE recipe: GRU encoder/decoder, output layer
over every padded position, random (not length-bucketed) batches, padding to the batch maximum.
Both run the same number of steps on the same sentences in one process, interleaved in rounds so
machine noise hits both alike; the ratio is the figure to compare.

    python benchmarks/train_speed.py --data ../shared/data/ptb --steps 60
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_core.config import ModelConfig, TrainConfig  # noqa: E402
from vae_core.corpus import bucket_batches, collate, encode_sentences, load_corpus  # noqa: E402
from vae_core.model import SentenceVAE  # noqa: E402
from vae_core.objective import beta_vae_loss  # noqa: E402
from vae_core.text import BOS_ID, PAD_ID, Vocab, tokenize  # noqa: E402
from vae_core.train import make_optimizer  # noqa: E402


class BaselineVAE(nn.Module):
    """Sentence-VAE-style model: logits on all padded positions, z only in the initial state."""

    def __init__(self, V: int, E: int, H: int, D: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, E, padding_idx=PAD_ID)
        self.enc = nn.GRU(E, H, batch_first=True)
        self.mu = nn.Linear(H, D)
        self.lv = nn.Linear(H, D)
        self.z2h = nn.Linear(D, H)
        self.dec = nn.GRU(E, H, batch_first=True)
        self.out = nn.Linear(H, V)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B = tokens.size(0)
        # sort by length, as the baseline does
        lengths_sorted, order = torch.sort(lengths, descending=True)
        tokens = tokens[order]
        e = self.emb(tokens)
        _, h = self.enc(pack_padded_sequence(e, lengths_sorted, batch_first=True))
        h = h.view(B, -1)
        mu, lv = self.mu(h), self.lv(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * lv)
        inp = torch.cat([torch.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], 1)
        out, _ = self.dec(pack_padded_sequence(self.emb(inp), lengths_sorted, batch_first=True),
                          self.z2h(z).unsqueeze(0))
        out, _ = pad_packed_sequence(out, batch_first=True)
        logp = nn.functional.log_softmax(self.out(out), dim=-1)  # (B, T, V) incl. padding
        nll = nn.functional.nll_loss(logp.reshape(-1, logp.size(-1)), tokens[:, : logp.size(1)].reshape(-1),
                                     ignore_index=PAD_ID, reduction="sum")
        kl = -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())
        return (nll + kl) / B


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/ptb", help="corpus spec: a PTB directory, a file, or 'synthetic'")
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--hidden-dim", type=int, default=256)
    ap.add_argument("--latent-dim", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=60, help="measured steps per model per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline-size", action="store_true",
                    help="use the baseline's reference size (embed 300, hidden 256, latent 16) for both")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.baseline_size:
        a.embed_dim, a.hidden_dim, a.latent_dim = 300, 256, 16
    corpus = load_corpus(a.data)
    vocab = Vocab.build((tokenize(s) for s in corpus.train.sentences), max_size=20000)
    ids, _ = encode_sentences(corpus.train.sentences, vocab, 100)
    lengths = [len(x) for x in ids]
    torch.manual_seed(0)
    ours = SentenceVAE(ModelConfig(vocab_size=len(vocab), embed_dim=a.embed_dim, hidden_dim=a.hidden_dim,
                                   latent_dim=a.latent_dim, rnn_type="gru", bidirectional=False))
    tcfg = TrainConfig(batch_size=a.batch_size, schedule="constant")
    base = BaselineVAE(len(vocab), a.embed_dim, a.hidden_dim, a.latent_dim)
    opt_o = make_optimizer(ours, TrainConfig(lr=1e-3))  # what vae_core.train uses (fused Adam)
    opt_b = torch.optim.Adam(base.parameters(), lr=1e-3)  # the baseline's plain Adam
    ours_batches = bucket_batches(lengths, a.batch_size, seed=0)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(ids))
    base_batches = [perm[i:i + a.batch_size].tolist() for i in range(0, len(ids), a.batch_size)]

    def run_ours(batches) -> tuple[int, float]:
        ours.train()
        tok, t0 = 0, time.perf_counter()
        for b in batches:
            tokens, lens = collate([ids[i] for i in b])
            out = ours(tokens, lens)
            parts = beta_vae_loss(out.recon_nll, out.mu, out.logvar, out.z, 0, tcfg, 1, len(ids))
            opt_o.zero_grad(set_to_none=True)
            parts.total.backward()
            nn.utils.clip_grad_norm_(ours.parameters(), 5.0)
            opt_o.step()
            tok += out.n_tokens
        return tok, time.perf_counter() - t0

    def run_base(batches) -> tuple[int, float]:
        base.train()
        tok, t0 = 0, time.perf_counter()
        for b in batches:
            tokens, lens = collate([ids[i] for i in b])
            loss = base(tokens, lens)
            opt_b.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(base.parameters(), 5.0)
            opt_b.step()
            tok += int(lens.sum())
        return tok, time.perf_counter() - t0

    run_ours(ours_batches[:3])  # warm-up
    if not a.no_baseline:
        run_base(base_batches[:3])
    ours_rates, base_rates = [], []
    for r in range(a.rounds):
        sl = slice(3 + r * a.steps, 3 + (r + 1) * a.steps)
        t, s = run_ours(ours_batches[sl])
        ours_rates.append(t / s)
        if not a.no_baseline:
            t, s = run_base(base_batches[sl])
            base_rates.append(t / s)
    result = {
        "benchmark": "train_speed",
        "corpus": corpus.name,
        "train_sentences": len(ids),
        "vocab_size": len(vocab),
        "model": {"embed": a.embed_dim, "hidden": a.hidden_dim, "latent": a.latent_dim, "batch": a.batch_size,
                  "rnn": "gru"},
        "steps_per_round": a.steps,
        "rounds": a.rounds,
        "tokens_per_s": round(statistics.median(ours_rates)),
        "tokens_per_s_rounds": [round(x) for x in ours_rates],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "tokens_counted": "real tokens incl. <eos>, exact softmax over the full vocabulary",
    }
    if base_rates:
        result["baseline_tokens_per_s"] = round(statistics.median(base_rates))
        result["baseline_tokens_per_s_rounds"] = [round(x) for x in base_rates]
        result["speedup"] = round(statistics.median(ours_rates) / statistics.median(base_rates), 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
