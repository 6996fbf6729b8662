// Global data as runqlat has it: a .bss holding only a static variable, which libbpf
// (1.x, map_is_mmapable) creates without BPF_F_MMAPABLE, and a .data holding a global
// one, which it creates mmapable.  `count` (a socket filter) counts into both.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __u64 zero_hits;
__u64 calls = 1;

SEC("socket")
int count(struct __sk_buff *skb)
{
	zero_hits++;
	calls++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
