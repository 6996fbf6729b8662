// Event records, as a tool's shared header declares them (included by events.h and by
// records.bpf.c).
#ifndef RECORDS_H
#define RECORDS_H

#define ARGS_MAX 64

struct exec_event {
	__u32 pid;
	__u32 args_len;
	char comm[16];
	char args[ARGS_MAX];  /* sent only as far as args_len */
};

struct conn_event {
	unsigned __int128 saddr;
	unsigned __int128 daddr;
	__u16 family;
	__u16 dport;
	__u32 pid;
};

typedef struct conn_event conn_event_t;

#endif
