// load: a small libbpf loader for examples/bpf/app.bpf.o, as a libbpf-based tool loads
// its program.  Every map of OBJ is pinned as MAPDIR/NAME (dots as '_': app.bss is
// MAPDIR/app_bss), reusing a map already pinned there; every program is attached and its
// link pinned as LINKDIR/NAME, so the program keeps running after the loader exits.
// Removing LINKDIR detaches it.  Usage: load OBJ MAPDIR LINKDIR
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *m;
	char path[4096];

	if (argc != 4) {
		fprintf(stderr, "usage: load OBJ MAPDIR LINKDIR\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "load: cannot open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	bpf_object__for_each_map(m, obj) {
		char *p;

		snprintf(path, sizeof(path), "%s/%s", argv[2], bpf_map__name(m));
		for (p = path + strlen(argv[2]) + 1; *p; p++)
			if (*p == '.')
				*p = '_';
		bpf_map__set_pin_path(m, path);
	}
	if (bpf_object__load(obj)) {
		fprintf(stderr, "load: the kernel refused %s\n", argv[1]);
		return 3;
	}
	mkdir(argv[3], 0700);
	bpf_object__for_each_program(prog, obj) {
		struct bpf_link *link = bpf_program__attach(prog);

		snprintf(path, sizeof(path), "%s/%s", argv[3], bpf_program__name(prog));
		if (!link || bpf_link__pin(link, path)) {
			fprintf(stderr, "load: cannot attach %s: %s\n", bpf_program__name(prog), strerror(errno));
			return 3;
		}
	}
	return 0;
}
