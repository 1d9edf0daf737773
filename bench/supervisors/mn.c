/* mn.c - variants of mini_notify.c (same filter, same handling) for issue 10 experiments.
 *   usage: mn -v VARIANT [-t N] COMMAND ARGS...
 *   A  one receiver, sync flag (= mini_notify)
 *   N  one receiver, no sync flag (= mini_notify -n)
 *   B  N receivers blocking in NOTIF_RECV, unpinned, sync
 *   C  N receivers, each epoll_wait on its own epoll fd (listener EPOLLIN|EPOLLEXCLUSIVE), then RECV; sync
 *   F  N receivers each pinned to CPU i%ncpu, RECV, sync
 *   D  one receiver; poll(0) before RECV; if a notification was already pending (backlog: caller ran
 *      on another CPU while we were busy) answer it with the sync flag cleared for that SEND only
 *   G  N receivers (RECV, sync); per-pid "CPU we last woke it on"; if the receiver runs on another
 *      CPU than the caller's, answer with the sync flag cleared for that SEND only
 *   E  N receivers (RECV); adaptive: sync flag on while notifications do not overlap; cleared for
 *      HOLD µs after a receiver finds another receiver busy (two tracees active)
 *   L  leader/follower: at most one receiver sleeps in RECV; when it gets a notification it hands the
 *      RECV role to an idle follower (futex) if another notification is pending (poll), else keeps it
 *   MN_STATS=1 prints counters at exit. */
#include "common.h"
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <linux/futex.h>
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif
static const struct { int nr, argi; } ptab[] = {
    {SYS_open,0},{SYS_openat,1},{SYS_stat,0},{SYS_lstat,0},{SYS_newfstatat,1},{SYS_statx,1},{SYS_access,0},
    {SYS_faccessat,1},{439,1},{SYS_readlink,0},{SYS_readlinkat,1},{SYS_chdir,0},{SYS_unlink,0},{SYS_unlinkat,1},
    {SYS_mkdir,0},{SYS_mkdirat,1},{SYS_rename,0},{SYS_renameat2,1},{SYS_execve,0},{SYS_execveat,1},{SYS_truncate,0},
};
#define NP (int)(sizeof ptab / sizeof ptab[0])
static struct sock_filter f[64];
static int build(void) {
    int n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD|BPF_W|BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET|BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD|BPF_W|BPF_ABS, offsetof(struct seccomp_data, nr));
    for (int i = 0; i < NP; i++) f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, ptab[i].nr, NP - i, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET|BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET|BPF_K, SECCOMP_RET_USER_NOTIF);
    return n;
}
static void send_fd(int sock, int fd) {
    char c = 0, buf[CMSG_SPACE(sizeof(int))]; struct iovec io = { &c, 1 };
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    if (sendmsg(sock, &m, 0) != 1) DIE("sendmsg");
}
static int recv_fd(int sock) {
    char c, buf[CMSG_SPACE(sizeof(int))]; struct iovec io = { &c, 1 };
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf };
    if (recvmsg(sock, &m, 0) != 1) return -1;
    int fd; memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd); return fd;
}

static int lfd, nthr = 1, ncpu; static char variant = 'A';
static long hold_ns = 1000000, spin_ns = 200000, gap_ns = 2000, take_ns = 20000; static int idle_pol = 1;
static atomic_long st_notes, st_async, st_offcpu, st_handoff, st_busy;
static atomic_int busy;            /* receivers currently handling a notification */
static atomic_int sync_on = 1;     /* E: current state of the flag */
static atomic_long last_overlap;   /* E: time of the last overlap */
static pthread_mutex_t flag_mu = PTHREAD_MUTEX_INITIALIZER;
static int async_sends;            /* count of in-flight non-sync SENDs (under flag_mu) */

static void set_sync(int on) { if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, on ? SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP : 0, 0)) perror("set_flags"); }

/* per-pid last CPU (G): tiny open-addressing table, racy but only a hint */
#define PT 4096
static _Atomic int pt_pid[PT]; static _Atomic int pt_cpu[PT];
static int pt_get(int pid) { unsigned h = (unsigned)pid * 2654435761u % PT;
    for (int i = 0; i < 16; i++, h = (h + 1) % PT) { int p = pt_pid[h]; if (p == pid) return pt_cpu[h]; if (!p) return -1; } return -1; }
static void pt_set(int pid, int cpu) { unsigned h = (unsigned)pid * 2654435761u % PT;
    for (int i = 0; i < 16; i++, h = (h + 1) % PT) { int p = pt_pid[h];
        if (p == pid) { pt_cpu[h] = cpu; return; }
        if (!p) { int z = 0; if (atomic_compare_exchange_strong(&pt_pid[h], &z, pid) || z == pid) { pt_cpu[h] = cpu; return; } } } }

