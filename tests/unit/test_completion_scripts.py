"""Shell completion scripts: the checked-in ones are current, and install-completion writes them where each shell looks."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import REPO, need_tool, own_bpfmap_on_path

from bpfmap.cli.completion import SHELLS, script

SCRIPTS = {sh: os.path.abspath(os.path.join(REPO, "completions", f"bpfmap.{sh}")) for sh in SHELLS}


def test_checked_in_scripts_are_current():
    for shell in SHELLS:
        with open(SCRIPTS[shell]) as f:
            assert f.read() == script(shell), (
                f"completions/bpfmap.{shell} is stale: python -m bpfmap.cli.completion completions"
            )


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_install_completion(shell, tmp_path):
    exe = need_tool(shell)
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), SHELL=exe, PATH=own_bpfmap_on_path(tmp_path))
    # run from the shell itself: typer (shellingham) detects the shell of the parent process
    r = subprocess.run(
        [exe, "-c", "bpfmap --install-completion; true"], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.returncode == 0 and "completion installed" in r.stdout, r.stdout + r.stderr
    if shell == "bash":
        installed = home / ".bash_completions" / "bpfmap.sh"
        assert f"source '{installed}'" in (home / ".bashrc").read_text()
        assert installed.read_text() == script("bash")  # ours, with the ':' handling
        r = subprocess.run(
            ["bash", "-i", "-c", "complete -p bpfmap"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert "_bpfmap_completion bpfmap" in r.stdout, r.stderr
    elif shell == "zsh":
        installed = home / ".zfunc" / "_bpfmap"
        assert installed.read_text().strip() == script("zsh").strip()
        assert "fpath+=~/.zfunc" in (home / ".zshrc").read_text()
    else:
        installed = home / ".config" / "fish" / "completions" / "bpfmap.fish"
        assert installed.read_text().strip() == script("fish").strip()
