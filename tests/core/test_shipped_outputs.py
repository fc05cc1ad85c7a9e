"""Every shipped run gives, on fixed inputs, the outputs it gave when the golden file was written.

Proof that a change to the model or decoding code leaves runs trained before it unchanged: posterior
means, reconstruction NLL at z = mu, greedy, beam(4) and seeded sampling decodes of fixed codes.
Regenerate (only when an output change is intended) with
`VAE_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/core/test_shipped_outputs.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from vae_core.corpus import collate
from vae_core.decode import beam_decode, greedy_decode, sample_decode
from vae_core.encoding import posterior_params, sentence_ids
from vae_core.runs import load_run

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "data" / "shipped_outputs.json"
SENTENCES = (
    "the old cat sees the dog .",
    "the happy teachers did not help the small bird .",
    "will the red horse follow the farmer ?",
    "doctors watched the sheep .",
    "the pilot calls the rabbit .",
)
N_PRIOR = 3  # seeded N(0, I) codes decoded beside the posterior means


def _runs() -> list[Path]:
    return sorted(p for p in (ROOT / "models").iterdir() if p.is_dir() and (p / "config.json").is_file())


def _outputs(run_dir: Path) -> dict:
    """What the golden file records for one run (floats rounded, tokens exact)."""
    run = load_run(run_dir)
    model, vocab = run.model, run.vocab
    ids, _ = sentence_ids(vocab, SENTENCES, lowercase=run.train_config.lowercase)
    mu, _ = posterior_params(model, ids)  # (5, D)
    tokens, lengths = collate(ids)
    with torch.inference_mode():
        nll, _ = model.reconstruction_nll(mu, tokens, lengths)  # (5,)
    prior = torch.randn(N_PRIOR, mu.size(1), generator=torch.Generator().manual_seed(0))
    codes = torch.cat([mu, prior])  # (8, D)
    greedy = greedy_decode(model, codes, vocab)
    beam = beam_decode(model, codes, vocab, beam_width=4)
    sample = sample_decode(model, codes, vocab, temperature=1.0, top_p=0.9, seed=7)
    return {
        "mu": [[round(x, 5) for x in row] for row in mu.tolist()],
        "nll": [round(x, 4) for x in nll.tolist()],
        "greedy": {"ids": greedy.ids, "scores": [round(x, 4) for x in greedy.scores]},
        "beam": {"ids": beam.ids, "scores": [round(x, 4) for x in beam.scores]},
        "sample": {"ids": sample.ids, "scores": [round(x, 4) for x in sample.scores]},
    }


def regenerate() -> None:
    """Write the golden file from the current code (run only when an output change is intended)."""
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    data = {p.name: _outputs(p) for p in _runs()}
    GOLDEN.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


if os.environ.get("VAE_REGENERATE_GOLDEN") == "1":
    regenerate()


def _close(a: list, b: list, tol: float = 1e-4) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", [p.name for p in _runs()])
def test_shipped_run_gives_recorded_outputs(name: str) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert set(golden) == {p.name for p in _runs()}, "a shipped run was added or removed: regenerate the file"
    want, got = golden[name], _outputs(ROOT / "models" / name)
    assert all(_close(w, g) for w, g in zip(want["mu"], got["mu"], strict=True))
    assert _close(want["nll"], got["nll"])
    for strategy in ("greedy", "beam", "sample"):
        assert got[strategy]["ids"] == want[strategy]["ids"], strategy
        assert _close(want[strategy]["scores"], got[strategy]["scores"]), strategy
