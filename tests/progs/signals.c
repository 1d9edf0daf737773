/* signals.c - tracer stress: signal delivery semantics must survive ptrace signal-delivery stops
 * and syscall restarts. One "ok <name>" line per case, in this order:
 *   sigchld    SIGCHLD handler runs once per exited child (3 children, reaped one by one)
 *   sa_restart read() on an empty pipe is interrupted by SIGALRM (setitimer) whose handler has
 *              SA_RESTART: the read is restarted transparently and returns the data a child
 *              writes only after the handler ran (the handler notifies it via a second pipe)
 *   eintr      same without SA_RESTART: read() returns -1/EINTR
 *   sigqueue   sigqueue(self, SIGRTMIN, 4242) to an SA_SIGINFO handler: si_value.sival_int,
 *              si_code == SI_QUEUE, si_pid == getpid() are preserved
 *   raise      raise(SIGUSR2) runs the handler before raise returns
 *   sigpending SIGUSR1 blocked + raised: pending per sigpending(), handler not run; unblocked:
 *              handler runs once, no longer pending
 *   rt_queue   SIGRTMIN+1 blocked, queued 3 times with values 1,2,3: delivered 3 times in order
 * The watchdog is a POSIX timer raising SIGTERM after 30 s (SIGALRM itself is under test).
 * Expected stdout (exit status 0):
 *   ok sigchld
 *   ok sa_restart
 *   ok eintr
 *   ok sigqueue
 *   ok raise
 *   ok sigpending
 *   ok rt_queue */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, "signals: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static volatile sig_atomic_t nchld, nalrm, nusr1, nusr2, nrt, rtvals[8];
static volatile sig_atomic_t qval, qcode, qpid;
static int notify_fd = -1;

static void on_chld(int s) { (void)s; nchld++; }
static void on_alrm(int s) { (void)s; nalrm++; if (notify_fd >= 0) { int e = errno; (void)!write(notify_fd, "!", 1); errno = e; } }
static void on_usr1(int s) { (void)s; nusr1++; }
static void on_usr2(int s) { (void)s; nusr2++; }
static void on_q(int s, siginfo_t *si, void *u) { (void)s; (void)u; qval = si->si_value.sival_int; qcode = si->si_code; qpid = si->si_pid; }
static void on_rt(int s, siginfo_t *si, void *u) { (void)s; (void)u; if (nrt < 8) rtvals[nrt] = si->si_value.sival_int; nrt++; }

static void handle(int sig, void (*h)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL)) FAIL("sigaction %d: %s", sig, strerror(errno));
}
static void handle_info(int sig, void (*h)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL)) FAIL("sigaction %d: %s", sig, strerror(errno));
}
static void arm_alarm_ms(int ms) {
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    if (setitimer(ITIMER_REAL, &it, NULL)) FAIL("setitimer: %s", strerror(errno));
}
static void reap(pid_t p, const char *what) {
    int st;
    pid_t r;
    while ((r = waitpid(p, &st, 0)) < 0 && errno == EINTR) {}
    if (r != p || !WIFEXITED(st) || WEXITSTATUS(st)) FAIL("%s: child status 0x%x (%s)", what, st, r < 0 ? strerror(errno) : "");
}
static void ok(const char *n) { printf("ok %s\n", n); fflush(stdout); }

static void watchdog(void) {
    timer_t t;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGTERM;
    if (timer_create(CLOCK_MONOTONIC, &ev, &t)) FAIL("timer_create: %s", strerror(errno));
    struct itimerspec its = {{0, 0}, {30, 0}};
    if (timer_settime(t, 0, &its, NULL)) FAIL("timer_settime: %s", strerror(errno));
}

