"""Runs a documentation page as a reader would paste it: every example, in order, in one
shell, in a private mount namespace with a fresh bpffs on /sys/fs/bpf (so pages show the
paths users type and nothing reaches the host's /sys/fs/bpf), from a fresh directory
that holds the checkout's examples/, with the checkout's bpfmap first on PATH.

What a page holds, by fence:

- ```console: ``$ COMMAND`` lines (a line ending in ``\\`` goes on; a heredoc runs to its
  end word), each followed by the output it prints (stdout and stderr, as a terminal
  shows them), compared after tests/docs/normalise.py;
- ```python: run with python3; an ```output block right after it is what it prints;
- a block with ``title="NAME"`` (a YAML config, a unit file, a C file...): written to
  NAME in the working directory, as a reader saves it, before the next example runs;
- anything else (```text, ```json, ```c without a title): shown, not run.

Set-up a reader does once (installing, making a virtual environment) is done by the
harness instead: SETUP lists it, and a command made of it is not run.

``BPFMAP_DOCS_UPDATE=1`` writes a run's output into the page wherever it differs from
what the page shows (after normalising), for a review of the diff."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from normalise import same

# What the harness has done already, for a reader's set-up lines: the checkout's bpfmap is
# first on PATH, its Python packages are installed, and the system has the tools.
SETUP = re.compile(
    r"^(sudo )?(apt-get|apt) (update|install)\b|^python3? -m venv\b|^(\.|source) \S*activate$|"
    r"^(\S*/)?pip3? install\b|^pipx (install|ensurepath)\b|^git clone\b|^cd bpfmap$|"
    r"^python3? -m pytest\b"  # the test suite itself: .ci/run runs it (tests/docs/test_docs.py checks the line)
)
TIMEOUT = 240  # seconds a page may take in all


@dataclass
class Step:
    line: int  # 1-based line of the command or block in the page
    kind: str  # "shell", "python" or "file"
    code: str
    expected: str | None = None  # what it prints, when the page says
    span: tuple[int, int] | None = None  # the lines (0-based, end excluded) that show it
    indent: str = ""
    path: str | None = None  # for "file"


_FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,})(?P<info>[^`]*)$")


def _blocks(lines: list[str]):
    """(info, first content line index, end index, indent) of every fenced block."""
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, ticks = m["indent"], m["ticks"]
        j = i + 1
        while j < len(lines) and lines[j].strip() != ticks:
            j += 1
        yield m["info"].strip(), i + 1, j, indent
        i = j + 1


def _strip(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip()


def _title(info: str) -> str | None:
    m = re.search(r'title="([^"]+)"', info)
    return m.group(1) if m else None


def _console(lines: list[str], start: int, end: int, indent: str) -> list[Step]:
    steps: list[Step] = []
    i = start
    while i < end:
        text = _strip(lines[i], indent)
        if not text.startswith("$ "):
            raise ValueError(f"line {i + 1}: a console block shows output before any '$ ' command")
        first = i
        cmd = [text[2:]]
        i += 1
        heredoc = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", cmd[0])
        while i < end and (cmd[-1].endswith("\\") or heredoc):
            cmd.append(_strip(lines[i], indent))
            i += 1
            if heredoc and cmd[-1] == heredoc.group(1):
                heredoc = None
        out_start = i
        while i < end and not _strip(lines[i], indent).startswith("$ "):
            i += 1
        out = "\n".join(_strip(ln, indent) for ln in lines[out_start:i])
        steps.append(Step(first + 1, "shell", "\n".join(cmd), out, (out_start, i), indent))
    return steps


def parse(text: str) -> list[Step]:
    """The steps of a page, in order."""
    lines = text.split("\n")
    steps: list[Step] = []
    blocks = list(_blocks(lines))
    for n, (info, start, end, indent) in enumerate(blocks):
        lang = info.split()[0] if info else ""
        body = "\n".join(_strip(ln, indent) for ln in lines[start:end])
        title = _title(info)
        if lang == "console":
            steps += _console(lines, start, end, indent)
        elif title and lang != "output":
            steps.append(Step(start, "file", body, path=title))
        elif lang == "python":
            step = Step(start, "python", body)
            if n + 1 < len(blocks):
                ninfo, nstart, nend, nindent = blocks[n + 1]
                between = lines[end + 1 : nstart - 1]
                if ninfo.split()[:1] == ["output"] and not any(ln.strip() for ln in between):
                    step.expected = "\n".join(_strip(ln, nindent) for ln in lines[nstart:nend])
                    step.span, step.indent = (nstart, nend), nindent
            steps.append(step)
    return steps


def _setup_only(command: str) -> bool:
    parts = [p.strip() for p in re.split(r"&&|\n", command) if p.strip()]
    return all(SETUP.search(p) for p in parts)


def _runnable(command: str) -> str:
    """A command without the set-up the harness did (``pip install . && bpfmap ...``)."""
    parts = command.split(" && ")
    while len(parts) > 1 and SETUP.search(parts[0].strip()):
        parts.pop(0)
    return " && ".join(parts)


def script(steps: list[Step]) -> str:
    out = ["exec 2>&1", "exec </dev/null"]
    for n, step in enumerate(steps):
        out.append(f"printf '\\036%d\\036\\n' {n}")
        if step.kind == "file":
            out.append(f"cat > {shlex.quote(step.path or '')} <<'__DOCS_FILE__'\n{step.code}\n__DOCS_FILE__")
        elif step.kind == "python":
            out.append(f"python3 - <<'__DOCS_PY__'\n{step.code}\n__DOCS_PY__")
        elif _setup_only(step.code):
            out.append(": set-up the harness has done")
        else:
            out.append(_runnable(step.code))
    out.append("printf '\\036END\\036\\n'")
    out.append("kill -KILL $(jobs -p) 2>/dev/null; true")
    return "\n".join(out) + "\n"


def _bin_dir(bpfmap_sh: str, where: str) -> str:
    """A directory to put first on PATH: ``bpfmap`` and ``python3`` are the checkout's."""
    path = os.path.join(where, "bin")
    os.makedirs(path, exist_ok=True)
    for name, target in (
        ("bpfmap", bpfmap_sh),
        ("python3", shlex.quote(sys.executable)),
        ("python", shlex.quote(sys.executable)),
    ):
        with open(os.path.join(path, name), "w") as f:
            f.write(f'#!/bin/sh\nexec {target} "$@"\n')
        os.chmod(os.path.join(path, name), 0o755)
    return path


