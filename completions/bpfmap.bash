_bpfmap_completion() {
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
    reply=( $( env COMP_WORDS="$line" COMP_CWORD=$cword _BPFMAP_COMPLETE=complete_bash $1 ) )
    # bash replaces only what follows the last ':' or '=' of the word: drop that prefix.
    local trim="${cur%"${cur##*[:=]}"}"
    COMPREPLY=( "${reply[@]#"$trim"}" )
    return 0
}

complete -o default -F _bpfmap_completion bpfmap