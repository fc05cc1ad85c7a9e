"""Peak memory and tokens/s as a .txt corpus grows (10k, 100k, 1M sentences), printed as JSON.

For each size a synthetic-style corpus is written to a temporary directory (the built-in
corpus's `realize` over every factor combination, shuffled with a new seed per 20,736 lines until
the size is reached). Each phase then runs in a fresh subprocess, which reports its own peak RSS
(`ru_maxrss`) and its RSS right after the imports (the baseline; `delta_mb` = peak − baseline):

- `tokenize`: streamed vocabulary + the memory-mapped token cache (`vae_core.tokcache`);
- `train`:    `--steps` training steps streaming batches from that cache (tokens/s is the median of
              the logged windows, so the final validation pass is not in it);
- `inmemory`: for comparison, what the small-corpus path holds: `load_path` (all sentences as
              Python strings) + `encode_sentences` (all token ids as Python lists).

`growth` gives, for each phase, delta_mb at each size over delta_mb at the previous size (the
sentences grow 10× each time).

    python benchmarks/corpus_scale.py [--sizes 10000,100000,1000000] [--steps 200] [--no-inmemory]
                                      [--malloc-trim-threshold 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _rss_parts() -> dict[str, float]:
    """Current anonymous and file-backed RSS (MB) from /proc (file-backed includes memory-mapped cache pages)."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in ("RssAnon", "RssFile"):
                out[key] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


class PeakParts:
    """Polls /proc/self/status every 20 ms in a thread: peak anonymous and file-backed RSS above the start."""

    def __enter__(self) -> PeakParts:
        self.start = _rss_parts()
        self.peak = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.02):
            for k, v in _rss_parts().items():
                self.peak[k] = max(self.peak.get(k, 0.0), v)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict[str, float]:
        return {f"peak_{k}_delta_mb": round(self.peak[k] - self.start.get(k, 0.0), 1) for k in self.peak}


def write_corpus(path: Path, n: int) -> None:
    """n synthetic sentences: all factor combinations, a new shuffle (seed) per block, cut at n."""
    import numpy as np

    from vae_core import synthetic

    sentences = [synthetic.realize(c) for c in synthetic.all_combinations()]
    written, seed = 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while written < n:
            order = np.random.default_rng(seed).permutation(len(sentences))[: n - written]
            f.write("\n".join(sentences[i] for i in order) + "\n")
            written += len(order)
            seed += 1


# --------------------------------------------------------------------------- phases (in a subprocess)


def _imports() -> None:
    """Everything any phase imports, loaded before the baseline is read (torch alone is ~250 MB)."""
    import torch

    import vae_core.train  # noqa: F401  (pulls in model, corpus, runs, tokcache)

    torch.set_num_threads(1)


def phase_tokenize(path: Path, args: argparse.Namespace) -> dict:
    from vae_core.config import TrainConfig
    from vae_core.tokcache import TokenCorpus, split_stores

    _imports()
    base = _rss_mb()
    t0 = time.perf_counter()
    with PeakParts() as parts:
        tc = TokenCorpus.from_path(path)
        tcfg = TrainConfig()
        vocab = tc.build_vocab(tcfg)
        t_vocab = time.perf_counter() - t0
        store = tc.token_store(vocab, tcfg)
    seconds = time.perf_counter() - t0
    cache = tc.cache_path(vocab, tcfg)
    return {
        "baseline_mb": round(base, 1), "peak_mb": round(_rss_mb(), 1), "delta_mb": round(_rss_mb() - base, 1),
        "seconds": round(seconds, 1), "vocab_seconds": round(t_vocab, 1), "sentences": len(store),
        "train_sentences": len(split_stores(store)["train"]), "tokens": int(store.meta["n_tokens"]),
        "vocab": len(vocab), "sentences_per_s": round(len(store) / seconds),
        "cache_mb": round(sum(f.stat().st_size for f in cache.iterdir()) / 1e6, 1), **parts.report(),
    }


def phase_train(path: Path, args: argparse.Namespace) -> dict:
    import torch

    from vae_core.config import ModelConfig, TrainConfig
    from vae_core.runs import read_metrics
    from vae_core.tokcache import TokenCorpus
    from vae_core.train import train

    _imports()
    torch.set_num_threads(args.threads)
    base = _rss_mb()
    out = Path(tempfile.mkdtemp(prefix="scale-run-", dir=path.parent))
    mcfg = ModelConfig(embed_dim=args.embed_dim, hidden_dim=args.hidden_dim, latent_dim=16)
    tcfg = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, epochs=1000, log_every=10,
                       schedule="constant")
    t0 = time.perf_counter()
    with PeakParts() as parts:
        summary = train(out / "run", TokenCorpus.from_path(path), mcfg, tcfg)
    seconds = time.perf_counter() - t0
    rates = [r["tokens_per_s"] for r in read_metrics(out / "run") if r["kind"] == "train"][1:]  # skip warm-up
    return {
        "baseline_mb": round(base, 1), "peak_mb": round(_rss_mb(), 1), "delta_mb": round(_rss_mb() - base, 1),
        "steps": summary["step"], "seconds_with_validation": round(seconds, 1),
        "tokens_per_s": round(statistics.median(rates)) if rates else None,
        "valid_sentences": summary["valid"].get("n_sentences"), **parts.report(),
    }


