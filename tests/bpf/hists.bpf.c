// A histogram kept in the value, keyed by pid, with the task's name beside the slots:
// the shape most libbpf-based latency tools use.  Each run of `record` (a socket filter)
// reads {pid, usecs, comm[16]} from the packet and counts usecs in its log2 slot.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SLOTS 20

struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[16];
};

struct sample {
	__u32 pid;
	__u32 usecs;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

struct hist zero_hist;

static __always_inline __u32 floor_log2(__u32 v)
{
	__u32 r = 0;
	int i;

	for (i = 0; i < 31; i++)
		if (v >> (i + 1))
			r = i + 1;
	return r;
}

SEC("socket")
int record(struct __sk_buff *skb)
{
	struct sample s;
	struct hist *h;
	__u32 slot;

	if (bpf_skb_load_bytes(skb, 0, &s, sizeof(s)))
		return 0;
	h = bpf_map_lookup_elem(&hists, &s.pid);
	if (!h) {
		__builtin_memcpy(zero_hist.comm, s.comm, sizeof(s.comm));
		bpf_map_update_elem(&hists, &s.pid, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &s.pid);
		if (!h)
			return 0;
	}
	slot = floor_log2(s.usecs);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
