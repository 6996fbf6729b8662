"""Every example of every page of the site and of the README runs and prints what the page
shows (tests/docs/pages.py says how a page is run, tests/docs/normalise.py what is
normalised).  ``BPFMAP_DOCS_UPDATE=1 python -m pytest tests/docs`` writes real output
into the pages where it differs; review the diff."""

from __future__ import annotations

import glob
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import BPFMAP_SH, REPO  # noqa: E402
from pages import check, parse, run, update  # noqa: E402

UPDATE = os.environ.get("BPFMAP_DOCS_UPDATE") == "1"


def pages() -> list[str]:
    found = sorted(
        os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True)
    )
    return ["README.md", *found]


def executable(page: str) -> bool:
    with open(os.path.join(REPO, page), encoding="utf-8") as f:
        return any(step.kind != "file" for step in parse(f.read()))


@pytest.mark.kernel
@pytest.mark.parametrize("page", [p for p in pages() if executable(p)])
def test_every_example_prints_what_the_page_shows(page, bpffs):
    path = os.path.join(REPO, page)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    steps = parse(text)
    outputs = run(steps, REPO, BPFMAP_SH)
    failed = check(steps, outputs, page)
    if failed and UPDATE:
        with open(path, "w", encoding="utf-8") as f:
            f.write(update(text, failed, {id(s): o for s, o in zip(steps, outputs) if o is not None}))
    assert not failed, "\n\n".join(message for _, message in failed)


def test_every_page_with_examples_is_run():
    """The site's pages, the README and nothing else: a page the site has is found here."""
    assert "README.md" in pages()
    assert any(p.startswith("docs/guides/") for p in pages() if executable(p))


def test_ci_runs_the_readme_test_command():
    """The README's test command is the one .ci/run runs."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    tests = re.search(r"^\$ (.*python -m pytest.*)$", readme, re.M)
    assert tests, "the README shows no test command"
    command = tests.group(1)
    assert re.search(rf"^{re.escape(command.split(' && ')[-1])}$", ci, re.M), command
    install = re.search(r"^(pip install '[^']+')", command)
    assert install and install.group(1) in ci


def test_parse_reads_what_a_reader_pastes():
    steps = parse(
        "```console\n$ echo a \\\n  b\na b\n$ cat <<'EOF'\nx\nEOF\nx\n```\n\n"
        '```yaml title="c.yaml"\nk: v\n```\n```python\nprint(1)\n```\n```output\n1\n```\n'
    )
    assert [(s.kind, s.code, s.expected) for s in steps] == [
        ("shell", "echo a \\\n  b", "a b"),
        ("shell", "cat <<'EOF'\nx\nEOF", "x"),
        ("file", "k: v", None),
        ("python", "print(1)", "1"),
    ]
    assert steps[2].path == "c.yaml"
