"""Write models/README.md (the model cards) from each shipped run's config, recipe and summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
sys.path.insert(0, str(ROOT))
from scripts.shipped_models import DEFAULT, RECIPES  # noqa: E402


def fmt(x, nd=3):
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def card(name: str) -> str:
    d = MODELS / name
    cfg = json.loads((d / "config.json").read_text())
    summ = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else {}
    recipe = json.loads((d / "recipe.json").read_text()) if (d / "recipe.json").is_file() else {}
    ev = summ.get("eval", {})
    size_mb = sum(f.stat().st_size for f in d.iterdir() if f.is_file()) / 1e6
    lines = [f"## `{name}`{' (default)' if name == DEFAULT else ''}", "", RECIPES.get(name, ("", []))[0], ""]
    lines += ["```bash", recipe.get("command", "(command not recorded)"), "```", ""]
    m, t = cfg["model"], cfg["train"]
    lines.append(
        f"Model: {m['rnn_type'].upper()} {'bidirectional ' if m['bidirectional'] else ''}encoder, "
        f"embed {m['embed_dim']}, "
        f"hidden {m['hidden_dim']}, latent {m['latent_dim']}, word dropout {m['word_dropout']}; objective: "
        f"schedule {t['schedule']}, β {t['beta']}, C_max {t['capacity_max']}, γ {t['gamma']}, TC weight "
        f"{t['tc_weight']}, free bits {t['free_bits']}; {t['epochs']} epochs, batch {t['batch_size']}. "
        f"Run directory {size_mb:.1f} MB."
    )
    lines.append("")
    if recipe.get("train_seconds"):
        lines.append(
            f"Training time: {recipe['train_seconds'] / 60:.1f} min on {recipe.get('machine', 'this machine')}."
        )
        lines.append("")
    if not ev:
        lines.append("Not evaluated yet: `python -m vae_core eval models/" + name + " --nll-samples 500`.")
        return "\n".join(lines)
    ps, it, tr = ev.get("prior_samples", {}), ev.get("interpolation", {}), ev.get("traversals", {})
    dis = ev.get("disentanglement", {})
    rows = [
        ("test sentences", ev.get("n_sentences")),
        ("reconstruction exact match (greedy, z = posterior mean)", fmt(ev.get("exact_match"))),
        ("token accuracy", fmt(ev.get("token_accuracy"))),
        ("BLEU", fmt(ev.get("bleu"))),
        (f"NLL (importance sampled, k = {ev.get('nll_samples')}) nats/sentence", fmt(ev.get("nll"), 2)),
        ("PPL (counts <eos>)", fmt(ev.get("ppl"), 3)),
        ("−ELBO nats/sentence", fmt(ev.get("nll_bound"), 2)),
        ("KL nats/sentence", fmt(ev.get("kl"), 2)),
        ("mutual information I(x;z)", fmt(ev.get("mi"), 2)),
        ("active units (Cov > 0.01)", f"{ev.get('active_units')} / {m['latent_dim']}"),
        ("prior samples valid (parse succeeds)", fmt(ps.get("validity"))),
        ("prior samples distinct", fmt(ps.get("distinct"))),
        ("interpolation paths fully valid (lerp, 8 steps, 500 test pairs; 95% interval)",
         fmt(it.get("path_validity")) + (" ({:.3f}–{:.3f})".format(*it["path_validity_ci95"])
                                         if it.get("path_validity_ci95") else "")),
        ("interpolation steps valid", fmt(it.get("step_validity"))),
        ("MIG (active dims)", fmt(dis.get("mig"))),
        (
            "DCI disentanglement / completeness / informativeness",
            " / ".join(fmt(dis.get("dci", {}).get(k)) for k in ("disentanglement", "completeness", "informativeness")),
        ),
        ("SAP", fmt(dis.get("sap"))),
        ("factors owned by one dimension", ", ".join(tr.get("owned_factors", [])) or "none"),
    ]
    lines += ["| measure (test split) | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    lines.append("")
    per_dim = tr.get("per_dim", {})
    if per_dim:
        lines += [
            "Which factor each active dimension mostly changes along its traversal (±3 prior s.d., 9 values, "
            "100 base sentences): share of changing steps that change that factor alone.",
            "",
            "| dim | KL | changes something | top factor | changes it alone |",
            "|---|---|---|---|---|",
        ]
        kl = ev.get("kl_per_dim", [])
        for v in per_dim:
            dim = v["dim"]
            top = v.get("top_factor")
            sole = v.get("sole_share", {}).get(top) if top else None
            k = kl[int(dim)] if kl and int(dim) < len(kl) else None
            lines.append(f"| {dim} | {fmt(k, 2)} | {fmt(v.get('change_rate'), 2)} | {top or '–'} | {fmt(sole, 2)} |")
    return "\n".join(lines)


HOW = """## How these recipes were reached (and what did not work)

