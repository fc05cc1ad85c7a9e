"""Command line: python -m vae_core train | eval | data, with generate … (cli_explore) and sweep (cli_sweep).

The cli* modules (this one, cli_explore, cli_sweep) are the only ones in vae_core that print.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
from pathlib import Path

from vae_core import cli_explore, cli_sweep
from vae_core.cli_flags import GIVEN, RecordGiven, add_train_flags, configs_from_args, read_config_file, resolve_device
from vae_core.corpus import MAX_FILE_BYTES
from vae_core.grammar import shipped_grammars
from vae_core.metric_conventions import CONVENTION_HELP, CONVENTIONS, DEFAULT_CONVENTION
from vae_core.units import format_bytes

WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, metavar="FILE",
                   help="JSON with \"model\" and \"train\" objects (a run's config.json reproduces that run, "
                        "corpus included); flags given as well override it")
    p.add_argument("--corpus", action=RecordGiven, default="synthetic",
                   help="synthetic | ptb | grammar:NAME (a shipped factor grammar: "
                        f"{', '.join(shipped_grammars())}) | GRAMMAR.json (your own factor grammar; copied into the "
                        "run) | PATH (a text file or directory); default: the --config file's, else synthetic")
    p.add_argument("--text-column", action=RecordGiven, default=None, help="CSV/JSONL column holding the sentence")
    p.add_argument("--out", required=True, help="run directory to create (or resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--device", default="cpu",
                   help="cpu | cuda | cuda:N | mps | auto (CUDA, else MPS, else CPU); torchrun: cuda = cuda:LOCAL_RANK")
    p.add_argument("--amp", nargs="?", const="auto", default=None, choices=("auto", "bf16", "fp16"),
                   help="mixed precision on CUDA (bf16 where supported, else fp16 with loss scaling)")
    p.add_argument("--mmap", choices=("auto", "on", "off"), default="auto",
                   help="stream a .txt corpus from memory-mapped token ids (auto: above "
                        f"200,000 lines or {format_bytes(MAX_FILE_BYTES)})")
    add_train_flags(p)  # one flag per model/training setting, from vae_core.config's declarations
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def corpus_from_args(a: argparse.Namespace) -> tuple[str, str | None]:
    """(corpus spec, text column): the flags when given, else the --config file's "corpus", else synthetic."""
    explicit = getattr(a, GIVEN, None) or set()
    spec, column = a.corpus, a.text_column
    if getattr(a, "config", None):
        corpus = read_config_file(a.config).get("corpus")
        corpus = corpus if isinstance(corpus, dict) else {}
        if "corpus" not in explicit and isinstance(corpus.get("spec"), str):
            spec = corpus["spec"]
        if "text_column" not in explicit and isinstance(corpus.get("text_column"), str):
            column = corpus["text_column"]
    return spec, column


def load_train_corpus(spec: str, text_column: str | None, seed: int, mmap: str = "auto"):
    """The corpus to train on: streamed from memory-mapped token ids (`--mmap on`, or auto for big .txt files)."""
    from vae_core.corpus import download_ptb, load_corpus
    from vae_core.grammar import is_grammar_spec
    from vae_core.tokcache import TokenCorpus, wants_stream

    if mmap == "on" or (mmap == "auto" and wants_stream(spec)):
        if text_column:
            raise ValueError("--text-column applies to .csv/.jsonl corpora; streamed corpora are .txt files")
        if is_grammar_spec(spec):
            raise ValueError(f"--mmap on needs a .txt corpus (a file or a directory), or ptb; not {spec!r}: a "
                             "factor grammar's corpus is generated in memory (use --mmap auto or off)")
        if spec == "ptb":
            return TokenCorpus.from_path(download_ptb(), seed=seed, spec="ptb", name="ptb")
        return TokenCorpus.from_path(spec, seed=seed)
    return load_corpus(spec, text_column, seed=seed)


def cmd_train(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vae_core.runs import read_config
    from vae_core.train import Callbacks, resolve_amp, train

    stop = {"flag": False}

    def on_signal(signum, frame):  # noqa: ARG001
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    device = resolve_device(a.device)
    resolve_amp(a.amp, device)  # refuse --amp off CUDA before reading any corpus
    quiet = a.quiet or os.environ.get("RANK", "0") != "0"  # under torchrun only rank 0 talks
    out = Path(a.out)
    from vae_core.jobs import wait_for_slot  # one scheduler: $VAE_MAX_TRAININGS trainings per runs folder

    slot = wait_for_slot(out, should_stop=lambda: stop["flag"], on_wait=lambda m: print(m, file=sys.stderr))
    if slot is None:  # stopped while queued: nothing was trained
        return 0
    if a.resume:
        cfg, _, saved_tcfg = read_config(out)
        from vae_core.grammar import run_corpus_spec  # a grammar run resumes on its own copy of the grammar

        corpus = load_train_corpus(run_corpus_spec(out, cfg.get("corpus")), a.text_column, saved_tcfg.seed, a.mmap)
        mcfg = tcfg = None
    else:
        mcfg, tcfg = configs_from_args(a)
        spec, column = corpus_from_args(a)
        corpus = load_train_corpus(spec, column, tcfg.seed, a.mmap)
    bar = None

    def on_step(rec: dict) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = tqdm(total=rec["total_steps"], initial=rec["step"], unit="step", dynamic_ncols=True, file=sys.stderr)
        bar.n = rec["step"]
        bar.set_postfix_str(
            f"ep {rec['epoch']} loss {rec['loss']:.2f} rec {rec['recon']:.2f} kl {rec['kl']:.2f} "
            f"w {rec['weight']:.2f} {rec['tokens_per_s']:,.0f} tok/s eta {rec['eta_s'] / 60:.1f} min"
        )
        bar.refresh()

    def on_eval(rec: dict) -> None:
        if not quiet and rec.get("recon") is not None:
            msg = (f"valid @ step {rec['step']}: recon {rec['recon']:.3f} kl {rec['kl']:.3f} "
                   f"elbo {rec['elbo']:.3f} token_acc {rec['token_acc']:.3f} AU {rec['active_units']}")
            (bar.write if bar else print)(msg)

    summary = train(out, corpus, mcfg, tcfg, resume=a.resume, callbacks=Callbacks(on_step, on_eval),
                    should_stop=lambda: stop["flag"], device=device, overwrite=a.overwrite, amp=a.amp)
    if bar:
        bar.close()
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps({k: v for k, v in summary.items() if k != "valid"}, indent=None))
    return 0 if summary["state"] in ("finished", "stopped") else 1


