"""Devices, mixed precision and data-parallel training (torchrun, 2 CPU processes with gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.core.helpers import tiny_model_config, tiny_train_config, toy_corpus
from vae_core import distributed as ddp
from vae_core.model import SentenceVAE
from vae_core.runs import load_run, read_metrics, read_status
from vae_core.train import resolve_amp, train

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- devices and AMP


def test_auto_device_is_recorded_in_status_and_first_metrics_line(tmp_path):
    from vae_core.cli import resolve_device

    device = resolve_device("auto")
    assert device in ("cpu", "cuda", "mps")
    train(tmp_path / "r", toy_corpus(2), tiny_model_config(), tiny_train_config(epochs=1), device="cpu")
    st = read_status(tmp_path / "r")
    assert st.device == "cpu" and st.world_size == 1 and st.amp == "off"
    first, *rest = [r for r in read_metrics(tmp_path / "r") if r["kind"] == "train"]
    assert first["device"] == "cpu" and first["world_size"] == 1
    assert all("device" not in r for r in rest)


def test_unknown_or_missing_devices_are_refused():
    from vae_core.cli import resolve_device

    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_amp_is_refused_off_cuda(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="CUDA only"):
        resolve_amp("bf16", "cpu")
    assert resolve_amp(None, "cpu") is None and resolve_amp("off", "cpu") is None
    with pytest.raises(ValueError, match="CUDA only"):
        train(tmp_path / "r", toy_corpus(), tiny_model_config(), tiny_train_config(), amp="fp16")
    assert not (tmp_path / "r").exists()  # refused before anything is written
    from vae_core.cli import main

    monkeypatch.setattr("signal.signal", lambda *a: None)
    rc = main(["train", "--out", str(tmp_path / "cli"), "--device", "cpu", "--amp"])
    assert rc == 2 and "CUDA only" in capsys.readouterr().err


# --------------------------------------------------------------------------- sharding arithmetic


@pytest.mark.parametrize("n,world", [(8, 2), (5, 2), (7, 3), (3, 3), (9, 4)])
def test_shards_cover_the_global_batch_and_weights_give_the_global_mean(n, world):
    bounds = [ddp.shard_bounds(n, ddp.DistContext(rank=r, world_size=world)) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    x = np.random.default_rng(0).normal(size=n)  # per-sentence losses
    ctx = ddp.DistContext(world_size=world)
    ddp_mean = sum(ddp.loss_scale(hi - lo, n, ctx) * x[lo:hi].mean() for lo, hi in bounds) / world
    assert ddp_mean == pytest.approx(x.mean(), rel=1e-12)


def test_usable_batches_drops_only_a_batch_smaller_than_the_world():
    assert ddp.usable_batches(93, 8, 1) == 12
    assert ddp.usable_batches(93, 8, 2) == 12  # last batch of 5 is split 3 + 2
    assert ddp.usable_batches(89, 8, 2) == 11  # last batch of 1 cannot feed 2 ranks
    assert ddp.usable_batches(88, 8, 4) == 11


def test_forward_with_global_noise_rows_equals_the_model_forward_for_the_same_draw():
    torch.manual_seed(0)
    model = SentenceVAE(tiny_model_config(vocab_size=20))
    tokens = torch.randint(4, 20, (5, 6))
    lengths = torch.tensor([6, 3, 5, 1, 2])
    torch.manual_seed(1)
    ref = model(tokens, lengths)
    torch.manual_seed(1)
    ctx = ddp.DistContext(rank=1, world_size=2)
    lo, hi = ddp.shard_bounds(5, ctx)
    with torch.no_grad():
        eps = torch.randn(5, model.cfg.latent_dim)  # the global draw; rank 1 keeps rows lo:hi
    out = model(tokens[lo:hi], lengths[lo:hi], noise=eps[lo:hi])
    assert torch.allclose(out.z, ref.z[lo:hi], atol=1e-6) and torch.allclose(out.recon_nll, ref.recon_nll[lo:hi],
                                                                               atol=1e-5)


def test_single_process_context_is_the_identity():
    ctx, loss = ddp.SINGLE, torch.tensor(2.5)
    batch = [3, 1, 4, 1, 5]
    assert ctx.shard(batch) is batch and ctx.noise(5, 4, torch.device("cpu")) is None
    assert ctx.scale_loss(loss, 5, 5) is loss and ctx.any(torch.device("cpu"), True) is True
    assert ctx.global_mean([0.1, 0.7], 3, 3, torch.device("cpu")) == [0.1, 0.7]  # exactly, not 3·x/3
    assert ctx.total(7, torch.device("cpu")) == 7 and ctx.keep_batch([1]) and ctx.main_first(lambda: 4) == 4
    model = SentenceVAE(tiny_model_config(vocab_size=20))
    assert ctx.wrap(model, torch.device("cpu")) is model


def test_ddp_wraps_the_sentence_vae_and_passes_its_dataclass_output_and_noise(tmp_path):
    """One gloo process: DistributedDataParallel(SentenceVAE) returns the VAEOutput and its gradients flow."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = SentenceVAE(tiny_model_config(vocab_size=20))
        net = ddp.DistContext(world_size=2).wrap(model, torch.device("cpu"))  # the wrap a 2-rank job does
        assert net.module is model
        tokens, lengths = torch.randint(4, 20, (3, 5)), torch.tensor([5, 2, 4])
        noise = torch.randn(3, model.cfg.latent_dim)
        out = net(tokens, lengths, noise=noise)
        ref = model(tokens, lengths, noise=noise)
        assert type(out) is type(ref) and torch.equal(out.z, ref.z) and out.n_tokens == 11
        out.recon_nll.mean().backward()
        assert sum(float(p.grad.abs().sum()) for p in model.parameters() if p.grad is not None) > 0
        del net
    finally:
        dist.destroy_process_group()


