// Global variables as libbpf turns them into maps: .rodata (knobs set before load,
// frozen), .data (initialised), .bss (zeroed), a custom .data.NAME section and .kconfig.
// Each run of `count` (a socket filter, run with BPF_PROG_TEST_RUN) counts one packet.
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

enum mode { MODE_OFF = 0, MODE_COUNT = 1, MODE_TRACE = 2 };

struct limits {
	__u32 min_len;
	__u32 max_len;
};

const volatile __u32 target_port = 8080;
const volatile bool verbose = true;
const volatile enum mode mode = MODE_COUNT;
const volatile struct limits limits = { 64, 1500 };
const volatile char tag[8] = "edge";

__u64 packets;
__u32 by_len[4];
__u64 hists[2][8];
char last_tag[8];

__u64 seen_total = 100;
__s32 delta = -5;
__u8 flags = 3;
__u64 big = 0x1122334455667788ULL;

__u32 knob_a SEC(".data.knobs") = 7;
__u16 knob_b SEC(".data.knobs") = 9;

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig __weak;

SEC("socket")
int count(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u32 slot = 0;
	int i;

	packets++;
	if (mode == MODE_COUNT)
		seen_total += 1;
	by_len[len & 3]++;
	for (i = 0; i < 7; i++)
		if (len >> (i + 1))
			slot = i + 1;
	hists[len & 1][slot]++;
	knob_a += 1;
	if (verbose)
		delta -= 1;
	if (LINUX_KERNEL_VERSION > 0 && CONFIG_BPF_SYSCALL)
		flags = 4;
	for (i = 0; i < 8; i++)
		last_tag[i] = tag[i];
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
