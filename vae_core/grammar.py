"""Factor grammars as data: a JSON file → realize, parse, every sentence, a deterministic split and factor labels.

A grammar lists its factors and their values (a value's words may be a phrase or empty), agreement
tables (a word form looked up by other factors' values) and one or more templates (chosen by
factor values, so a factor's words can move). Loading validates the file, enumerates every
combination (refused above MAX_COMBINATIONS) and refuses an ambiguous grammar (two combinations
giving one sentence), so a loaded `Grammar` always has `parse(realize(f)) == f`. The built-in
corpus is `grammars/builtin.json` (`vae_core.synthetic` wraps it). The format is in the README
("Factor grammars"); every error names the entry at fault, e.g. "templates[1]: unknown slot {objct}".
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vae_core.text import tokenize
from vae_core.textset import Corpus, TextSet

FORMAT_VERSION = 1  # the "grammar" key of a file
MAX_COMBINATIONS = 200_000  # every combination is realised and kept in memory at load (~0.5 s per 100k)
MAX_FILE_BYTES = 1 << 20  # a grammar is a few kilobytes; a bigger file is not one
MAX_FACTORS = 32
MAX_VALUES = 1_000  # values of one factor
MAX_TEXT = 300  # characters of one value, form or template
SHIPPED_DIR = Path(__file__).with_name("grammars")
SPEC_PREFIX = "grammar:"  # a shipped grammar as a corpus spec: grammar:passive
ABSENT_LABEL = "none"  # the label of an empty value written in a list ("" has no name of its own)
WILDCARD = "*"
KEY_SEP = "|"
RUN_COPY = "grammar.json"  # a run's own copy of the grammar file it was trained on (beside config.json)
SHA256_KEY = "grammar_sha256"  # config.json corpus.<this>: the sha256 of that copy, checked on every read

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SLOT = re.compile(r"\{([^{}]*)\}")
_PLAIN = re.compile(r"(?:\w+|[^\w\s])(?: (?:\w+|[^\w\s]))*\Z")  # text.tokenize leaves it as it is
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_KEYS = {"grammar", "name", "description", "factors", "agreement", "templates"}


class GrammarError(ValueError):
    """A grammar file that cannot be used; the message names the offending entry."""


@dataclass(frozen=True)
class _Text:
    """A template or form text split into literal parts and slot names: parts[0] slot[0] parts[1] …"""

    parts: tuple[str, ...]
    slots: tuple[str, ...]
    fmt: str  # the text itself: its slots are checked names, so str.format_map renders it


@dataclass(frozen=True)
class Agreement:
    """A word form looked up by other factors' values: the first key of `forms` that matches wins."""

    name: str
    by: tuple[str, ...]  # factor names the keys are made of
    forms: tuple[tuple[tuple[str, ...], _Text], ...]  # (one label or '*' per factor of `by`, text)
    table: Mapping[tuple[str, ...], _Text]  # values of `by` -> the form that wins (every combination)


@dataclass(frozen=True)
class Template:
    """One word order; used for the combinations that match `when` (the first matching template wins)."""

    when: tuple[tuple[str, frozenset[str]], ...]  # (factor, allowed labels)
    text: _Text


def _fail(where: str, message: str) -> GrammarError:
    return GrammarError(f"{where}: {message}" if where else message)


def _string(value: Any, where: str, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"must be a string, got {type(value).__name__}")
    if not empty and not value.strip():
        raise _fail(where, "must not be empty")
    if len(value) > MAX_TEXT:
        raise _fail(where, f"is {len(value)} characters long (at most {MAX_TEXT})")
    return value


def _label(value: Any, where: str) -> str:
    label = _string(value, where, empty=False)
    bad = [c for c in (KEY_SEP, "{", "}") if c in label]
    if bad or label != label.strip() or label == WILDCARD:
        raise _fail(where, f"label {label!r} may not be '*', contain {', '.join(repr(c) for c in (KEY_SEP, '{', '}'))} "
                           "or start or end with a space")
    return label


def _words(value: Any, where: str) -> str:
    text = _string(value, where)
    if "{" in text or "}" in text:
        raise _fail(where, f"a factor value's words may not contain braces: {text!r}")
    return " ".join(text.split())


