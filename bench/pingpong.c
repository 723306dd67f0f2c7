// Vendored unchanged from the team's shared tools (shared/yardstick/pingpong.c) so the benchmark
// command in README works from a clean clone.
// Yardstick: the cheapest cross-process handoff the kernel offers, per mechanism.
// usage: pingpong {eventfd|futex|pipe|spin} ROUNDS {same|split|free}   (build: cc -O2 -o pingpong pingpong.c)
// Prints the mean round trip. Two processes (fork), one shared page, no measurement inside the loop.
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pin(int cpu) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s); sched_setaffinity(0, sizeof s, &s); }
static long fx(_Atomic uint32_t *a, int op, uint32_t v) { return syscall(SYS_futex, a, op, v, NULL, NULL, 0); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s eventfd|futex|pipe|spin ROUNDS same|split|free\n", argv[0]); return 2; }
    const char *m = argv[1]; long n = atol(argv[2]); const char *pl = argv[3];
    int a = eventfd(0, 0), b = eventfd(0, 0);
    int p1[2], p2[2]; pipe(p1); pipe(p2);
    _Atomic uint32_t *turn = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *turn = 0;
    pid_t pid = fork();
    int child = pid == 0;
    if (!strcmp(pl, "same")) pin(0); else if (!strcmp(pl, "split")) pin(child ? 1 : 0);
    uint64_t v = 1; char c = 0;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        if (!strcmp(m, "eventfd")) {
            if (child) { read(a, &v, 8); write(b, &v, 8); } else { write(a, &v, 8); read(b, &v, 8); }
        } else if (!strcmp(m, "pipe")) {
            if (child) { read(p1[0], &c, 1); write(p2[1], &c, 1); } else { write(p1[1], &c, 1); read(p2[0], &c, 1); }
        } else if (!strcmp(m, "spin")) {
            uint32_t me = child ? 1 : 0;
            while (atomic_load(turn) != me) __builtin_ia32_pause();
            atomic_store(turn, 1 - me);
        } else {
            uint32_t me = child ? 1 : 0;
            while (atomic_load(turn) != me) fx(turn, FUTEX_WAIT, 1 - me);
            atomic_store(turn, 1 - me); fx(turn, FUTEX_WAKE, 1);
        }
    }
    double dt = now() - t0;
    if (child) _exit(0);
    waitpid(pid, NULL, 0);
    printf("%s %s %.3f us/round-trip\n", m, pl, dt / n * 1e6);
    return 0;
}
