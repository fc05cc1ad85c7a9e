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
        ("interpolation paths fully valid (lerp, 8 steps)", fmt(it.get("path_validity"))),
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
        items = per_dim.items() if isinstance(per_dim, dict) else enumerate(per_dim)
        for dim, v in items:
            top = v.get("top_factor")
            sole = v.get("sole_share", {}).get(top) if top else None
            k = kl[int(dim)] if kl and int(dim) < len(kl) else None
            lines.append(f"| {dim} | {fmt(k, 2)} | {fmt(v.get('change_rate'), 2)} | {top or '–'} | {fmt(sole, 2)} |")
    return "\n".join(lines)


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
        f"The app opens `{DEFAULT}` first (`models/DEFAULT`).",
        "",
    ]
    (MODELS / "README.md").write_text("\n".join(head + [card(n) + "\n" for n in names]), encoding="utf-8")
    print(f"wrote {MODELS / 'README.md'} ({len(names)} models)")


if __name__ == "__main__":
    main()
