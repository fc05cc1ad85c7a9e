"""Every factor-aware page on runs trained on a factor grammar (AppTest): a shipped one (grammar:passive) and a
grammar file the run keeps its own copy of. Each page shows the grammar's factors, in the grammar's order; a
changed copy is named on the page; the Train page takes an uploaded grammar (and refuses a malformed one)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.app.conftest import markdown_bodies, open_page
from vae_core.config import ModelConfig, TrainConfig
from vae_core.corpus import load_corpus
from vae_core.grammar import RUN_COPY, SHA256_KEY, grammar_from_bytes, shipped_grammar
from vae_core.runs import read_status
from vae_core.train import train

TIMEOUT = 240  # the Disentanglement page fits DCI/SAP and decodes traversals: seconds on 2 busy cores
PASSIVE = shipped_grammar("passive")
FACTORS = list(PASSIVE.factors)  # agent, verb, patient, number, tense, voice
PETS = {
    "grammar": 1,
    "name": "pets",
    "description": "Pets doing things, now or later.",
    "factors": {
        "who": ["the cat", "the dog", "a bird", "my fish", "the cow", "a hen", "the fox", "an owl", "my pony",
                "the goat"],  # 10 × 4 × 3 × 2 = 240 sentences: 12 test sentences, enough to measure
        "what": ["sleeps", "eats", "runs", "sings"],
        "where": {"home": "at home", "park": "in the park", "none": ""},
        "when": {"now": "", "later": "later"},
    },
    "templates": ["{who} {what} {where} {when} ."],
}
TINY_MODEL = ModelConfig(embed_dim=16, hidden_dim=32, latent_dim=4)


def _models(root: Path, name: str) -> Path:
    (root / "DEFAULT").write_text(name + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def passive_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/ with one tiny run on grammar:passive (trained once for this module) as its DEFAULT."""
    root = tmp_path_factory.mktemp("passive-models")
    train(root / "tiny-passive", load_corpus("grammar:passive"), TINY_MODEL,
          TrainConfig(max_steps=60, batch_size=64, log_every=20))
    return _models(root, "tiny-passive")


