"""Frozen, validated configuration for models, training and decoding.

Every option a run needs is here, so a run directory's config.json rebuilds it exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

RNNType = Literal["gru", "lstm"]
Schedule = Literal["constant", "linear", "sigmoid", "cyclical", "capacity"]
Optimizer = Literal["adam", "sgd"]
Strategy = Literal["greedy", "beam", "sample"]

Decoder = Literal["rnn", "positional", "additive"]

RNN_TYPES = ("gru", "lstm")
DECODERS = ("rnn", "positional", "additive")
NON_AUTOREGRESSIVE = ("positional", "additive")  # decoders that predict each word from z and its position
SCHEDULES = ("constant", "linear", "sigmoid", "cyclical", "capacity")
OPTIMIZERS = ("adam", "sgd")
STRATEGIES = ("greedy", "beam", "sample")

# Sizes beyond these are refused before any allocation (a corrupted or hostile config.json
# must not make the app allocate gigabytes).
MAX_VOCAB = 500_000
MAX_EMBED = 8192
MAX_HIDDEN = 8192
MAX_LATENT = 1024
MAX_LAYERS = 8
MAX_POSITIONS = 10_001
MAX_FOURIER = 64


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")


def _check_float(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not (lo <= float(value) <= hi):
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Architecture of a sentence β-VAE (RNN encoder → Gaussian z → RNN decoder)."""

    vocab_size: int = 0  # set from the vocabulary; 0 means "not yet known"
    embed_dim: int = 128  # small vocabularies (synthetic: ~60 words) need little more
    hidden_dim: int = 256  # one RNN state, per direction
    latent_dim: int = 16  # enough for 8 factors with room for inactive units
    rnn_type: RNNType = "gru"  # GRU trains a little faster than LSTM at equal quality here
    encoder_layers: int = 1
    bidirectional: bool = True  # the encoder sees the whole sentence; the decoder never does
    decoder_layers: int = 1
    word_dropout: float = 0.0  # chance a decoder input word becomes <unk> (Bowman et al. 2016)
    embed_dropout: float = 0.0  # dropout on embeddings, both encoder and decoder
    z_to_inputs: bool = True  # concatenate z to every decoder input, not only the initial state
    # "rnn": autoregressive RNN decoder. "positional": non-autoregressive — every position's word is
    # predicted from z and the position alone (an MLP), so z must carry the whole sentence.
    # "additive": non-autoregressive too, with word logits that are a sum of one term per latent
    # dimension (each its own small network of z_d and the position).
    decoder: Decoder = "rnn"
    max_positions: int = 0  # non-autoregressive decoders: positions it can emit; set from the corpus max_len
    # additive decoder: each z_d enters its network with K Fourier features sin/cos(k·π/3·z_d), k = 1…K,
    # beside z_d itself, so a single dimension can separate many values from the start (0 = z_d alone)
    fourier_features: int = 0

    def __post_init__(self) -> None:
        _check_int("vocab_size", self.vocab_size, 0, MAX_VOCAB)
        _check_int("embed_dim", self.embed_dim, 1, MAX_EMBED)
        _check_int("hidden_dim", self.hidden_dim, 1, MAX_HIDDEN)
        _check_int("latent_dim", self.latent_dim, 1, MAX_LATENT)
        _check_int("encoder_layers", self.encoder_layers, 1, MAX_LAYERS)
        _check_int("decoder_layers", self.decoder_layers, 1, MAX_LAYERS)
        _check_choice("rnn_type", self.rnn_type, RNN_TYPES)
        _check_choice("decoder", self.decoder, DECODERS)
        _check_int("max_positions", self.max_positions, 0, MAX_POSITIONS)
        _check_int("fourier_features", self.fourier_features, 0, MAX_FOURIER)
        if self.fourier_features and self.decoder != "additive":
            raise ValueError(f"fourier_features applies to the additive decoder only (decoder is {self.decoder!r})")
        _check_float("word_dropout", self.word_dropout, 0.0, 1.0)
        _check_float("embed_dropout", self.embed_dropout, 0.0, 0.99)
        if not isinstance(self.bidirectional, bool) or not isinstance(self.z_to_inputs, bool):
            raise ValueError("bidirectional and z_to_inputs must be true or false")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Objective, schedule and optimisation of one training run."""

    beta: float = 1.0  # weight on KL at the end of any warm-up
    schedule: Schedule = "linear"  # how the KL weight moves with the step
    warmup_steps: int = 2000  # linear/sigmoid: steps to reach beta
    cycles: int = 4  # cyclical: number of cycles over total steps (Fu et al. 2019)
    cycle_ratio: float = 0.5  # cyclical: share of each cycle spent rising
    capacity_max: float = 15.0  # capacity: C_max in nats (Burgess et al. 2018)
    capacity_steps: int = 5000  # capacity: steps for C to rise from 0 to C_max
    gamma: float = 10.0  # capacity: weight on |KL − C|
    free_bits: float = 0.0  # per-dimension KL floor in nats (Kingma et al. 2016); 0 = off
    tc_weight: float = 0.0  # extra weight on total correlation (β-TCVAE: total = β·KL + tc·TC)
    tc_start: int = 0  # step at which the TC penalty starts (a code must form before it is factorised)
    tc_warmup_steps: int = 0  # steps for the TC weight to rise linearly from 0 after tc_start (0 = at once)
    tc_bank: int = 0  # recent posteriors (from earlier batches) added to the batch's to estimate q(z); 0 = batch only
    epochs: int = 10
    max_steps: int = 0  # stop after this many steps (0 = run all epochs)
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: Optimizer = "adam"
    grad_clip: float = 5.0  # max gradient norm; 0 = off
    seed: int = 0
    max_len: int = 50  # longer sentences are cut (and counted)
    min_freq: int = 1  # words seen fewer times become <unk>
    max_vocab: int = 20000
    lowercase: bool = False  # PTB is already lower-cased; keep user text as typed
    eval_every: int = 0  # validate every N steps as well as each epoch (0 = per epoch only)
    log_every: int = 10  # write a metrics line every N steps

    def __post_init__(self) -> None:
        _check_float("beta", self.beta, 0.0, 1000.0)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_int("warmup_steps", self.warmup_steps, 0, 10**9)
        _check_int("cycles", self.cycles, 1, 10**6)
        _check_float("cycle_ratio", self.cycle_ratio, 0.01, 1.0)
        _check_float("capacity_max", self.capacity_max, 0.0, 10_000.0)
        _check_int("capacity_steps", self.capacity_steps, 0, 10**9)
        _check_float("gamma", self.gamma, 0.0, 10_000.0)
        _check_float("free_bits", self.free_bits, 0.0, 100.0)
        _check_float("tc_weight", self.tc_weight, 0.0, 1000.0)
        _check_int("tc_start", self.tc_start, 0, 10**9)
        _check_int("tc_warmup_steps", self.tc_warmup_steps, 0, 10**9)
        _check_int("tc_bank", self.tc_bank, 0, 65_536)
        _check_int("epochs", self.epochs, 1, 100_000)
        _check_int("max_steps", self.max_steps, 0, 10**9)
        _check_int("batch_size", self.batch_size, 1, 65_536)
        _check_float("lr", self.lr, 1e-8, 10.0)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_float("grad_clip", self.grad_clip, 0.0, 1e6)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        _check_int("max_len", self.max_len, 1, 10_000)
        _check_int("min_freq", self.min_freq, 1, 10**9)
        _check_int("max_vocab", self.max_vocab, 5, MAX_VOCAB)
        _check_int("eval_every", self.eval_every, 0, 10**9)
        _check_int("log_every", self.log_every, 1, 10**9)


@dataclass(frozen=True, slots=True)
class DecodeConfig:
    """How token sequences are produced from z."""

    strategy: Strategy = "greedy"
    beam_width: int = 4
    length_penalty: float = 1.0  # beam: score / length**alpha (alpha = 0 turns it off)
    temperature: float = 1.0
    top_k: int = 0  # 0 = no cut
    top_p: float = 1.0  # 1 = no nucleus cut
    max_len: int = 40
    seed: int = 0

    def __post_init__(self) -> None:
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_int("beam_width", self.beam_width, 1, 64)
        _check_float("length_penalty", self.length_penalty, 0.0, 5.0)
        _check_float("temperature", self.temperature, 1e-3, 100.0)
        _check_int("top_k", self.top_k, 0, MAX_VOCAB)
        _check_float("top_p", self.top_p, 1e-6, 1.0)
        _check_int("max_len", self.max_len, 1, 1000)
        _check_int("seed", self.seed, 0, 2**31 - 1)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain dict of a config dataclass (JSON-ready)."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build a config from a dict, refusing unknown keys with a clear message."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
    return cls(**data)


__all__ = [
    "ModelConfig",
    "TrainConfig",
    "DecodeConfig",
    "to_dict",
    "from_dict",
    "field",
]
