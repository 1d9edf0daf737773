/* bench/wl.c - the micro benchmark's workload when ../shared/bench is not there.
 * usage: wl OP N    OP: getpid | stat (/etc/hostname) | open (/etc/hostname, then close) |
 *                    clock (CLOCK_MONOTONIC)
 * Runs OP N times and prints "OP N NS" (nanoseconds per call of the timed loop only:
 * process start and exit are not in it). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: wl getpid|stat|open|clock N\n");
        return 2;
    }
    const char *op = argv[1];
    long n = atol(argv[2]);
    struct stat st;
    struct timespec ts;
    double start = now_ns();
    if (strcmp(op, "getpid") == 0) {
        for (long i = 0; i < n; i++) syscall(SYS_getpid); /* not cached by libc */
    } else if (strcmp(op, "stat") == 0) {
        for (long i = 0; i < n; i++)
            if (stat("/etc/hostname", &st) != 0) return 1;
    } else if (strcmp(op, "open") == 0) {
        for (long i = 0; i < n; i++) {
            int fd = openat(AT_FDCWD, "/etc/hostname", O_RDONLY);
            if (fd < 0) return 1;
            close(fd);
        }
    } else if (strcmp(op, "clock") == 0) {
        for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &ts);
    } else {
        fprintf(stderr, "wl: unknown op %s\n", op);
        return 2;
    }
    double ns = (now_ns() - start) / (n > 0 ? n : 1);
    printf("%s %ld %.1f\n", op, n, ns);
    return 0;
}
