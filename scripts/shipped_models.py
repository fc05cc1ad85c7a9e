"""Reproduce the shipped models in models/ from scratch with the project's own CLI, then write their cards.

    python scripts/shipped_models.py            # train all, evaluate, write models/README.md
    python scripts/shipped_models.py --only recon --card-only

Each recipe is a plain `python -m vae_core train` command line. After training, the optimizer
state (needed only to resume) is removed so each shipped run directory stays under 10 MB, and
`python -m vae_core eval --nll-samples 500` records the test-split figures in summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

COMMON = ["--corpus", "synthetic", "--embed-dim", "64", "--hidden-dim", "256", "--quiet"]

# the additive recipe, shipped at two lengths of training
ADDITIVE_B06 = ["--latent-dim", "12", "--decoder", "additive", "--decoder-layers", "2", "--fourier-features", "8",
                "--beta", "0.6", "--schedule", "constant"]

# name -> (what it teaches, extra CLI flags)
RECIPES: dict[str, tuple[str, list[str]]] = {
    "capacity-c20": (
        "reconstructs: capacity annealing to C = 20 nats, word dropout 0.5 — the information-rich end",
        ["--latent-dim", "16", "--word-dropout", "0.5", "--schedule", "capacity", "--capacity-max", "20",
         "--capacity-steps", "3000", "--gamma", "5", "--epochs", "12", "--batch-size", "64"],
    ),
    "positional-tc5": (
        "factorised: non-autoregressive (positional) decoder, β = 0.35 and a total-correlation penalty "
        "(weight 5) that starts once the code has formed, estimated with a bank of 4,096 recent posteriors",
        ["--latent-dim", "12", "--decoder", "positional", "--decoder-layers", "2", "--beta", "0.35",
         "--schedule", "linear", "--warmup-steps", "2000", "--tc-weight", "5", "--tc-start", "2000",
         "--tc-warmup-steps", "1500", "--tc-bank", "4096", "--epochs", "14", "--batch-size", "64"],
    ),
    "additive-b06": (
        "factorised by construction: an additive decoder (each word's logits a sum of one small network per latent "
        "dimension, each reading its z_d through 8 Fourier features) and a constant β = 0.6 from the first step",
        [*ADDITIVE_B06, "--epochs", "14", "--batch-size", "64"],
    ),
    "additive-b06-e30": (
        "the same recipe trained for 30 epochs instead of 14: reconstructs every test sentence, and three "
        "factors (subject, verb, object) stay owned — the four-valued adjective's dimension changes on fewer steps",
        [*ADDITIVE_B06, "--epochs", "30", "--batch-size", "64"],
    ),
    "gru-tc5": (
        "reconstructs and partly factorises: the autoregressive GRU decoder (2 layers, word dropout 0.6), β = 0.35 "
        "and the total-correlation penalty of `positional-tc5` estimated with a bank of 16,384 posteriors",
        ["--latent-dim", "12", "--decoder", "rnn", "--decoder-layers", "2", "--word-dropout", "0.6", "--beta", "0.35",
         "--schedule", "linear", "--warmup-steps", "2000", "--tc-weight", "5", "--tc-start", "2000",
         "--tc-warmup-steps", "1500", "--tc-bank", "16384", "--epochs", "14", "--batch-size", "64"],
    ),
    "beta4-collapsed": (
        "posterior collapse: β = 4 with a strong autoregressive decoder — z is ignored",
        ["--latent-dim", "16", "--beta", "4", "--schedule", "linear", "--warmup-steps", "500", "--epochs", "3",
         "--batch-size", "64"],
    ),
}
DEFAULT = "additive-b06"
# Recipes trained on a GPU: reproduced there when one is present (CUDA's random streams differ from the
# CPU's, so on a CPU the same command trains another draw of the recipe; the card gives two such draws).
GPU_TRAINED = {"gru-tc5"}


def _machine(gpu: bool) -> str:
    if gpu:
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, --device cuda"
    return f"{os.cpu_count()}-core CPU, torch {torch.__version__}"


def run(cmd: list[str]) -> float:
    print("$", " ".join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="recipe names (default: all)")
    ap.add_argument("--card-only", action="store_true", help="skip training and evaluation; rewrite the cards")
    ap.add_argument("--nll-samples", type=int, default=500)
    a = ap.parse_args()
    names = a.only or list(RECIPES)
    MODELS.mkdir(exist_ok=True)
    for name in names:
        if a.card_only:
            continue
        _, flags = RECIPES[name]
        out = MODELS / name
        device = []
        if name in GPU_TRAINED:
            if torch.cuda.is_available():
                device = ["--device", "cuda"]
            else:
                print(f"{name} was trained on a GPU; none here, so this CPU run trains another draw of its recipe "
                      "(see 'Third round' in models/README.md)", flush=True)
        cmd = [sys.executable, "-m", "vae_core", "train", *COMMON, *flags, *device, "--out",
               str(out.relative_to(ROOT)), "--overwrite"]
        seconds = run(cmd)
        for f in ("optimizer.safetensors", "trainer.json", "best.safetensors", "train.log"):
            (out / f).unlink(missing_ok=True)
        for d in ("checkpoint", "checkpoint.prev"):  # what resume needs; a shipped run is only loaded
            shutil.rmtree(out / d, ignore_errors=True)
        meta = {"command": "python -m vae_core train " + " ".join(cmd[4:]), "train_seconds": round(seconds),
                "machine": os.environ.get("MACHINE_NOTE", _machine(bool(device)))}
        (out / "recipe.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        run([sys.executable, "-m", "vae_core", "eval", str(out.relative_to(ROOT)), "--nll-samples",
             str(a.nll_samples), "--json"])
    (MODELS / "DEFAULT").write_text(DEFAULT + "\n", encoding="utf-8")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "model_card.py")], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
