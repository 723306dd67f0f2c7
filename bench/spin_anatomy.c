// What a *measured* spin handoff costs, built up step by step in C: the floor lockfair's
// `spin-futex` should be compared with once it measures what it measures.
// usage: spin_anatomy STEP ROUNDS [split]   (build: cc -O2 -o spin_anatomy spin_anatomy.c)
//   STEP 0: pure spin ping-pong on one word (pingpong.c spin, timed from a start line)
//   STEP 1: + two CLOCK_MONOTONIC reads per turn (acquired, released), as lockfair's handoff
//           latency and round trip need
//   STEP 2: + the overlap detector: a second cache line, entered with an atomic add and left
//           with an atomic and, as lockfair's arena header does
//   STEP 3: + the release timestamp and the turn's line written on that second line, read by the
//           next holder (lockfair's "hot line")
//   STEP 4: STEP 3 with the two timestamps taken on one turn in 64 only (sampled timing): what
//           the second line costs on its own
// Two processes (fork), pinned to CPUs 0 and 1 (the only placement: spinning on one CPU would
// wait a scheduler tick per turn), timed from a start line both reach, as lockfair is. Prints the
// mean round trip in pingpong.c's format, so `lockfair-client bench --anatomy` reads it the same
// way, and both sides' overlaps; exits 1 if there were any (or the other process failed).
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
    _Alignas(64) _Atomic uint32_t turn;
    _Alignas(64) _Atomic uint64_t occupant;
    _Atomic uint64_t release_ns;
    _Atomic uint64_t line[3];
    _Alignas(64) _Atomic uint32_t ready;     // the start line: both pinned, then the clock starts
    _Atomic uint64_t overlaps;                // both sides' counts
};

static void die(const char *what) { perror(what); exit(1); }
static void pin(int cpu) {
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof s, &s)) die("pin to CPU 0 or 1 (both must be allowed)");
}
static uint64_t ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000ull + t.tv_nsec; }
static long number(const char *text, long lo, long hi) {
    char *end; long v = strtol(text, &end, 10);
    return (*text && !*end && v >= lo && v <= hi) ? v : -1;
}

int main(int argc, char **argv) {
    long step = argc >= 3 ? number(argv[1], 0, 4) : -1, n = argc >= 3 ? number(argv[2], 1, 1L << 40) : -1;
    if (step < 0 || n < 0 || argc > 4 || (argc == 4 && strcmp(argv[3], "split"))) {
        fprintf(stderr, "usage: %s STEP(0-4) ROUNDS(>=1) [split]\n", argv[0]); return 2;
    }
    struct shared *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) die("mmap");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    uint32_t me = pid == 0;
    pin(me);
    atomic_fetch_add(&s->ready, 1);
    while (atomic_load(&s->ready) < 2) __builtin_ia32_pause();
    uint64_t overlaps = 0, sum = 0;
    double t0 = ns();
    for (long i = 0; i < n; i++) {
        while (atomic_load_explicit(&s->turn, memory_order_acquire) != me) __builtin_ia32_pause();
        int timed = step >= 1 && (step < 4 || (i & 63) == 0);
        uint64_t got = timed ? ns() : 0;
        if (step >= 2 && atomic_fetch_add(&s->occupant, 1ull << me) & ~(1ull << me)) overlaps++;
        if (step >= 3) {
            sum += got - atomic_load_explicit(&s->release_ns, memory_order_acquire);
            atomic_store_explicit(&s->line[0], i, memory_order_relaxed);
        }
        uint64_t released = timed ? ns() : 0;
        if (step >= 3) atomic_store_explicit(&s->release_ns, released, memory_order_release);
        if (step >= 2) atomic_fetch_and(&s->occupant, ~(1ull << me));
        atomic_store_explicit(&s->turn, 1 - me, memory_order_release);
        sum += released - got;
    }
    double dt = ns() - t0;
    atomic_fetch_add(&s->overlaps, overlaps);
    if (me) _exit(0);
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "the other process failed\n"); return 1;
    }
    uint64_t all = atomic_load(&s->overlaps);
    printf("step%ld split %.3f us/round-trip (overlaps %lu, checksum %lu)\n", step, dt / n / 1e3, all, sum & 1);
    return all != 0;
}
