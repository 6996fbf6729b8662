"""Shell completion scripts: typer's, with a bash script that completes words holding
':' or '=' (``id:12``, ``--layout u32:u64``, ``saddr=ipv4``), which bash otherwise
splits apart (COMP_WORDBREAKS).

Regenerate the checked-in copies with ``python -m bpfmap.cli.completion completions``;
a test fails when they are stale."""

import os
import sys

# %-template, as typer's: %(complete_func)s, %(prog_name)s, %(autocomplete_var)s.
BASH = r"""
%(complete_func)s() {
    # The line up to the cursor, split by the program as the shell would (quotes
    # included), rather than bash's COMP_WORDS, which splits 'id:12' into three words.
    local line="${COMP_LINE:0:COMP_POINT}"
    local cur="${line##*[[:space:]]}"
    local -a words
    read -r -a words <<< "$line"
    local cword=$(( ${#words[@]} - 1 ))
    [[ -z "$cur" ]] && cword=${#words[@]}
    local IFS=$'\n'
    local -a reply
    reply=( $( env COMP_WORDS="$line" COMP_CWORD=$cword %(autocomplete_var)s=complete_bash $1 ) )
    # bash replaces only what follows the last ':' or '=' of the word: drop that prefix.
    local trim="${cur%%"${cur##*[:=]}"}"
    COMPREPLY=( "${reply[@]#"$trim"}" )
    return 0
}

complete -o default -F %(complete_func)s %(prog_name)s
"""

SHELLS = ("bash", "zsh", "fish")


def install() -> None:
    """Make typer's --show-completion/--install-completion use our bash script."""
    try:
        from typer import _completion_classes, _completion_shared
    except ImportError:  # a typer that moved them: keep its own script
        return
    _completion_shared._completion_scripts["bash"] = BASH
    _completion_classes.BashComplete.source_template = BASH


def script(shell: str, prog_name: str = "bpfmap") -> str:
    """The completion script for ``shell`` (bash, zsh or fish)."""
    install()
    from typer._completion_shared import get_completion_script

    var = "_" + prog_name.replace("-", "_").upper() + "_COMPLETE"
    return get_completion_script(prog_name=prog_name, complete_var=var, shell=shell)


def main(argv: list[str]) -> int:
    directory = argv[0] if argv else "completions"
    for shell in SHELLS:
        with open(os.path.join(directory, f"bpfmap.{shell}"), "w") as f:
            f.write(script(shell))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
