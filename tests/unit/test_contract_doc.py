"""docs/contract.md against the program: the exit-code table, JSON errors, shapes that drift."""

from __future__ import annotations

import json
import os
import re

import pytest
from helpers import REPO, run_cli, same_shape

DOC = os.path.join(REPO, "docs", "contract.md")


def test_same_shape_catches_drift():
    same_shape({"a": 1, "b": [1]}, {"a": 2.5, "b": []})
    for bad in ({"a": "1", "b": [1]}, {"a": 1}, {"a": 1, "b": [1], "c": 0}, {"a": 1, "b": ["x"]}):
        with pytest.raises(AssertionError):
            same_shape({"a": 1, "b": [1]}, bad)


@pytest.mark.parametrize(
    "args, code",
    [
        (["lookup", "/nonexistent/pin", "1", "-o", "json"], 3),
        (["dump", "--bogus", "-o", "jsonl"], 2),
        (["dump", "x", "--output=json", "--layout", "u33"], 2),
    ],
)
def test_errors_are_json_objects_with_json_output(args, code):
    r = run_cli(*args)
    assert r.returncode == code and r.stdout == ""
    obj = json.loads(r.stderr)
    assert obj["code"] == code and obj["error"] and set(obj) == {"error", "code"}


def test_exit_code_table_lists_every_code_the_cli_uses():
    from bpfmap import errors

    text = open(DOC, encoding="utf-8").read()
    table = set(map(int, re.findall(r"^\| (\d+) \|", text, re.M)))
    used = {c.exit_code for c in vars(errors).values() if isinstance(c, type) and hasattr(c, "exit_code")}
    assert used | {0, 130, 143} == table  # 130, 143: Ctrl-C, SIGTERM (128 + the signal)
