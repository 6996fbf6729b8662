// Records as programs send them.  `exec` (a socket filter) sends a struct exec_event to
// a ring buffer only as far as its args are used; `conn` (tc) sends a conn_event, with
// 128-bit addresses and an address family, to a perf event array.  Both copy their record
// from the packet they are run on.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "records.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} conns SEC(".maps");

// The record type reaches the BTF only through this map: clang keeps no types that
// only local variables use.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, conn_event_t);
} last_conn SEC(".maps");

struct local_only {
	__u64 a;
};

SEC("socket")
int exec(struct __sk_buff *skb)
{
	__u32 zero = 0, n;
	struct exec_event *e = bpf_map_lookup_elem(&scratch, &zero);

	if (!e)
		return 0;
	if (bpf_skb_load_bytes(skb, 0, e, sizeof(*e)))
		return 0;
	n = e->args_len;
	if (n > ARGS_MAX)
		n = ARGS_MAX;
	bpf_ringbuf_output(&execs, e, __builtin_offsetof(struct exec_event, args) + n, 0);
	return 0;
}

SEC("tc")
int conn(struct __sk_buff *skb)
{
	conn_event_t ev = {};
	struct local_only lo = {};

	if (bpf_skb_load_bytes(skb, 0, &ev, sizeof(ev)))
		return 0;
	bpf_map_update_elem(&last_conn, &ev.pid, &ev, BPF_ANY);
	bpf_perf_event_output(skb, &conns, BPF_F_CURRENT_CPU, &ev, sizeof(ev) + 0 * lo.a);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
