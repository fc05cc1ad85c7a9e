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
        + (f"positional (non-autoregressive) MLP decoder with {m.get('decoder_layers', 1)} per-position layers, "
           if m.get("decoder") == "positional" else
           f"additive (non-autoregressive) decoder: word logits a sum of one {m.get('decoder_layers', 1)}-layer "
           f"network per latent dimension ({m.get('fourier_features', 0)} Fourier features of each z_d), "
           if m.get("decoder") == "additive" else
           f"{m['rnn_type'].upper()} decoder, word dropout {m['word_dropout']}, ")
        + f"embed {m['embed_dim']}, hidden {m['hidden_dim']}, latent {m['latent_dim']}; objective: "
        f"schedule {t['schedule']}, β {t['beta']}, C_max {t['capacity_max']}, γ {t['gamma']}, TC weight "
        f"{t['tc_weight']}"
        + (f" (from step {t.get('tc_start', 0)}, warm-up {t.get('tc_warmup_steps', 0)}, bank {t.get('tc_bank', 0)})"
           if t["tc_weight"] else "")
        + f", free bits {t['free_bits']}; {t['epochs']} epochs, batch {t['batch_size']}. "
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
        ("MIG per factor", ", ".join(f"{k} {fmt(v, 2)}" for k, v in (dis.get("mig_per_factor") or {}).items())),
        (
            "DCI disentanglement / completeness / informativeness",
            " / ".join(fmt(dis.get("dci", {}).get(k)) for k in ("disentanglement", "completeness", "informativeness")),
        ),
        ("SAP", fmt(dis.get("sap"))),
        ("explicitness / BetaVAE score / FactorVAE score (chance 0.5 / 0.125 / 0.125)",
         " / ".join(fmt(v) for v in (dis.get("explicitness"), (dis.get("beta_vae") or {}).get("score"),
                                     (dis.get("factor_vae") or {}).get("score")))),
        ("disentanglement estimators (README, 'Metric conventions')",
         (dis.get("convention") or {}).get("name", "before conventions were recorded")),
        ("prior samples: Self-BLEU-4 / distinct-1 / distinct-2",
         " / ".join(fmt((ev.get("generation") or {}).get("diversity", {}).get(k))
                    for k in ("self_bleu", "distinct_1", "distinct_2"))),
        ("interpolation smoothness (LangSpace's, word edit distance, 500 paths of 11 steps)",
         fmt(((ev.get("generation") or {}).get("smoothness") or {}).get("smoothness"))),
        ("factors owned by one dimension", ", ".join(tr.get("owned_factors", [])) or "none"),
    ]
    lines += ["| measure (test split) | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    lines.append("")
    per_dim = tr.get("per_dim", {})
    if per_dim:
        lines += [
            "Which factor each active dimension mostly changes along its traversal (±3 prior s.d., 9 values, "
            "100 base sentences): share of changing steps that change that factor alone. A dimension owns a "
            "factor when that share is ≥ 0.8 and it changes something in ≥ 30% of steps; a two-valued factor "
            "(number, polarity, mood) can change at most once in a traversal's 8 steps (12.5%) and tense (3 "
            "values) about twice, so only subject, verb, object and adjective can be owned.",
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

### First round: autoregressive decoder

Runs A–I: bidirectional GRU encoder, GRU decoder with z in its initial state and at every input, embed 64,
hidden 256, trained with the CLI on this 2-core machine while other jobs ran (every run took 30+ minutes).
Figures at the epoch each run was stopped, on 500 test sentences.

| run | objective | outcome |
|---|---|---|
| A → `capacity-c20` | capacity C → 20 nats (γ 5), word dropout 0.5, latent 16 | exact match 97%, prior samples 96% valid / 95% distinct; every dimension changes several factors (MIG 0.22) |
| B | word dropout 1.0 (decoder sees no words), β 0.5, TC 4 with the minibatch-*weighted* TC estimator | unstable: reconstruction 28–39 nats after 5 epochs |
| C | β 1 (warm-up), TC 5, word dropout 0.75, latent 10 | collapsed to 2 informative dimensions by epoch 2 |
| D | β 1 (warm-up), word dropout 0.5, latent 10 | KL fell to 3.9 nats by epoch 3 (stopped to free the CPU) |
| E | word dropout 1.0, β 0.5, latent 8 | reconstruction 38–41 nats after 1.5 epochs: a GRU decoder without word inputs learns too slowly |
| F | capacity C → 20, TC 5, latent 10 | one dimension took 7.4 nats; reconstruction 7.8 nats at KL 14 (A: 1.3 at KL 19); MIG 0.26 |
| G | capacity C → 15, TC 10, latent 8 | MIG 0.14 at epoch 3 |
| H | capacity C → 20, TC 1, latent 16 | MIG 0.19, exact match 11% at epoch 9 |
| I (`tcvae-b05`, no longer shipped) | β 0.5 (warm-up), TC 2, word dropout 0.5, latent 12 | MIG 0.46 (object 0.92, number 0.91, mood 0.75); 6 active units; exact match 1.5%; no factor owned |
| `beta4-collapsed` | β 4 (warm-up) | KL 0: the autoregressive decoder models the corpus alone |

The TC runs B–I used a stratified estimator with the weight bug described below, so their TC penalty was
~5 nats too high for a factorised code. `tcvae-b05` was trained with it and is no longer shipped: its recipe
would now train a different model.

### Second round: a non-autoregressive (positional) decoder, and a TC estimate that can be trusted

Run I showed the encoder could separate factors while the autoregressive decoder mixed them again when one
dimension moved. A positional decoder (each word from z and its position alone, `--decoder positional`)
trains in 2–4 minutes here, so many more recipes could be tried (all: latent 10 unless noted, embed 64,
hidden 256, two per-position layers, batch 64, 12–14 epochs, whole test split):

| run | objective | outcome |
|---|---|---|
| P1 | β 1 (warm-up), TC 5 from the start | KL 2.5 nats in 2 dimensions: at β = 1 a 6-valued factor costs as much KL as it saves in reconstruction, and the positional decoder models per-position word frequencies without z |
| P4 | capacity C → 12, TC 3 from the start | one dimension took 5.9 nats; reconstruction 7.7 at KL 11.7: a dense one-dimensional code the MLP cannot read |
| B2 | β 0.3 (warm-up), no TC | exact match 100%, KL 13.8, 10 active units, MIG 0.14 — yet FastICA on its posterior means reaches MIG 0.50: the code is close to a *linear mixture* of the factors, so a rotation would disentangle it |
| G1 | β 0.6 (warm-up), no TC | exact match 92%, KL 10.0, 6 active units, MIG 0.23 (FastICA: 0.60) |
| C1, C3 | + TC 3–4 from step 1000–2000 (old weights) | KL fell from 14 to 4–6 nats: the estimate said ~8 nats of TC for codes ICA could nearly factorise. A check on a perfectly factorised code gave 5.5 nats: the stratified weight matrix put 1/N on column 0 instead of the diagonal (the reference code's bug, rtqichen/beta-tcvae PR #1); fixed in `vae_core.objective`, with a test |
| K1 | β 0.6, TC 3 from step 2000 (fixed weights) | MIG 0.61 but exact match 26%: the batch estimate went to −2 nats (it is biased low where posteriors overlap) and the model blurred its code to push it lower |
| K3, K6 | + only a positive estimate penalised (TC 3, 8) | exact match 94–97%, MIG 0.35: the estimate stayed below 0, so nothing was penalised any more |
| K7 | + a bank of the 4,096 most recent posteriors in the estimate | MIG 0.50, object owned; exact match 73% |
| K9 | β 0.35, TC 3, bank 4,096 | MIG 0.53, exact match 92%, object owned (0.84); subject 0.67, verb 0.60 |
| K12 | β 0.2, TC 3, bank 4,096 | MIG 0.43, 9 active units, object owned |
| K13 → `positional-tc5` | β 0.35, TC 5, bank 4,096, latent 12 | MIG 0.58, exact match 97%, verb, object and adjective owned; subject split over two dimensions (0.78 and 0.70) |
| free bits 0.6 (β 0.6, TC 3, bank) | | reconstruction 3.8 nats at KL 7.4: the floor kept 10 dimensions half-used instead of separating factors |
| K13 with TC 8 | | MIG 0.58, the same three factors owned, exact match 93%: no better |
| K13 with latent 16 | | 6 active units, MIG 0.26, only the object owned, exact match 91% |
| K13 with a bank of 8,192 | | stopped at step 1,440 of 4,088 for lack of time (the larger bank halves the speed) |

### Third round: 24 recipes on a GPU

One session of this project was lent an NVIDIA H100 for 15 minutes. The trainings below ran there as
separate `python -m vae_core train ... --device cuda` processes sharing the GPU (torch 2.11.0+cu130): first 16
at once (~9,100 tokens/s each; a time limit stopped them at step ~3,300 of 4,088, epoch 11 of 14, except v06),
then 8 at once (~15,500 tokens/s each, all 14 epochs in ~157 s). All were evaluated on the whole test split
with the same traversal test as the cards. Base recipe: `positional-tc5`'s; "bank 16k" = `--tc-bank 16384`.

| run | change from the base | outcome |
|---|---|---|
| v00, v01, v02 (epoch 11) | seeds 0, 1, 2 | owned: none / object / object + adjective; MIG 0.38 / 0.61 / 0.43; exact match 99% / 93% / 95% |
| v03, v04, v05 (epoch 11) | bank 16k, seeds 0, 1, 2 | owned: none / none / object; MIG 0.49 / 0.58 / 0.40 |
| p3, p4 | bank 16k, seeds 3, 4, all 14 epochs | nothing owned; MIG 0.32 / 0.46; exact match 74% / 81% |
| v06 | batch 128 + bank 16k (finished) | exact match 100%, KL 12.2, MIG 0.15: with half the steps the code stayed dense |
| v07, v14 | TC 8 / TC 10 (bank 16k) | MIG 0.47 / 0.54, exact match 71% / 63%, nothing owned |
| v08, v09 | latent 10 / 8 (bank 16k) | MIG 0.63 / 0.54, exact match 61% / 44%, nothing owned |
| v10, v11, v12 | 20 epochs (stopped at 11) / β 0.25 / 3 decoder layers | MIG 0.51 / 0.48 / 0.49, nothing owned |
| v15 | hidden 512 (bank 16k) | MIG 0.59, object and adjective owned, exact match 91% |
| r0 | **autoregressive** 2-layer GRU decoder, word dropout 0.5, TC 5, bank 16k | exact match 98.2%, prior samples 99.8% valid / 97.1% distinct, interpolation paths 100% (500 pairs), KL 7.8, 12 active units, MIG 0.38; object and adjective owned |
| r1 | r0, seed 1 | exact match 98.0%, paths 100%, MIG 0.29; **subject** (0.82 alone) and verb (0.85) owned — the only run in which the subject was |
| r2 → `gru-tc5` | r0 with word dropout 0.6 | exact match 97.4%, prior samples 99.6% / 96.1%, paths 100%, MIG 0.52; object and adjective owned; a subject dimension changes the subject alone on 96% of its changing steps but changes something on only 20% |
| r3, r4, r5 | r0 with TC 8 / latent 16 / β 0.5 | MIG 0.37 / 0.33 / 0.49; exact match 91% / 89% / 99%; object (and adjective for r3) owned |
| r2 on this CPU, seeds 0 and 1 | the same command with `--device cpu` (60 min each, two at once) | seed 0: exact match 92.8%, prior samples 99.7% / 96.5%, paths 100%, MIG 0.47, verb (0.89) and object (1.00) owned; seed 1: exact match 70.0%, paths 100%, MIG 0.32, nothing owned |

What this round showed:
- The seed moves the owned factors as much as any change of recipe: three seeds of one recipe own 0, 1
  and 2 factors. `positional-tc5`'s three owned factors are a favourable draw of its recipe (its CPU run,
  reproduced exactly by the script), not what the recipe gives on average; two more seeds with a larger
  bank owned none.
- With the corrected TC estimator, the autoregressive decoder does what the first round could not: every
  reconstruction target with room to spare (paths 100% where `capacity-c20` has 92%) and MIG up to 0.52,
  with two factors owned in most seeds. Its slider moves almost never produce an ungrammatical sentence
  (at most 1% invalid traversal steps in any dimension), which the positional decoder cannot promise.
- r2 is shipped as `gru-tc5`, trained on the GPU. CUDA draws other random numbers than the CPU (dropout
  masks, the reparameterisation noise), so the same command on a CPU trains another draw of the recipe:
  the two CPU seeds above span what to expect (exact match 70–93%, MIG 0.32–0.47, 0–2 factors owned).
  `python scripts/shipped_models.py --only gru-tc5` runs it with `--device cuda` where a GPU is present
  and says so when it falls back to the CPU.

### Fourth round: a decoder that adds one term per dimension

The third round's runs separated the factors in their codes (MIG up to 0.6) but their decoders mixed them
again along a traversal. An *additive* decoder (`--decoder additive`: each word's logits are a sum of one
small network per latent dimension; Lachapelle et al. 2023) cannot: a dimension only adds its own evidence
for words. Runs on this 2-core CPU, two at once (4–5 min each, a constant β about 3× faster than a TC run
with a bank), latent 12, 14 epochs, batch 64, whole test split:

| run | recipe | outcome |
|---|---|---|
| a1 | additive, β 0.35 (warm-up), no TC | exact match 100%, MIG 0.35; every changing dimension changes one factor alone (sole shares 0.97–1.00 on the content factors) but the object, verb and adjective are each spread over **two** dimensions (a hexagon of six object values in the plane of two dimensions), so each dimension changes something on only 20–25% of steps; object owned once |
| a2, a3, a4 | a1 + TC 5 (bank 4,096) / β 0.6 or 0.8 / latent 8 and β 0.5 | the same picture (the TC estimate stayed near 0 — 0.003 nats on average over the last 600 steps — so it penalised almost nothing); 1 / 0 and 0 / 0 owned |
| a5 | a1 with a constant β 0.5 (no warm-up) | subject now read cleanly (two dimensions, 1.00 alone), verb owned; 1 owned |
| f1 | + 8 Fourier features of each z_d, constant β 0.5 | subject, verb and adjective owned; MIG 0.54, exact match 98.7% |
| f2 | f1, seed 1 | subject, verb and object owned (the adjective changes 29% of steps, 1.00 alone); exact match 100% |
| f3 | f1 with warm-up instead of a constant β | nothing owned: the content factors again sit in two dimensions each (while the code forms, β is near 0 and nothing favours one axis) |
| f4, f5 | constant β 0.55, seeds 0, 1 | seed 0 lost part of its code (7 active units, exact match 24%), subject owned; seed 1: verb, object, adjective owned, exact match 99.4% |
| **f6 → `additive-b06`** | constant β 0.6 | **all four content factors owned** (subject 0.98, verb 0.97, object 0.97, adjective 0.97 of changing steps), MIG 0.75, exact match 86.8% |
| f7, f8, f9 | f6, seeds 1, 2, 3 | seed 1 lost part of its code (5 active units, exact match 20%), object owned; seed 2: **all four owned**, MIG 0.67, exact match 88.8%; seed 3: object and adjective owned, verb and subject just short (0.79 and 0.78 alone), MIG 0.62, exact match 90.1% |
| g0 → `additive-b06-e30`, g1, g3, g2 | f6 with 30 epochs instead of 14, seeds 0, 1, 3, 2 | exact match 100% / 99.2% / 99.8% / 100%; owned: subject, verb, object (the adjective dimension changes on 26% of steps, 1.00 alone) / verb, object, adjective / subject, object / subject, verb, object (adjective 27%, 1.00 alone) |

What this round showed:
- A scalar network learns smooth functions of its input first (the spectral bias; Tancik et al. 2020), so
  six values along one axis are harder for it to read than two or three along each of two axes, and the code
  settles on two. Giving each z_d to its network through sin/cos(k·π/3·z_d), k = 1…8, removes that
  preference; a constant β from the first step then makes every nat count while the code forms, and a
  Gaussian code pays a little less KL for six values on one line than in a plane (a rough calculation with
  clusters 4 posterior s.d. apart: ≈ 1.9 nats against 2.0 for a 2 × 3 grid and 2.2 for a hexagon). The
  warm-up run with the same features owned nothing.
- With the additive decoder a moving dimension almost never changes a second factor (sole shares ≥ 0.96 on
  every owned dimension), so what decides ownership is only whether a factor sits on one axis.
- A constant β of 0.55–0.6 from the first step is a strong pressure while the decoder is still poor (early
  on, a factor saves far less than the 1.79 nats of a perfectly read six-valued one), so some seeds drop
  part of the code in the first epochs and do not recover within 14 (f4, f7: exact match 20–24%). β 0.5
  never did, and owned three factors in both seeds.
- Training longer keeps adding to the code (the 14-epoch runs were still adding active units at the end):
  with 30 epochs every seed reconstructs (99–100%), including the one that had lost part of its code
  (f7 → g1), but the owned counts were 3, 3, 2 and 3 — a four-valued factor changes on at most
  three of a traversal's eight steps, and as its values settle the adjective's dimension of seed 0 fell
  to 26% (seed 2: 27%). `additive-b06` is the 14-epoch run of seed 0; g0, the 30-epoch run of seed 0, is
  shipped as `additive-b06-e30`, the better-reconstructing variant of the same model.
- The price: the additive decoder predicts every position on its own, so — as with `positional-tc5` — prior
  samples and interpolation paths are less often grammatical than with the autoregressive `gru-tc5`; and
  `additive-b06` reconstructs 86.8% of the test sentences exactly: every error is a wrong verb (13.2% of
  sentences; every other factor comes back right, and every decode parses) — with a present- or
  past-tense verb the tense and number dimensions carry part of the verb's identity, and their evidence
  can outvote the verb dimension's. The 30-epoch `additive-b06-e30` makes no such errors.

### Against the issue's targets

- Best-reconstructing model, `gru-tc5`: exact match 97.4% (target ≥ 95%), prior samples 99.6% valid
  (≥ 95%) and 96.1% distinct (≥ 90%), interpolation paths 100% fully valid over 500 test pairs (target ≥ 90%;
  95% interval 99.2–100%), NLL 10.21 nats against the corpus entropy of 9.94. It also has MIG 0.52 and owns
  the object and the adjective. `capacity-c20` meets the same targets more narrowly (96.9%, 96.5% / 95.3%,
  paths 92.0%, interval 89.3–94.1%; the first card's 88% was over 50 pairs). `positional-tc5` reconstructs
  as well (97.4%) but its samples and paths are less often grammatical (85% and 60%): its words are predicted
  independently given z.
- Most disentangled model, `additive-b06`: MIG 0.75 on its active dimensions (target ≥ 0.5) and **four
  factors owned** by one dimension each (subject, verb, object, adjective: 0.97–0.98 of changing steps change
  that factor alone, each dimension changing something on 33–51% of steps; target: four). Its recipe reached
  four in 2 of the 4 seeds run (f6, f8); f9 owned two, its verb and subject dimensions just under the
  0.8 bar (0.79, 0.78); f7 lost part of its code early. Number, polarity and
  mood, having two values, cannot pass the 30%-of-steps test (at most 12.5%), and tense (three) hardly can.
- `positional-tc5` (the previous default): MIG 0.58 and three factors owned (verb, object, adjective) —
  a favourable draw of its recipe: 8 more runs of it in the third round owned 0–2. The subject, never owned
  by it, is owned in 8 of the 13 additive runs with Fourier features.
- Tried in the third round and not better for owned factors: a bank of 16,384, batch 128, TC 8 and 10,
  latent 8, 10 and 16, β 0.25 and 0.5, 3 decoder layers, hidden 512, 20 epochs. Not tried: seeds in bulk
  (picking the best of many seeds would fit the target by selection rather than by recipe; the shipped
  `additive-b06` is seed 0, the recipe's first run), and objectives that separate the subject's lemma from
  its number (supervision of any kind is outside the issue's frame).
"""


def main() -> None:
    names = [n for n in RECIPES if (MODELS / n / "config.json").is_file()]
    head = [
        "# Shipped models",
        "",
        "Runs trained by this project's own CLI on the built-in corpus (`vae_core.synthetic`: 20,736 sentences, "
        "8 factors). Together they show the β trade-off: a reconstructing code (`capacity-c20`), factorised ones "
        "(`additive-b06`, its longer-trained `additive-b06-e30`, `positional-tc5`), one that does both in part "
        "(`gru-tc5`), and a collapsed one. "
        "Reproduce them from scratch with `python scripts/shipped_models.py` (figures below were measured by "
        "`python -m vae_core eval --nll-samples 500` on the test split).",
        "",
        f"The app opens `{DEFAULT}` first (`models/DEFAULT`): its sliders show interpretable factors best — "
        "four separate dimensions change the subject, the verb, the object and the adjective, each alone on "
        "97–98% of the steps that change anything — and it gives back 87% of the sentences you type exactly "
        "(98% of the words). `additive-b06-e30`, the same recipe trained twice as long, gives back every test "
        "sentence with three such dimensions (subject, verb, object); `positional-tc5` gives back 97% with "
        "three (verb, object, adjective). `gru-tc5` reconstructs as well with an autoregressive decoder whose samples, slider moves "
        "and interpolation paths stay grammatical (99.6%, 100% of paths); two of its dimensions own the object "
        "and the adjective, and the others mix factors. `capacity-c20` reconstructs too, but each of its "
        "dimensions changes several factors at once; `beta4-collapsed` shows posterior collapse.",
        "",
    ]
    text = "\n".join(head + [card(n) + "\n" for n in names]) + "\n" + HOW
    (MODELS / "README.md").write_text(text, encoding="utf-8")
    print(f"wrote {MODELS / 'README.md'} ({len(names)} models)")


if __name__ == "__main__":
    main()