All runs below: bidirectional GRU encoder, GRU decoder with z in its initial state and at every input,
embed 64, hidden 256, trained with the CLI on this 2-core machine while other jobs ran (so every run took
30+ minutes and only nine could be tried). Figures at the epoch each run was stopped, on 500 test sentences.

| run | objective | outcome |
|---|---|---|
| A → `capacity-c20` | capacity C → 20 nats (γ 5), word dropout 0.5, latent 16 | exact match 97%, prior samples 96% valid / 95% distinct; every dimension changes several factors (MIG 0.22) |
| B | word dropout 1.0 (decoder sees no words), β 0.5, TC 4 with the minibatch-*weighted* TC estimator | unstable: reconstruction 28–39 nats after 5 epochs; with sharp posteriors that estimator overstates TC by about (D−1)·log(B·N), so `vae_core.objective` now uses minibatch *stratified* sampling |
| C | β 1 (warm-up), TC 5, word dropout 0.75, latent 10 | collapsed to 2 informative dimensions by epoch 2 |
| D | β 1 (warm-up), word dropout 0.5, latent 10 | KL fell to 3.9 nats by epoch 3 (stopped to free the CPU) |
| E | word dropout 1.0, β 0.5, latent 8 | reconstruction 38–41 nats after 1.5 epochs: a decoder without word inputs learns too slowly |
| F | capacity C → 20, TC 5, latent 10 | one dimension took 7.4 nats; reconstruction 7.8 nats at KL 14 (A: 1.3 at KL 19); MIG 0.26 |
| G | capacity C → 15, TC 10, latent 8 | MIG 0.14 at epoch 3 |
| H | capacity C → 20, TC 1, latent 16 | MIG 0.19, exact match 11% at epoch 9 |
| I → `tcvae-b05` | β 0.5 (warm-up), TC 2, word dropout 0.5, latent 12 | MIG 0.46 (object 0.92, number 0.91, mood 0.75); 6 active units; exact match 1.5% |
| `beta4-collapsed` | β 4 (warm-up) | KL 0: the autoregressive decoder models the corpus alone |

Against the issue's targets: the reconstructing model meets exact match ≥ 95% (96.9%), prior validity ≥ 95%
(96.5%) and distinctness ≥ 90% (95.3%), but not interpolation-path validity ≥ 90% (88%; 97.7% of the steps
are valid). The factorised model reaches MIG 0.46 (target 0.5) and owns no factor by the generation-side test
(≥ 80% of changing traversal steps change one factor alone): the encoder separates object, number and mood
into single dimensions, but the autoregressive decoder reads each of those dimensions together with the
others, so moving one of them alone also changes other words. Paths not yet tried for lack of CPU time:
longer training, a non-autoregressive or bag-of-words auxiliary decoder, and TC with a larger batch.
"""


def main() -> None:
    names = [n for n in RECIPES if (MODELS / n / "config.json").is_file()]
    head = [
        "# Shipped models",
        "",
        "Runs trained by this project's own CLI on the built-in corpus (`vae_core.synthetic`: 20,736 sentences, "
        "8 factors). Together they show the β trade-off: one model reconstructs, one shows the factorised end, "
        "one has collapsed. Reproduce all of them from scratch with `python scripts/shipped_models.py` "
        "(figures below were measured by `python -m vae_core eval --nll-samples 500` on the test split).",
        "",
        f"The app opens `{DEFAULT}` first (`models/DEFAULT`): it reconstructs what you type (so every slider starts "
        "from your own sentence) and each of its active dimensions changes something along its traversal. "
        "`tcvae-b05` separates more factors in its code (higher MIG) but rarely gives your sentence back.",
        "",
    ]
    text = "\n".join(head + [card(n) + "\n" for n in names]) + "\n" + HOW
    (MODELS / "README.md").write_text(text, encoding="utf-8")
    print(f"wrote {MODELS / 'README.md'} ({len(names)} models)")


if __name__ == "__main__":
    main()