# --------------------------------------------------------------------------- torchrun, 2 processes


def _corpus(tmp_path: Path) -> Path:
    from vae_core import synthetic

    combos = synthetic.all_combinations()
    pick = np.random.default_rng(0).choice(len(combos), 103, replace=False)  # 93 train: 11 × 8 + a batch of 5
    p = tmp_path / "corpus.txt"
    p.write_text("\n".join(synthetic.realize(combos[i]) for i in pick) + "\n", encoding="utf-8")
    return p


def _args(corpus: Path, out: Path, max_steps: int) -> list[str]:
    return ["train", "--corpus", str(corpus), "--out", str(out), "--quiet", "--embed-dim", "8", "--hidden-dim", "16",
            "--latent-dim", "4", "--epochs", "1", "--batch-size", "8", "--schedule", "constant", "--free-bits", "0",
            "--tc-weight", "0", "--embed-dropout", "0", "--word-dropout", "0", "--log-every", "2", "--seed", "5",
            "--max-steps", str(max_steps)]


def _torchrun(args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "vae_core", *args]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]


def _single(args: list[str], resume: bool = False) -> None:
    from vae_core.cli import build_parser, configs_from_args, load_train_corpus

    a = build_parser().parse_args(args)
    if resume:
        train(Path(a.out), load_train_corpus(a.corpus, None, a.seed), resume=True, distributed=False)
    else:
        mcfg, tcfg = configs_from_args(a)
        train(Path(a.out), load_train_corpus(a.corpus, None, tcfg.seed), mcfg, tcfg, distributed=False)


def _allow_more_steps(run: Path) -> None:
    cfg = json.loads((run / "config.json").read_text())
    cfg["train"]["max_steps"] = 0
    (run / "config.json").write_text(json.dumps(cfg))


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=0, atol=1e-5), (k, float((wa[k] - wb[k]).abs().max()))


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process_on_the_same_global_batch_and_resume(tmp_path):
    corpus = _corpus(tmp_path)
    ddp_run, one_run = tmp_path / "ddp", tmp_path / "one"
    _torchrun(_args(corpus, ddp_run, 5))
    _single(_args(corpus, one_run, 5))
    _assert_same_weights(ddp_run / "model.safetensors", one_run / "model.safetensors")
    # resume both to the end of the epoch (12 batches, the last global batch of 5 split 3 + 2)
    for run in (ddp_run, one_run):
        _allow_more_steps(run)
    _torchrun(["train", "--out", str(ddp_run), "--resume", "--quiet"])
    _single(_args(corpus, one_run, 0), resume=True)
    _assert_same_weights(ddp_run / "model.safetensors", one_run / "model.safetensors")
    for part in ("optimizer.safetensors", "rng.safetensors"):
        _assert_same_weights(ddp_run / "checkpoint" / part, one_run / "checkpoint" / part)

    for f in ("config.json", "vocab.json", "model.safetensors", "best.safetensors", "checkpoint/manifest.json",
              "metrics.jsonl", "summary.json", "status.json"):
        assert (ddp_run / f).is_file(), f
    st = read_status(ddp_run)
    assert st.state == "finished" and st.step == 12 and st.world_size == 2 and st.device == "cpu"
    recs = read_metrics(ddp_run)
    train_recs = [r for r in recs if r["kind"] == "train"]
    steps = [r["step"] for r in train_recs]
    assert steps == [2, 4, 5, 6, 8, 10, 12]  # one line per logged step: only rank 0 writes
    assert len([r for r in recs if r["kind"] == "valid"]) == 2
    one = {r["step"]: r for r in read_metrics(one_run) if r["kind"] == "train"}
    for r in train_recs:  # metrics reduced over ranks equal the single process's global-batch figures
        assert r["loss"] == pytest.approx(one[r["step"]]["loss"], rel=1e-5)
        assert r["kl"] == pytest.approx(one[r["step"]]["kl"], rel=1e-4, abs=1e-6)
    run = load_run(ddp_run)
    assert run.model_config.latent_dim == 4 and not run.model.training