def cmd_eval(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vae_core.evaluate import evaluate_run
    from vae_core.metrics import ppl_count_text
    from vae_core.runs import update_summary, write_error_message

    bars: dict = {}

    def progress(stage: str, done: int, total: int) -> None:  # the importance-sampled NLL takes a while
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="batch", dynamic_ncols=True, file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    try:
        result = evaluate_run(
            a.run, corpus_spec=a.corpus, split=a.split, nll_samples=a.nll_samples, max_sentences=a.max_sentences,
            disentanglement=not a.no_disentanglement, write_summary=False, seed=a.seed, progress=progress,
            metric_convention=a.metric_convention,
        )
    finally:
        for bar in bars.values():
            bar.close()
    if a.json:  # the result first: a full disk or a read-only run folder must not lose what was computed
        print(json.dumps(result, indent=2), flush=True)
    else:
        for k, v in result.items():
            if isinstance(v, (int, float, str)):
                print(f"{k:>28}: {v}")
                if k == "ppl":  # the count a perplexity is taken over, beside it
                    print(f"{'ppl counted over':>28}: {ppl_count_text(result)}")
        _print_label_classifiers(result)
        sys.stdout.flush()
    if not a.no_write:
        try:
            update_summary(Path(a.run), "eval", result)
        except OSError as e:
            msg = write_error_message(e, Path(a.run) / "summary.json")
            print(f"error: the evaluation above was not saved: {msg}", file=sys.stderr)
            return 1
    return 0


def _print_label_classifiers(result: dict) -> None:
    """On a labelled corpus without a grammar: each classifier's held-out accuracy, then what the traversals
    found with its labels (a classifier that does not beat its baseline is said so, and not used)."""
    described = result.get("label_classifiers")
    if not isinstance(described, dict):
        return
    print(f"{'label classifiers':>28}: held out on the {described.get('heldout', '?')}")
    for c in described.get("classifiers", ()):
        note = "" if c["usable"] else f"  NOT USED: {c['why_not']}"
        print(f"{c['factor']:>28}: accuracy {c['accuracy']:.3f} (majority baseline {c['baseline']:.3f}, "
              f"{c['n_heldout']} sentences){note}")
    traversals = result.get("traversals")
    if isinstance(traversals, dict):
        owners = "; ".join(f"{f} ← {', '.join(f'z{d}' for d in ds)}" for f, ds in traversals["owners"].items())
        print(f"{'owned (classifier labels)':>28}: {traversals['n_owned']} of {traversals['n_factors']}"
              + (f": {owners}" if owners else ""))
    interpolation = result.get("interpolation")
    if isinstance(interpolation, dict):
        print(f"{'label-monotone paths':>28}: {interpolation['label_monotone']:.3f} "
              f"({interpolation['n_paths']} paths)")


def cmd_data(a: argparse.Namespace) -> int:
    from vae_core.corpus import download_ptb, load_corpus

    if a.action == "download-ptb":
        print(download_ptb())
        return 0
    c = load_corpus(a.corpus)
    print(json.dumps({"name": c.name, "train": len(c.train), "valid": len(c.valid), "test": len(c.test),
                      "labels": list(c.label_columns), "factors": list(c.factors)}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m vae_core", description="β-VAE Text Lab command line")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a sentence β-VAE into a run directory")
    _add_train_args(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("eval", help="evaluate a run (ELBO, NLL, PPL, KL, MI, AU, disentanglement)")
    p.add_argument("run")
    p.add_argument("--corpus", default=None, help="defaults to the run's own corpus")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--nll-samples", type=int, default=0, help="importance samples for NLL (500 for reported numbers)")
    p.add_argument("--max-sentences", type=int, default=0, help="evaluate on at most this many (0 = all)")
    p.add_argument("--no-disentanglement", action="store_true")
    p.add_argument("--no-write", action="store_true", help="do not update summary.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metric-convention", default=DEFAULT_CONVENTION, choices=CONVENTIONS, help=CONVENTION_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("data", help="corpus information, or download PTB")
    p.add_argument("action", choices=("info", "download-ptb"))
    p.add_argument("--corpus", default="synthetic")
    p.set_defaults(func=cmd_data)
    cli_explore.register(sub)
    cli_sweep.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    try:
        return a.func(a)
    except ValueError as e:  # configuration and data errors: a message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only folder, a missing file: one line, not a traceback
        print(f"error: {os_error_message(e)}", file=sys.stderr)
        return 1


def os_error_message(e: OSError) -> str:
    """One line for an OSError that reached the command line: a failed write says what to do."""
    if e.errno in WRITE_ERRNOS:
        from vae_core.runs import write_error_message

        return write_error_message(e)
    return f"{e.filename}: {e.strerror}" if e.filename is not None and e.strerror else str(e)


if __name__ == "__main__":
    sys.exit(main())
