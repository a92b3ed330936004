"""The set-up contract: README's test command is what CI runs; `import fire` is this project's."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [b.strip() for b in blocks]


def test_readme_has_install_run_and_test_commands_first():
    first, second = readme_commands()[:2]
    assert "train.py" in first and "pip install" in first
    assert "pytest" in second and ".[test]" in second


def test_ci_runs_the_readme_test_command():
    test_command = readme_commands()[1]
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_import_fire_is_this_project_not_python_fire():
    import fire

    assert Path(fire.__file__).resolve().parent == ROOT / "fire"
    assert callable(getattr(fire, "fire_", None)), "fire.fire_ missing: is Google's python-fire shadowing us?"


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is in the test extra; not installed here")
def test_ruff_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
