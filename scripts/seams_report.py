"""Measure the seams between the rooms (issue 16's before/after figures); prints JSON.

- ui_lines_without_streamlit: lines of top-level functions/classes under ui/ whose body never names `st`
  (nor is decorated by it): logic that could live in vae_core.
- longest_functions: the five longest functions/methods in vae_core (lines, def to last line).
- import_cycles: strongly connected groups of vae_core modules by any import (top-level or inside functions).
- setting_mentions: for each ModelConfig/TrainConfig field, the lines mentioning it (snake_case or --kebab-case)
  in the files where settings are written down (config, CLIs, the Train page, the job launcher): median and max.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def ui_lines_without_streamlit() -> dict:
    out = {}
    for path in sorted((ROOT / "ui").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        n = 0
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if "st" not in _names(node):
                    n += node.end_lineno - node.lineno + 1
        if n:
            out[str(path.relative_to(ROOT))] = n
    return {"total": sum(out.values()), "by_file": out}


def longest_functions(k: int = 5) -> list:
    found = []
    for path in sorted((ROOT / "vae_core").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(ROOT)}:{node.name}"))
    return [{"lines": n, "function": f} for n, f in sorted(found, reverse=True)[:k]]


def import_cycles() -> list:
    mods = {}
    for path in sorted((ROOT / "vae_core").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        mods[name] = path
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        pkg = m if path.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if t in mods and t != m and not (mods[t].name == "__init__.py" and m.startswith(t + ".")):
                    graph[m].add(t)
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return sccs


SETTING_FILES = ("vae_core/config.py", "vae_core/cli.py", "vae_core/cli_sweep.py", "vae_core/cli_train.py",
                 "vae_core/cli_flags.py", "app_pages/train.py", "ui/jobs.py", "vae_core/jobs.py",
                 "vae_core/settings.py", "ui/settings.py")


def setting_mentions() -> dict:
    from vae_core.config import ModelConfig, TrainConfig

    texts = {f: (ROOT / f).read_text(encoding="utf-8") for f in SETTING_FILES if (ROOT / f).is_file()}
    counts = {}
    for cls in (ModelConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            pat = re.compile(rf"\b{f.name}\b|--{f.name.replace('_', '-')}\b")
            counts[f.name] = sum(1 for t in texts.values() for line in t.splitlines() if pat.search(line))
    vals = list(counts.values())
    return {"files": sorted(texts), "median": statistics.median(vals), "max": max(vals),
            "examples": {k: counts[k] for k in ("beta", "tc_bank", "fourier_features", "decoder", "latent_dim")
                         if k in counts}}


if __name__ == "__main__":
    print(json.dumps({"ui_lines_without_streamlit": ui_lines_without_streamlit(),
                      "longest_functions": longest_functions(), "import_cycles": import_cycles(),
                      "setting_mentions": setting_mentions()}, indent=1))