def run(steps: list[Step], repo: str, bpfmap_sh: str) -> list[str | None]:
    """Each step's output (None for a step the run never reached)."""
    with tempfile.TemporaryDirectory(prefix="bpfmap-docs-") as tmp:
        work = os.path.join(tmp, "work")
        os.mkdir(work)
        os.symlink(os.path.join(repo, "examples"), os.path.join(work, "examples"))
        path = os.path.join(tmp, "page.sh")
        with open(path, "w") as f:
            f.write(script(steps))
        env = dict(os.environ, PATH=_bin_dir(bpfmap_sh, tmp) + os.pathsep + os.environ["PATH"])
        env.pop("BPFMAP_DEBUG", None)
        env.update(NO_COLOR="1", COLUMNS="100", LC_ALL="C.UTF-8", HOME=work)
        inner = 'mount -t bpf bpf /sys/fs/bpf || exit 97; cd "$2" && exec bash "$1"'
        proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "bash", "-c", inner, "-", path, work],
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            raw, _ = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raw, _ = proc.communicate()
        text = raw.decode("utf-8", "replace")
    outputs: list[str | None] = [None] * len(steps)
    for m in re.finditer(r"\036(\d+)\036\n(.*?)(?=\036(?:\d+|END)\036\n)", text, re.S):
        outputs[int(m.group(1))] = m.group(2)
    return outputs


def check(steps: list[Step], outputs: list[str | None], page: str) -> list[tuple[Step, str]]:
    """The steps whose output is not what the page shows, with a message naming the line."""
    failed = []
    for step, out in zip(steps, outputs):
        if out is None:
            failed.append((step, f"{page}:{step.line}: never ran (a step before it hung or the page timed out)"))
            continue
        if step.kind == "file":
            continue
        want = step.expected
        if step.kind == "python" and want is None:
            if "Traceback (most recent call last)" in out:
                failed.append((step, f"{page}:{step.line}: the Python block failed:\n{out}"))
            continue
        if not same(want or "", out, step.code):
            failed.append(
                (step, f"{page}:{step.line}: $ {step.code}\n--- the page shows:\n{want}\n--- a run prints:\n{out}")
            )
    return failed


def update(text: str, failed: list[tuple[Step, str]], outputs: dict[int, str]) -> str:
    """The page with each failed step's shown output replaced by what the run printed."""
    lines = text.split("\n")
    for step, _ in sorted(failed, key=lambda f: -(f[0].span or (0, 0))[0]):
        if step.span is None or id(step) not in outputs:
            continue
        got = outputs[id(step)].rstrip("\n")
        new = [step.indent + ln if ln else ln for ln in got.split("\n")] if got else []
        lines[step.span[0] : step.span[1]] = new
    return "\n".join(lines)