def _compile_text(value: Any, where: str, known: Sequence[str], what: str, empty: bool = False) -> _Text:
    text = _string(value, where, empty=empty)
    parts, slots, pos = [], [], 0
    for m in _SLOT.finditer(text):
        name = m.group(1)
        if name not in known:
            raise _fail(where, f"unknown slot {{{name}}} ({what}: {', '.join(known)})")
        parts.append(text[pos:m.start()])
        slots.append(name)
        pos = m.end()
    tail = text[pos:]
    if "{" in "".join(parts) + tail or "}" in "".join(parts) + tail:
        raise _fail(where, f"unbalanced brace in {text!r}")
    parts.append(tail)
    return _Text(tuple(parts), tuple(slots), text)


def _render(text: _Text, words: Mapping[str, str]) -> str:
    return text.fmt.format_map(words)


def _parse_factors(raw: Any) -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, str]]]:
    if not isinstance(raw, dict) or not raw:
        raise _fail("factors", "must be a non-empty object {factor: [values] or {label: words}}")
    if len(raw) > MAX_FACTORS:
        raise _fail("factors", f"has {len(raw)} factors (at most {MAX_FACTORS})")
    labels: dict[str, tuple[str, ...]] = {}
    words: dict[str, dict[str, str]] = {}
    for name, values in raw.items():
        where = f"factors.{name}"
        if not _NAME.match(name):
            raise _fail(where, "a factor name must be letters, digits and '_', not starting with a digit")
        if isinstance(values, list):
            pairs = []
            for i, v in enumerate(values):
                w = _words(v, f"{where}[{i}]")
                pairs.append((ABSENT_LABEL if not w else _label(w, f"{where}[{i}]"), w))
        elif isinstance(values, dict):
            pairs = [(_label(k, f"{where}.{k}"), _words(v, f"{where}.{k}")) for k, v in values.items()]
        else:
            raise _fail(where, f"must be a list of values or an object {{label: words}}, got {type(values).__name__}")
        if len(pairs) < 2:
            raise _fail(where, f"needs at least 2 values, got {len(pairs)}")
        if len(pairs) > MAX_VALUES:
            raise _fail(where, f"has {len(pairs)} values (at most {MAX_VALUES})")
        seen: set[str] = set()
        for i, (label, _) in enumerate(pairs):
            if label in seen:
                raise _fail(f"{where}[{i}]", f"value {label!r} appears twice")
            seen.add(label)
        labels[name] = tuple(label for label, _ in pairs)
        words[name] = dict(pairs)
    return labels, words


def _parse_agreement(raw: Any, factors: Mapping[str, tuple[str, ...]]) -> dict[str, Agreement]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail("agreement", "must be an object {name: {\"by\": [factors], \"forms\": {key: words}}}")
    out: dict[str, Agreement] = {}
    for name, entry in raw.items():
        where = f"agreement.{name}"
        if not _NAME.match(name):
            raise _fail(where, "a name must be letters, digits and '_', not starting with a digit")
        if name in factors:
            raise _fail(where, f"{name!r} is already a factor; give the agreement another name")
        if not isinstance(entry, dict) or set(entry) - {"by", "forms"} or "by" not in entry or "forms" not in entry:
            raise _fail(where, 'must be an object with exactly "by" and "forms"')
        by = [entry["by"]] if isinstance(entry["by"], str) else entry["by"]
        if not isinstance(by, list) or not by:
            raise _fail(f"{where}.by", "must be a factor name or a non-empty list of them")
        for i, f in enumerate(by):
            if f not in factors:
                raise _fail(f"{where}.by[{i}]", f"unknown factor {f!r} (factors: {', '.join(factors)})")
        if len(set(by)) != len(by):
            raise _fail(f"{where}.by", "names a factor twice")
        forms = entry["forms"]
        if not isinstance(forms, dict) or not forms:
            raise _fail(f"{where}.forms", "must be a non-empty object {\"value|value\": words}")
        compiled = []
        for key, text in forms.items():
            kw = f"{where}.forms[{key!r}]"
            parts = key.split(KEY_SEP) if isinstance(key, str) else []
            if len(parts) != len(by):
                raise _fail(kw, f"a key has one value (or '*') per factor of \"by\" ({KEY_SEP.join(by)}), "
                                f"joined with {KEY_SEP!r}")
            for f, p in zip(by, parts, strict=True):
                if p != WILDCARD and p not in factors[f]:
                    raise _fail(kw, f"factor {f!r} has no value {p!r} (values: {', '.join(factors[f])})")
            compiled.append((tuple(parts), _compile_text(text, kw, tuple(factors), "factors", empty=True)))
        combos = 1
        for f in by:
            combos *= len(factors[f])
        if combos > MAX_COMBINATIONS:
            raise _fail(f"{where}.by", f"its factors have {combos:,} combinations (at most {MAX_COMBINATIONS:,})")
        table = {}
        for values in itertools.product(*(factors[f] for f in by)):  # every combination of its factors has a form
            form = next((text for key, text in compiled
                         if all(k == WILDCARD or k == v for k, v in zip(key, values, strict=True))), None)
            if form is None:
                example = KEY_SEP.join(values)
                raise _fail(where, f"no form for {', '.join(f'{f}={v}' for f, v in zip(by, values, strict=True))}"
                                   f" (add a key such as {example!r} or one with '*')")
            table[values] = form
        out[name] = Agreement(name, tuple(by), tuple(compiled), table)
    return out


