"""Shell completion, run by the real shells: bash (the function as bash calls it, and Tab
in an interactive bash under tmux), fish (complete -C), zsh (Tab under tmux); and
`bpfmap --install-completion` as typer users run it."""

from __future__ import annotations

import os
import shlex
import subprocess
import time

import pytest
from helpers import REPO, need_tool

from bpfmap.cli.completion import SHELLS
from bpfmap.core.maps import Map

SCRIPTS = {sh: os.path.abspath(os.path.join(REPO, "completions", f"bpfmap.{sh}")) for sh in SHELLS}


@pytest.fixture(autouse=True)
def _installed():
    need_tool("bpfmap")  # the scripts call the installed command


@pytest.fixture
def pinned(pindir):
    """A map pinned under a name no other path starts with, and its id."""
    path = os.path.join(pindir, "zqcomplete")
    m = Map.create("hash", 4, 8, 4)
    m.pin(path)
    yield path, m.id
    m.close()


def _bash_complete(line: str) -> list[str]:
    prog = f"""source {shlex.quote(SCRIPTS["bash"])}
complete -p bpfmap
COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}
read -r -a COMP_WORDS <<< "$COMP_LINE"; COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_bpfmap_completion bpfmap
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "complete -o default -F _bpfmap_completion bpfmap"
    return [x for x in lines[1:] if x]


def test_bash_completes_verbs_options_types_layouts_and_maps(pinned):
    path, map_id = pinned
    assert _bash_complete("bpfmap wa") == ["watch"]
    assert "--layout" in _bash_complete("bpfmap dump x --la")
    assert _bash_complete("bpfmap create lru_p") == ["lru_percpu_hash"]
    assert _bash_complete(f"bpfmap dump {path[:-3]}") == [path]
    # bash splits words at ':' and '='; the replies hold only what follows the last one
    assert str(map_id) in _bash_complete(f"bpfmap show id:{map_id}")
    assert set(_bash_complete("bpfmap dump x --layout u32:u6")) == {"u64"}
    assert set(_bash_complete("bpfmap dump x -l k=be1")) == {"be16"}
    assert set(_bash_complete("bpfmap dump x -l 'u32,i")) >= {"u32,i16", "u32,i32", "u32,ipv4", "u32,ipv6"}


def test_bash_tab_in_a_real_terminal(pinned, tmux):
    path, _ = pinned
    tmux.start("bash --norc --noprofile -i")
    tmux.wait_for("#")  # root's prompt
    tmux.keys(f"source {shlex.quote(SCRIPTS['bash'])}", "Enter")
    tmux.keys(f"bpfmap show {path[:-4]}", "Tab")
    tmux.wait_for(f"bpfmap show {path}")
    tmux.keys("C-u", "bpfmap dump x --layout u32:u6", "Tab")
    tmux.wait_for("--layout u32:u64")


def test_fish_completes_a_pinned_path(pinned):
    fish = need_tool("fish")
    path, map_id = pinned
    prog = (
        f"source {shlex.quote(SCRIPTS['fish'])}; complete -C {shlex.quote('bpfmap dump ' + path[:-3])}; "
        f"complete -C 'bpfmap show id:{map_id}'"
    )
    r = subprocess.run([fish, "--no-config", "-c", prog], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = [ln.split("\t")[0] for ln in r.stdout.splitlines()]
    assert path in got and f"id:{map_id}" in got


def test_zsh_tab_in_a_real_terminal(pinned, tmux):
    need_tool("zsh")
    path, _ = pinned
    tmux.start("zsh -f")
    tmux.wait_for("#")  # root's prompt
    tmux.keys(f"autoload -U compinit && compinit -u && source {shlex.quote(SCRIPTS['zsh'])}", "Enter")
    time.sleep(0.5)
    tmux.keys(f"bpfmap show {path[:-4]}", "Tab")
    tmux.wait_for(f"bpfmap show {path}")
