// A process whose user stack a test reads back by name: main -> stack_outer ->
// stack_middle -> stack_inner, which runs the pinned raw tracepoint program argv[1]
// (BPF_PROG_TEST_RUN), so the program's bpf_get_stackid(BPF_F_USER_STACK) sees these
// functions.  Then it prints "ran" and waits for stdin to close: its memory maps stay
// there to symbolize.  Built with frame pointers (-fno-omit-frame-pointer), as the
// kernel walks user stacks by them.
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int prog_fd;

__attribute__((noinline)) int stack_inner(void)
{
	union bpf_attr attr;
	char ctx[8] = {0};

	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = prog_fd;
	attr.test.ctx_in = (unsigned long)ctx;
	attr.test.ctx_size_in = sizeof(ctx);
	return syscall(__NR_bpf, BPF_PROG_TEST_RUN, &attr, sizeof(attr));
}

__attribute__((noinline)) int stack_middle(void)
{
	int ret = stack_inner();

	return ret;
}

__attribute__((noinline)) int stack_outer(void)
{
	int ret = stack_middle();

	return ret;
}

int main(int argc, char **argv)
{
	union bpf_attr attr;
	char c;

	memset(&attr, 0, sizeof(attr));
	attr.pathname = (unsigned long)argv[1];
	prog_fd = syscall(__NR_bpf, BPF_OBJ_GET, &attr, sizeof(attr));
	if (prog_fd < 0 || stack_outer() < 0) {
		perror("bpf");
		return 1;
	}
	printf("ran\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
