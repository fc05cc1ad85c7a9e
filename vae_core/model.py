"""Sentence VAE: RNN encoder → diagonal Gaussian q(z|x) → a decoder conditioned on z.

Every decoder is a `SentenceDecoder` (z and the words so far → word logits); `DECODERS` names each
kind once, and `SentenceVAE` builds `DECODERS[cfg.decoder]` and never asks which kind it holds.

Shapes: B batch, T time (tokens incl. <eos>), D latent, E embedding, H hidden, V vocabulary,
N real (non-pad) tokens in a batch.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from vae_core.config import ModelConfig
from vae_core.text import BOS_ID, EOS_ID, PAD_ID, UNK_ID

MAX_PARAMS = 300_000_000  # refuse to build anything larger (a corrupted config must not eat memory)

DecoderState = Any  # whatever a decoder carries from one step to the next (see SentenceDecoder.init_state)


def _rnn_parameters(cfg: ModelConfig, inp: int, layers: int, dirs: int) -> int:
    """Parameters of a cfg.rnn_type RNN of `layers` layers and `dirs` directions reading `inp` features."""
    gates, H = (3 if cfg.rnn_type == "gru" else 4), cfg.hidden_dim
    total, i = 0, inp
    for _ in range(layers):
        total += dirs * gates * H * (i + H + 2)
        i = H * dirs
    return total


def parameter_count(cfg: ModelConfig) -> int:
    """Number of parameters a SentenceVAE of this config has, computed without building it."""
    V, E, H, D = cfg.vocab_size, cfg.embed_dim, cfg.hidden_dim, cfg.latent_dim
    dirs = 2 if cfg.bidirectional else 1
    enc = _rnn_parameters(cfg, E, cfg.encoder_layers, dirs) + 2 * (dirs * H * D + D)
    return V * E + enc + _decoder_class(cfg).parameter_count(cfg)


@dataclass
class VAEOutput:
    """What a forward pass gives: posterior parameters, the sample used, and per-sentence NLL."""

    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor  # (B, D)
    z: torch.Tensor  # (B, D)
    recon_nll: torch.Tensor  # (B,) summed token NLL of each sentence, <eos> included
    n_tokens: int  # real tokens in the batch (targets incl. <eos>)


def additive_width(hidden_dim: int) -> int:
    """Width of each latent dimension's own network in the additive decoder."""
    return max(8, hidden_dim // 4)


# ----------------------------------------------------------------------------- the decoder interface


class SentenceDecoder(nn.Module, ABC):
    """What every decoder is: codes z (B, D), and the words so far where it reads them, → word logits over V.

    A decoder owns its output layer `out` (H → V). Subclasses implement `parameter_count`,
    `teacher_forced_hidden`, `init_state` and `step`; `greedy` (a step loop here) may be overridden by
    a faster path that gives the same ids and scores, and `select_state`/`repeat_state` by a decoder
    whose state does not keep its rows in dimension 1 of a tensor (or of each tensor of a tuple).

    `STORED_AS` maps the decoder's parameter names (under the model's `decoder.`) to the names run
    files store them under, which predate this interface; `SentenceVAE` applies it when it saves and
    loads, so every run keeps loading. A new decoder uses its own names: `STORED_AS = ()`.
    """

    STORED_AS: tuple[tuple[str, str], ...] = ()  # (prefix in the module tree, prefix in run files), first match wins
    description: ClassVar[str] = ""  # how it writes a sentence from z, in a teacher's words (the Overview shows it)
    out: nn.Linear

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg

    @classmethod
    @abstractmethod
    def parameter_count(cls, cfg: ModelConfig) -> int:
        """Parameters this decoder has for cfg (its output layer included), without building it."""

    @abstractmethod
    def teacher_forced_hidden(self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> PackedSequence:
        """Hidden states (N, H) on the real tokens of tokens (B, T) (lengths (B,)), as a PackedSequence.

        The state at position t predicts token t from z and, for an autoregressive decoder, tokens < t.
        """

    @abstractmethod
    def init_state(self, z: torch.Tensor) -> DecoderState:
        """The state before the first step, for codes z (B, D)."""

    @abstractmethod
    def step(self, inputs: torch.Tensor, z: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """One decoding step: the last ids emitted (B,) (<bos> at first), z (B, D) → logits (B, V), new state.

        The logits are a fresh tensor: callers may write to them.
        """

    def teacher_forced_logits(self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> PackedSequence:
        """Logits (N, V) on the real tokens of tokens (B, T), as a PackedSequence."""
        hidden = self.teacher_forced_hidden(z, tokens, lengths)
        return hidden._replace(data=self.out(hidden.data))

    def select_state(self, state: DecoderState, index: torch.Tensor) -> DecoderState:
        """The state's rows picked by index (B',) (beam search keeps the beams it extends)."""
        if isinstance(state, tuple):
            return tuple(s.index_select(1, index) for s in state)
        return state.index_select(1, index)

    def repeat_state(self, state: DecoderState, k: int) -> DecoderState:
        """Each row of the state repeated k times in place order (row b → rows b·k … b·k + k − 1)."""
        if isinstance(state, tuple):
            return tuple(s.repeat_interleave(k, dim=1) for s in state)
        return state.repeat_interleave(k, dim=1)

    def greedy(self, z: torch.Tensor, max_len: int, forbid: Sequence[int] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        """The most likely token at every step for codes z (B, D), never one of `forbid`.

        Returns ids (B, T') (T' ≤ max_len; <pad> after a row's <eos>) and each row's summed
        log-probability (B,) of the tokens up to and including its <eos>. Stops once every row has
        emitted <eos>. This is the step loop, which any decoder can run.
        """
        return self.step_loop(z, max_len, lambda logits: logits.argmax(dim=-1), forbid)

    def step_loop(
        self, z: torch.Tensor, max_len: int, choose: Callable[[torch.Tensor], torch.Tensor], forbid: Sequence[int] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode codes z (B, D) one step at a time, `choose` picking each step's tokens (B,) from its logits (B, V)
        (the `forbid` ids already at -inf): greedy, sampling. Returns ids (B, T') and summed log-probabilities (B,)
        as `greedy` does."""
        B = z.size(0)
        state = self.init_state(z)
        inputs = torch.full((B,), BOS_ID, dtype=torch.long, device=z.device)  # (B,)
        finished = torch.zeros(B, dtype=torch.bool, device=z.device)  # (B,)
        score = torch.zeros(B, dtype=z.dtype, device=z.device)  # (B,)
        steps: list[torch.Tensor] = []
        for _ in range(max_len):
            logits, state = self.step(inputs, z, state)  # (B, V)
            logits[:, list(forbid)] = float("-inf")
            token = choose(logits)  # (B,)
            logp = torch.log_softmax(logits, dim=-1).gather(1, token.unsqueeze(1)).squeeze(1)  # (B,)
            token = token.masked_fill(finished, PAD_ID)
            score = score + logp.masked_fill(finished, 0.0)
            steps.append(token)
            finished = finished | (token == EOS_ID)
            if bool(finished.all()):
                break
            inputs = token
        return torch.stack(steps, dim=1), score  # (B, T'), (B,)


class RNNDecoder(SentenceDecoder):
    """The classic autoregressive Sentence-VAE decoder: a GRU/LSTM over the previous words, started from z.

    z sets the initial state (tanh of a linear map, every layer, h and c for an LSTM) and, with
    `z_to_inputs`, is appended to every input embedding. The token embedding is the model's (the
    encoder reads the same table).
    """

    description = ("autoregressive RNN: a language model that writes word by word, each word from z and the "
                   "words before it")

    STORED_AS = (("decoder.z_to_hidden.", "z_to_hidden."), ("decoder.rnn.", "decoder."), ("decoder.out.", "out."))

    def __init__(self, cfg: ModelConfig, embedding: nn.Embedding) -> None:
        super().__init__(cfg)
        rnn_cls = nn.GRU if cfg.rnn_type == "gru" else nn.LSTM
        n_init = cfg.decoder_layers * (2 if cfg.rnn_type == "lstm" else 1)
        self.z_to_hidden = nn.Linear(cfg.latent_dim, cfg.hidden_dim * n_init)
        dec_in = cfg.embed_dim + (cfg.latent_dim if cfg.z_to_inputs else 0)
        self.rnn = rnn_cls(dec_in, cfg.hidden_dim, num_layers=cfg.decoder_layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden_dim, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.embed_dropout)
        # Held, not registered: the table is the model's, so it is saved once, under `embedding.`.
        self.__dict__["embedding"] = embedding

    @classmethod
    def parameter_count(cls, cfg: ModelConfig) -> int:
        D, E, H, V = cfg.latent_dim, cfg.embed_dim, cfg.hidden_dim, cfg.vocab_size
        dec_in = E + (D if cfg.z_to_inputs else 0)
        n_init = cfg.decoder_layers * (2 if cfg.rnn_type == "lstm" else 1)
        return _rnn_parameters(cfg, dec_in, cfg.decoder_layers, 1) + (D * H + H) * n_init + H * V + V

    def init_state(self, z: torch.Tensor) -> DecoderState:
        """(layers, B, H) from z (B, D), or an LSTM's (h, c) pair of them."""
        B, H, L = z.size(0), self.cfg.hidden_dim, self.cfg.decoder_layers
        init = torch.tanh(self.z_to_hidden(z))  # (B, n_init*H)
        if self.cfg.rnn_type == "lstm":
            h, c = init.view(B, 2, L, H).permute(1, 2, 0, 3).contiguous()  # 2 × (L, B, H)
            return (h, c)
        return init.view(B, L, H).transpose(0, 1).contiguous()  # (L, B, H)

    def input_embeddings(self, tokens: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Input embeddings (B, T, E[+D]): <bos> then tokens shifted right, word-dropped in training."""
        inputs = torch.cat([torch.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], dim=1)  # (B, T)
        if self.training and self.cfg.word_dropout > 0:
            drop = torch.rand(inputs.shape, device=inputs.device) < self.cfg.word_dropout
            drop[:, 0] = False  # keep <bos>
            inputs = inputs.masked_fill(drop & (inputs != PAD_ID), UNK_ID)
        emb = self.drop(self.embedding(inputs))  # (B, T, E)
        if self.cfg.z_to_inputs:
            emb = torch.cat([emb, z.unsqueeze(1).expand(-1, emb.size(1), -1)], dim=-1)  # (B, T, E+D)
        return emb

    def teacher_forced_hidden(self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> PackedSequence:
        emb = self.input_embeddings(tokens, z)  # (B, T, E[+D])
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed, self.init_state(z))
        return out

    def step(self, inputs: torch.Tensor, z: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        emb = self.embedding(inputs).unsqueeze(1)  # (B, 1, E)
        if self.cfg.z_to_inputs:
            emb = torch.cat([emb, z.unsqueeze(1)], dim=-1)  # (B, 1, E+D)
        out, state = self.rnn(emb, state)  # (B, 1, H)
        return self.out(out.squeeze(1)), state


class PositionwiseDecoder(SentenceDecoder):
    """A non-autoregressive decoder: the word at position t depends on z and t alone, never on other words.

    Subclasses implement `prepare(z)` (what every position shares, computed once per code),
    `position_hidden(prep, start, stop)` for a run of positions, and `positions` (how many there are;
    past the last, the step interface emits <eos> with probability 1). Its positions being independent,
    `greedy` decodes them in batched chunks instead of one model call per word.
    """

    STORED_AS = (("decoder.out.", "out."), ("decoder.", "pos_decoder."))
    GREEDY_CHUNK = 12  # positions per batched pass of `greedy` (sentences usually end within one or two)

    def __init__(self, cfg: ModelConfig) -> None:
        if cfg.max_positions < 1:
            raise ValueError(f"a {cfg.decoder} decoder needs ModelConfig.max_positions >= 1 "
                             "(the longest sentence + 1)")
        super().__init__(cfg)

    @property
    @abstractmethod
    def positions(self) -> int:
        """How many positions the decoder has (ModelConfig.max_positions)."""

    @abstractmethod
    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """What every position shares (B, ·), from codes z (B, D)."""

    @abstractmethod
    def position_hidden(self, prep: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Hidden states (B, stop − start, H) of positions start … stop − 1 from `prepare`'s output."""

    def position_logits(self, z: torch.Tensor, T: int) -> torch.Tensor:
        """Logits (B, T, V) of the first T positions for codes z (B, D)."""
        if T > self.positions:
            raise ValueError(f"this decoder emits at most {self.positions} positions, asked for {T}")
        return self.out(self.position_hidden(self.prepare(z), 0, T))

    def teacher_forced_hidden(self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> PackedSequence:
        T = tokens.size(1)
        if T > self.positions:
            raise ValueError(f"this decoder emits at most {self.positions} positions, asked for {T}")
        hidden = self.position_hidden(self.prepare(z), 0, T)  # (B, T, H)
        return pack_padded_sequence(hidden, lengths.cpu(), batch_first=True, enforce_sorted=False)

    def init_state(self, z: torch.Tensor) -> DecoderState:
        """(prepare(z) (1, B, ·), position index (1, B)): both keep the batch in dimension 1."""
        prep = self.prepare(z)  # (B, ·)
        return prep.unsqueeze(0), torch.zeros(1, z.size(0), dtype=torch.long, device=z.device)

    def step(self, inputs: torch.Tensor, z: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """Position t's logits (B, V), whatever `inputs` are; only <eos> past the last position."""
        prep, t = state
        B = prep.size(1)
        pos = int(t[0, 0]) if t.numel() else 0
        if pos < self.positions:
            logits = self.out(self.position_hidden(prep[0], pos, pos + 1)[:, 0])  # (B, V)
        else:
            logits = torch.full((B, self.cfg.vocab_size), float("-inf"), dtype=prep.dtype, device=prep.device)
            logits[:, EOS_ID] = 0.0
        return logits, (prep, t + 1)

    def greedy(self, z: torch.Tensor, max_len: int, forbid: Sequence[int] = (),
               chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The step loop's ids and scores (a test holds them equal), `chunk` positions per batched pass.

        The step-by-step argmax is the argmax at each position; past the last position the step
        interface emits <eos> at log-probability 0, which adds nothing to a score.
        """
        chunk = chunk or self.GREEDY_CHUNK
        T = min(max_len, self.positions)
        prep = self.prepare(z)  # (B, ·): what every position shares
        tokens, logps = [], []
        finished = torch.zeros(z.size(0), dtype=torch.bool, device=z.device)  # (B,) has emitted <eos>
        for t0 in range(0, T, chunk):
            logits = self.out(self.position_hidden(prep, t0, min(T, t0 + chunk)))  # (B, C, V)
            logits[..., list(forbid)] = float("-inf")
            token = logits.argmax(dim=-1)  # (B, C)
            tokens.append(token)
            logps.append(torch.log_softmax(logits, dim=-1).gather(2, token.unsqueeze(2)).squeeze(2))
            finished |= (token == EOS_ID).any(dim=1)
            if bool(finished.all()):
                break
        token, logp = torch.cat(tokens, dim=1), torch.cat(logps, dim=1)  # (B, T')
        is_eos = (token == EOS_ID).long()
        after = (torch.cumsum(is_eos, dim=1) - is_eos) > 0  # an <eos> came strictly before this position
        score = logp.masked_fill(after, 0.0).sum(dim=1)  # (B,)
        return token.masked_fill(after, PAD_ID), score


class PositionalDecoder(PositionwiseDecoder):
    """Non-autoregressive decoder: the state of position t is an MLP of z and t alone.

    h(z) = W2·gelu(W1·z), then per position h_t = MLP_L(gelu(h(z) + P_t)) with L = decoder_layers
    Linear+GELU layers, so the words of a sentence are independent given z: everything that ties
    them together (agreement, word order, which words go together) has to be carried by z.
    """

    description = ("positional, non-autoregressive: every word is written at once from z and its position "
                   "alone, never from the other words")

    def __init__(self, cfg: ModelConfig, embedding: nn.Embedding | None = None) -> None:
        super().__init__(cfg)
        H = cfg.hidden_dim
        self.z_in = nn.Sequential(nn.Linear(cfg.latent_dim, H), nn.GELU(), nn.Linear(H, H))
        self.position = nn.Embedding(cfg.max_positions, H)
        mix: list[nn.Module] = [nn.GELU()]
        for _ in range(cfg.decoder_layers):
            mix += [nn.Linear(H, H), nn.GELU()]
        self.mix = nn.Sequential(*mix)
        self.out = nn.Linear(H, cfg.vocab_size)

    @classmethod
    def parameter_count(cls, cfg: ModelConfig) -> int:
        D, H, V = cfg.latent_dim, cfg.hidden_dim, cfg.vocab_size
        return (D * H + H) + (H * H + H) + cfg.max_positions * H + cfg.decoder_layers * (H * H + H) + H * V + V

    def at(self, zh: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Hidden states from h(z) and position embeddings that broadcast with it (e.g. (B, 1, H) + (T, H))."""
        return self.mix(zh + pos)

    @property
    def positions(self) -> int:
        return self.position.num_embeddings

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """What every position shares, h(z) (B, H), computed once per code."""
        return self.z_in(z)

    def position_hidden(self, prep: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Hidden states (B, stop − start, H) of positions start … stop − 1 from `prepare`'s (B, H)."""
        return self.at(prep.unsqueeze(1), self.position.weight[start:stop])


class AdditiveDecoder(PositionwiseDecoder):
    """Non-autoregressive decoder whose word logits are a sum of one term per latent dimension.

    h_t(z) = b_t + Σ_d g_d(z_d, t), where each g_d is its own small MLP (width W =
    `additive_width(H)`, L = decoder_layers GELU layers) of the scalar z_d and the position t; the
    output layer is linear, so logits_t(z) = out(b_t) + Σ_d out(g_d(z_d, t)). A dimension can then
    only add its own evidence for or against words: moving z_d never changes how another dimension
    acts, and a code whose dimensions are blends of two factors (a rotation of a factorised code)
    cannot be read back unless the factors' effects on the words happen to add up along the blended
    directions. This is the additive decoder of Lachapelle et al. (2023, "Additive decoders for
    latent variables identification and Cartesian-product extrapolation"), which, under their
    conditions, identifies such latents up to permutation and per-dimension reparameterisation.

    With `fourier` = K > 0, z_d enters its network as [z_d, sin(ω_k z_d), cos(ω_k z_d)], ω_k = k·π/3,
    k = 1…K (periods 6 down to 6/K). A small network of a scalar learns smooth functions of it first
    (the spectral bias that Fourier features remove; Tancik et al. 2020), so without them a factor
    with many values is read more easily off two dimensions, a few values on each, than off one;
    with them, six values along one axis are as easy to separate as two.
    """

    description = ("additive, non-autoregressive: every word is written at once from its position and a sum of "
                   "one term per latent dimension, never from the other words")

    def __init__(self, cfg: ModelConfig, embedding: nn.Embedding | None = None) -> None:
        super().__init__(cfg)
        fourier, positions, layers = cfg.fourier_features, cfg.max_positions, cfg.decoder_layers
        D, W, H, F = cfg.latent_dim, additive_width(cfg.hidden_dim), cfg.hidden_dim, 1 + 2 * fourier
        self.register_buffer("omega", torch.arange(1, fourier + 1, dtype=torch.float32) * (math.pi / 3),
                             persistent=False)
        self.w_in = nn.Parameter(torch.randn(D, F, W) / F ** 0.5)  # z_d's features into its own network
        self.b_in = nn.Parameter(torch.zeros(D, W))
        self.position = nn.Parameter(torch.randn(positions, D, W) * 0.5)  # each dimension's view of position t
        self.w_mid = nn.ParameterList([nn.Parameter(torch.randn(D, W, W) / W ** 0.5) for _ in range(layers - 1)])
        self.b_mid = nn.ParameterList([nn.Parameter(torch.zeros(D, W)) for _ in range(layers - 1)])
        self.w_out = nn.Parameter(torch.randn(D, W, H) / (D * W) ** 0.5)  # summed over d: the only mixing
        self.bias = nn.Parameter(torch.zeros(positions, H))  # b_t: what position t says without z
        self.out = nn.Linear(H, cfg.vocab_size)

    @classmethod
    def parameter_count(cls, cfg: ModelConfig) -> int:
        D, H, V, P = cfg.latent_dim, cfg.hidden_dim, cfg.vocab_size, cfg.max_positions
        W, F = additive_width(H), 1 + 2 * cfg.fourier_features
        per_dim = F * W + W + P * W + (cfg.decoder_layers - 1) * (W * W + W) + W * H  # one dimension's network
        return D * per_dim + P * H + H * V + V

    @property
    def positions(self) -> int:
        return self.bias.size(0)

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """Nothing is shared across positions: each dimension's network sees the position."""
        return z

    def _features(self, z: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Last hidden layer of every dimension's network at positions start … stop − 1: (B, T, D, W)."""
        x = z.unsqueeze(-1)  # (B, D, 1)
        if self.omega.numel():
            x = torch.cat([x, torch.sin(x * self.omega), torch.cos(x * self.omega)], dim=-1)  # (B, D, F)
        a = torch.einsum("bdf,dfw->bdw", x, self.w_in)[:, None] + self.b_in + self.position[start:stop]
        a = nn.functional.gelu(a)  # (B, T, D, W)
        for w, b in zip(self.w_mid, self.b_mid, strict=True):
            a = nn.functional.gelu(torch.einsum("btdi,dij->btdj", a, w) + b)
        return a

    def position_hidden(self, prep: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Hidden states (B, stop − start, H): b_t + Σ_d g_d(z_d, t), from codes z (B, D)."""
        return torch.einsum("btdi,dih->bth", self._features(prep, start, stop), self.w_out) + self.bias[start:stop]



DECODERS: dict[str, type[SentenceDecoder]] = {  # the one place a decoder kind is named (ModelConfig.decoder)
    "rnn": RNNDecoder,
    "positional": PositionalDecoder,
    "additive": AdditiveDecoder,
}


def decoder_description(cfg: ModelConfig) -> str:
    """How the decoder of this config writes a sentence from z (its class's `description`), without building it."""
    return _decoder_class(cfg).description


def _decoder_class(cfg: ModelConfig) -> type[SentenceDecoder]:
    try:
        return DECODERS[cfg.decoder]
    except KeyError:
        raise ValueError(f"unknown decoder {cfg.decoder!r}; choose one of {', '.join(DECODERS)}") from None


class SentenceVAE(nn.Module):
    """β-VAE over sentences: an RNN encoder gives q(z|x); the decoder `DECODERS[cfg.decoder]` reads z back."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.vocab_size < 5:
            raise ValueError("ModelConfig.vocab_size must be set from the vocabulary (>= 5)")
        n = parameter_count(cfg)
        if n > MAX_PARAMS:
            raise ValueError(f"this config has {n:,} parameters; the limit is {MAX_PARAMS:,}")
        self.cfg = cfg
        rnn_cls = nn.GRU if cfg.rnn_type == "gru" else nn.LSTM
        dirs = 2 if cfg.bidirectional else 1
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
        self.encoder = rnn_cls(
            cfg.embed_dim, cfg.hidden_dim, num_layers=cfg.encoder_layers,
            bidirectional=cfg.bidirectional, batch_first=True,
        )
        self.to_mu = nn.Linear(dirs * cfg.hidden_dim, cfg.latent_dim)
        self.to_logvar = nn.Linear(dirs * cfg.hidden_dim, cfg.latent_dim)
        self.decoder: SentenceDecoder = _decoder_class(cfg)(cfg, self.embedding)
        self.drop = nn.Dropout(cfg.embed_dropout)
        self.register_state_dict_post_hook(_store_decoder_keys)
        self.register_load_state_dict_pre_hook(_restore_decoder_keys)

    # ------------------------------------------------------------------ encoder

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters of q(z|x).

        tokens: (B, T) ids incl. <eos>, padded with 0; lengths: (B,) → mu, logvar: (B, D) each.
        """
        emb = self.drop(self.embedding(tokens))  # (B, T, E)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.encoder(packed)
        if isinstance(h, tuple):  # LSTM: (h, c); the summary is h
            h = h[0]
        L, dirs, B = self.cfg.encoder_layers, 2 if self.cfg.bidirectional else 1, tokens.size(0)
        h = h.view(L, dirs, B, self.cfg.hidden_dim)[-1]  # (dirs, B, H): last layer, both directions
        h = h.transpose(0, 1).reshape(B, dirs * self.cfg.hidden_dim)  # (B, dirs*H), per example
        return self.to_mu(h), self.to_logvar(h)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, (B, D)."""
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    # ------------------------------------------------------------------ decoder

    def init_state(self, z: torch.Tensor) -> DecoderState:
        """The decoder's state before its first step, for codes z (B, D) (see `SentenceDecoder.init_state`)."""
        return self.decoder.init_state(z)

    def step(self, inputs: torch.Tensor, z: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """One decoding step. inputs: (B,) ids, z: (B, D) → logits (B, V) (a fresh tensor), new state."""
        return self.decoder.step(inputs, z, state)

    def decode_logits(self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V), zero at padded positions (for analysis; training uses packed)."""
        logits = self.decoder.teacher_forced_logits(z, tokens, lengths)
        padded, _ = pad_packed_sequence(logits, batch_first=True, total_length=tokens.size(1))
        return padded

    def reconstruction_nll(
        self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor, count_correct: bool = False
    ) -> tuple[torch.Tensor, int | None]:
        """Summed token NLL per sentence (B,), computing the output layer only on real tokens."""
        logits = self.decoder.teacher_forced_logits(z, tokens, lengths).data  # (N, V): real tokens only
        B, T = tokens.shape
        lengths_cpu = lengths.cpu()
        targets = pack_padded_sequence(tokens, lengths_cpu, batch_first=True, enforce_sorted=False).data  # (N,)
        rows = torch.arange(B, device=tokens.device).unsqueeze(1).expand(B, T)
        owner = pack_padded_sequence(rows, lengths_cpu, batch_first=True, enforce_sorted=False).data  # (N,)
        tok_nll = nn.functional.cross_entropy(logits, targets, reduction="none")  # (N,)
        nll = torch.zeros(B, device=tokens.device, dtype=tok_nll.dtype).index_add_(0, owner, tok_nll)
        correct = int((logits.argmax(-1) == targets).sum()) if count_correct else None
        return nll, correct

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, sample: bool = True,
                noise: torch.Tensor | None = None) -> VAEOutput:
        """Encode, sample z (or take the mean), decode; tokens (B, T), lengths (B,).

        `noise` (B, D), when given, is the reparameterisation noise: z = mu + noise·sigma (data-parallel
        training passes each rank its rows of one global draw); else it is drawn here.
        """
        mu, logvar = self.encode(tokens, lengths)
        if not sample:
            z = mu
        elif noise is not None:
            z = mu + noise * torch.exp(0.5 * logvar)  # (B, D): the formula of reparameterize
        else:
            z = self.reparameterize(mu, logvar)
        nll, _ = self.reconstruction_nll(z, tokens, lengths)
        return VAEOutput(mu, logvar, z, nll, int(lengths.sum()))


# ----------------------------------------------------------------------------- names in run files


def _renamed(key: str, pairs: Sequence[tuple[str, str]]) -> str:
    """key with the first matching (from, to) prefix pair applied; unchanged if none matches."""
    for old, new in pairs:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _store_decoder_keys(model: SentenceVAE, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """state_dict hook: the decoder's parameters under the names run files store them by (`STORED_AS`)."""
    pairs = [(prefix + tree, prefix + stored) for tree, stored in model.decoder.STORED_AS]
    items = list(state_dict.items())
    state_dict.clear()
    state_dict.update((_renamed(k, pairs), v) for k, v in items)


def _restore_decoder_keys(model: SentenceVAE, state_dict: dict, prefix: str, *args: object) -> None:
    """load_state_dict pre-hook: the names run files store the decoder's parameters by → the module tree's."""
    pairs = [(prefix + stored, prefix + tree) for tree, stored in model.decoder.STORED_AS]
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new = _renamed(key, pairs)
        if new != key:
            state_dict[new] = state_dict.pop(key)
