"""Tiny fixtures shared by core tests: a toy corpus and configs (vocab ~20, embed 8, hidden 16, latent 4)."""

from __future__ import annotations

from vae_core.config import ModelConfig, TrainConfig
from vae_core.corpus import Corpus, TextSet

TOY = (
    "the cat sat on the mat .",
    "a dog ran in the park .",
    "the bird sang a song .",
    "a cat saw the dog .",
    "the dog sat .",
    "birds sing .",
)

# statements and questions, with negation: for decoding and the exploring CLI verbs
MIXED = (
    "the cat sees the dog .",
    "a dog chases the red bird ?",
    "the birds do not sing .",
    "will the old cat sleep ?",
    "dogs like birds .",
    "the farmer helps a cat .",
)


def toy_corpus(n_repeat: int = 1) -> Corpus:
    s = TOY * n_repeat
    return Corpus("toy", TextSet(s), TextSet(TOY[:3]), TextSet(TOY[3:]), spec="toy")


def tiny_model_config(**kw) -> ModelConfig:
    base = dict(embed_dim=8, hidden_dim=16, latent_dim=4)
    base.update(kw)
    return ModelConfig(**base)


def tiny_train_config(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=3, log_every=1, schedule="constant", beta=1.0)
    base.update(kw)
    return TrainConfig(**base)
