/* signal_storm ITERS DIR: the main thread opens, reads and closes DIR/f(i%8) ITERS times
 * (calls vurs virtualizes) while a child floods it with SIGUSR1 and short-lived children
 * (forked between reads) bring SIGCHLD; handlers are installed without SA_RESTART for
 * SIGUSR1 (EINTR must be retried) and with SA_RESTART for SIGCHLD. Every read must give
 * the file's bytes, every child its exit status. Prints
 * "reads N bad 0 children C statuses-ok C usr1 yes". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, chld;
static void on_usr1(int s) { (void)s; usr1++; }
static void on_chld(int s) { (void)s; chld++; }

static long slurp(const char *path, char *buf, size_t cap) {
    int fd;
    while ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 && errno == EINTR) {}
    if (fd < 0) return -1;
    long n = 0, r;
    while (n < (long)cap) {
        r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += r;
    }
    close(fd);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int iters = atoi(argv[1]);
    const char *dir = argv[2];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART */
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    char want[8][4096], buf[4096], path[4096];
    long want_len[8];
    for (int f = 0; f < 8; f++) {
        snprintf(path, sizeof path, "%s/f%d", dir, f);
        want_len[f] = slurp(path, want[f], sizeof want[f]);
    }
    pid_t me = getpid();
    pid_t flood = fork();
    if (flood == 0) {
        for (;;) {
            if (kill(me, SIGUSR1)) _exit(0);
            usleep(50);
        }
    }
    int bad = 0, children = 0, ok = 0;
    for (int i = 0; i < iters; i++) {
        snprintf(path, sizeof path, "%s/f%d", dir, i % 8);
        long n = slurp(path, buf, sizeof buf);
        if (n != want_len[i % 8] || memcmp(buf, want[i % 8], n)) bad++;
        if (i % 10 == 0) {
            pid_t p = fork();
            if (p == 0) _exit(i % 200);
            children++;
            int st;
            pid_t w;
            while ((w = waitpid(p, &st, 0)) < 0 && errno == EINTR) {}
            if (w == p && WIFEXITED(st) && WEXITSTATUS(st) == i % 200) ok++;
        }
    }
    kill(flood, SIGKILL);
    while (waitpid(flood, NULL, 0) < 0 && errno == EINTR) {}
    printf("reads %d bad %d children %d statuses-ok %d usr1 %s\n", iters, bad, children, ok,
           usr1 > 0 ? "yes" : "no");
    return bad != 0;
}
