"""Concurrent users: sessions share one cached model read-only, and trainings started together are queued.

AppTest instances in threads share the process's st.cache_resource, as browser sessions on one server
do: that sharing is what is tested (the model is loaded once and decoding never changes it).
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from unittest.mock import MagicMock

import pytest
import torch
from streamlit import config as st_config
from streamlit.runtime import Runtime
from streamlit.runtime.caching.storage.dummy_cache_storage import MemoryCacheStorageManager
from streamlit.runtime.dataframe_source_manager import DataframeSourceManager
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.runtime.scriptrunner import script_cache

from tests.app.conftest import TINY_RUN, open_page
from ui import loaders, state
from vae_core import jobs
from vae_core.config import DecodeConfig
from vae_core.corpus import load_corpus
from vae_core.decode import decode
from vae_core.encoding import posterior_means
from vae_core.runs import load_run, read_status

SESSIONS = 8
TIMEOUT_S = 120
TINY_ARGS = ["--corpus", "synthetic", "--embed-dim", "8", "--hidden-dim", "16", "--latent-dim", "4",
             "--batch-size", "16", "--log-every", "5", "--max-steps", "10", "--device", "cpu"]


def _to_slider(x: float) -> float:
    """app_pages/sliders.to_slider (importing the page would run it)."""
    x = min(state.SLIDER_MAX, max(state.SLIDER_MIN, float(x)))
    return round(round(x / state.SLIDER_STEP) * state.SLIDER_STEP, 2)


def _decoded_sentence(at) -> str:
    """The text of the decoded-sentence box: marks removed, entities decoded."""
    body = next(m.value for m in at.markdown if 'class="vae-sentence"' in m.value)
    inner = body.split('<div class="vae-sentence">', 1)[1].rsplit("</div>", 1)[0]
    return html.unescape(re.sub(r"</?mark>", "", inner))


@pytest.fixture
def apptest_in_threads(monkeypatch):
    """Let AppTest runs overlap in threads, as sessions do on one server.

    AppTest (1.67) assumes one run at a time per process: each run installs a mock Runtime singleton and
    sets it to None when it ends (pulling it from under a run still going in another thread: "Runtime
    hasn't been created!"), patches the global.appTest option in and out, and compiles the page with
    ast.parse, which CPython 3.11 does not make thread-safe ("AST constructor recursion depth mismatch").
    A server has one Runtime and one script cache; here the Runtime falls back to one shared mock,
    global.appTest stays on, and compiling a page is serialised. The app's code runs unchanged.
    """
    fallback = MagicMock(spec=Runtime)
    fallback.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    fallback.dataframe_source_mgr = DataframeSourceManager()
    fallback.cache_storage_manager = MemoryCacheStorageManager()
    monkeypatch.setattr(Runtime, "instance", classmethod(lambda cls: cls._instance or fallback))
    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: True))
    compile_lock = threading.Lock()
    real_bytecode = script_cache.ScriptCache.get_bytecode

    def get_bytecode(self, path):
        with compile_lock:
            return real_bytecode(self, path)

    monkeypatch.setattr(script_cache.ScriptCache, "get_bytecode", get_bytecode)
    old = st_config.get_option("global.appTest")
    st_config.set_option("global.appTest", True)
    yield
    st_config.set_option("global.appTest", old)


@pytest.mark.slow
def test_eight_sessions_move_sliders_at_once_on_one_shared_model(tiny_models_dir, apptest_in_threads, monkeypatch):
    run_path = Path(os.environ["VAE_MODELS_DIR"]) / TINY_RUN
    loads = []
    real_load = loaders.load_run
    monkeypatch.setattr(loaders, "load_run", lambda p, *a, **k: loads.append(p) or real_load(p, *a, **k))
    shared = loaders.load_run_cached(str(run_path), loaders._weights_mtime(run_path))
    before = {k: v.clone() for k, v in shared.model.state_dict().items()}

    sentences = list(load_corpus("synthetic").test.sentences[:SESSIONS - 1]) + ["the purple giraffe sees < & >"]
    moves = [(i % 4, 3.0 if i % 2 else -3.0) for i in range(SESSIONS)]

    def session(i: int):
        at = open_page("app_pages/sliders.py")
        at.text_input(key="w_sliders_text").set_value(sentences[i]).run()
        dim, value = moves[i]
        at.slider(key=f"w_z_{dim}").set_value(value).run()
        return at

    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=SESSIONS)
    futures = [pool.submit(session, i) for i in range(SESSIONS)]
    _, not_done = wait(futures, timeout=TIMEOUT_S)
    pool.shutdown(wait=False, cancel_futures=True)  # a hung session fails the test instead of blocking it
    assert not not_done, f"{len(not_done)} session(s) did not answer within {TIMEOUT_S} s"
    elapsed = time.monotonic() - started

    # The answers, checked against vae_core directly on a separately loaded copy of the run.
    ref = load_run(run_path)
    tcfg = ref.train_config
    for i, fut in enumerate(futures):
        at = fut.result()
        assert not at.exception, (i, [e.value for e in at.exception])
        assert not at.error, (i, [e.value for e in at.error])
        mu, _, _ = posterior_means(ref.model, ref.vocab, [sentences[i]], lowercase=tcfg.lowercase,
                                   max_len=tcfg.max_len)
        z0 = mu[0]  # (D,)
        start = [_to_slider(x) for x in z0.tolist()]
        dim, value = moves[i]
        z = z0.clone()
        if abs(value - start[dim]) > 1e-9:
            z[dim] = value
        expected = decode(ref.model, torch.stack([z0, z]), ref.vocab, DecodeConfig()).texts[1]  # (2, D) as the page
        assert " ".join(_decoded_sentence(at).split()) == " ".join(expected.split()), (i, sentences[i])

    # One model, loaded once, unchanged by 8 sessions decoding on it.
    assert len(loads) == 1, f"the model was loaded {len(loads)} times"
    assert loaders.load_run_cached(str(run_path), loaders._weights_mtime(run_path)) is shared
    assert shared.model.training is False
    assert not any(p.requires_grad for p in shared.model.parameters())
    after = shared.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), "decoding changed the shared weights"
    assert elapsed < TIMEOUT_S


# --------------------------------------------------------------------------- two trainings at once


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"
    return True


@pytest.fixture
def runs_root(tiny_models_dir, monkeypatch):
    """The per-test runs dir with VAE_MAX_TRAININGS=1; any training still alive at the end is killed."""
    monkeypatch.setenv("VAE_MAX_TRAININGS", "1")
    root = Path(os.environ["VAE_RUNS_DIR"])
    yield root
    for status in root.glob("*/status.json"):
        pid = read_status(status.parent).pid
        if isinstance(pid, int) and pid != os.getpid() and _alive(pid):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


@pytest.mark.slow
def test_two_trainings_started_at_once_one_queued_both_finish(runs_root):
    a, b = runs_root / "first", runs_root / "second"
    with ThreadPoolExecutor(max_workers=2) as pool:
        pids = list(pool.map(lambda d: jobs.start_training(d, TINY_ARGS), (a, b)))
    assert sorted(p is None for p in pids) == [False, True], pids  # exactly one started, one queued
    queued = b if pids[1] is None else a
    s = read_status(queued)
    assert s.state == "queued" and "already running" in s.message and isinstance(s.pid, int)
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:  # nothing polls: the queued process takes the slot when it frees
        if all(read_status(d).state in ("finished", "failed") for d in (a, b)):
            break
        time.sleep(0.5)
    for d in (a, b):
        assert read_status(d).state == "finished", (d.name, read_status(d), jobs.log_tail(d / jobs.LOG_NAME))
        assert load_run(d).model_config.latent_dim == 4


def test_train_page_says_a_second_training_is_queued(open_app, runs_root):
    held = jobs.try_slot(runs_root)  # a live training holds the only slot
    at = open_app("app_pages/train.py")
    sizes = {"train_embed_dim": 8, "train_hidden_dim": 16, "train_latent_dim": 4, "train_max_steps": 10}
    for key, value in sizes.items():
        at.number_input(key=key).set_value(value)
    at.text_input(key="train_run_name").set_value("second")
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("Run second is queued" in i.value.replace("\\", "") for i in at.info), [i.value for i in at.info]
    assert read_status(runs_root / "second").state == "queued"
    assert jobs.stop_training(runs_root / "second") == "stopped"  # cancelled while queued: nothing ran
    assert not (runs_root / "second" / "metrics.jsonl").exists()
    held.release()
