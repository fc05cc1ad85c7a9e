"""Frozen, validated configuration for models, training and decoding — and the one declaration of every setting.

Every option a run needs is here, so a run directory's config.json rebuilds it exactly. Each field is
declared once with `setting(default, help, ...)`: its type (the annotation), default, bounds, choices
(a `Literal`), help text, Train-page label and the CLI flag where it is not `--field-name`. Validation
(`__post_init__`), the train and sweep command lines (`vae_core.cli`, `vae_core.cli_sweep`) and the Train
page's widgets (`ui.settings`) are all derived from these declarations; a new option is one `setting(...)`
line here plus the code that uses it.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

RNNType = Literal["gru", "lstm"]
Schedule = Literal["constant", "linear", "sigmoid", "cyclical", "capacity"]
Optimizer = Literal["adam", "sgd"]
Strategy = Literal["greedy", "beam", "sample"]

Decoder = Literal["rnn", "positional", "additive"]
# how a sentence is cut into words: "lab" splits punctuation off words; "whitespace" reads already
# tokenised text (Penn Treebank) as given, so its token counts (and PPL) are the published ones
Tokenization = Literal["lab", "whitespace"]
TOKENIZATIONS: tuple[str, ...] = typing.get_args(Tokenization)
Tracking = Literal["off", "tensorboard"]  # where a run's curves go besides metrics.jsonl (vae_core.tracking)

RNN_TYPES: tuple[str, ...] = typing.get_args(RNNType)
DECODERS: tuple[str, ...] = typing.get_args(Decoder)
NON_AUTOREGRESSIVE = ("positional", "additive")  # decoders that predict each word from z and its position
SCHEDULES: tuple[str, ...] = typing.get_args(Schedule)
OPTIMIZERS: tuple[str, ...] = typing.get_args(Optimizer)
STRATEGIES: tuple[str, ...] = typing.get_args(Strategy)

# Sizes beyond these are refused before any allocation (a corrupted or hostile config.json
# must not make the app allocate gigabytes).
MAX_VOCAB = 500_000
MAX_EMBED = 8192
MAX_HIDDEN = 8192
MAX_LATENT = 1024
MAX_LAYERS = 8
MAX_POSITIONS = 10_001
MAX_FOURIER = 64
MAX_STEPS = 10**9

Kind = Literal["bool", "int", "float", "choice"]
GROUPS = ("objective", "model", "optimisation", "data", "decode")  # Train-page sections (decode: not on it)


@dataclass(frozen=True, slots=True)
class Setting:
    """The declaration of one config field: how it is checked, offered on the command line and shown on a page.

    `name`, `owner`, `default`, `kind` and `choices` are filled in by `declared()` from the dataclass field.
    """

    help: str  # one or two sentences for the user (CLI --help, the page's tooltip)
    lo: float | None = None  # inclusive bounds of a number
    hi: float | None = None
    label: str = ""  # the Train page's label ("" = the field name)
    flag: str = ""  # CLI flag where it is not --field-name (e.g. --rnn); for a bool true by default, the flag
    # that turns it off (--unidirectional); "" = --field-name (--no-field-name for such a bool)
    group: str = "optimisation"  # Train-page section, one of GROUPS
    advanced: bool = False  # behind the page's "More settings" expander
    step: float | None = None  # page widget step (None: 1 for integers, 0.1 for numbers)
    fmt: str | None = None  # page number format (e.g. "%.5f")
    slider: bool = False  # page shows a slider between lo and hi instead of a number box
    suggested: Any = None  # what the page offers when the setting becomes relevant, if not the default
    when: tuple[str, tuple[Any, ...]] | None = None  # relevant only when that setting has one of these values
    when_positive: str = ""  # relevant only when that numeric setting is > 0
    internal: bool = False  # set by the code (from the corpus), never by the user: no flag, no widget
    log: bool = False  # a sweep range LO:HI of this setting is drawn on a log scale unless told otherwise
    # filled in by declared()
    name: str = ""
    owner: str = ""  # "model", "train" or "decode": the config.json object the value lives in
    default: Any = None
    kind: Kind = "float"
    choices: tuple[Any, ...] = ()

    @property
    def cli_flag(self) -> str:
        """The train/sweep CLI flag (for a bool true by default: the flag that sets it false)."""
        if self.flag:
            return self.flag
        dashed = "--" + self.name.replace("_", "-")
        return "--no-" + dashed[2:] if self.kind == "bool" and self.default is True else dashed

    @property
    def title(self) -> str:
        return self.label or self.name


def setting(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - "help" is the word argparse uses
    """A dataclass field with its declaration in the metadata (see `Setting` for the keywords)."""
    return field(default=default, metadata={"setting": Setting(help, **kw)})


def check_value(s: Setting, value: Any) -> None:
    """ValueError unless `value` is a valid value of setting `s` (type, bounds, choices)."""
    if s.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{s.name} must be true or false, got {value!r}")
        return
    if s.kind == "choice":
        if value not in s.choices:
            raise ValueError(f"{s.name} must be one of {', '.join(map(str, s.choices))}; got {value!r}")
        return
    if s.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{s.name} must be an integer, got {value!r}")
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{s.name} must be a number, got {value!r}")
    lo = -math.inf if s.lo is None else s.lo
    hi = math.inf if s.hi is None else s.hi
    if not lo <= value <= hi:
        raise ValueError(f"{s.name} must be between {_num(s.lo)} and {_num(s.hi)}, got {value}")


def _num(x: float | None) -> str:
    if x is None:
        return "any"
    return f"{x:g}" if not (isinstance(x, int) and abs(x) >= 10**6) else f"{x:,}"


def parse_value(s: Setting, text: str) -> Any:
    """A command-line word as a value of setting `s` (type only; bounds are checked by the config)."""
    word = text.strip()
    if s.kind == "bool":
        low = word.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"{s.name} must be true or false, got {text!r}")
    if s.kind == "int":
        try:
            return int(word)
        except ValueError as e:
            raise ValueError(f"{s.name} must be an integer, got {text!r}") from e
    if s.kind == "float":
        try:
            return float(word)
        except ValueError as e:
            raise ValueError(f"{s.name} must be a number, got {text!r}") from e
    if word not in s.choices:
        raise ValueError(f"{s.name} must be one of {', '.join(map(str, s.choices))}; got {text!r}")
    return word


def applies(s: Setting, values: Mapping[str, Any]) -> bool:
    """Whether setting `s` matters given the other settings' values (schedule, decoder, TC weight, …)."""
    if s.when is not None:
        other, allowed = s.when
        if values.get(other) not in allowed:
            return False
    if s.when_positive:
        v = values.get(s.when_positive)
        if not (isinstance(v, (int, float)) and v > 0):
            return False
    return True


