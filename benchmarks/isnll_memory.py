"""Peak memory of the importance-sampled NLL at large k, with samples decoded in memory-sized chunks or in the
fixed-size chunks the lab used before (50 samples × 64 sentences a decoder call); prints JSON.

Each setting runs in its own subprocess, whose peak resident memory (`resource.getrusage(...).ru_maxrss`, which
sees torch's allocations where tracemalloc does not) is reported beside the figures it computed:

    python benchmarks/isnll_memory.py --data /work/shared/data/ptb --k 500 --sentences 300
    python benchmarks/isnll_memory.py --run models/gru-tc5 --k 500 --sentences 300

With --data (a PTB directory): a model of the PTB recipe's shape (`ptb_quality.py --recipe vae-lstm`, vocabulary
of the train file read whitespace-split) with its initial weights — memory depends on the shapes, not the
weights — on the first --sentences test sentences. With --run: that run on its corpus's test split.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODES = {  # name -> (nll_chunk, nll_memory_mb, batch_size)
    "fixed_chunks_before": (50, 1e12, 64),  # what the lab did before: 64 sentences × 50 samples per decoder call
    "memory_sized": (None, None, 64),  # chunks and batches sized by --memory-mb
}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _model_and_sentences(a: argparse.Namespace):
    import torch

    if a.run:
        from vae_core.corpus import load_corpus
        from vae_core.runs import load_run

        run = load_run(a.run)
        corpus = load_corpus(run.config["corpus"]["spec"], seed=run.train_config.seed)
        return run.model, run.vocab, list(corpus.test.sentences)[: a.sentences], run.train_config, a.run
    import dataclasses

    from benchmarks.ptb_quality import RECIPES
    from vae_core.corpus import load_path
    from vae_core.model import SentenceVAE
    from vae_core.train import build_vocab

    mcfg, tcfg = RECIPES["vae-lstm"]
    corpus = load_path(a.data)
    vocab = build_vocab(corpus, tcfg)
    torch.manual_seed(0)
    model = SentenceVAE(dataclasses.replace(mcfg, vocab_size=len(vocab))).eval()
    return model, vocab, list(corpus.test.sentences)[: a.sentences], tcfg, "ptb-shaped vae-lstm (initial weights)"


def child(a: argparse.Namespace) -> None:
    import torch

    from vae_core.metrics import evaluate_model

    torch.set_num_threads(a.threads)
    model, vocab, sents, tcfg, what = _model_and_sentences(a)
    chunk, memory_mb, batch_size = MODES[a.mode]
    memory_mb = a.memory_mb if memory_mb is None else memory_mb
    loaded = _maxrss_mb()
    t0 = time.perf_counter()
    ev = evaluate_model(model, vocab, sents, nll_samples=a.k, seed=0, lowercase=tcfg.lowercase,
                        max_len=tcfg.max_len, batch_size=batch_size, nll_chunk=chunk, nll_memory_mb=memory_mb)
    print(json.dumps({
        "mode": a.mode, "model": what, "vocab_size": len(vocab), "k": a.k, "sentences": ev["n_sentences"],
        "n_tokens": ev["n_tokens"], "nll_chunk": chunk, "nll_memory_mb": memory_mb,
        "maxrss_mb_after_load": round(loaded, 1), "maxrss_mb_peak": round(_maxrss_mb(), 1),
        "nll": ev["nll"], "ppl": ev["ppl"], "nll_seconds": round(ev["timing"]["nll_s"], 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="", help="a PTB directory (ptb.train/valid/test.txt)")
    ap.add_argument("--run", default="", help="a run directory (instead of --data)")
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--memory-mb", type=float, default=None, help="budget of the memory-sized mode (default: "
                    "vae_core.metrics.NLL_MEMORY_MB)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated, of: " + ", ".join(MODES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parallel", action="store_true", help="run the modes at the same time (each peak is its own "
                    "process's; the times then share the CPU)")
    ap.add_argument("--mode", default="", help=argparse.SUPPRESS)  # set in the subprocess
    a = ap.parse_args()
    if not (a.data or a.run):
        ap.error("give --data (a PTB directory) or --run (a run directory)")
    if a.memory_mb is None:
        from vae_core.metrics import NLL_MEMORY_MB

        a.memory_mb = NLL_MEMORY_MB
    if a.mode:
        child(a)
        return
    results = []
    procs = []
    for mode in a.modes.split(","):
        argv = [sys.executable, __file__, "--mode", mode, "--k", str(a.k), "--sentences", str(a.sentences),
                "--memory-mb", str(a.memory_mb), "--threads", str(a.threads)]
        argv += ["--run", a.run] if a.run else ["--data", a.data]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append((mode, proc, None if a.parallel else proc.communicate()))
    for mode, proc, done in procs:
        stdout, stderr = done or proc.communicate()
        if proc.returncode != 0:
            results.append({"mode": mode, "error": stderr.strip().splitlines()[-1:] or ["no output"],
                            "returncode": proc.returncode})
            continue
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    ok = [r for r in results if "nll" in r]
    report = {"benchmark": "isnll_memory", "results": results, "command": " ".join(sys.argv)}
    if len(ok) == 2:
        report["nll_difference"] = abs(ok[0]["nll"] - ok[1]["nll"])
        report["peak_ratio"] = round(ok[0]["maxrss_mb_peak"] / ok[1]["maxrss_mb_peak"], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