@pytest.fixture(scope="module")
def pets_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/ with a tiny run trained on a grammar file that was deleted after training."""
    root = tmp_path_factory.mktemp("pets-models")
    original = tmp_path_factory.mktemp("elsewhere") / "pets.json"
    original.write_text(json.dumps(PETS), encoding="utf-8")
    train(root / "tiny-pets", load_corpus(str(original)), TINY_MODEL,
          TrainConfig(max_steps=40, batch_size=16, log_every=20))
    original.unlink()  # the run must not need it
    return _models(root, "tiny-pets")


def _point_app_at(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_RUNS_DIR", str(runs))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    return runs


@pytest.fixture
def passive_app(passive_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _point_app_at(passive_models, tmp_path, monkeypatch)


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert not at.warning or not any("factor grammar" in w.value for w in at.warning), [w.value for w in at.warning]


def _frames(at) -> list:
    return [d.value for d in at.dataframe]


def _frame_with(at, column: str):
    found = [f for f in _frames(at) if column in f.columns]
    assert found, f"no table with a {column!r} column: {[list(f.columns) for f in _frames(at)]}"
    return found[0]


def _check_factors(text: str, grammar) -> bool:
    """A 'factors' cell: every factor of the grammar with a value of its own, or not a valid sentence."""
    if text == "not a valid corpus sentence":
        return True
    pairs = dict(part.split("=", 1) for part in text.split(", "))
    return list(pairs) == list(grammar.factors) and all(pairs[f] in grammar.factors[f] for f in grammar.factors)


# --------------------------------------------------------------------------- the pages on grammar:passive


def test_overview_shows_the_grammar_and_parses_prior_samples(passive_app) -> None:
    at = open_page(timeout=TIMEOUT)
    _ok(at)
    factor_table = _frame_with(at, "factor")
    assert list(factor_table["factor"]) == FACTORS
    assert list(factor_table["values"]) == [len(v) for v in PASSIVE.factors.values()]
    assert any(e.label.startswith("Factors of the corpus: the grammar 'passive' (6 factors, 2,592 sentences)")
               for e in at.expander)
    samples = _frame_with(at, "valid")
    assert all(_check_factors(t, PASSIVE) for t in samples["factors"])
    assert list(samples["valid"]) == [PASSIVE.parse(t) is not None for t in samples["sample"]]
    assert any("valid sentences of the grammar 'passive'" in t for t in markdown_bodies(at))


def test_sliders_parse_the_decode_with_the_runs_grammar(passive_app) -> None:
    sentence = load_corpus("grammar:passive").test.sentences[0]
    at = open_page("app_pages/sliders.py", query={"s": sentence}, timeout=TIMEOUT)
    _ok(at)
    captions = [c.value for c in at.caption if c.value.startswith("Factors:")]
    assert len(captions) == 1, [c.value for c in at.caption]
    text = captions[0]
    assert text == "Factors: not a valid sentence of the grammar 'passive'" or all(f"{f}=" in text for f in FACTORS)


def test_traversals_show_factor_effects_and_ownership_with_the_grammars_factors(passive_app) -> None:
    at = open_page("app_pages/traversals.py", timeout=TIMEOUT)
    _ok(at)
    grid = _frame_with(at, "factor effect")
    assert "validity" in grid.columns and len(grid) >= 1
    assert all(0.0 <= v <= 1.0 for v in grid["validity"])
    assert "Which factor does each dimension change?" in [s.value for s in at.subheader]
    at.button(key="w_trav_many").click().run(timeout=TIMEOUT)
    _ok(at)
    per_dim = _frame_with(at, "top factor")
    assert list(per_dim.columns) == ["dim", "top factor", "change rate", "validity", *FACTORS]
    assert set(per_dim["top factor"]) <= {*FACTORS, "—"}
    assert any(f"of {len(FACTORS)} factors** have a dimension of their own" in t for t in markdown_bodies(at))


def test_interpolation_marks_path_validity_with_the_grammar(passive_app) -> None:
    test = load_corpus("grammar:passive").test.sentences
    at = open_page("app_pages/interpolation.py", query={"s": test[0], "s2": test[1]}, timeout=TIMEOUT)
    _ok(at)
    path = _frame_with(at, "t")
    assert list(path.columns[:5]) == ["step", "t", "sentence", "valid", "factors"]
    assert list(path["valid"]) == [PASSIVE.parse(t) is not None for t in path["sentence"]]
    assert all(_check_factors(t, PASSIVE) for t in path["factors"])
    n_valid = int(path["valid"].sum())
    assert any(t.startswith(f"{n_valid} of {len(path)} steps decode to valid corpus sentences")
               for t in markdown_bodies(at))


def test_disentanglement_measures_the_grammars_factors_in_its_order(passive_app) -> None:
    at = open_page("app_pages/disentanglement.py", timeout=TIMEOUT)
    _ok(at)
    per_factor = _frame_with(at, "probe accuracy")
    assert list(per_factor["factor"]) == FACTORS
    metrics = _frame_with(at, "metric")
    for name in ("MIG", "DCI disentanglement", "SAP"):
        assert name in list(metrics["metric"])
    assert any(f"Against {len(FACTORS)} factors of the grammar 'passive'" in t for t in markdown_bodies(at))
    assert "What each dimension changes when decoded" in [h.value for h in at.header]
    share = _frame_with(at, "top factor")
    assert list(share.columns) == ["dim", "change rate", "validity", "top factor", *FACTORS]
    assert any(m.label == "Factors owned by one dimension" and m.value.endswith(f"of {len(FACTORS)}")
               for m in at.metric)


# --------------------------------------------------------------------------- a run on a grammar file (its own copy)


def test_a_grammar_file_run_shows_its_factors_after_the_original_is_gone(pets_models, tmp_path, monkeypatch) -> None:
    _point_app_at(pets_models, tmp_path, monkeypatch)
    pets = grammar_from_bytes((pets_models / "tiny-pets" / RUN_COPY).read_bytes(), "pets.json")
    at = open_page(timeout=TIMEOUT)
    _ok(at)
    assert list(_frame_with(at, "factor")["factor"]) == ["who", "what", "where", "when"]
    at = open_page("app_pages/disentanglement.py", timeout=TIMEOUT)
    _ok(at)
    assert list(_frame_with(at, "probe accuracy")["factor"]) == list(pets.factors)
    at = open_page("app_pages/interpolation.py", timeout=TIMEOUT)
    _ok(at)
    assert all(_check_factors(t, pets) for t in _frame_with(at, "t")["factors"])


def test_a_changed_grammar_copy_is_named_on_the_page(pets_models, tmp_path, monkeypatch) -> None:
    models = tmp_path / "models"
    shutil.copytree(pets_models, models)
    copy = models / "tiny-pets" / RUN_COPY
    copy.write_bytes(copy.read_bytes().replace(b"sleeps", b"snores"))
    _point_app_at(models, tmp_path, monkeypatch)
    for page in (None, "app_pages/traversals.py"):
        at = open_page(page, timeout=TIMEOUT)
        assert not at.exception, [e.value for e in at.exception]
        warnings = [w.value for w in at.warning if "factor grammar" in w.value]
        assert len(warnings) == 1 and "has changed since training" in warnings[0], [w.value for w in at.warning]
        assert not [f for f in _frames(at) if "factor effect" in f.columns or "factor" in f.columns]


# --------------------------------------------------------------------------- Train page: uploading a grammar

TRAIN = "app_pages/train.py"


def _upload(at, name: str, data: bytes):
    at.radio(key="train_corpus_source").set_value("grammar").run()
    at.radio(key="train_grammar_kind").set_value("upload").run()
    assert at.button(key="train_start").disabled  # nothing uploaded yet
    return at.file_uploader(key="w_train_grammar_upload").set_value((name, data, "application/json")).run()


def test_an_uploaded_grammar_is_validated_and_previewed(passive_app) -> None:
    data = json.dumps(PETS).encode()
    at = _upload(open_page(TRAIN, timeout=TIMEOUT), "pets.json", data)
    _ok(at)
    pets = grammar_from_bytes(data, "pets.json")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sentences"] == f"{pets.size:,}" and metrics["Factors"] == str(len(pets.factors))
    assert list(_frame_with(at, "factor")["factor"]) == ["who", "what", "where", "when"]
    sentences = _frame_with(at, "sentence")
    assert list(sentences.columns) == ["sentence", *pets.factors]
    for _, row in sentences.iterrows():
        assert pets.parse(row["sentence"]) == {f: row[f] for f in pets.factors}
    assert not at.button(key="train_start").disabled
    assert not any(passive_app.iterdir()), "nothing is written before Start"


@pytest.mark.parametrize(("data", "expected"), [
    (json.dumps({**PETS, "templates": ["{who} {wat} ."]}).encode(), "unknown slot"),
    (json.dumps({**PETS, "factors": {"<b>x</b>": ["a", "b"]}}).encode(), "factors.&lt;b&gt;x&lt;/b&gt;"),
    (b"{not json", "is not valid JSON"),
    (json.dumps({**PETS, "templates": ["{who} {what} ."]}).encode(), "ambiguous"),
])
def test_a_malformed_grammar_upload_is_refused_with_its_reason(passive_app, data: bytes, expected: str) -> None:
    at = _upload(open_page(TRAIN, timeout=TIMEOUT), "bad<i>.json", data)
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Cannot use this grammar: ") and expected in errors[0], errors
    assert "<b>" not in errors[0] and "<i>" not in errors[0]  # file-supplied text is escaped
    assert at.button(key="train_start").disabled
    assert not any(passive_app.iterdir())


@pytest.mark.slow  # starts a training process
def test_training_on_an_uploaded_grammar_keeps_it_in_the_run(passive_app) -> None:
    data = json.dumps(PETS).encode()
    at = _upload(open_page(TRAIN, timeout=TIMEOUT), "pets.json", data)
    for key, value in {"train_embed_dim": 8, "train_hidden_dim": 16, "train_latent_dim": 4, "train_batch_size": 16,
                       "train_max_steps": 3}.items():
        at.number_input(key=key).set_value(value)
    at.text_input(key="train_run_name").set_value("my-grammar")
    at.run()
    at.button(key="train_start").click().run()
    _ok(at)
    run = passive_app / "my-grammar"
    try:
        assert (run / RUN_COPY).read_bytes() == data
        assert json.loads((run / "train_config.json").read_text())["corpus"]["spec"] == str(run.resolve() / RUN_COPY)
        deadline = time.time() + 120
        while time.time() < deadline and read_status(run).state not in ("finished", "failed"):
            time.sleep(0.5)
        assert read_status(run).state == "finished", (run / "train.log").read_text()
        corpus_info = json.loads((run / "config.json").read_text())["corpus"]
        assert corpus_info["factors"] == list(PETS["factors"]) and len(corpus_info[SHA256_KEY]) == 64
        assert (run / RUN_COPY).read_bytes() == data
    finally:
        pid = read_status(run).pid if (run / "status.json").exists() else None
        if isinstance(pid, int) and pid != os.getpid():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
