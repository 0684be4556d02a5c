#!/usr/bin/env bash
# What this machine charges for the things a fan-out server does most: a syscall, a
# loopback TCP write (with the receiver's side, which loopback runs on the writer's core)
# and a load that misses the cache. Benchmarks taken on different days are comparable
# only as far as these agree; BENCHMARKS.md quotes them next to each session's figures.
#
# Usage: scripts/machine_costs.sh [cpu]   (default cpu 0, the server's core in the recipes)
set -euo pipefail
cpu="${1:-0}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cat > "$dir/costs.c" <<'C'
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Median of five timings of `body`, in ns per iteration. */
#define MEDIAN5(result, iters, body)                                                   \
    do {                                                                               \
        double runs[5];                                                                \
        for (int r = 0; r < 5; r++) {                                                  \
            double t0 = seconds();                                                     \
            for (long i = 0; i < (iters); i++) { body; }                               \
            runs[r] = (seconds() - t0) / (iters) * 1e9;                                \
        }                                                                              \
        for (int a = 0; a < 5; a++)                                                    \
            for (int b = a + 1; b < 5; b++)                                            \
                if (runs[b] < runs[a]) { double x = runs[a]; runs[a] = runs[b]; runs[b] = x; } \
        result = runs[2];                                                              \
    } while (0)

int main(void) {
    double ns;
    MEDIAN5(ns, 200000, syscall(SYS_getppid));
    printf("syscall (getppid):                  %8.0f ns\n", ns);

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(listener, (void *)&addr, sizeof addr) || listen(listener, 1) ||
        getsockname(listener, (void *)&addr, &len)) { perror("listen"); return 1; }
    int tx = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(tx, (void *)&addr, sizeof addr)) { perror("connect"); return 1; }
    int rx = accept(listener, NULL, NULL);
    int one = 1;
    setsockopt(tx, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static char frame[1000], sink[1 << 16];
    /* The reader empties the socket every 16 writes so the sender never blocks. */
    MEDIAN5(ns, 20000, {
        if (write(tx, frame, sizeof frame) < 0) { perror("write"); return 1; }
        if (i % 16 == 15) while (recv(rx, sink, sizeof sink, MSG_DONTWAIT) > 0) {}
    });
    printf("loopback TCP write, 1,000 B:        %8.0f ns\n", ns);

    long sizes[] = {32L << 10, 1L << 20, 8L << 20, 64L << 20};
    for (int s = 0; s < 4; s++) {
        long n = sizes[s] / (long)sizeof(long);
        long *next = malloc(n * sizeof(long));
        for (long i = 0; i < n; i++) next[i] = i;
        /* One random cycle through all slots: every load depends on the one before. */
        srand(1);
        for (long i = n - 1; i > 0; i--) {
            long j = ((long)rand() * RAND_MAX + rand()) % i;
            long t = next[i]; next[i] = next[j]; next[j] = t;
        }
        volatile long p = 0;
        MEDIAN5(ns, 2000000, p = next[p]);
        printf("dependent load, %5ld KiB working set: %6.1f ns\n", sizes[s] >> 10, ns);
        free(next);
    }
    return 0;
}
C
cc -O2 -o "$dir/costs" "$dir/costs.c"
taskset -c "$cpu" "$dir/costs"