/* send the answer; async=1: clear the sync flag around this SEND so the caller is woken by the
 * scheduler's normal placement (its previous CPU if idle) rather than on our CPU */
static void answer(struct seccomp_notif_resp *resp, int async) {
    if (!async) { ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, resp); return; }
    st_async++;
    pthread_mutex_lock(&flag_mu); if (async_sends++ == 0) set_sync(0); pthread_mutex_unlock(&flag_mu);
    ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    pthread_mutex_lock(&flag_mu); if (--async_sends == 0) set_sync(1); pthread_mutex_unlock(&flag_mu);
}

/* returns 0 after an ADDFD answer (already answered), 1 if resp must be sent */
static int handle(struct seccomp_notif *req, struct seccomp_notif_resp *resp) {
    st_notes++;
    memset(resp, 0, sizeof *resp); resp->id = req->id; resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    int argi = -1;
    for (int i = 0; i < NP; i++) if ((int)req->data.nr == ptab[i].nr) argi = ptab[i].argi;
    int is_open = req->data.nr == SYS_open || req->data.nr == SYS_openat;
    if (argi >= 0 && is_open) {
        char path[256]; uint64_t p = req->data.args[argi];
        size_t len = 4096 - (p & 4095); if (len > sizeof path) len = sizeof path;
        struct iovec l = { path, len }, r = { (void *)p, len };
        ssize_t got = process_vm_readv(req->pid, &l, 1, &r, 1, 0);
        if (got > 0 && memchr(path, 0, got) && !strcmp(path, "/etc/passwd")) {
            int flags = (int)req->data.args[argi + 1];
            int fd = open("/etc/hostname", flags & ~O_CLOEXEC, (mode_t)req->data.args[argi + 2]);
            if (fd < 0) { resp->flags = 0; resp->error = -errno; }
            else {
                struct seccomp_notif_addfd add = { .id = req->id, .flags = SECCOMP_ADDFD_FLAG_SEND,
                                                   .srcfd = (unsigned)fd, .newfd_flags = flags & O_CLOEXEC };
                ioctl(lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
                close(fd); return 0;
            }
        }
    }
    return 1;
}
static int do_recv(struct seccomp_notif *req) {
    for (;;) {
        memset(req, 0, sizeof *req);
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req) == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == ENOENT) {   /* raced with another receiver or the caller died; stop only when no user is left */
            struct pollfd pf = { lfd, POLLIN, 0 };
            if (poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP)) return -1;
            continue;
        }
        return -1;
    }
}
static int pending(void) { struct pollfd pf = { lfd, POLLIN, 0 }; return poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN); }

