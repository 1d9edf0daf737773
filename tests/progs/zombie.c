/* zombie.c - tracer stress: zombies, orphans and re-parenting.
 * 1. A child exits at once; within 10 s (200 ms natively; more on a loaded machine)
 *    /proc/<child>/stat must show state Z and stay so (the tracer must not reap the
 *    tracee's children or leave them stopped/running), then
 *    waitpid reaps it with status 0 and /proc/<child> is gone.
 * 2. A child forks a grandchild and exits; the grandchild waits until it is re-parented
 *    (getppid() no longer the dead child), sleeps 100 ms and exits. We reap the child, and
 *    wait for the grandchild's report through a pipe (EOF when it exits).
 * 3. Same, but we are PR_SET_CHILD_SUBREAPER: the orphan must be re-parented to us
 *    (getppid() == our pid) and we reap it with its exit status 5.
 * Expected stdout (exit status 0):
 *   zombie state Z
 *   orphan reparented
 *   subreaper reaped grandchild status 5
 *   zombie ok */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, "zombie: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static void msleep(int ms) { struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L}; while (nanosleep(&ts, &ts) && errno == EINTR) {} }

static char proc_state(pid_t p) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp[2] : '?';
}

static int waitst(pid_t p) {
    int st;
    pid_t r;
    while ((r = waitpid(p, &st, 0)) < 0 && errno == EINTR) {}
    if (r != p) FAIL("waitpid %d: %s", (int)p, strerror(errno));
    return st;
}

/* fork a child that forks a grandchild and exits 0; the grandchild waits until re-parented,
 * writes its new ppid to wfd, sleeps 100 ms, exits 5. Returns the child's pid. */
static pid_t orphan_maker(int pfd[2]) {
    pid_t c = fork();
    if (c < 0) FAIL("fork: %s", strerror(errno));
    if (c == 0) {
        pid_t me = getpid();
        pid_t g = fork();
        if (g < 0) _exit(2);
        if (g == 0) {
            close(pfd[0]);
            for (int i = 0; i < 2000 && getppid() == me; i++) msleep(5);
            pid_t pp = getppid();
            if (write(pfd[1], &pp, sizeof pp) != sizeof pp) _exit(3);
            msleep(100);
            _exit(5);
        }
        _exit(0);
    }
    return c;
}

int main(void) {
    alarm(30);
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* 1. zombie */
    pid_t c = fork();
    if (c < 0) FAIL("fork: %s", strerror(errno));
    if (c == 0) _exit(0);
    char s = 0;
    for (int waited = 0; waited < 10000; waited += 50) {
        msleep(50);
        if ((s = proc_state(c)) == 'Z') break;
    }
    if (s != 'Z') FAIL("child %d state '%c', want Z", (int)c, s ? s : '-');
    msleep(100);
    if ((s = proc_state(c)) != 'Z') FAIL("child %d state '%c' after Z, want Z", (int)c, s ? s : '-');
    printf("zombie state Z\n");
    int st = waitst(c);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) FAIL("zombie child status 0x%x", st);
    if (proc_state(c)) FAIL("/proc/%d still exists after reaping", (int)c);

    /* 2. orphan re-parented to someone else (init or an outer subreaper) */
    {
        int pfd[2];
        if (pipe(pfd)) FAIL("pipe: %s", strerror(errno));
        c = orphan_maker(pfd);
        close(pfd[1]);
        st = waitst(c);
        if (!WIFEXITED(st) || WEXITSTATUS(st)) FAIL("orphan's parent status 0x%x", st);
        pid_t pp = 0;
        if (read(pfd[0], &pp, sizeof pp) != sizeof pp) FAIL("orphan: no report");
        if (pp == c || pp == getpid()) FAIL("orphan: ppid %d, want neither %d nor us", (int)pp, (int)c);
        char x;
        if (read(pfd[0], &x, 1) != 0) FAIL("orphan: expected EOF");   /* grandchild exited */
        close(pfd[0]);
        printf("orphan reparented\n");
    }

    /* 3. orphan re-parented to us as subreaper */
    {
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) FAIL("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
        int pfd[2];
        if (pipe(pfd)) FAIL("pipe: %s", strerror(errno));
        c = orphan_maker(pfd);
        close(pfd[1]);
        st = waitst(c);
        if (!WIFEXITED(st) || WEXITSTATUS(st)) FAIL("subreaper child status 0x%x", st);
        pid_t pp = 0;
        if (read(pfd[0], &pp, sizeof pp) != sizeof pp) FAIL("subreaper: no report");
        close(pfd[0]);
        if (pp != getpid()) FAIL("subreaper: grandchild ppid %d, want us %d", (int)pp, (int)getpid());
        int st2;
        pid_t g;
        while ((g = wait(&st2)) < 0 && errno == EINTR) {}
        if (g < 0) FAIL("subreaper: wait: %s", strerror(errno));
        if (!WIFEXITED(st2) || WEXITSTATUS(st2) != 5) FAIL("subreaper: grandchild status 0x%x", st2);
        printf("subreaper reaped grandchild status %d\n", WEXITSTATUS(st2));
        if (wait(&st2) != -1 || errno != ECHILD) FAIL("subreaper: extra child");
    }
    printf("zombie ok\n");
    return 0;
}
