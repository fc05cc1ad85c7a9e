"""Factor grammars as data (vae_core.grammar): the shipped grammars, the built-in corpus as one of them, refusals,
and a grammar used as a corpus from the CLI through `eval`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vae_core import grammar as gm
from vae_core import synthetic
from vae_core.corpus import CorpusError, check_run_corpus_spec, load_corpus
from vae_core.grammar import Grammar, GrammarError, grammar_for_corpus, load_grammar, shipped_grammar

SHIPPED = gm.shipped_grammars()

# Computed from vae_core/synthetic.py as it was before it became a wrapper over grammars/builtin.json
# (the code in git at 049feef): sha256 of "\n".join(realize(f) for f in all_combinations()), of
# json.dumps(all_combinations()), and of each split's sentences and labels for generate(0) and generate(3, .1, .2).
OLD_SENTENCES_SHA = "c18ea8b51199723d9415497db8953b2a344ea3702566bb04f1cbeb0f70a484ef"
OLD_COMBINATIONS_SHA = "155cb7cda31f53179f05197aa960ba64e078bb45b895aae6eabe6165fb6f95ca"
OLD_SPLIT_SHA = {
    (0, 0.05, 0.05): "acc3933c99d43b9e904fcd58dc2a2bc658b2275182fda1e1e1306ffc2738b51b",
    (3, 0.1, 0.2): "928555dfefd3c3192c46d0868ec26696bf3046ee93698969f184192de068d02c",
}


def _split_sha(corpus) -> str:
    h = hashlib.sha256()
    for split in (corpus.train, corpus.valid, corpus.test):
        h.update("\n".join(split.sentences).encode())
        h.update(json.dumps(split.labels, sort_keys=True).encode())
    return h.hexdigest()


def _minimal(**overrides) -> dict:
    raw = {
        "grammar": 1,
        "name": "tiny",
        "factors": {"who": ["cat", "dog"], "how": {"none": "", "fast": "quickly"}, "tense": {"now": "", "then": ""}},
        "agreement": {"runs": {"by": ["tense"], "forms": {"now": "runs", "then": "ran"}}},
        "templates": ["the {who} {runs} {how} ."],
    }
    raw.update(overrides)
    return raw


def _write(tmp_path: Path, raw, name: str = "g.json") -> Path:
    p = tmp_path / name
    p.write_text(raw if isinstance(raw, str) else json.dumps(raw))
    return p


# --------------------------------------------------------------------------- the shipped grammars


def test_at_least_three_grammars_besides_builtin_of_the_asked_shapes() -> None:
    others = [n for n in SHIPPED if n != "builtin"]
    assert "builtin" in SHIPPED and len(others) >= 3
    grammars = {n: shipped_grammar(n) for n in others}
    # (1) phrases of different lengths and an absent (empty) constituent
    assert any(
        any(len(w.split()) >= 2 for w in g.words[f].values()) and any(w == "" for w in g.words[f2].values())
        for g in grammars.values() for f in g.factors for f2 in g.factors
    )
    # (2) two or more templates chosen by a factor: the passive moves the agent to the end
    passive = grammars["passive"]
    assert len(passive.templates) >= 2
    active = passive.realize({"agent": "doctor", "verb": "see", "patient": "dog", "number": "plural",
                              "tense": "past", "voice": "active"})
    moved = passive.realize({"agent": "doctor", "verb": "see", "patient": "dog", "number": "plural",
                             "tense": "past", "voice": "passive"})
    assert active == "the doctor saw the dogs ." and moved == "the dogs were seen by the doctor ."
    # (3) a factor with at least 20 values, or at least 10 factors
    assert any(max(len(v) for v in g.factors.values()) >= 20 or len(g.factors) >= 10 for g in grammars.values())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_grammar_round_trips_and_is_small_enough(name: str) -> None:
    g = shipped_grammar(name)
    combos = g.all_combinations()
    assert len(combos) == g.size <= 50_000
    sentences = g.sentences()
    assert len(set(sentences)) == len(sentences)  # unambiguous
    for f, s in zip(combos, sentences, strict=True):
        assert g.realize(f) == s
        assert g.parse(s) == f
        assert g.parse("  " + s.replace(" ", "   ") + " ") == f
    assert g.parse(sentences[0] + " extra") is None and g.parse(None) is None
    codes = g.factor_codes(combos[:5])
    assert codes.shape == (5, len(g.factors)) and codes.dtype == np.int64


@pytest.mark.parametrize("name", SHIPPED)
def test_generate_is_a_deterministic_labelled_split(name: str) -> None:
    g = shipped_grammar(name)
    corpus = g.generate(seed=1)
    assert corpus == g.generate(seed=1) and corpus.train.sentences != g.generate(seed=2).train.sentences
    assert corpus.factors == tuple(g.factors)
    parts = [set(s.sentences) for s in (corpus.train, corpus.valid, corpus.test)]
    assert sum(map(len, parts)) == g.size and set().union(*parts) == set(g.sentences())
    assert len(corpus.valid) == round(0.05 * g.size)
    for split in (corpus.train, corpus.test):
        for i in (0, len(split) - 1):
            assert g.parse(split.sentences[i]) == {f: split.labels[f][i] for f in g.factors}


def test_builtin_grammar_is_the_old_synthetic_corpus() -> None:
    g = shipped_grammar("builtin")
    assert hashlib.sha256("\n".join(g.sentences()).encode()).hexdigest() == OLD_SENTENCES_SHA
    assert hashlib.sha256(json.dumps(g.all_combinations()).encode()).hexdigest() == OLD_COMBINATIONS_SHA
    assert hashlib.sha256(json.dumps(synthetic.all_combinations()).encode()).hexdigest() == OLD_COMBINATIONS_SHA
    for (seed, valid, test), sha in OLD_SPLIT_SHA.items():
        assert _split_sha(synthetic.generate(seed, valid, test)) == sha
        assert _split_sha(g.generate(seed, valid, test)) == sha
    assert synthetic.FACTORS == g.factors
    assert synthetic.generate().name == "synthetic" and grammar_for_corpus("synthetic").factors == g.factors


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (_minimal(templates=["the {who} {runs} .", "the {objct} ."]),
         "templates[1]: unknown slot {objct} (slots: who, how, tense, runs)"),
        (_minimal(templates=[{"when": {"tense": "later"}, "text": "{who}"}, "{who} {runs} {how}"]),
         "templates[0].when.tense: unknown value 'later' (values: now, then)"),
        (_minimal(templates=[{"when": {"mood": "q"}, "text": "{who}"}]), "templates[0].when: unknown factor 'mood'"),
        (_minimal(agreement={"runs": {"by": ["tense"], "forms": {"now": "runs"}}}),
         "agreement.runs: no form for tense=then"),
        (_minimal(agreement={"runs": {"by": ["tense", "who"], "forms": {"now": "runs"}}}),
         "agreement.runs.forms['now']: a key has one value"),
        (_minimal(agreement={"runs": {"by": ["tenses"], "forms": {"now": "x"}}}),
         "agreement.runs.by[0]: unknown factor 'tenses'"),
        (_minimal(agreement={"who": {"by": "tense", "forms": {"*": "x"}}}), "agreement.who: 'who' is already a factor"),
        (_minimal(factors={"who": ["cat", "cat"]}), "factors.who[1]: value 'cat' appears twice"),
        (_minimal(factors={"who": ["cat"]}, templates=["{who}"], agreement={}), "factors.who: needs at least 2 values"),
        (_minimal(factors={"who": "cat"}), "factors.who: must be a list"),
        (_minimal(factors={"who": ["c{at", "dog"]}), "factors.who[0]: a factor value's words may not contain braces"),
        (_minimal(colour="red"), "colour: unknown key"),
        (_minimal(grammar=2), "grammar: format version 2"),
        (_minimal(templates=[]), "templates: must be a non-empty list"),
        ([1, 2], "a grammar must be a JSON object"),
    ],
)
def test_malformed_grammar_names_the_entry(raw, needle: str) -> None:
    with pytest.raises(GrammarError) as err:
        Grammar.from_dict(raw)
    assert needle in str(err.value)


def test_ambiguous_grammar_names_both_settings_and_the_sentence() -> None:
    raw = _minimal(agreement={"runs": {"by": ["tense"], "forms": {"*": "runs"}}})  # tense no longer shows
    with pytest.raises(GrammarError) as err:
        Grammar.from_dict(raw)
    message = str(err.value)
    assert "ambiguous" in message
    assert "{who=cat, how=none, tense=now}" in message and "{who=cat, how=none, tense=then}" in message
    assert "'the cat runs .'" in message


def test_too_large_grammar_is_refused_before_enumerating() -> None:
    factors = {f"f{i}": [f"w{i}x{j}" for j in range(10)] for i in range(6)}  # 10^6 combinations
    raw = {"factors": factors, "templates": [" ".join(f"{{{f}}}" for f in factors)]}
    with pytest.raises(GrammarError) as err:
        Grammar.from_dict(raw)
    assert "10 × 10 × 10 × 10 × 10 × 10 = 1,000,000 combinations" in str(err.value)
    assert f"{gm.MAX_COMBINATIONS:,}" in str(err.value)


def test_no_template_for_a_combination_is_named() -> None:
    raw = _minimal(templates=[{"when": {"tense": "now"}, "text": "the {who} {runs} {how} ."}])
    with pytest.raises(GrammarError, match=r"no template matches \{who=cat, how=none, tense=then\}"):
        Grammar.from_dict(raw)


def test_bad_files_are_refused_with_the_file_named(tmp_path: Path) -> None:
    with pytest.raises(GrammarError, match=r"g.json is not valid JSON: .* line 1"):
        load_grammar(_write(tmp_path, "{not json"))
    with pytest.raises(GrammarError, match="cannot read grammar"):
        load_grammar(tmp_path / "missing.json")
    with pytest.raises(GrammarError, match="not UTF-8"):
        (tmp_path / "b.json").write_bytes(b"\xff\xfe{}")
        load_grammar(tmp_path / "b.json")
    with pytest.raises(GrammarError, match=r"^grammar g2.json: templates\[0\]: unknown slot \{whom\}"):
        load_grammar(_write(tmp_path, _minimal(templates=["{whom}"]), "g2.json"))
    with pytest.raises(GrammarError, match="no shipped grammar 'nope'"):
        shipped_grammar("nope")


def test_realize_checks_its_input() -> None:
    g = Grammar.from_dict(_minimal())
    assert g.realize({"who": "dog", "how": "fast", "tense": "then"}) == "the dog ran quickly ."
    assert g.realize({"who": "dog", "how": "none", "tense": "now"}) == "the dog runs ."  # absent constituent
    with pytest.raises(ValueError, match="'how'"):
        g.realize({"who": "dog", "tense": "now"})
    with pytest.raises(ValueError, match="'slow'"):
        g.realize({"who": "dog", "how": "slow", "tense": "now"})
    assert g.factor_changes({"who": "dog", "how": "none", "tense": "now"},
                            g.parse("the cat ran .")) == ("who", "tense")


# --------------------------------------------------------------------------- a grammar as a corpus


def test_load_corpus_takes_a_shipped_grammar_and_a_file(tmp_path: Path) -> None:
    c = load_corpus("grammar:passive", seed=4)
    assert c.spec == "grammar:passive" and c.name == "passive"
    assert c.factors == tuple(shipped_grammar("passive").factors)
    assert c == load_corpus("grammar:passive", seed=4) and c != load_corpus("grammar:passive", seed=5)
    path = _write(tmp_path, _minimal())
    fc = load_corpus(str(path))
    assert fc.spec == str(path.resolve()) and fc.name == "tiny" and fc.factors == ("who", "how", "tense")
    assert len(fc.train) + len(fc.valid) + len(fc.test) == 8
    assert grammar_for_corpus(fc.spec).parse("the dog ran quickly .") == {"who": "dog", "how": "fast", "tense": "then"}
    with pytest.raises(CorpusError, match="templates"):
        load_corpus(str(_write(tmp_path, _minimal(templates=["{nope}"]), "bad.json")))
    with pytest.raises(CorpusError, match="no shipped grammar"):
        load_corpus("grammar:nope")
    assert grammar_for_corpus("ptb") is None and grammar_for_corpus("/data/x.csv") is None


def test_run_files_may_name_shipped_grammars_but_not_outside_files(tmp_path: Path) -> None:
    assert check_run_corpus_spec("grammar:passive", tmp_path / "run", []) == "grammar:passive"
    outside = _write(tmp_path, _minimal())
    with pytest.raises(CorpusError, match="outside"):
        check_run_corpus_spec(str(outside), tmp_path / "run", [tmp_path / "data"])
    with pytest.raises(CorpusError, match="outside"):
        check_run_corpus_spec("grammar:../../etc/passwd.json", tmp_path / "run", [])


def test_label_factors_and_map_colours_follow_the_grammar_order() -> None:
    from vae_core.subset_encodings import color_values
    from vae_core.subsets import corpus_subset, label_factors

    g = shipped_grammar("names")
    corpus = load_corpus("grammar:names")
    subset = corpus_subset(corpus, ["test"], 300)
    assert subset.factor_names == tuple(g.factors) and subset.factor_values == g.factors
    codes, names, values, skipped = label_factors(subset.labels, subset.factor_names, factor_values=g.factors)
    assert names == list(g.factors) and values[0] == list(g.factors["name"]) and len(values[0]) == 24
    assert codes[:, 0].tolist() == [g.factors["name"].index(v) for v in subset.labels["name"]]
    kind, _, order = color_values("quantity", subset, enc=None)  # type: ignore[arg-type]
    assert kind == "categorical" and order == ["one", "two", "three", "many"]


def test_validity_parses_with_the_given_grammar() -> None:
    from vae_core.validity import summarise_traversals

    g = shipped_grammar("passive")
    a = g.parse("the dog was seen by the doctor .")
    b = g.parse("the doctor saw the dog .")
    summary = summarise_traversals([[a, b, b]], tuple(g.factors))
    assert summary["sole_share"]["voice"] == 1.0 and summary["top_factor"] == "voice"


@pytest.mark.slow  # ~15 s on 2 loaded cores: eval's fixed 1,000 prior samples, 500 paths and the DCI/SAP fits
def test_cli_trains_on_a_shipped_grammar_and_eval_reports_factor_metrics(tmp_path: Path, capsys) -> None:
    from vae_core.cli import main
    from vae_core.explore import run_grammar, traversal_effects
    from vae_core.runs import load_run

    out = tmp_path / "run"
    assert main(["train", "--corpus", "grammar:passive", "--out", str(out), "--max-steps", "8", "--embed-dim", "8",
                 "--hidden-dim", "16", "--latent-dim", "4", "--batch-size", "64", "--log-every", "4"]) == 0
    config = json.loads((out / "config.json").read_text())
    g = shipped_grammar("passive")
    assert config["corpus"]["spec"] == "grammar:passive" and config["corpus"]["factors"] == list(g.factors)
    run = load_run(out)
    assert run_grammar(run) is g
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "--max-sentences", "60"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["corpus"] == "grammar:passive"
    report = result["disentanglement"]
    assert report["factor_values"] == [list(v) for v in g.factors.values()]
    assert 0.0 <= report["mig"] <= 1.0
    assert result["traversals"]["n_factors"] == len(g.factors)
    prior = result["prior_samples"]
    assert prior["n"] == 1000 and prior["coverage"] == prior["n_distinct_valid"] / g.size
    assert 0.0 <= result["interpolation"]["path_validity"] <= 1.0
    effects = traversal_effects(run, np.zeros((3, 4), dtype=np.float32), dims=[0, 1])  # parsed with the grammar
    assert [d["dim"] for d in effects["per_dim"]] == [0, 1] and effects["n_factors"] == len(g.factors)
    assert set(effects["per_dim"][0]["factor_share"]) == set(g.factors)


def test_parse_reads_the_lab_tokens_of_a_sentence_and_refuses_tokens_that_collide() -> None:
    g = Grammar.from_dict({"factors": {"when": ["at five o'clock", "at noon"], "what": ["a well-known song", "a song"]},
                           "templates": ["we sang {what} {when} ."]})
    assert g.realize({"when": "at noon", "what": "a well-known song"}) == "we sang a well-known song at noon ."
    decoded = "we sang a well - known song at noon ."  # how a model trained with the lab tokenizer writes it
    assert g.parse(decoded) == {"when": "at noon", "what": "a well-known song"}
    with pytest.raises(GrammarError, match="ambiguous once tokenized: .* 'a - b .'"):
        Grammar.from_dict({"factors": {"t": ["a-b", "a - b"]}, "templates": ["{t} ."]})


def test_run_grammar_follows_a_run_file_only_into_allowed_folders(tmp_path: Path, monkeypatch) -> None:
    from types import SimpleNamespace

    from vae_core.explore import run_grammar

    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("VAE_DATA_DIRS", str(data))
    inside, outside = _write(data, _minimal()), _write(tmp_path, _minimal(), "out.json")

    def run(spec: str) -> SimpleNamespace:
        return SimpleNamespace(corpus_spec=spec, path=tmp_path / "run")

    assert run_grammar(run(str(inside))).name == "tiny"
    assert run_grammar(run(str(outside))) is None  # a run file may not point outside the data folders
    assert run_grammar(run("grammar:names")) is shipped_grammar("names")
    assert run_grammar(run("synthetic")).factors == synthetic.FACTORS
    assert run_grammar(run("ptb")) is None and run_grammar(run(str(data / "bad.csv"))) is None
    _write(data, _minimal(templates=["{nope}"]), "broken.json")
    assert run_grammar(run(str(data / "broken.json"))) is None
