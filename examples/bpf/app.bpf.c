// app: the small BPF program the documentation's guides run.  It watches the processes
// whose name starts with "job-" (the guides start them: copies of /bin/true and
// /bin/sleep), so its maps hold what the guides do and not the whole host:
//
//   procs           hash, struct proc_key (pid) -> struct proc: syscalls made, when last seen, name
//   syscalls        hash, struct syscall_key (its number) -> how many times it was called
//   counters        per-CPU array: [0] execs, [1] syscalls
//   events          ring buffer: one struct exec_event per exec
//   stacks          stack_trace: kernel and user stacks of job-work's getppid() calls
//   stack_counts    hash, struct stack_key -> how many times that stack was seen
//   syscalls_hist   array of log2 slots: how many syscalls each process made in its life
//   .bss, .rodata   globals: total_execs, and the name prefix it watches
//
// Build: sh examples/bpf/build.sh; load: examples/bpf/load app.bpf.o /sys/fs/bpf/app
#include <linux/bpf.h>
#include <asm/unistd.h> /* __NR_getppid: the syscall job-work makes for the stacks */
#include <bpf/bpf_helpers.h>

#ifndef PROCS_MAX
#define PROCS_MAX 8
#endif

struct proc {
	__u64 syscalls;
	__u64 last_seen;	/* bpf_ktime_get_ns() of its last syscall */
	char comm[16];
};

struct exec_event {
	__u32 pid;
	__u32 uid;
	char comm[16];
};

struct proc_key {
	__u32 pid;
};

struct syscall_key {
	__u32 nr;
};

struct stack_key {
	__u32 pid;
	__s32 kern_stack_id;
	__s32 user_stack_id;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PROCS_MAX);
	__type(key, struct proc_key);
	__type(value, struct proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, struct syscall_key);
	__type(value, __u64);
} syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 8192); /* stacks hash to buckets: room makes a shared one unlikely */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct stack_key);
	__type(value, __u64);
} stack_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} syscalls_hist SEC(".maps");

/* the record type, kept in the object's BTF (bpfmap events --object ... --value-type) */
const struct exec_event *unused_exec_event __attribute__((unused));

const volatile char prefix[8] = "job-";
__u64 total_execs;

static __always_inline int watched(char comm[16])
{
	bpf_get_current_comm(comm, 16);
	for (int i = 0; i < 4; i++)
		if (comm[i] != prefix[i])
			return 0;
	return 1;
}

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &slot);

	if (n)
		*n += 1;
}

SEC("raw_tp/sys_enter")
int on_syscall(struct bpf_raw_tracepoint_args *ctx)
{
	struct stack_key sk = {};
	struct proc fresh = {}, *p;
	struct proc_key pid = { bpf_get_current_pid_tgid() >> 32 };
	struct syscall_key nr = { ctx->args[1] };
	__u64 one = 1, *n;

	if (!watched(fresh.comm))
		return 0;
	count(1);
	n = bpf_map_lookup_elem(&syscalls, &nr);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&syscalls, &nr, &one, BPF_NOEXIST);
	p = bpf_map_lookup_elem(&procs, &pid);
	if (p) {
		p->syscalls += 1;
		p->last_seen = bpf_ktime_get_ns();
	} else {
		fresh.syscalls = 1;
		fresh.last_seen = bpf_ktime_get_ns();
		bpf_map_update_elem(&procs, &pid, &fresh, BPF_NOEXIST);
	}
	if (ctx->args[1] != __NR_getppid)
		return 0; /* stacks of job-work's own calls alone: a few stacks, no bucket shared */
	sk.pid = pid.pid;
	__builtin_memcpy(sk.comm, fresh.comm, 16);
	sk.kern_stack_id = bpf_get_stackid(ctx, &stacks, 0);
	sk.user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	n = bpf_map_lookup_elem(&stack_counts, &sk);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&stack_counts, &sk, &one, BPF_NOEXIST);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int on_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct exec_event *e;
	char comm[16];

	if (!watched(comm))
		return 0;
	count(0);
	__sync_fetch_and_add(&total_execs, 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	__builtin_memcpy(e->comm, comm, 16);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int on_exit(struct bpf_raw_tracepoint_args *ctx)
{
	char comm[16];
	struct proc_key pid = { bpf_get_current_pid_tgid() >> 32 };
	__u32 slot = 0;
	__u64 *n;
	struct proc *p;

	if (!watched(comm) || (__u32)bpf_get_current_pid_tgid() != pid.pid)
		return 0;	/* a thread's exit is not the process's */
	p = bpf_map_lookup_elem(&procs, &pid);
	if (!p)
		return 0;
	for (__u64 v = p->syscalls; v > 1 && slot < 31; v >>= 1)
		slot++;
	n = bpf_map_lookup_elem(&syscalls_hist, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
