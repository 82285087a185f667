/* main.c - argv -> subcommand. The only place that exits the process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/config.h"
#include "cvisor/console.h"
#include "cvisor/runloop.h"
#include "cvisor/vm.h"

#define CVISOR_VERSION "0.1.0"

static const char usage_text[] =
	"usage: cvisor run --kernel FILE [--initrd FILE] [--cmdline STR] [--memory SIZE]\n"
	"                  [--cpus N] [--emulated-host auto|on|off]\n"
	"       cvisor version\n"
	"\n"
	"run boots a Linux bzImage or a PVH ELF kernel with a serial console on stdin/stdout.\n"
	"On a terminal, Ctrl-A x quits. Exit status: 0 guest powered off or rebooted,\n"
	"2 bad input, 3 guest crashed (triple fault), 4 unrecoverable emulation error,\n"
	"128+N ended by signal N.\n";

static int cmd_run(int argc, char **argv)
{
	static struct vm vm;
	struct vm_config cfg;
	char err[256];
	bool usage;
	int status, signo;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (config_parse_run(argc, argv, &cfg, err, sizeof(err))) {
		fprintf(stderr, "cvisor: %s\n", err);
		return CV_EXIT_USAGE;
	}
	runloop_block_signals();
	if (vm_create(&vm, &cfg, &usage)) {
		vm_destroy(&vm);
		return usage ? CV_EXIT_USAGE : CV_EXIT_FAIL;
	}
	console_raw(STDIN_FILENO);
	if (vm_start(&vm) == 0)
		signo = runloop_run(&vm);
	else
		signo = 0;
	vm_join(&vm);
	console_restore();
	if (vm.stop_msg[0])
		fprintf(stderr, "cvisor: %s\n", vm.stop_msg);
	status = signo ? 128 + signo : vm_exit_status(&vm);
	vm_destroy(&vm);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return CV_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("cvisor %s\n", CVISOR_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	fprintf(stderr, "cvisor: unknown command %s (try cvisor help)\n", argv[1]);
	return CV_EXIT_USAGE;
}
