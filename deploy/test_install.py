"""The deployment recipe, without a container daemon: deploy/install.sh (the Dockerfile's install step)
on a clean venv, and the systemd units against what it installed. Slow (pip installs torch and the
project), so it is not under tests/: `make test-deploy` runs it, which also lints the Dockerfile."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("deploy") / "venv"
    # TORCH_INDEX_URL as given (the Makefile passes it; empty: pip's configured indexes).
    environment = {**os.environ, "TORCH_INDEX_URL": os.environ.get("TORCH_INDEX_URL", "")}
    subprocess.run(["sh", str(ROOT / "deploy" / "install.sh"), str(venv), str(ROOT)], check=True, env=environment)
    return venv


def test_the_install_is_cpu_only(venv):
    found = subprocess.run([venv / "bin" / "python", "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                           check=True, capture_output=True, text=True).stdout.split()
    assert found[0].startswith("2.13.0") and found[1] == "None"
    installed = subprocess.run([venv / "bin" / "python", "-m", "pip", "list", "--format=freeze"],
                               check=True, capture_output=True, text=True).stdout
    assert "nvidia-" not in installed


def test_the_installed_bot_finds_its_models_and_reports_what_it_lacks(venv, tmp_path):
    # Run where no source tree is importable: only what was installed (package data too) can answer.
    environment = {name: value for name, value in os.environ.items() if not name.startswith("VERBATIM_")}
    done = subprocess.run([venv / "bin" / "verbatim", "doctor"], cwd=tmp_path, capture_output=True, text=True,
                          env={**environment, "VERBATIM_DOCTOR_MIN_FREE_MB": "0"})
    lines = done.stdout.splitlines()
    assert done.returncode == 2 and not done.stderr, done.stderr
    for fine in ("sentence ranker", "answer selector", "embedding model"):
        assert any(line.startswith(f"✓ {fine}:") for line in lines), lines
    assert any(line.startswith("✗ Discord token: none set") for line in lines)
    assert any(line.startswith("✗ index of shelf default") for line in lines)


def test_the_systemd_units_verify_against_the_install(venv, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    units = []
    for unit in ("verbatim.service", "verbatim-watch.service"):
        text = (ROOT / "deploy" / unit).read_text(encoding="utf-8").replace("/opt/verbatim", str(venv))
        (tmp_path / unit).write_text(text, encoding="utf-8")
        units.append(str(tmp_path / unit))
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
