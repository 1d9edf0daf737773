/* yieldcall ARG N [PIDFILE]: make N calls syscall(SYS_sched_yield, ARG) and print the
 * result of the last one as "r=RET e=ERRNO" (natively: r=0 e=0). With PIDFILE, writes
 * its pid there first (atomically: PIDFILE.tmp, then rename). The tests of fault
 * containment load a module (tests/modules/faulty.c) that answers this call. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: yieldcall ARG N [PIDFILE]\n");
        return 2;
    }
    long arg = atol(argv[1]), n = atol(argv[2]);
    if (argc > 3) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", argv[3]);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f) || rename(tmp, argv[3])) return 3;
    }
    long r = 0;
    int e = 0;
    for (long i = 0; i < n; i++) {
        errno = 0;
        r = syscall(SYS_sched_yield, arg);
        e = errno;
    }
    printf("r=%ld e=%d\n", r, e);
    return 0;
}