def _parse_templates(raw: Any, factors: Mapping[str, tuple[str, ...]], slots: Sequence[str]) -> tuple[Template, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail("templates", 'must be a non-empty list of {"when": {factor: value(s)}, "text": "..."}')
    out = []
    for i, entry in enumerate(raw):
        where = f"templates[{i}]"
        if isinstance(entry, str):
            entry = {"text": entry}
        if not isinstance(entry, dict) or "text" not in entry or set(entry) - {"when", "text"}:
            raise _fail(where, 'must be a string or an object with "text" and optionally "when"')
        when_raw = entry.get("when", {})
        if not isinstance(when_raw, dict):
            raise _fail(f"{where}.when", "must be an object {factor: value or [values]}")
        when = []
        for f, allowed in when_raw.items():
            if f not in factors:
                raise _fail(f"{where}.when", f"unknown factor {f!r} (factors: {', '.join(factors)})")
            allowed = [allowed] if isinstance(allowed, str) else allowed
            if not isinstance(allowed, list) or not allowed:
                raise _fail(f"{where}.when.{f}", "must be a value or a non-empty list of values")
            for v in allowed:
                if v not in factors[f]:
                    raise _fail(f"{where}.when.{f}", f"unknown value {v!r} (values: {', '.join(factors[f])})")
            when.append((f, frozenset(allowed)))
        out.append(Template(tuple(when), _compile_text(entry["text"], where, slots, "slots")))
    return tuple(out)


def factor_codes(factors: Mapping[str, Sequence[str]], factor_dicts: Iterable[Mapping[str, str]]) -> np.ndarray:
    """Each row's values as indices into factors[name] (in `factors` order): int64 (N, K); ValueError naming the row."""
    index = {name: {value: i for i, value in enumerate(values)} for name, values in factors.items()}
    rows = []
    for n, row_factors in enumerate(factor_dicts):
        row = []
        for name, lookup in index.items():
            if name not in row_factors:
                raise ValueError(f"row {n} has no factor {name!r}")
            code = lookup.get(row_factors[name])
            if code is None:
                raise ValueError(f"row {n}: factor {name!r} has no value {row_factors[name]!r} "
                                 f"(values: {', '.join(factors[name])})")
            row.append(code)
        rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(len(rows), len(index))


class Grammar:
    """A validated, enumerated factor grammar. Build with `load_grammar`, `shipped_grammar` or `from_dict`."""

    def __init__(self, name: str, description: str, factors: dict[str, tuple[str, ...]],
                 words: dict[str, dict[str, str]], agreement: dict[str, Agreement], templates: tuple[Template, ...],
                 source: str = "") -> None:
        self.name = name
        self.description = description
        self.factors = factors  # factor -> value labels, in the file's order
        self.words = words  # factor -> label -> words ('' = absent)
        self.agreement = agreement
        self.templates = templates
        self.source = source
        self.size = 1
        for values in factors.values():
            self.size *= len(values)
        if self.size > MAX_COMBINATIONS:
            sizes = " × ".join(str(len(v)) for v in factors.values())
            raise GrammarError(f"grammar {name!r} has {sizes} = {self.size:,} combinations, more than the "
                               f"{MAX_COMBINATIONS:,} the lab enumerates: drop values or factors")
        self._enumerated: tuple[Any, ...] | None = None  # (realized, sentence → values, tokens → values)

    def enumerate(self) -> Grammar:
        """Realise every combination once (cached) and refuse an empty or ambiguous sentence; returns self."""
        if self._enumerated is not None:
            return self
        names = tuple(self.factors)
        realized = []
        table: dict[str, tuple[str, ...]] = {}
        for values in itertools.product(*self.factors.values()):
            sentence = self._realize_values(dict(zip(names, values, strict=True)))
            if not sentence:
                raise GrammarError(f"grammar {self.name!r}: {self._describe(values)} realizes an empty sentence")
            other = table.setdefault(sentence, values)
            if other is not values:
                raise GrammarError(f"grammar {self.name!r} is ambiguous: {self._describe(other)} and "
                                   f"{self._describe(values)} both realize {sentence!r}")
            realized.append((values, sentence))
        tokens_table: dict[str, tuple[str, ...]] = {}  # sentences the lab's tokenizer splits ("o'clock" → "o ' clock")
        for values, sentence in realized:
            if _PLAIN.match(sentence):  # words and lone punctuation marks: its own tokens (the common case, fast)
                continue
            tokens = " ".join(tokenize(sentence))
            if tokens == sentence:
                continue
            other = table.get(tokens) or tokens_table.setdefault(tokens, values)
            if other is not values:
                raise GrammarError(f"grammar {self.name!r} is ambiguous once tokenized: {self._describe(other)} and "
                                   f"{self._describe(values)} both give the tokens {tokens!r}")
        self._enumerated = (tuple(realized), table, tokens_table)
        return self

    @property
    def _realized(self) -> tuple[tuple[tuple[str, ...], str], ...]:
        return self.enumerate()._enumerated[0]  # type: ignore[index]

    @property
    def _table(self) -> dict[str, tuple[str, ...]]:
        return self.enumerate()._enumerated[1]  # type: ignore[index]

    @classmethod
    def from_dict(cls, raw: Any, source: str = "", check: bool = True) -> Grammar:
        """Validate a parsed grammar file (GrammarError naming the entry at fault) and (by default) enumerate it."""
        if not isinstance(raw, dict):
            raise GrammarError(f"a grammar must be a JSON object, got {type(raw).__name__}")
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise _fail(unknown[0], f"unknown key (keys: {', '.join(sorted(_KEYS))})")
        version = raw.get("grammar", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise _fail("grammar", f"format version {version!r} is not supported (this lab reads {FORMAT_VERSION})")
        name = _string(raw.get("name", Path(source).stem if source else "grammar"), "name", empty=False)
        description = raw.get("description", "")
        if not isinstance(description, str):
            raise _fail("description", f"must be a string, got {type(description).__name__}")
        description = description[: MAX_TEXT * 8]
        factors, words = _parse_factors(raw.get("factors"))
        agreement = _parse_agreement(raw.get("agreement"), factors)
        templates = _parse_templates(raw.get("templates"), factors, (*factors, *agreement))
        grammar = cls(name, description, factors, words, agreement, templates, source)
        return grammar.enumerate() if check else grammar

    # ------------------------------------------------------------------ realize and parse

    def _describe(self, values: Sequence[str]) -> str:
        return "{" + ", ".join(f"{f}={v}" for f, v in zip(self.factors, values, strict=True)) + "}"

    def _realize_values(self, factors: Mapping[str, str]) -> str:
        words = {f: self.words[f][v] for f, v in factors.items()}
        for a in self.agreement.values():
            words[a.name] = _render(a.table[tuple(factors[f] for f in a.by)], words)
        for t in self.templates:
            if all(factors[f] in allowed for f, allowed in t.when):
                return " ".join(_render(t.text, words).split())
        values = tuple(factors[f] for f in self.factors)
        raise GrammarError(f"grammar {self.name!r}: no template matches {self._describe(values)}")

    def check(self, factors: Mapping[str, str]) -> None:
        """Raise ValueError naming the first unknown, missing or invalid factor."""
        for name in factors:
            if name not in self.factors:
                raise ValueError(f"unknown factor {name!r} (factors: {', '.join(self.factors)})")
        for name, values in self.factors.items():
            if name not in factors:
                raise ValueError(f"missing factor {name!r} (factors: {', '.join(self.factors)})")
            if factors[name] not in values:
                raise ValueError(f"factor {name!r} has no value {factors[name]!r} (values: {', '.join(values)})")

    def realize(self, factors: Mapping[str, str]) -> str:
        """The one sentence of this combination (tokens separated by single spaces); ValueError if it is invalid."""
        self.check(factors)
        return self._realize_values(factors)

    def parse(self, sentence: Any) -> dict[str, str] | None:
        """The factors that realize this sentence (whitespace normalised), or None when it is not one."""
        if not isinstance(sentence, str):
            return None
        values = self._table.get(" ".join(sentence.split()))
        if values is None and self._token_table:  # a decoded sentence is the lab's tokens: "o ' clock" for "o'clock"
            values = self._token_table.get(" ".join(tokenize(sentence)))
        return None if values is None else dict(zip(self.factors, values, strict=True))

    @property
    def _token_table(self) -> dict[str, tuple[str, ...]]:
        return self.enumerate()._enumerated[2]  # type: ignore[index]

    def all_combinations(self) -> list[dict[str, str]]:
        """Every combination of factor values, in itertools.product order over the factors."""
        names = tuple(self.factors)
        return [dict(zip(names, values, strict=True)) for values, _ in self._realized]

    def sentences(self) -> list[str]:
        """Every sentence, in all_combinations() order."""
        return [sentence for _, sentence in self._realized]

    def factor_codes(self, factor_dicts: Iterable[Mapping[str, str]]) -> np.ndarray:
        """Factor values as indices into factors[name]: int64 (N, K), K = number of factors; ValueError if unknown."""
        return factor_codes(self.factors, factor_dicts)

    def factor_changes(self, a: Mapping[str, str] | None, b: Mapping[str, str] | None) -> tuple[str, ...]:
        """Names of the factors (in grammar order) whose values differ; empty if either is None."""
        if a is None or b is None:
            return ()
        return tuple(name for name in self.factors if a.get(name) != b.get(name))

    def generate(self, seed: int = 0, valid_fraction: float = 0.05, test_fraction: float = 0.05,
                 name: str | None = None, spec: str = "") -> Corpus:
        """Every sentence, shuffled with numpy.random.default_rng(seed), split train/valid/test with factor labels.

        Valid and test take round(fraction · N) sentences each; the same seed gives the same corpus.
        """
        for label, fraction in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= fraction < 1.0:
                raise ValueError(f"{label} must be in [0, 1), got {fraction}")
        n = len(self._realized)
        n_valid = round(n * valid_fraction)
        n_test = round(n * test_fraction)
        if n_valid + n_test >= n:
            raise ValueError(f"valid_fraction + test_fraction must leave sentences for training, "
                             f"got {valid_fraction} + {test_fraction}")
        order = np.random.default_rng(seed).permutation(n)
        names = tuple(self.factors)

        def text_set(indices: np.ndarray) -> TextSet:
            rows = [self._realized[i] for i in indices.tolist()]
            return TextSet(
                sentences=tuple(sentence for _, sentence in rows),
                labels={f: tuple(values[k] for values, _ in rows) for k, f in enumerate(names)},
            )

        return Corpus(
            name=name or self.name,
            train=text_set(order[n_valid + n_test:]),
            valid=text_set(order[:n_valid]),
            test=text_set(order[n_valid:n_valid + n_test]),
            factors=names,
            spec=spec,
        )

    @functools.cached_property
    def max_tokens(self) -> int:
        """Tokens in the longest sentence."""
        return max(len(s.split()) for _, s in self._realized)

    def vocabulary(self) -> list[str]:
        """The distinct tokens of all sentences, sorted."""
        return sorted({tok for _, s in self._realized for tok in s.split()})


# --------------------------------------------------------------------------- files, shipped grammars, corpus specs


def shipped_grammars() -> list[str]:
    """Names of the grammars shipped in vae_core/grammars (file stems), sorted."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json"))


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise GrammarError(f"cannot read grammar {path}: {e.strerror or e}") from e
    if size > MAX_FILE_BYTES:
        raise GrammarError(f"grammar {path.name} is {size:,} bytes (at most {MAX_FILE_BYTES:,})")
    try:
        return path.read_bytes()
    except OSError as e:
        raise GrammarError(f"cannot read grammar {path}: {e.strerror or e}") from e


def _decode(data: bytes, name: str) -> Any:
    """The JSON value of a grammar file's bytes (GrammarError naming the file: too big, not UTF-8, not JSON)."""
    if len(data) > MAX_FILE_BYTES:
        raise GrammarError(f"grammar {name} is {len(data):,} bytes (at most {MAX_FILE_BYTES:,})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise GrammarError(f"grammar {name} is not UTF-8 text (byte {e.start})") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise GrammarError(f"grammar {name} is not valid JSON: {e.msg} at line {e.lineno}, "
                           f"column {e.colno}") from e
    except RecursionError as e:
        raise GrammarError(f"grammar {name} is nested too deeply") from e


def _read(path: Path) -> Any:
    return _decode(_read_bytes(path), path.name)


def grammar_from_bytes(data: bytes, name: str = "grammar.json") -> Grammar:
    """Validate and enumerate a grammar file's content (an upload): GrammarError naming the file and the entry
    at fault. Its name, when the file gives none, is the stem of `name`."""
    try:
        return Grammar.from_dict(_decode(bytes(data), name), source=Path(name).name)
    except GrammarError as e:
        message = str(e)
        raise GrammarError(message if message.startswith(f"grammar {name}") else f"grammar {name}: {message}") from None


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int, size: int) -> Grammar:
    p = Path(path)
    try:
        return Grammar.from_dict(_read(p), source=p.name, check=False)
    except GrammarError as e:
        raise GrammarError(f"grammar {p.name}: {e}") from None


def load_grammar(path: str | os.PathLike, check: bool = True) -> Grammar:
    """Read and validate a grammar file, and enumerate it (GrammarError with the file and the entry at fault).

    check=False defers the enumeration (and the ambiguity check) to the first realize/parse/generate.
    Loaded grammars are cached by path, modification time and size.
    """
    p = Path(path).expanduser()
    try:
        resolved = p.resolve()
        st = resolved.stat()
    except (OSError, RuntimeError) as e:
        raise GrammarError(f"cannot read grammar {p}: {getattr(e, 'strerror', None) or e}") from e
    grammar = _load_cached(str(resolved), st.st_mtime_ns, st.st_size)
    if check:
        try:
            grammar.enumerate()
        except GrammarError as e:
            raise GrammarError(f"grammar {p.name}: {e}") from None
    return grammar


def shipped_grammar(name: str, check: bool = True) -> Grammar:
    """A grammar shipped in vae_core/grammars by name ('builtin', 'passive', …)."""
    if name not in shipped_grammars():
        raise GrammarError(f"no shipped grammar {name!r} (shipped: {', '.join(shipped_grammars())})")
    return load_grammar(SHIPPED_DIR / f"{name}.json", check=check)


def builtin_grammar(check: bool = True) -> Grammar:
    """The built-in corpus's grammar (grammars/builtin.json)."""
    return shipped_grammar("builtin", check=check)


def is_grammar_spec(spec: Any) -> bool:
    """Whether a corpus spec names a grammar: 'synthetic', 'grammar:NAME' or a path ending in .json."""
    if not isinstance(spec, str):
        return False
    return spec == "synthetic" or spec.startswith(SPEC_PREFIX) or spec.lower().endswith(".json")


def is_shipped_spec(spec: Any) -> bool:
    """Whether a corpus spec is 'grammar:NAME' for a shipped grammar (safe to follow from any run file)."""
    return isinstance(spec, str) and spec.startswith(SPEC_PREFIX) and spec[len(SPEC_PREFIX):] in shipped_grammars()


def grammar_for_corpus(spec: Any, run_dir: str | os.PathLike | None = None, sha256: Any = None) -> Grammar | None:
    """The grammar a corpus spec stands for ('synthetic' → the built-in one), or None for a corpus without one.

    THE place that decides which parser a run's factor-aware analyses use. GrammarError when the spec
    names a grammar that cannot be loaded. With the `sha256` a run's config.json records for its own copy
    (corpus.grammar_sha256), the copy in `run_dir` is read instead of the spec's file (`run_copy`: a copy that
    is missing or changed is a GrammarError). A path is read as given: callers that take the spec from a
    run file check it first (`corpus.check_run_corpus_spec`).
    """
    if not is_grammar_spec(spec):
        return None
    if sha256 is not None and _is_file_spec(spec):
        if run_dir is None:
            raise GrammarError("a run's grammar copy needs the run directory")
        return load_grammar(run_copy(run_dir, sha256))
    if spec == "synthetic":
        return builtin_grammar()
    if spec.startswith(SPEC_PREFIX):
        return shipped_grammar(spec[len(SPEC_PREFIX):])
    return load_grammar(spec)


def grammar_corpus(spec: str, seed: int = 0) -> Corpus:
    """The corpus of a grammar spec ('grammar:NAME' or a .json path), split with `seed`.

    Its spec (what a run's config.json records) is 'grammar:NAME' or the file's resolved path."""
    grammar = grammar_for_corpus(spec)
    if grammar is None:
        raise GrammarError(f"{spec!r} is not a grammar (use grammar:NAME or a .json file)")
    if not spec.startswith(SPEC_PREFIX) and spec != "synthetic":
        spec = str(Path(spec).expanduser().resolve())
    return grammar.generate(seed=seed, spec=spec)


# --------------------------------------------------------------------------- a run's own copy of its grammar file


def _is_file_spec(spec: Any) -> bool:
    """Whether a grammar spec is a file path (not 'synthetic' nor grammar:NAME)."""
    return is_grammar_spec(spec) and spec != "synthetic" and not spec.startswith(SPEC_PREFIX)


def grammar_snapshot(spec: Any) -> tuple[bytes, str, Grammar] | None:
    """(bytes, sha256 hex, validated grammar) of the grammar file a .json corpus spec reads, read once, so the
    copy a run keeps (`RUN_COPY`) is exactly what its hash says; None for any other spec (shipped grammars,
    'synthetic', text corpora). GrammarError when the file cannot be read or is not a grammar."""
    if not _is_file_spec(spec):
        return None
    path = Path(spec).expanduser()
    data = _read_bytes(path)
    return data, hashlib.sha256(data).hexdigest(), grammar_from_bytes(data, path.name)


def run_copy(run_dir: str | os.PathLike, sha256: Any) -> Path:
    """`<run_dir>/grammar.json` when its content has the sha256 the run's config.json records; else GrammarError
    saying what is wrong (missing, a link, changed since training)."""
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise GrammarError(f"config.json: corpus.{SHA256_KEY} must be 64 hex digits, got {str(sha256)[:80]!r}")
    path = Path(run_dir) / RUN_COPY
    if path.is_symlink():
        raise GrammarError(f"the run's grammar copy {path} is a link; a run keeps its grammar as a plain file")
    if not path.is_file():
        raise GrammarError(f"the run's grammar copy {path} is missing (config.json records one with sha256 "
                           f"{sha256[:12]}…): copy the grammar the run was trained on back to that name")
    actual = hashlib.sha256(_read_bytes(path)).hexdigest()
    if actual != sha256:
        raise GrammarError(f"the run's grammar copy {path} has changed since training: its sha256 is "
                           f"{actual[:12]}…, config.json records {sha256[:12]}…; restore the file the run was "
                           "trained on (the model's factors and vocabulary come from it)")
    return path


def run_corpus_spec(run_dir: str | os.PathLike, corpus_info: Any) -> str:
    """The spec a run's corpus is loaded from: the path of its grammar copy (checked: `run_copy`) when its
    config.json "corpus" records one, else the spec it records ('' when none)."""
    info = corpus_info if isinstance(corpus_info, Mapping) else {}
    spec = info.get("spec")
    spec = spec if isinstance(spec, str) else ""
    sha256 = info.get(SHA256_KEY)
    if sha256 is not None and _is_file_spec(spec):
        return str(run_copy(run_dir, sha256).resolve())
    return spec


__all__ = [
    "Grammar",
    "GrammarError",
    "MAX_COMBINATIONS",
    "builtin_grammar",
    "factor_codes",
    "RUN_COPY",
    "SHA256_KEY",
    "grammar_corpus",
    "grammar_for_corpus",
    "grammar_from_bytes",
    "grammar_snapshot",
    "is_grammar_spec",
    "is_shipped_spec",
    "load_grammar",
    "run_copy",
    "run_corpus_spec",
    "shipped_grammar",
    "shipped_grammars",
]
