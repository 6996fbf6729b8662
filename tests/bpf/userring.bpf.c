// A consumer of a user ring buffer: `drain` (a socket filter, run with BPF_PROG_TEST_RUN)
// drains `urb` with bpf_user_ringbuf_drain and keeps, in `got`, how many records it took
// (slot 0), the sum of each record's first 8 bytes (slot 1) and of its second 8 bytes
// (slot 2, records of 16 bytes or more), so a test can check what bpfmap send wrote.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} urb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} got SEC(".maps");

static void add(__u32 slot, __u64 v)
{
	__u64 *p = bpf_map_lookup_elem(&got, &slot);

	if (p)
		__sync_fetch_and_add(p, v);
}

static long take(struct bpf_dynptr *record, void *ctx)
{
	__u64 v = 0, w = 0;

	if (bpf_dynptr_read(&v, sizeof(v), record, 0, 0) == 0)
		add(1, v);
	if (bpf_dynptr_read(&w, sizeof(w), record, 8, 0) == 0)
		add(2, w);
	return 0;
}

SEC("socket")
int drain(struct __sk_buff *skb)
{
	long n = bpf_user_ringbuf_drain(&urb, take, NULL, 0);

	if (n > 0)
		add(0, n);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
