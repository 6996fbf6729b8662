// A profiler's maps, as libbpf-tools' profile and offcputime keep them: `stacks` holds
// stack traces by id (bpf_get_stackid), `counts` counts each (pid, comm, kernel stack,
// user stack).  `profile` is a raw tracepoint program run with BPF_PROG_TEST_RUN: the
// kernel stack is the test run's own, the user stack the caller's.  `ids` records the
// last stack ids it got (0: kernel, 1: user, 2: user as build ids in `bstacks`, a map
// made with BPF_F_STACK_BUILD_ID), so a test can read those stacks raw.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_DEPTH 127

struct key_t {
	__u32 pid;
	__s32 kern_stack_id;
	__s32 user_stack_id;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	/* a run's kernel and user stacks share a bucket one time in max_entries (the second is
	 * dropped: -EEXIST): 16384 keeps that out of the tests' way */
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct bpf_stack_build_id_frame {
	__s32 status;
	unsigned char build_id[20];
	__u64 offset;
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_STACK_BUILD_ID);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_DEPTH * sizeof(struct bpf_stack_build_id_frame));
} bstacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct key_t);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __s32);
} ids SEC(".maps");

SEC("raw_tp")
int profile(void *ctx)
{
	struct key_t key = {};
	__u64 one = 1, *count;
	__u32 k0 = 0, k1 = 1, k2 = 2;
	__s32 build_id_stack;

	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.kern_stack_id = bpf_get_stackid(ctx, &stacks, 0);
	key.user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	bpf_map_update_elem(&ids, &k0, &key.kern_stack_id, BPF_ANY);
	bpf_map_update_elem(&ids, &k1, &key.user_stack_id, BPF_ANY);
	build_id_stack = bpf_get_stackid(ctx, &bstacks, BPF_F_USER_STACK);
	bpf_map_update_elem(&ids, &k2, &build_id_stack, BPF_ANY);
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
