// A libbpf loader as libbpf-based tools are: opens OBJ, and with PINDIR makes libbpf
// reuse the maps pinned there (PINDIR/NAME, dots in NAME as '_'), refusing any that
// is not reuse-compatible; loads it and prints each map's name and flags as libbpf
// created or reused it.  Built against the system's libbpf (-lbpf).
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	struct bpf_map *m;
	char path[4096];

	if (!obj)
		return 1;
	if (argc > 2) {
		bpf_object__for_each_map(m, obj) {
			char *p;

			snprintf(path, sizeof(path), "%s/%s", argv[2], bpf_map__name(m));
			for (p = path + strlen(argv[2]) + 1; *p; p++)
				if (*p == '.')
					*p = '_';
			bpf_map__set_pin_path(m, path);
		}
	}
	if (bpf_object__load(obj))
		return 2;
	bpf_object__for_each_map(m, obj)
		printf("%s %u\n", bpf_map__name(m), bpf_map__map_flags(m));
	return 0;
}
