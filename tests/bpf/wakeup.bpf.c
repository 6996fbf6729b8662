// Two shapes libbpf-tools keep that bpfmap must read as they are:
// - wakeuptime's counts: keyed by the waker's and the target's names and the waker's
//   kernel stack id (`w_k_stack_id`, a name none of profile's or offcputime's is), the
//   stacks in `stackmap`;
// - runqlen's and softirqs' histograms: a .bss array of `struct hist`, one per CPU or
//   per softirq, each an array of slot counts.
// Each run also writes its key to the ring buffer `events`.
// `wake` is a raw tracepoint program run with BPF_PROG_TEST_RUN; its context is two
// numbers: which histogram (ctx[0]) and which slot (ctx[1]) to count in.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16
#define MAX_SLOTS 8
#define NR_HISTS 4

struct key_t {
	char waker[TASK_COMM_LEN];
	char target[TASK_COMM_LEN];
	int w_k_stack_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stackmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct key_t);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct hist {
	__u32 slots[MAX_SLOTS];
};

struct hist hists[NR_HISTS] = {};

SEC("raw_tp")
int wake(unsigned long long *ctx)
{
	struct key_t key = {};
	__u64 one = 1, *count;
	__u64 which = ctx[0], slot = ctx[1];

	bpf_get_current_comm(&key.waker, sizeof(key.waker));
	__builtin_memcpy(key.target, "sleeper", 8);
	key.w_k_stack_id = bpf_get_stackid(ctx, &stackmap, 0);
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	bpf_ringbuf_output(&events, &key, sizeof(key), 0);
	if (which < NR_HISTS && slot < MAX_SLOTS)
		__sync_fetch_and_add(&hists[which].slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