int main(void) {
    watchdog();
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* sigchld */
    handle(SIGCHLD, on_chld, SA_RESTART);
    for (int i = 0; i < 3; i++) {
        pid_t p = fork();
        if (p < 0) FAIL("fork: %s", strerror(errno));
        if (p == 0) _exit(0);
        reap(p, "sigchld");
    }
    for (int i = 0; i < 200 && nchld < 3; i++) usleep(10000);
    if (nchld != 3) FAIL("sigchld: handler ran %d times, want 3", (int)nchld);
    handle(SIGCHLD, SIG_DFL, 0);
    ok("sigchld");

    /* sa_restart */
    {
        int data[2], note[2];
        if (pipe(data) || pipe(note)) FAIL("pipe: %s", strerror(errno));
        pid_t p = fork();
        if (p < 0) FAIL("fork: %s", strerror(errno));
        if (p == 0) {
            char c;
            close(data[0]); close(note[1]);
            if (read(note[0], &c, 1) != 1) _exit(2);   /* wait until the parent's handler ran */
            usleep(50000);                              /* parent is back in the restarted read */
            if (write(data[1], "data", 4) != 4) _exit(3);
            _exit(0);
        }
        close(data[1]); close(note[0]);
        notify_fd = note[1];
        nalrm = 0;
        handle(SIGALRM, on_alrm, SA_RESTART);
        arm_alarm_ms(100);
        char buf[16];
        ssize_t n = read(data[0], buf, sizeof buf);
        if (n < 0) FAIL("sa_restart: read: %s (should have been restarted)", strerror(errno));
        if (n != 4 || memcmp(buf, "data", 4)) FAIL("sa_restart: read returned %zd '%.*s'", n, n > 0 ? (int)n : 0, buf);
        if (nalrm != 1) FAIL("sa_restart: SIGALRM handler ran %d times, want 1", (int)nalrm);
        notify_fd = -1;
        close(note[1]); close(data[0]);
        reap(p, "sa_restart");
        ok("sa_restart");
    }

    /* eintr */
    {
        int pp[2];
        if (pipe(pp)) FAIL("pipe: %s", strerror(errno));
        nalrm = 0;
        handle(SIGALRM, on_alrm, 0);
        arm_alarm_ms(100);
        char c;
        errno = 0;
        ssize_t n = read(pp[0], &c, 1);
        int e = errno;
        if (n != -1 || e != EINTR) FAIL("eintr: read returned %zd errno %d (%s), want -1 EINTR", n, e, strerror(e));
        if (nalrm != 1) FAIL("eintr: SIGALRM handler ran %d times, want 1", (int)nalrm);
        close(pp[0]); close(pp[1]);
        handle(SIGALRM, SIG_DFL, 0);
        ok("eintr");
    }

    /* sigqueue */
    {
        handle_info(SIGRTMIN, on_q);
        union sigval v = {.sival_int = 4242};
        if (sigqueue(getpid(), SIGRTMIN, v)) FAIL("sigqueue: %s", strerror(errno));
        if (qval != 4242 || qcode != SI_QUEUE || qpid != getpid())
            FAIL("sigqueue: si_value %d si_code %d si_pid %d, want 4242 %d %d", (int)qval, (int)qcode, (int)qpid, SI_QUEUE, (int)getpid());
        ok("sigqueue");
    }

    /* raise */
    handle(SIGUSR2, on_usr2, 0);
    if (raise(SIGUSR2)) FAIL("raise: %s", strerror(errno));
    if (nusr2 != 1) FAIL("raise: handler ran %d times, want 1", (int)nusr2);
    ok("raise");

    /* sigpending */
    {
        sigset_t s, old, pend;
        handle(SIGUSR1, on_usr1, 0);
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        if (sigprocmask(SIG_BLOCK, &s, &old)) FAIL("sigprocmask: %s", strerror(errno));
        raise(SIGUSR1);
        if (nusr1 != 0) FAIL("sigpending: blocked SIGUSR1 handler ran");
        if (sigpending(&pend) || !sigismember(&pend, SIGUSR1)) FAIL("sigpending: SIGUSR1 not pending");
        if (sigprocmask(SIG_SETMASK, &old, NULL)) FAIL("sigprocmask: %s", strerror(errno));
        if (nusr1 != 1) FAIL("sigpending: after unblock handler ran %d times, want 1", (int)nusr1);
        if (sigpending(&pend) || sigismember(&pend, SIGUSR1)) FAIL("sigpending: SIGUSR1 still pending");
        ok("sigpending");
    }

    /* rt_queue */
    {
        int sig = SIGRTMIN + 1;
        sigset_t s, old;
        handle_info(sig, on_rt);
        sigemptyset(&s);
        sigaddset(&s, sig);
        sigprocmask(SIG_BLOCK, &s, &old);
        for (int i = 1; i <= 3; i++) {
            union sigval v = {.sival_int = i};
            if (sigqueue(getpid(), sig, v)) FAIL("rt_queue: sigqueue: %s", strerror(errno));
        }
        if (nrt != 0) FAIL("rt_queue: delivered while blocked");
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (nrt != 3 || rtvals[0] != 1 || rtvals[1] != 2 || rtvals[2] != 3)
            FAIL("rt_queue: %d deliveries, values %d %d %d; want 3: 1 2 3", (int)nrt, (int)rtvals[0], (int)rtvals[1], (int)rtvals[2]);
        ok("rt_queue");
    }
    return 0;
}
