/* The C baseline the benchmark compares bpfmap against: libbpf batch operations and
 * printf, as a C programmer would write them.  Built by benchmarks/bench.py.
 *
 *   baseline dump PIN          print KEY<TAB>VALUE for a u32 -> u64 map
 *   baseline load PIN FILE     read KEY<TAB>VALUE lines, write them with batch updates
 *   baseline loadmem PIN N     write keys 0..N-1 with values 3*key from memory, batch
 *                              by batch (what a loader could do at best)
 *   baseline createload PIN N  create a u32 -> u64 hash of N entries, pin it at PIN,
 *                              then loadmem into it (what `bpfmap create` + `update
 *                              --from` do, in one C process)
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 65536

static int dump(const char *pin)
{
	int fd = bpf_obj_get(pin);
	if (fd < 0) { perror("bpf_obj_get"); return 1; }
	static __u32 keys[BATCH];
	static __u64 values[BATCH];
	__u32 in = 0, out = 0, count;
	void *inp = NULL;
	for (;;) {
		count = BATCH;
		int err = bpf_map_lookup_batch(fd, inp, &out, keys, values, &count, NULL);
		if (err && errno != ENOENT) { perror("bpf_map_lookup_batch"); return 1; }
		for (__u32 i = 0; i < count; i++)
			printf("%u\t%llu\n", keys[i], (unsigned long long)values[i]);
		if (err) break;
		in = out;
		inp = &in;
	}
	return 0;
}

static int load(const char *pin, const char *file)
{
	int fd = bpf_obj_get(pin);
	if (fd < 0) { perror("bpf_obj_get"); return 1; }
	FILE *f = fopen(file, "r");
	if (!f) { perror(file); return 1; }
	static __u32 keys[BATCH];
	static __u64 values[BATCH];
	__u32 n = 0;
	unsigned int k;
	unsigned long long v;
	while (fscanf(f, "%u\t%llu\n", &k, &v) == 2) {
		keys[n] = k;
		values[n++] = v;
		if (n == BATCH) {
			__u32 c = n;
			if (bpf_map_update_batch(fd, keys, values, &c, NULL)) { perror("update"); return 1; }
			n = 0;
		}
	}
	__u32 c = n;
	if (n && bpf_map_update_batch(fd, keys, values, &c, NULL)) { perror("update"); return 1; }
	return 0;
}

static int fill(int fd, long n);

static int loadmem(const char *pin, long n)
{
	int fd = bpf_obj_get(pin);
	if (fd < 0) { perror("bpf_obj_get"); return 1; }
	return fill(fd, n);
}

static int createload(const char *pin, long n)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "load", 4, 8, n, NULL);
	if (fd < 0) { perror("bpf_map_create"); return 1; }
	if (bpf_obj_pin(fd, pin)) { perror("bpf_obj_pin"); return 1; }
	return fill(fd, n);
}

static int fill(int fd, long n)
{
	__u32 *keys = malloc(n * sizeof(*keys));
	__u64 *values = malloc(n * sizeof(*values));
	if (!keys || !values) { perror("malloc"); return 1; }
	for (long i = 0; i < n; i++) {
		keys[i] = i;
		values[i] = 3 * (__u64)i;
	}
	for (long lo = 0; lo < n; lo += BATCH) {
		__u32 c = n - lo < BATCH ? n - lo : BATCH;
		if (bpf_map_update_batch(fd, keys + lo, values + lo, &c, NULL)) { perror("update"); return 1; }
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "dump"))
		return dump(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "load"))
		return load(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "loadmem"))
		return loadmem(argv[2], atol(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "createload"))
		return createload(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: baseline dump PIN | baseline load PIN FILE | baseline loadmem PIN N\n");
	return 2;
}
