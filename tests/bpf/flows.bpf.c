// Flow counters and a latency histogram with the slot in the key, for `bpfmap export`.
// Each run of `flow` (a socket filter) reads a struct sample from the packet: counts a
// packet and its bytes for the flow, and the latency in its log2 slot of `lat` (an array
// indexed by slot, as bcc-style tools keep histograms); `by_proto` counts per CPU.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow_key {
	__u32 saddr;   /* network byte order */
	__u32 daddr;
	__u16 dport;
	__u8 proto;
	__u8 pad;
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
	char comm[16];
};

struct sample {
	struct flow_key key;
	__u32 len;
	__u32 usecs;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} lat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} by_proto SEC(".maps");

SEC("socket")
int flow(struct __sk_buff *skb)
{
	struct sample s;
	struct flow_stats *st, fresh = {};
	__u32 slot = 0, proto;
	__u64 *v;
	int i;

	if (bpf_skb_load_bytes(skb, 0, &s, sizeof(s)))
		return 0;
	st = bpf_map_lookup_elem(&flows, &s.key);
	if (!st) {
		__builtin_memcpy(fresh.comm, s.comm, sizeof(s.comm));
		bpf_map_update_elem(&flows, &s.key, &fresh, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&flows, &s.key);
		if (!st)
			return 0;
	}
	__sync_fetch_and_add(&st->packets, 1);
	__sync_fetch_and_add(&st->bytes, s.len);
	for (i = 0; i < 31; i++)
		if (s.usecs >> (i + 1))
			slot = i + 1;
	v = bpf_map_lookup_elem(&lat, &slot);
	if (v)
		__sync_fetch_and_add(v, 1);
	proto = s.key.proto;
	v = bpf_map_lookup_elem(&by_proto, &proto);
	if (v)
		*v += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
