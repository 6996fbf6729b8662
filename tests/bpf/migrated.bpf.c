// The second version of a program whose map changed shape: `counts` grew from 1024 to
// 4096 entries and its value from { packets } to { packets, bytes }.  Each run of
// `count` (a socket filter) adds a packet and its length to key 7, so a test can see
// the program write into entries `bpfmap migrate` carried over from the first version.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct counts_v2 {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct counts_v2);
} counts SEC(".maps");

SEC("socket")
int count(struct __sk_buff *skb)
{
	__u32 key = 7;
	struct counts_v2 *v = bpf_map_lookup_elem(&counts, &key);

	if (v) {
		__sync_fetch_and_add(&v->packets, 1);
		__sync_fetch_and_add(&v->bytes, skb->len);
	} else {
		struct counts_v2 fresh = { 1, skb->len };

		bpf_map_update_elem(&counts, &key, &fresh, BPF_NOEXIST);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
