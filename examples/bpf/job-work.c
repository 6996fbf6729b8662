// job-work: a workload for the docs' flame graph guide.  It makes N getppid() calls from
// two functions (so its stacks have two shapes: main;serve;handle;syscall and
// main;serve;syscall), then sleeps S seconds so that its stacks can be symbolized while
// it is alive.  Built with frame pointers: bpf_get_stackid walks them.
// Usage: job-work N S
#define _GNU_SOURCE
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

__attribute__((noinline)) static void handle(void)
{
	syscall(SYS_getppid);
}

__attribute__((noinline)) static void serve(int n)
{
	for (int i = 0; i < n; i++) {
		if (i % 4 == 0)
			syscall(SYS_getppid);
		else
			handle();
	}
}

int main(int argc, char **argv)
{
	serve(argc > 1 ? atoi(argv[1]) : 100);
	sleep(argc > 2 ? atoi(argv[2]) : 10);
	return 0;
}
