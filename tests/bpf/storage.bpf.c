// Local storage maps as programs declare them (key int, BTF value types, no prealloc),
// then a plain hash after them: create --from-object makes all four, as libbpf does.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct task_val { __u64 seen; __u32 pid; };
struct { __uint(type, BPF_MAP_TYPE_TASK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, struct task_val); } tstore SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_SK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, __u64); } sstore SEC(".maps");
struct { __uint(type, 32 /* BPF_MAP_TYPE_CGRP_STORAGE, newer than this uapi header */); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, __u64); } cstore SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); __type(key, __u32); __type(value, __u64); } after SEC(".maps");
SEC("socket") int prog(struct __sk_buff *skb) { return 0; }
char LICENSE[] SEC("license") = "GPL";
