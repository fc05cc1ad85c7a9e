"""Every target the Makefile declares has a rule, and each one's commands name files that exist (issue 16.6)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PHONY = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
@pytest.mark.parametrize("target", PHONY)
def test_target_has_a_rule_whose_scripts_exist(target):
    out = subprocess.run(["make", "-n", "-W", "requirements.txt", target], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), f"make {target} has no commands"
    for script in re.findall(r"(?:scripts|benchmarks)/[\w./-]+\.(?:py|sh)", out.stdout):
        assert (ROOT / script).is_file(), f"make {target} runs {script}, which does not exist"
