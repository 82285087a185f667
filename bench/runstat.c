/* runstat.c - run a command N times and report the median whole-process
 * wall time, the time to the first byte it writes on stdout, and its peak
 * RSS (ru_maxrss of the child). Used by the benchmarks to compare cvisor
 * and QEMU on the same stub guest.
 *
 * usage: runstat [-n RUNS] [-m MARKER] [-k] -- COMMAND [ARGS...]
 * With -m, "first byte" is the time until MARKER appears on stdout. With
 * -k the command is killed (SIGKILL) as soon as that happens: for guests
 * that never stop by themselves (the restore benchmark). */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int runs = 10, i = 1;
	const char *marker = NULL;
	int kill_at_marker = 0;

	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-m") && i + 1 < argc)
			marker = argv[++i];
		else if (!strcmp(argv[i], "-k"))
			kill_at_marker = 1;
	}
	if (i >= argc - 1 || runs < 1 || runs > 1000) {
		fprintf(stderr, "usage: runstat [-n RUNS] [-m MARKER] [-k] -- COMMAND [ARGS...]\n");
		return 2;
	}
	char **cmd = argv + i + 1;
	double *wall = calloc(runs, sizeof(double)), *first = calloc(runs, sizeof(double));
	double *rss = calloc(runs, sizeof(double));
	int bad = 0;

	for (int r = 0; r < runs; r++) {
		int p[2];
		char buf[4096], seen[8192] = "";
		size_t seen_len = 0;
		struct rusage ru;
		int status;

		if (pipe(p))
			return 1;
		double t0 = now_ms();
		pid_t pid = fork();

		if (pid == 0) {
			dup2(p[1], 1);
			close(p[0]);
			close(p[1]);
			execvp(cmd[0], cmd);
			_exit(127);
		}
		close(p[1]);
		first[r] = -1;
		for (;;) {
			ssize_t n = read(p[0], buf, sizeof(buf));

			if (n <= 0)
				break;
			if (first[r] < 0) {
				if (!marker) {
					first[r] = now_ms() - t0;
				} else {
					size_t c = (size_t)n < sizeof(seen) - 1 - seen_len
							   ? (size_t)n
							   : sizeof(seen) - 1 - seen_len;
					memcpy(seen + seen_len, buf, c);
					seen_len += c;
					seen[seen_len] = 0;
					if (strstr(seen, marker))
						first[r] = now_ms() - t0;
				}
				if (first[r] >= 0 && kill_at_marker) {
					kill(pid, SIGKILL);
					break;
				}
			}
		}
		close(p[0]);
		wait4(pid, &status, 0, &ru);
		wall[r] = now_ms() - t0;
		rss[r] = ru.ru_maxrss;
		if (kill_at_marker ? first[r] < 0 : !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	}
	qsort(wall, runs, sizeof(double), cmp);
	qsort(first, runs, sizeof(double), cmp);
	qsort(rss, runs, sizeof(double), cmp);
	printf("runs=%d wall_ms=%.2f first_byte_ms=%.2f maxrss_kib=%.0f nonzero_exits=%d\n", runs,
	       wall[runs / 2], first[runs / 2], rss[runs / 2], bad);
	return 0;
}