/* L: leader/follower */
static atomic_int leader_free = 1;   /* 1 = nobody holds the RECV role */
static atomic_int lf_word, lf_waiters, nspin, nparked, park_word;
static void fwait(atomic_int *w, int v) { syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0); }
static void fwake(atomic_int *w) { syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static pid_t root;
static void finish(void) {   /* first receiver to see the end: reap the root and exit the whole process */
    int st, rc = 0;
    if (waitpid(root, &st, 0) == root) rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (getenv("MN_STATS")) fprintf(stderr, "mn %c/%d: %ld notes, %ld async sends, %ld off-cpu, %ld handoffs, %ld overlaps\n",
                                    variant, nthr, (long)st_notes, (long)st_async, (long)st_offcpu, (long)st_handoff, (long)st_busy);
    exit(rc);
}
static void *worker(void *arg) {
    long idx = (long)arg;
    struct seccomp_notif req; struct seccomp_notif_resp resp;
    if (variant == 'I') { struct sched_param sp = { 0 }; sched_setscheduler(0, SCHED_IDLE, &sp); }
    if ((variant == 'J') && idle_pol == 1) { struct sched_param sp = { 0 }; if (sched_setscheduler(0, SCHED_IDLE, &sp)) perror("sched_idle"); }
    if ((variant == 'H') && idle_pol == 1) { struct sched_param sp = { 0 }; if (sched_setscheduler(0, SCHED_IDLE, &sp)) perror("sched_idle"); }
    if ((variant == 'H') && idle_pol == 2) { if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19)) perror("nice"); }
    if (variant == 'S' || variant == 'T' || variant == 'P') {
        cpu_set_t cs; CPU_ZERO(&cs); CPU_SET(idx % ncpu, &cs); if (sched_setaffinity(0, sizeof cs, &cs)) perror("affinity");
        if (idle_pol) { struct sched_param sp = { 0 }; if (sched_setscheduler(0, SCHED_IDLE, &sp)) perror("sched_idle"); }
    }
    if (variant == 'F') { cpu_set_t s; CPU_ZERO(&s); CPU_SET(idx % ncpu, &s); if (sched_setaffinity(0, sizeof s, &s)) perror("affinity"); }
    int ep = -1; long p_last = (long)now_ns(); int p_local = 0;
    if (variant == 'C') {
        ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = lfd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev)) DIE("epoll_ctl");
    }
    for (;;) {
        int async = 0;
        if (variant == 'C') {
            struct epoll_event ev;
            int n = epoll_wait(ep, &ev, 1, -1);
            if (n < 0) { if (errno == EINTR) continue; break; }
            if (ev.events & EPOLLHUP) break;
            if (!(ev.events & EPOLLIN)) continue;
            /* RECV blocks if another receiver took it; acceptable: it is then a plain RECV waiter */
            if (do_recv(&req)) break;
        } else if (variant == 'S' || variant == 'T') {
            /* spin on poll(0) for up to spin_ns after the last notification, then block in RECV */
            long t0 = (long)now_ns(); int got = 0;
            while ((long)now_ns() - t0 < spin_ns) {
                struct pollfd pf = { lfd, POLLIN, 0 };
                if (poll(&pf, 1, 0) == 1) { if (pf.revents & POLLIN) { got = 1; break; } if (pf.revents & POLLHUP) goto out; }
                if (!idle_pol) sched_yield();
            }
            (void)got;
            if (do_recv(&req)) break;
            if (variant == 'T') {   /* G rule: answer async if the caller was last woken on another CPU */
                int me = sched_getcpu(), last = pt_get(req.pid);
                if (last >= 0 && last != me) { async = 1; st_offcpu++; } else pt_set(req.pid, me);
            }
        } else if (variant == 'P') {
            /* per-CPU SCHED_IDLE spinner that only takes notifications raised on its own CPU: it takes
             * what is pending right after it was preempted (its CPU's task just blocked: a trap), or
             * anything pending for longer than take_ns (nobody else took it) */
            /* spin without syscalls (only the clock, vDSO); poll the listener only after being off the
             * CPU (a local task ran and blocked: likely a trap) or every 50 µs for stragglers */
            long pend_since = 0, last = p_last, last_poll = 0; int first = p_local; p_local = 0;
            for (;;) {
                long t = (long)now_ns();
                int gap = t - last > gap_ns || first; first = 0;
                last = t;
                if (!gap && t - last_poll < 50000) { __builtin_ia32_pause(); continue; }
                struct pollfd pf = { lfd, POLLIN, 0 };
                int r = poll(&pf, 1, 0);
                last = last_poll = (long)now_ns();
                if (r == 1 && (pf.revents & POLLHUP) && !(pf.revents & POLLIN)) goto out;
                if (r == 1 && (pf.revents & POLLIN)) {
                    if (gap) { p_local = 1; break; }
                    if (!pend_since) pend_since = t; else if (t - pend_since > take_ns) { st_handoff++; break; }
                } else pend_since = 0;
            }
            p_last = last;
            if (do_recv(&req)) break;
            int me = sched_getcpu(), lastc = pt_get(req.pid);
            if (lastc >= 0 && lastc != me) { async = 1; st_offcpu++; } else pt_set(req.pid, me);
        } else if (variant == 'H') {
            /* at most one receiver sleeps in RECV (no herd: the sync wake brings exactly it to the
             * caller's CPU); the others wait for the role by yielding, not by a futex (no cross-CPU wake) */
            for (;;) { int one = 1; if (atomic_compare_exchange_strong(&leader_free, &one, 0)) break; sched_yield(); }
            int r = do_recv(&req);
            leader_free = 1;
            if (r) break;
        } else if (variant == 'I') {
            /* H, but the role holder runs SCHED_OTHER (no starvation behind other work); followers SCHED_IDLE */
            for (;;) { int one = 1; if (atomic_compare_exchange_strong(&leader_free, &one, 0)) break; sched_yield(); }
            struct sched_param sp = { 0 };
            sched_setscheduler(0, SCHED_OTHER, &sp);
            int r = do_recv(&req);
            leader_free = 1;
            if (r) break;
            if (handle(&req, &resp)) answer(&resp, 0);
            sched_setscheduler(0, SCHED_IDLE, &sp);
            continue;
        } else if (variant == 'J') {
            /* H with a bounded spin: a follower yields for at most spin_ns, then parks on a futex; the
             * receiver that takes a notification wakes a parked follower only if none is spinning */
            for (;;) {
                long t0 = (long)now_ns(); int got = 0;
                atomic_fetch_add(&nspin, 1);
                while ((long)now_ns() - t0 < spin_ns) {
                    int one = 1; if (atomic_compare_exchange_strong(&leader_free, &one, 0)) { got = 1; break; }
                    sched_yield();
                }
                atomic_fetch_sub(&nspin, 1);
                if (got) break;
                int w = park_word; atomic_fetch_add(&nparked, 1);
                if (!leader_free) fwait(&park_word, w);
                atomic_fetch_sub(&nparked, 1);
            }
            int r = do_recv(&req);
            leader_free = 1;
            if (nspin == 0 && nparked > 0) { park_word++; fwake(&park_word); st_handoff++; }
            if (r) break;
        } else if (variant == 'D') {
            async = pending();
            if (do_recv(&req)) break;
        } else if (variant == 'L') {
            /* acquire the RECV role (only one thread sleeps in RECV: no herd) */
            for (;;) {
                int one = 1;
                if (atomic_compare_exchange_strong(&leader_free, &one, 0)) break;
                int w = lf_word; if (leader_free) continue;
                lf_waiters++; fwait(&lf_word, w); lf_waiters--;
            }
            int r = do_recv(&req);
            leader_free = 1; lf_word++;
            if (lf_waiters) { st_handoff++; fwake(&lf_word); }   /* a follower takes over RECV at once */
            if (r) { lf_word++; syscall(SYS_futex, &lf_word, FUTEX_WAKE_PRIVATE, 64, NULL, NULL, 0); break; }
        } else {
            if (do_recv(&req)) break;
        }
        if (variant == 'G') {
            int me = sched_getcpu(), last = pt_get(req.pid);
            if (last >= 0 && last != me) { async = 1; st_offcpu++; }
            else pt_set(req.pid, me);
        }
        if (variant == 'E') {
            int b = atomic_fetch_add(&busy, 1);
            long t = (long)now_ns();
            if (b > 0) { st_busy++; last_overlap = t; if (sync_on) { sync_on = 0; set_sync(0); } }
            else if (!sync_on && t - last_overlap > hold_ns) { sync_on = 1; set_sync(1); }
        }
        if (variant == 'P') p_last = (long)now_ns();
        if (handle(&req, &resp)) answer(&resp, async);
        if (variant == 'E') atomic_fetch_sub(&busy, 1);
    }
