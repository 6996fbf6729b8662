#compdef bpfmap

_bpfmap_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _BPFMAP_COMPLETE=complete_zsh bpfmap)
}

compdef _bpfmap_completion bpfmap