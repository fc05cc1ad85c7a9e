"""Sentence VAE: RNN encoder → diagonal Gaussian q(z|x) → RNN decoder conditioned on z.

Shapes: B batch, T time (tokens incl. <eos>), D latent, E embedding, H hidden, V vocabulary,
N real (non-pad) tokens in a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vae_core.config import NON_AUTOREGRESSIVE, ModelConfig
from vae_core.text import BOS_ID, EOS_ID, PAD_ID, UNK_ID

MAX_PARAMS = 300_000_000  # refuse to build anything larger (a corrupted config must not eat memory)


def parameter_count(cfg: ModelConfig) -> int:
    """Number of parameters a SentenceVAE of this config has, computed without building it."""
    V, E, H, D = cfg.vocab_size, cfg.embed_dim, cfg.hidden_dim, cfg.latent_dim
    gates = 3 if cfg.rnn_type == "gru" else 4
    dirs = 2 if cfg.bidirectional else 1

    def rnn(inp: int, layers: int, d: int) -> int:
        total, i = 0, inp
        for _ in range(layers):
            total += d * gates * H * (i + H + 2)
            i = H * d
        return total

    enc = rnn(E, cfg.encoder_layers, dirs) + 2 * (dirs * H * D + D)
    if cfg.decoder == "positional":
        dec = (D * H + H) + (H * H + H) + cfg.max_positions * H + cfg.decoder_layers * (H * H + H)
        return V * E + enc + dec + H * V + V
    if cfg.decoder == "additive":
        W, P, F = additive_width(H), cfg.max_positions, 1 + 2 * cfg.fourier_features
        dec = D * F * W + D * W + P * D * W + (cfg.decoder_layers - 1) * (D * W * W + D * W) + D * W * H + P * H
        return V * E + enc + dec + H * V + V
    dec_in = E + (D if cfg.z_to_inputs else 0)
    dec = rnn(dec_in, cfg.decoder_layers, 1) + (D * H + H) * cfg.decoder_layers * (2 if cfg.rnn_type == "lstm" else 1)
    return V * E + enc + dec + H * V + V


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


class _NonAutoregressiveDecoder(nn.Module):
    """What the non-autoregressive decoders share: `prepare(z)` once per code, then `hidden(prep,
    start, stop)` for any run of positions, and `positions`, how many there are."""

    positions: int

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def hidden(self, prep: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor, T: int) -> torch.Tensor:
        """Hidden states (B, T, H) of the first T positions for codes z (B, D)."""
        if T > self.positions:
            raise ValueError(f"this decoder emits at most {self.positions} positions, asked for {T}")
        return self.hidden(self.prepare(z), 0, T)


class PositionalDecoder(_NonAutoregressiveDecoder):
    """Non-autoregressive decoder: the state of position t is an MLP of z and t alone.

    h(z) = W2·gelu(W1·z), then per position h_t = MLP_L(gelu(h(z) + P_t)) with L = decoder_layers
    Linear+GELU layers, so the words of a sentence are independent given z: everything that ties
    them together (agreement, word order, which words go together) has to be carried by z.
    """

    def __init__(self, latent_dim: int, hidden_dim: int, positions: int, layers: int) -> None:
        super().__init__()
        H = hidden_dim
        self.z_in = nn.Sequential(nn.Linear(latent_dim, H), nn.GELU(), nn.Linear(H, H))
        self.position = nn.Embedding(positions, H)
        mix: list[nn.Module] = [nn.GELU()]
        for _ in range(layers):
            mix += [nn.Linear(H, H), nn.GELU()]
        self.mix = nn.Sequential(*mix)

    def at(self, zh: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Hidden states from h(z) and position embeddings that broadcast with it (e.g. (B, 1, H) + (T, H))."""
        return self.mix(zh + pos)

    @property
    def positions(self) -> int:
        return self.position.num_embeddings

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """What every position shares, h(z) (B, H), computed once per code."""
        return self.z_in(z)

    def hidden(self, prep: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Hidden states (B, stop − start, H) of positions start … stop − 1 from `prepare`'s (B, H)."""
        return self.at(prep.unsqueeze(1), self.position.weight[start:stop])


class AdditiveDecoder(_NonAutoregressiveDecoder):
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

    def __init__(self, latent_dim: int, hidden_dim: int, positions: int, layers: int, fourier: int = 0) -> None:
        super().__init__()
        D, W, H, F = latent_dim, additive_width(hidden_dim), hidden_dim, 1 + 2 * fourier
        self.register_buffer("omega", torch.arange(1, fourier + 1, dtype=torch.float32) * (math.pi / 3),
                             persistent=False)
        self.w_in = nn.Parameter(torch.randn(D, F, W) / F ** 0.5)  # z_d's features into its own network
        self.b_in = nn.Parameter(torch.zeros(D, W))
        self.position = nn.Parameter(torch.randn(positions, D, W) * 0.5)  # each dimension's view of position t
        self.w_mid = nn.ParameterList([nn.Parameter(torch.randn(D, W, W) / W ** 0.5) for _ in range(layers - 1)])
        self.b_mid = nn.ParameterList([nn.Parameter(torch.zeros(D, W)) for _ in range(layers - 1)])
        self.w_out = nn.Parameter(torch.randn(D, W, H) / (D * W) ** 0.5)  # summed over d: the only mixing
        self.bias = nn.Parameter(torch.zeros(positions, H))  # b_t: what position t says without z

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

    def hidden(self, prep: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Hidden states (B, stop − start, H): b_t + Σ_d g_d(z_d, t), from codes z (B, D)."""
        return torch.einsum("btdi,dih->bth", self._features(prep, start, stop), self.w_out) + self.bias[start:stop]


class SentenceVAE(nn.Module):
    """β-VAE over sentences; z conditions the decoder via its initial state and every input."""

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
        self.positional = cfg.decoder in NON_AUTOREGRESSIVE  # each word from z and its position alone
        if self.positional:
            if cfg.max_positions < 1:
                raise ValueError(f"a {cfg.decoder} decoder needs ModelConfig.max_positions >= 1 "
                                 "(the longest sentence + 1)")
            if cfg.decoder == "additive":
                self.pos_decoder = AdditiveDecoder(cfg.latent_dim, cfg.hidden_dim, cfg.max_positions,
                                                   cfg.decoder_layers, cfg.fourier_features)
            else:
                self.pos_decoder = PositionalDecoder(cfg.latent_dim, cfg.hidden_dim, cfg.max_positions,
                                                     cfg.decoder_layers)
        else:
            n_init = cfg.decoder_layers * (2 if cfg.rnn_type == "lstm" else 1)
            self.z_to_hidden = nn.Linear(cfg.latent_dim, cfg.hidden_dim * n_init)
            dec_in = cfg.embed_dim + (cfg.latent_dim if cfg.z_to_inputs else 0)
            self.decoder = rnn_cls(dec_in, cfg.hidden_dim, num_layers=cfg.decoder_layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden_dim, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.embed_dropout)

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

    def init_state(self, z: torch.Tensor):
        """Decoder initial state from z (B, D): (layers, B, H), or a (h, c) pair for LSTM.

        Non-autoregressive decoders: (prepare(z) (1, B, ·), position index (1, B)); both keep the
        batch in dimension 1, so beam search selects and repeats rows the same way.
        """
        if self.positional:  # what every position shares, computed once; each step adds its position
            prep = self.pos_decoder.prepare(z)  # (B, ·)
            return prep.unsqueeze(0), torch.zeros(1, z.size(0), dtype=torch.long, device=z.device)
        B, H, L = z.size(0), self.cfg.hidden_dim, self.cfg.decoder_layers
        init = torch.tanh(self.z_to_hidden(z))  # (B, n_init*H)
        if self.cfg.rnn_type == "lstm":
            h, c = init.view(B, 2, L, H).permute(1, 2, 0, 3).contiguous()  # 2 × (L, B, H)
            return (h, c)
        return init.view(B, L, H).transpose(0, 1).contiguous()  # (L, B, H)

    def _decoder_inputs(self, tokens: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Decoder input embeddings (B, T, E[+D]): <bos> then tokens shifted right, word-dropped."""
        inputs = torch.cat([torch.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], dim=1)  # (B, T)
        if self.training and self.cfg.word_dropout > 0:
            drop = torch.rand(inputs.shape, device=inputs.device) < self.cfg.word_dropout
            drop[:, 0] = False  # keep <bos>
            inputs = inputs.masked_fill(drop & (inputs != PAD_ID), UNK_ID)
        emb = self.drop(self.embedding(inputs))  # (B, T, E)
        if self.cfg.z_to_inputs:
            emb = torch.cat([emb, z.unsqueeze(1).expand(-1, emb.size(1), -1)], dim=-1)  # (B, T, E+D)
        return emb

    def decode_hidden(self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor):
        """Teacher-forced decoder states on real tokens only, as a PackedSequence (N, H)."""
        if self.positional:
            hidden = self.pos_decoder(z, tokens.size(1))  # (B, T, H)
            return pack_padded_sequence(hidden, lengths.cpu(), batch_first=True, enforce_sorted=False)
        emb = self._decoder_inputs(tokens, z)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.decoder(packed, self.init_state(z))
        return out

    def decode_logits(self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V), zero at padded positions (for analysis; training uses packed)."""
        out = self.decode_hidden(z, tokens, lengths)
        logits = out._replace(data=self.out(out.data))
        padded, _ = pad_packed_sequence(logits, batch_first=True, total_length=tokens.size(1))
        return padded

    def step(self, inputs: torch.Tensor, z: torch.Tensor, state):
        """One decoding step. inputs: (B,) ids, z: (B, D) → logits (B, V), new state.

        The positional decoder ignores `inputs`: it returns position t's logits (a fresh tensor;
        callers may write to it), and only <eos> past its last position.
        """
        if self.positional:
            zh, t = state
            B = zh.size(1)
            pos = int(t[0, 0]) if t.numel() else 0
            if pos < self.cfg.max_positions:
                hidden = self.pos_decoder.hidden(zh[0], pos, pos + 1)[:, 0]  # (B, H)
                logits = self.out(hidden)  # (B, V)
            else:
                logits = torch.full((B, self.cfg.vocab_size), float("-inf"), dtype=zh.dtype, device=zh.device)
                logits[:, EOS_ID] = 0.0
            return logits, (zh, t + 1)
        emb = self.embedding(inputs).unsqueeze(1)  # (B, 1, E)
        if self.cfg.z_to_inputs:
            emb = torch.cat([emb, z.unsqueeze(1)], dim=-1)  # (B, 1, E+D)
        out, state = self.decoder(emb, state)  # (B, 1, H)
        return self.out(out.squeeze(1)), state

    def reconstruction_nll(
        self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor, count_correct: bool = False
    ) -> tuple[torch.Tensor, int | None]:
        """Summed token NLL per sentence (B,), computing the output layer only on real tokens."""
        out = self.decode_hidden(z, tokens, lengths)
        logits = self.out(out.data)  # (N, V): real tokens only
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