out:
    finish();
    return NULL;
}

int main(int argc, char **argv) {
    int a = 1;
    while (a < argc && argv[a][0] == '-') {
        if (!strcmp(argv[a], "-v") && a + 1 < argc) { variant = argv[a + 1][0]; a += 2; }
        else if (!strcmp(argv[a], "-t") && a + 1 < argc) { nthr = atoi(argv[a + 1]); a += 2; }
        else if (!strcmp(argv[a], "-h") && a + 1 < argc) { hold_ns = atol(argv[a + 1]) * 1000; a += 2; }
        else if (!strcmp(argv[a], "-s") && a + 1 < argc) { spin_ns = atol(argv[a + 1]) * 1000; a += 2; }
        else if (!strcmp(argv[a], "-o")) { idle_pol = 0; a++; }
        else if (!strcmp(argv[a], "-i")) { idle_pol = 2; a++; }
        else if (!strcmp(argv[a], "-g") && a + 1 < argc) { gap_ns = atol(argv[a + 1]); a += 2; }
        else if (!strcmp(argv[a], "-k") && a + 1 < argc) { take_ns = atol(argv[a + 1]) * 1000; a += 2; }
        else break;
    }
    if (a >= argc) { fprintf(stderr, "usage: mn -v A|N|B|C|F|D|G|E|L [-t N] [-h HOLD_US] COMMAND ARGS...\n"); return 2; }
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (variant == 'A' || variant == 'N' || variant == 'D') nthr = 1;
    struct sock_fprog prog = { .len = (unsigned short)build(), .filter = f };
    int sv[2]; if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) DIE("socketpair");
    root = fork();
    if (root == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) DIE("nnp");
        int l = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        if (l < 0) DIE("seccomp");
        send_fd(sv[0], l); close(l);
        execvp(argv[a], argv + a); DIE("exec");
    }
    lfd = recv_fd(sv[1]); close(sv[0]); close(sv[1]);
    if (lfd < 0) DIE("recv listener");
    if (variant != 'N') set_sync(1);
    pthread_t th[64];
    for (long i = 1; i < nthr && i < 64; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    worker((void *)0);
    return 0;
}
