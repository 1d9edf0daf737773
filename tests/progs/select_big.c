/* select(2) with fd_sets as large as the highest descriptor needs (glibc's fd_set stops
 * at FD_SETSIZE, 1024): a pipe and the file argv[1], ready sets printed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static void set(unsigned long *s, int fd) { s[fd / 64] |= 1UL << (fd % 64); }
static int isset(unsigned long *s, int fd) { return !!(s[fd / 64] & (1UL << (fd % 64))); }

int main(int argc, char **argv) {
    int p[2];
    if (argc < 2 || pipe(p)) return 2;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("open"); return 2; }
    int nfds = (fd > p[0] ? fd : p[0]) + 1;
    size_t words = (nfds + 63) / 64;
    for (int round = 0; round < 2; round++) {
        unsigned long *rd = calloc(words, 8), *wr = calloc(words, 8);
        set(rd, p[0]); set(rd, fd); set(wr, fd);
        struct timeval tv = {2, 0};
        long n = syscall(SYS_select, nfds, rd, wr, NULL, &tv);
        printf("round %d: %ld ready, pipe readable %d, file readable %d, file writable %d\n",
               round, n, isset(rd, p[0]), isset(rd, fd), isset(wr, fd));
        if (write(p[1], "x", 1) != 1) return 2;
        free(rd); free(wr);
    }
    return 0;
}
