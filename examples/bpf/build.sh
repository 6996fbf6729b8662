#!/bin/sh
# Builds the docs' example program (app.bpf.o) and its loader (load) into the current
# directory.  Needs clang, libbpf-dev and linux-libc-dev (Debian: apt-get install clang
# libbpf-dev linux-libc-dev).  Extra clang flags go in CFLAGS: CFLAGS=-DPROCS_MAX=4096
set -e
here=$(dirname "$0")
arch=$(uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')
clang -O2 -g -target bpf -mcpu=v3 -D__TARGET_ARCH_$arch -I/usr/include/$(uname -m)-linux-gnu \
	$CFLAGS -c "$here/app.bpf.c" -o "${OUT:-app.bpf.o}"
[ -x load ] || cc -O2 "$here/load.c" -o load -lbpf
[ -x job-work ] || cc -O1 -g -fno-omit-frame-pointer "$here/job-work.c" -o job-work
