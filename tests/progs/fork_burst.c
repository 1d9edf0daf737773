/* fork_burst.c - tracer stress: a burst of 200 fork()s in a row without waiting in between.
 * Child i exits immediately with status i%50; the parent then reaps all 200 with wait() and
 * checks that every pid is reaped exactly once with the right exit status. Checks that the
 * tracer keeps up with many new tracees (fork events racing with the children's first stops
 * and exits) and does not lose, duplicate or mix up exit statuses.
 * Expected stdout:  forked 200 reaped 200 ok          exit status 0 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 200

int main(void) {
    pid_t pids[N];
    int seen[N] = {0};
    alarm(30);
    fflush(stdout);
    for (int i = 0; i < N; i++) {
        pid_t p = fork();
        if (p < 0) { fprintf(stderr, "fork_burst: fork %d: %s\n", i, strerror(errno)); return 1; }
        if (p == 0) _exit(i % 50);
        pids[i] = p;
    }
    int reaped = 0, bad = 0;
    for (;;) {
        int st;
        pid_t p = wait(&st);
        if (p < 0) {
            if (errno == EINTR) continue;
            if (errno == ECHILD) break;
            fprintf(stderr, "fork_burst: wait: %s\n", strerror(errno));
            return 1;
        }
        int i;
        for (i = 0; i < N && pids[i] != p; i++) {}
        if (i == N) { fprintf(stderr, "fork_burst: wait returned unknown pid %d\n", (int)p); bad++; continue; }
        if (seen[i]++) { fprintf(stderr, "fork_burst: pid %d reaped twice\n", (int)p); bad++; }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != i % 50) {
            fprintf(stderr, "fork_burst: child %d (pid %d) status 0x%x, want exit %d\n", i, (int)p, st, i % 50);
            bad++;
        }
        reaped++;
    }
    if (reaped != N || bad) {
        fprintf(stderr, "fork_burst: reaped %d of %d, %d bad\n", reaped, N, bad);
        return 1;
    }
    printf("forked %d reaped %d ok\n", N, reaped);
    return 0;
}
