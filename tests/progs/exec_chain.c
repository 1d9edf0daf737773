/* exec_chain CHAINS DEPTH DIR: CHAINS processes, each execs itself DEPTH times; every
 * image opens and reads DIR/f(depth%8) and adds its size to a running sum passed on in
 * argv. Each chain exits with its sum % 251; the parent prints
 * "chains C depth D sum S". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static long size_of(const char *dir, int k) {
    char path[4096], buf[4096];
    snprintf(path, sizeof path, "%s/f%d", dir, k % 8);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 100000;
    long n = 0, r;
    while ((r = read(fd, buf, sizeof buf)) > 0) n += r;
    close(fd);
    return n;
}

int main(int argc, char **argv) {
    if (argc == 5) { /* a link of a chain: exec_chain - DEPTH DIR SUM */
        int depth = atoi(argv[2]);
        long sum = atol(argv[4]) + size_of(argv[3], depth);
        if (depth == 0) return (int)(sum % 251);
        char d[32], s[32];
        snprintf(d, sizeof d, "%d", depth - 1);
        snprintf(s, sizeof s, "%ld", sum);
        execl("/proc/self/exe", argv[0], "-", d, argv[3], s, (char *)NULL);
        return 250;
    }
    if (argc != 4) return 2;
    int chains = atoi(argv[1]);
    long total = 0;
    for (int c = 0; c < chains; c++) {
        if (fork() == 0) {
            execl("/proc/self/exe", argv[0], "-", argv[2], argv[3], "0", (char *)NULL);
            _exit(250);
        }
    }
    for (int c = 0; c < chains; c++) {
        int st;
        if (wait(&st) < 0 || !WIFEXITED(st)) { printf("bad status %#x\n", st); return 1; }
        total += WEXITSTATUS(st);
    }
    printf("chains %d depth %s sum %ld\n", chains, argv[2], total);
    return 0;
}