_DECLARED: dict[type, tuple[Setting, ...]] = {}
_OWNER = {"ModelConfig": "model", "TrainConfig": "train", "DecodeConfig": "decode"}


def declared(cls: type) -> tuple[Setting, ...]:
    """The declarations of a config class's fields, in field order, with name, default, kind and choices."""
    if cls not in _DECLARED:
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("setting")
            if meta is None:
                raise TypeError(f"{cls.__name__}.{f.name} has no setting(...) declaration")
            hint = hints[f.name]
            if typing.get_origin(hint) is Literal:
                kind, choices = "choice", typing.get_args(hint)
            else:
                kind, choices = {bool: "bool", int: "int", float: "float"}[hint], ()
            out.append(dataclasses.replace(meta, name=f.name, owner=_OWNER[cls.__name__], default=f.default,
                                           kind=kind, choices=choices))
        _DECLARED[cls] = tuple(out)
    return _DECLARED[cls]


def _validate(cfg: Any) -> None:
    for s in declared(type(cfg)):
        check_value(s, getattr(cfg, s.name))


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Architecture of a sentence β-VAE (RNN encoder → Gaussian z → RNN decoder)."""

    vocab_size: int = setting(0, "Words in the vocabulary.", lo=0, hi=MAX_VOCAB, internal=True,
                              group="model")  # set from the vocabulary; 0 means "not yet known"
    embed_dim: int = setting(128, "Word embedding width.", lo=1, hi=MAX_EMBED, label="Embedding size", step=8,
                             group="model")  # small vocabularies (synthetic: ~60 words) need little more
    hidden_dim: int = setting(256, "RNN state width (per direction in the encoder).", lo=1, hi=MAX_HIDDEN,
                              label="Hidden size", step=16, group="model")  # one RNN state, per direction
    latent_dim: int = setting(16, "Dimensions of z. More than the number of factors leaves room for inactive "
                              "units.", lo=1, hi=MAX_LATENT, label="Latent size",
                              group="model")  # enough for 8 factors with room for inactive units
    rnn_type: RNNType = setting("gru", "GRU trains a little faster; LSTM is the classic choice (Bowman et al. "
                                "2016).", flag="--rnn", label="RNN",
                                group="model")  # GRU trains a little faster than LSTM at equal quality here
    encoder_layers: int = setting(1, "Stacked RNN layers of the encoder.", lo=1, hi=MAX_LAYERS,
                                  label="Encoder layers", group="model", advanced=True)
    bidirectional: bool = setting(True, "The encoder reads the sentence both ways (off: one-directional "
                                  "encoder).", flag="--unidirectional", label="Bidirectional encoder",
                                  group="model", advanced=True)  # the encoder sees the whole sentence; the decoder not
    decoder_layers: int = setting(1, "RNN decoder: stacked layers. Positional / additive: hidden layers of the "
                                  "per-position (additive: per-dimension) network.", lo=1, hi=MAX_LAYERS,
                                  label="Decoder layers", group="model")
    word_dropout: float = setting(0.0, "Chance a decoder input word becomes <unk>: makes the decoder rely on z.",
                                  lo=0.0, hi=1.0, label="Word dropout", step=0.05, slider=True,
                                  group="model")  # chance a decoder input word becomes <unk> (Bowman et al. 2016)
    embed_dropout: float = setting(0.0, "Dropout on the word embeddings, encoder and decoder.", lo=0.0, hi=0.99,
                                   label="Embedding dropout", step=0.05, group="model", advanced=True)
    z_to_inputs: bool = setting(True, "Concatenate z to every decoder input, not only the initial state (off: z "
                                "only sets the decoder's initial state).", flag="--no-z-inputs",
                                label="z at every decoder input", group="model", advanced=True,
                                when=("decoder", ("rnn",)))
    # "rnn": autoregressive RNN decoder. "positional": non-autoregressive — every position's word is
    # predicted from z and the position alone (an MLP), so z must carry the whole sentence.
    # "additive": non-autoregressive too, with word logits that are a sum of one term per latent
    # dimension (each its own small network of z_d and the position).
    decoder: Decoder = setting("rnn", "rnn: the classic autoregressive Sentence-VAE decoder. positional: "
                               "non-autoregressive, each word predicted from z and its position alone, so z has "
                               "to carry the whole sentence. additive: the same, with word scores that are a sum "
                               "of one term per latent dimension (favours one factor per dimension).",
                               label="Decoder", group="model")
    max_positions: int = setting(0, "Positions a non-autoregressive decoder can emit.", lo=0, hi=MAX_POSITIONS,
                                 internal=True, group="model")  # set from the corpus max_len
    # additive decoder: each z_d enters its network with K Fourier features sin/cos(k·π/3·z_d), k = 1…K,
    # beside z_d itself, so a single dimension can separate many values from the start (0 = z_d alone)
    fourier_features: int = setting(0, "Additive decoder: each z_d reaches its own network as sin/cos(k·π/3·z_d), "
                                    "k = 1…K, beside z_d; lets one dimension hold a factor with many values (the "
                                    "shipped additive-b06 uses 8). 0 = z_d alone.", lo=0, hi=MAX_FOURIER,
                                    label="Fourier features", group="model", suggested=8,
                                    when=("decoder", ("additive",)))

    def __post_init__(self) -> None:
        _validate(self)
        if self.fourier_features and self.decoder != "additive":
            raise ValueError(f"fourier_features applies to the additive decoder only (decoder is {self.decoder!r})")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Objective, schedule and optimisation of one training run."""

    beta: float = setting(1.0, "Weight on KL. 1 = plain VAE; > 1 pushes towards a factorised (disentangled) code "
                          "and blurrier reconstructions; < 1 lets more through.", lo=0.0, hi=1000.0, label="β",
                          group="objective", log=True)  # weight on KL at the end of any warm-up
    schedule: Schedule = setting("linear", "constant: β from step 0. linear/sigmoid: warm up from 0 to β. "
                                 "cyclical: repeated warm-ups. capacity: γ·|KL − C| with C rising to C_max "
                                 "(Burgess et al.).", label="KL schedule",
                                 group="objective")  # how the KL weight moves with the step
    warmup_steps: int = setting(2000, "Steps for the KL weight to reach β (fights posterior collapse).", lo=0,
                                hi=MAX_STEPS, label="Warm-up steps", step=100, group="objective",
                                when=("schedule", ("linear", "sigmoid")))  # linear/sigmoid: steps to reach beta
    cycles: int = setting(4, "Number of warm-up cycles over the whole training (Fu et al. 2019).", lo=1,
                          hi=10**6, label="Cycles", group="objective",
                          when=("schedule", ("cyclical",)))  # cyclical: number of cycles over total steps
    cycle_ratio: float = setting(0.5, "Part of each cycle spent rising from 0 to β.", lo=0.01, hi=1.0,
                                 label="Rising share of a cycle", step=0.05, group="objective",
                                 when=("schedule", ("cyclical",)))  # cyclical: share of each cycle spent rising
    capacity_max: float = setting(15.0, "Target KL at the end of the capacity ramp.", lo=0.0, hi=10_000.0,
                                  label="C_max (nats)", step=1.0, group="objective",
                                  when=("schedule", ("capacity",)))  # capacity: C_max in nats (Burgess et al.)
    capacity_steps: int = setting(5000, "Steps for C to rise from 0 to C_max.", lo=0, hi=MAX_STEPS,
                                  label="Capacity steps", step=100, group="objective",
                                  when=("schedule", ("capacity",)))  # capacity: steps for C to rise to C_max
    gamma: float = setting(10.0, "Weight on |KL − C|: how hard the KL is held to the current capacity.", lo=0.0,
                           hi=10_000.0, label="γ", step=1.0, group="objective",
                           when=("schedule", ("capacity",)))  # capacity: weight on |KL − C|
    free_bits: float = setting(0.0, "KL below this floor per dimension is not penalised (Kingma et al. 2016); "
                               "0 = off.", lo=0.0, hi=100.0, label="Free bits (nats per dimension)", step=0.05,
                               group="objective")  # per-dimension KL floor in nats; 0 = off
    tc_weight: float = setting(0.0, "β-TCVAE: extra penalty on dependence between dimensions; 0 = off.", lo=0.0,
                               hi=1000.0, label="Total-correlation weight", step=0.5,
                               group="objective")  # extra weight on total correlation (total = β·KL + tc·TC)
    tc_start: int = setting(0, "Penalise TC only once a code has formed: from the first step it can make the "
                            "model throw information away instead of factorising it.", lo=0, hi=MAX_STEPS,
                            label="TC starts at step", step=100, group="objective",
                            when_positive="tc_weight")  # a code must form before it is factorised
    tc_warmup_steps: int = setting(0, "Steps for the TC weight to rise linearly from 0 after the TC start; 0 = at "
                                   "once.", lo=0, hi=MAX_STEPS, label="TC warm-up steps", step=100,
                                   group="objective", when_positive="tc_weight")  # 0 = at once
    tc_bank: int = setting(0, "Recent posteriors (from earlier batches) kept to estimate q(z) for the TC term "
                           "besides the batch; 0 = batch only.", lo=0, hi=65_536, label="TC posterior bank",
                           step=64, group="objective", when_positive="tc_weight")  # 0 = batch only
    epochs: int = setting(10, "Passes over the training split.", lo=1, hi=100_000, label="Epochs")
    max_steps: int = setting(0, "Stop after this many optimisation steps, whatever the epochs; 0 = run all "
                             "epochs.", lo=0, hi=MAX_STEPS, label="Max steps (0 = all epochs)", step=100)
    batch_size: int = setting(32, "Sentences per step (length-bucketed).", lo=1, hi=65_536, label="Batch size",
                              step=8)
    lr: float = setting(1e-3, "Optimiser step size.", lo=1e-8, hi=10.0, label="Learning rate", step=1e-4,
                        fmt="%.5f", log=True)
    optimizer: Optimizer = setting("adam", "adam or plain sgd.", label="Optimiser", advanced=True)
    grad_clip: float = setting(5.0, "Largest gradient norm; 0 = off.", lo=0.0, hi=1e6, label="Gradient clip",
                               step=0.5, advanced=True)  # max gradient norm; 0 = off
    seed: int = setting(0, "Same seed, same corpus split, same run.", lo=0, hi=2**31 - 1, label="Seed")
    max_len: int = setting(50, "Longer sentences are cut (and counted).", lo=1, hi=10_000,
                           label="Longest sentence (words)", group="data", advanced=True)
    min_freq: int = setting(1, "Words seen fewer times become <unk>.", lo=1, hi=MAX_STEPS,
                            label="Least word count", group="data", advanced=True)
    max_vocab: int = setting(20000, "Most words kept in the vocabulary (the most frequent).", lo=5, hi=MAX_VOCAB,
                             label="Largest vocabulary", step=1000, group="data", advanced=True)
    lowercase: bool = setting(False, "Lower-case every sentence before tokenising.", label="Lower-case",
                              group="data", advanced=True)  # PTB is already lower-cased; keep user text as typed
    tokenization: Tokenization = setting("lab", "How sentences are cut into words. lab: at spaces, then punctuation "
                                         "glued to a word is split off ('mr.' becomes 'mr .'). whitespace: the "
                                         "space-separated words as given, for a corpus that is already tokenised "
                                         "(Penn Treebank), so token counts and perplexity match the published ones.",
                                         label="Tokenisation", group="data", advanced=True)  # lab: what user text needs
    eval_every: int = setting(0, "Validation and checkpoint every N steps besides each epoch's end; 0 = per epoch "
                              "only.", lo=0, hi=MAX_STEPS, label="Validate every N steps (0 = per epoch)", step=50)
    log_every: int = setting(10, "How often a metrics line (and a point on the curves) is written.", lo=1,
                             hi=MAX_STEPS, label="Log every N steps")  # write a metrics line every N steps
    tracking: Tracking = setting("off", "tensorboard: also write every metrics line as TensorBoard scalars to "
                                 "<run>/tensorboard (view with `tensorboard --logdir runs`; a sweep's trials lie in "
                                 "its folder). Needs the optional tensorboard package.", label="Experiment tracking",
                                 advanced=True)  # off: metrics.jsonl is the record; tensorboard is an extra install

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True, slots=True)
class DecodeConfig:
    """How token sequences are produced from z."""

    strategy: Strategy = setting("greedy", "greedy, beam search or sampling.", group="decode")
    beam_width: int = setting(4, "Beam: hypotheses kept.", lo=1, hi=64, group="decode")
    length_penalty: float = setting(1.0, "Beam: score / length**alpha (alpha = 0 turns it off).", lo=0.0, hi=5.0,
                                    group="decode")
    temperature: float = setting(1.0, "Sampling temperature.", lo=1e-3, hi=100.0, group="decode")
    top_k: int = setting(0, "Sample only from the k likeliest words (0 = all).", lo=0, hi=MAX_VOCAB,
                         group="decode")  # 0 = no cut
    top_p: float = setting(1.0, "Nucleus: smallest set with this mass (1 = all).", lo=1e-6, hi=1.0,
                           group="decode")  # 1 = no nucleus cut
    max_len: int = setting(40, "Most words a decoded sentence may have.", lo=1, hi=1000, group="decode")
    seed: int = setting(0, "Sampling seed.", lo=0, hi=2**31 - 1, group="decode")

    def __post_init__(self) -> None:
        _validate(self)


def training_settings() -> dict[str, Setting]:
    """Every model and training setting a user can set, by field name (ModelConfig's, then TrainConfig's)."""
    return {s.name: s for cls in (ModelConfig, TrainConfig) for s in declared(cls) if not s.internal}


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


def configs_with(model: ModelConfig, train: TrainConfig, values: Mapping[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    """`model` and `train` with the named settings replaced (each name goes to the config that declares it)."""
    known = training_settings()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    m = {k: v for k, v in values.items() if known[k].owner == "model"}
    t = {k: v for k, v in values.items() if known[k].owner == "train"}
    return dataclasses.replace(model, **m), dataclasses.replace(train, **t)


__all__ = [
    "ModelConfig",
    "TrainConfig",
    "DecodeConfig",
    "Setting",
    "setting",
    "declared",
    "training_settings",
    "check_value",
    "parse_value",
    "applies",
    "configs_with",
    "to_dict",
    "from_dict",
    "field",
]
