"""The site builds (mkdocs build --strict), and the built reference page of every verb
holds every option its --help lists: the reference is generated from the program
(docs/hooks/reference.py), so it cannot drift from it."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import IN_CI, REPO, run_cli


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if shutil.which("mkdocs") is None:
        if IN_CI:
            pytest.fail("mkdocs is not installed (pip install '.[docs]')", pytrace=False)
        pytest.skip("mkdocs is not installed (pip install '.[docs]')")
    out = str(tmp_path_factory.mktemp("site"))
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", out],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def _verbs() -> list[str]:
    from bpfmap.cli.manpage import verbs

    return [v.name for v in verbs()]


def test_every_verb_has_a_reference_page_with_every_option(site):
    for verb in _verbs():
        with open(os.path.join(site, "reference", "cli", verb, "index.html"), encoding="utf-8") as f:
            page = html.unescape(re.sub(r"<[^>]+>", "", f.read()))
        shown = run_cli(verb, "--help", env={"COLUMNS": "200"}).stdout
        options = set(re.findall(r"(?m)^\s+(?:-\w, )?(--[\w-]+)", shown))
        assert options, verb
        missing = sorted(o for o in options if o not in page)
        assert not missing, f"reference/cli/{verb}: {missing}"


def test_the_site_has_every_page_of_the_nav(site):
    for page in ("getting-started", "guides/inspect", "guides/prometheus", "reference/python-api", "changelog"):
        assert os.path.exists(os.path.join(site, page, "index.html")), page
    with open(os.path.join(site, "reference", "python-api", "index.html"), encoding="utf-8") as f:
        api = f.read()
    assert "bpfmap.migrate" in api and "Map" in api