def phase_inmemory(path: Path, args: argparse.Namespace) -> dict:
    from vae_core.config import TrainConfig
    from vae_core.corpus import encode_sentences, load_path
    from vae_core.train import build_vocab

    _imports()
    base = _rss_mb()
    t0 = time.perf_counter()
    with PeakParts() as parts:
        corpus = load_path(path)
        tcfg = TrainConfig()
        vocab = build_vocab(corpus, tcfg)
        ids, _ = encode_sentences(corpus.train.sentences, vocab, tcfg.max_len)
    seconds = time.perf_counter() - t0
    return {"baseline_mb": round(base, 1), "peak_mb": round(_rss_mb(), 1), "delta_mb": round(_rss_mb() - base, 1),
            "seconds": round(seconds, 1), "train_sentences": len(ids), **parts.report()}


PHASES = {"tokenize": phase_tokenize, "train": phase_train, "inmemory": phase_inmemory}


def run_phase(name: str, path: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--file", str(path),
           "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--embed-dim", str(args.embed_dim),
           "--hidden-dim", str(args.hidden_dim), "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    if args.malloc_trim_threshold:  # glibc otherwise keeps freed memory under a dynamic threshold (noisy peaks)
        env["MALLOC_TRIM_THRESHOLD_"] = str(args.malloc_trim_threshold)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"error": r.stderr[-2000:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--steps", type=int, default=200, help="training steps per size")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--embed-dim", type=int, default=64)
    ap.add_argument("--hidden-dim", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-inmemory", action="store_true", help="skip the in-memory comparison")
    ap.add_argument("--malloc-trim-threshold", type=int, default=0,
                    help="set glibc's MALLOC_TRIM_THRESHOLD_ in the phases (e.g. 1000000) for steadier peaks")
    ap.add_argument("--workdir", default=None, help="where the corpora go (default: a temporary directory)")
    ap.add_argument("--phase", choices=tuple(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:  # child process: one phase, one JSON line
        print(json.dumps(PHASES[args.phase](Path(args.file), args)))
        return {}

    sizes = [int(x) for x in args.sizes.split(",")]
    phases = ["tokenize", "train"] + ([] if args.no_inmemory else ["inmemory"])
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="corpus-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for n in sizes:
        path = work / f"synthetic_{n}.txt"
        t0 = time.perf_counter()
        write_corpus(path, n)
        for old in work.glob(f".{path.name}.*"):  # token/count caches of an earlier run: measure a fresh build
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        row = {"file_mb": round(path.stat().st_size / 1e6, 1), "write_seconds": round(time.perf_counter() - t0, 1)}
        for ph in phases:
            row[ph] = run_phase(ph, path, args)
            print(f"{n:>9,} {ph:<9} {json.dumps(row[ph])}", file=sys.stderr, flush=True)
        results[str(n)] = row
    growth, per_sentence = {}, {}
    for ph in phases:
        g, slope = {}, {}
        for a, b in zip(sizes, sizes[1:], strict=False):
            ra, rb = results[str(a)][ph], results[str(b)][ph]
            if "delta_mb" not in ra or "delta_mb" not in rb:
                continue
            g[f"{b}/{a}"] = round(rb["delta_mb"] / max(ra["delta_mb"], 1.0), 2)  # a delta under 1 MB counts as 1
            s = {"peak_rss": round((rb["delta_mb"] - ra["delta_mb"]) * 2**20 / (b - a), 1)}  # bytes per extra sentence
            for k in ("peak_RssAnon_delta_mb", "peak_RssFile_delta_mb"):
                if k in ra and k in rb:
                    s[k.split("_")[1]] = round((rb[k] - ra[k]) * 2**20 / (b - a), 1)
            slope[f"{a}->{b}"] = s
        growth[ph], per_sentence[ph] = g, slope
    report = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "threads": args.threads},
        "settings": {"steps": args.steps, "batch_size": args.batch_size, "embed_dim": args.embed_dim,
                     "hidden_dim": args.hidden_dim, "latent_dim": 16,
                     "malloc_trim_threshold": args.malloc_trim_threshold or "glibc default"},
        "sizes": results,
        "growth_of_delta_mb": growth,
        "bytes_per_extra_sentence": per_sentence,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
