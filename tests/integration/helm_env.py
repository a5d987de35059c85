"""A Python >= 3.12 venv with ``helm-sdkpy`` (Helm's Go library), shared by CI and tests.

The test venv is Python 3.11 and ``helm-sdkpy`` needs 3.12, so chart rendering and linting
run in ``<repo>/.venv-helm`` (git-ignored), made on first use from pyenv's 3.12+ (its
``python3.12`` shim fails unless that version is selected, so the versions are looked up
directly) or a ``python3.12`` on the PATH. ``.ci/run`` calls this module to get the same
interpreter for ``scripts/helm_lint.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HELM_VENV = REPO / ".venv-helm"
PACKAGES = ("helm-sdkpy>=0.1.28", "PyYAML>=6")


def _works(python: str) -> bool:
    probe = "import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def find_python312() -> str:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(
        root.glob("3.1[2-9]*/bin/python3"), key=lambda p: [int(x) for x in p.parts[-3].split(".")[:2]]
    )
    candidates += [Path(found) for name in ("python3.13", "python3.12") if (found := shutil.which(name))]
    for candidate in candidates:
        if _works(str(candidate)):
            return str(candidate)
    raise RuntimeError("no Python >= 3.12 for helm-sdkpy (pyenv install 3.12, or put python3.12 on the PATH)")


def helm_python() -> Path:
    python = HELM_VENV / "bin" / "python"
    if not (python.exists() and subprocess.run([python, "-c", "import helm_sdkpy"]).returncode == 0):
        subprocess.run([find_python312(), "-m", "venv", "--clear", str(HELM_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    return python


if __name__ == "__main__":
    print(helm_python())
