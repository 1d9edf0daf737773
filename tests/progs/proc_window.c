/* proc_window TOTAL WINDOW DIR: TOTAL processes in all, WINDOW of them alive at once.
 * The first WINDOW children wait on a pipe until all of them exist (so WINDOW are alive
 * together); then each reaped child is replaced by a new one until TOTAL were started.
 * Child i opens DIR/f(i%8), reads it, and exits with (i + bytes read) % 251; the parent
 * checks every status. Prints "procs TOTAL window WINDOW bad 0" on success. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int child(int i, const char *dir, int gate) {
    char c, path[4096], buf[4096];
    while (read(gate, &c, 1) < 0 && errno == EINTR) {}
    snprintf(path, sizeof path, "%s/f%d", dir, i % 8);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 250;
    long n = 0, r;
    while ((r = read(fd, buf, sizeof buf)) > 0) n += r;
    close(fd);
    return (int)((i + n) % 251);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int total = atoi(argv[1]), window = atoi(argv[2]);
    const char *dir = argv[3];
    int gate[2];
    if (pipe(gate)) return 2;
    int *idx_of = calloc(4194304, sizeof(int)); /* pid -> index + 1 */
    char path[4096], buf[4096];
    long sizes[8];
    for (int k = 0; k < 8; k++) { /* expected bytes per file, read by the parent */
        snprintf(path, sizeof path, "%s/f%d", dir, k);
        int fd = open(path, O_RDONLY);
        long n = 0, r;
        while (fd >= 0 && (r = read(fd, buf, sizeof buf)) > 0) n += r;
        if (fd >= 0) close(fd);
        sizes[k] = n;
    }
    int started = 0, alive = 0, bad = 0, done = 0;
    while (done < total) {
        while (started < total && alive < window) {
            pid_t p = fork();
            if (p < 0) { perror("fork"); return 1; }
            if (p == 0) { close(gate[1]); _exit(child(started, dir, gate[0])); }
            idx_of[p] = started + 1;
            started++, alive++;
        }
        if (gate[1] >= 0) { close(gate[1]); gate[1] = -1; } /* the first window is complete */
        int st;
        pid_t p = wait(&st);
        if (p < 0) { perror("wait"); return 1; }
        int i = idx_of[p] - 1;
        if (i < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != (int)((i + sizes[i % 8]) % 251)) {
            if (bad++ < 5) fprintf(stderr, "child %d (pid %d): status %#x\n", i, p, st);
        }
        alive--, done++;
    }
    printf("procs %d window %d bad %d\n", total, window, bad);
    return bad != 0;
}
