/*
 * guard.c - fault containment for module callbacks.
 *
 * vurs calls every module callback through vurs_guard_call(): the callback runs with a
 * sigsetjmp point in this frame; a SIGSEGV, SIGBUS, SIGFPE or SIGILL raised by the kernel
 * while the calling thread is inside such a call jumps back here and the call reports the
 * signal instead of killing the session. A fault anywhere else (vurs itself) gets the
 * default action back and is raised again: a crash of vurs stays a crash.
 *
 * Both the sigsetjmp and the call of the module's function pointer are in C, so the jump
 * never crosses a Rust frame. Rust code that a module calls back into (the services
 * table) pauses the guard while it runs (vurs_guard_pause / vurs_guard_resume) and copies
 * through module pointers with vurs_guard_copy / vurs_guard_strnlen, which have guard
 * points of their own.
 *
 * The handler runs on an alternate signal stack (a module that overflows its stack must
 * still be caught), set up once per thread on its first guarded call and kept for the
 * thread's life (vurs's threads live as long as the session).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include "vurs_module.h"

/* Which callback vurs_guard_call invokes (mirrors GuardKind in core/src/module/guard.rs). */
enum vurs_guard_kind {
    VG_INIT = 0, VG_FINI, VG_MOUNT, VG_UMOUNT, VG_REDIRECT, VG_OPEN, VG_STAT, VG_READLINK,
    VG_PREAD, VG_PWRITE, VG_FSTAT, VG_READDIR, VG_CLOSE, VG_SYSCALL,
    /* ABI 1.1 */
    VG_MKDIR, VG_RMDIR, VG_UNLINK, VG_RENAME, VG_LINK, VG_SYMLINK, VG_MKNOD, VG_CHMOD,
    VG_CHOWN, VG_TRUNCATE, VG_UTIMENS, VG_STATFS, VG_FSYNC, VG_GETXATTR, VG_SETXATTR,
    VG_LISTXATTR, VG_REMOVEXATTR, VG_ACCESS, VG_PROC_FORK, VG_PROC_EXEC, VG_PROC_EXIT,
    VG_SYSCALL_EXIT, VG_CLOCK, VG_LIST,
};

/* One callback invocation: the function pointer, its arguments as machine words (in the
 * callback's order), and its result. */
struct vurs_guard_call {
    uint32_t kind;
    const void *fn;
    uint64_t a[8]; /* setxattr has the most: 8 */
    int64_t ret;
    void *ret_ptr;
};

#define ALTSTACK_SIZE (64 * 1024)

/* The guard point of the innermost guarded region of this thread, NULL outside one. */
static __thread sigjmp_buf *volatile guard_point;
static __thread volatile int guard_signal;
static __thread int altstack_ready;
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;
static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
#define NFAULT (sizeof fault_signals / sizeof fault_signals[0])

static void on_fault(int sig, siginfo_t *si, void *uctx) {
    (void)uctx;
    sigjmp_buf *point = guard_point;
    /* si_code > 0: raised by the kernel for this thread's own instruction (kill() and
     * tgkill() give SI_USER / SI_TKILL <= 0, and are not module faults). */
    if (point && si->si_code > 0) {
        guard_point = NULL;
        guard_signal = sig;
        siglongjmp(*point, 1);
    }
    /* Not a module's fault: the default action (core dump), as if no handler existed. */
    signal(sig, SIG_DFL);
    raise(sig); /* pending until the handler returns; a real fault also recurs then */
}

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NFAULT; i++)
        sigaction(fault_signals[i], &sa, NULL);
}

/* Handlers (process-wide, once) and this thread's alternate stack. */
static void prepare_thread(void) {
    pthread_once(&handlers_once, install_handlers);
    if (altstack_ready)
        return;
    altstack_ready = 1;
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
        return; /* this thread has one already */
    void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return; /* faults still caught, except a stack overflow */
    stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    sigaltstack(&ss, NULL);
}

/* After a jump out of the handler the fault signal is still blocked (sigsetjmp(…, 0)
 * saves no mask: a mask save would cost a system call on every module call). */
static void unblock_fault_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < NFAULT; i++)
        sigaddset(&set, fault_signals[i]);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void invoke(struct vurs_guard_call *c) {
    const uint64_t *a = c->a;
#define P(i) ((void *)(uintptr_t)a[i])
    switch (c->kind) {
    case VG_INIT:
        c->ret_ptr = ((void *(*)(const struct vurs_services *, const char *, char *, size_t))c->fn)(
            P(0), P(1), P(2), (size_t)a[3]);
        break;
    case VG_FINI:
        ((void (*)(void *))c->fn)(P(0));
        break;
    case VG_MOUNT:
        c->ret = ((int (*)(void *, const char *, const char *, const char *, void **, char *, size_t))c->fn)(
            P(0), P(1), P(2), P(3), P(4), P(5), (size_t)a[6]);
        break;
    case VG_UMOUNT:
    case VG_CLOSE:
        ((void (*)(void *, void *))c->fn)(P(0), P(1));
        break;
    case VG_REDIRECT:
        c->ret = ((int (*)(void *, void *, const char *, uint32_t, char *, size_t))c->fn)(
            P(0), P(1), P(2), (uint32_t)a[3], P(4), (size_t)a[5]);
        break;
    case VG_OPEN:
        c->ret = ((int (*)(void *, void *, const char *, int32_t, uint32_t, void **))c->fn)(
            P(0), P(1), P(2), (int32_t)a[3], (uint32_t)a[4], P(5));
        break;
    case VG_STAT:
        c->ret = ((int (*)(void *, void *, const char *, struct vurs_stat *))c->fn)(P(0), P(1), P(2), P(3));
        break;
    case VG_READLINK:
        c->ret = ((int64_t (*)(void *, void *, const char *, char *, size_t))c->fn)(
            P(0), P(1), P(2), P(3), (size_t)a[4]);
        break;
    case VG_PREAD:
        c->ret = ((int64_t (*)(void *, void *, void *, size_t, int64_t))c->fn)(
            P(0), P(1), P(2), (size_t)a[3], (int64_t)a[4]);
        break;
    case VG_PWRITE:
        c->ret = ((int64_t (*)(void *, void *, const void *, size_t, int64_t))c->fn)(
            P(0), P(1), P(2), (size_t)a[3], (int64_t)a[4]);
        break;
    case VG_FSTAT:
        c->ret = ((int (*)(void *, void *, struct vurs_stat *))c->fn)(P(0), P(1), P(2));
        break;
    case VG_READDIR:
        c->ret = ((int (*)(void *, void *, uint64_t, struct vurs_dirent *))c->fn)(P(0), P(1), a[2], P(3));
        break;
    case VG_SYSCALL:
        c->ret = ((int (*)(void *, const struct vurs_call *, struct vurs_result *))c->fn)(P(0), P(1), P(2));
        break;
    case VG_MKDIR:
        c->ret = ((int (*)(void *, void *, const char *, uint32_t))c->fn)(P(0), P(1), P(2), (uint32_t)a[3]);
        break;
    case VG_RMDIR:
    case VG_UNLINK:
        c->ret = ((int (*)(void *, void *, const char *))c->fn)(P(0), P(1), P(2));
        break;
    case VG_RENAME:
        c->ret = ((int (*)(void *, void *, const char *, const char *, uint32_t))c->fn)(
            P(0), P(1), P(2), P(3), (uint32_t)a[4]);
        break;
    case VG_LINK:
    case VG_SYMLINK:
        c->ret = ((int (*)(void *, void *, const char *, const char *))c->fn)(P(0), P(1), P(2), P(3));
        break;
    case VG_MKNOD:
        c->ret = ((int (*)(void *, void *, const char *, uint32_t, uint64_t))c->fn)(
            P(0), P(1), P(2), (uint32_t)a[3], a[4]);
        break;
    case VG_CHMOD:
        c->ret = ((int (*)(void *, void *, const char *, void *, uint32_t))c->fn)(
            P(0), P(1), P(2), P(3), (uint32_t)a[4]);
        break;
    case VG_CHOWN:
        c->ret = ((int (*)(void *, void *, const char *, void *, uint32_t, uint32_t))c->fn)(
            P(0), P(1), P(2), P(3), (uint32_t)a[4], (uint32_t)a[5]);
        break;
    case VG_TRUNCATE:
        c->ret = ((int (*)(void *, void *, const char *, void *, int64_t))c->fn)(
            P(0), P(1), P(2), P(3), (int64_t)a[4]);
        break;
    case VG_UTIMENS:
        c->ret = ((int (*)(void *, void *, const char *, void *, const struct vurs_timespec *))c->fn)(
            P(0), P(1), P(2), P(3), P(4));
        break;
    case VG_STATFS:
        c->ret = ((int (*)(void *, void *, const char *, struct vurs_statfs *))c->fn)(P(0), P(1), P(2), P(3));
        break;
    case VG_FSYNC:
        c->ret = ((int (*)(void *, void *, int32_t))c->fn)(P(0), P(1), (int32_t)a[2]);
        break;
    case VG_GETXATTR:
        c->ret = ((int64_t (*)(void *, void *, const char *, void *, const char *, void *, size_t))c->fn)(
            P(0), P(1), P(2), P(3), P(4), P(5), (size_t)a[6]);
        break;
    case VG_SETXATTR:
        c->ret = ((int (*)(void *, void *, const char *, void *, const char *, const void *, size_t, int32_t))
                      c->fn)(P(0), P(1), P(2), P(3), P(4), P(5), (size_t)a[6], (int32_t)a[7]);
        break;
    case VG_LISTXATTR:
        c->ret = ((int64_t (*)(void *, void *, const char *, void *, char *, size_t))c->fn)(
            P(0), P(1), P(2), P(3), P(4), (size_t)a[5]);
        break;
    case VG_REMOVEXATTR:
        c->ret = ((int (*)(void *, void *, const char *, void *, const char *))c->fn)(P(0), P(1), P(2), P(3), P(4));
        break;
    case VG_ACCESS:
        c->ret = ((int (*)(void *, void *, const char *, int32_t))c->fn)(P(0), P(1), P(2), (int32_t)a[3]);
        break;
    case VG_PROC_FORK:
        ((void (*)(void *, int32_t, int32_t))c->fn)(P(0), (int32_t)a[1], (int32_t)a[2]);
        break;
    case VG_PROC_EXEC:
    case VG_PROC_EXIT:
        ((void (*)(void *, int32_t))c->fn)(P(0), (int32_t)a[1]);
        break;
    case VG_SYSCALL_EXIT:
        ((void (*)(void *, const struct vurs_call *, int64_t *))c->fn)(P(0), P(1), P(2));
        break;
    case VG_CLOCK:
        c->ret = ((int (*)(void *, int32_t, struct vurs_timespec *))c->fn)(P(0), (int32_t)a[1], P(2));
        break;
    case VG_LIST:
        c->ret = ((int (*)(void *, void *, const char *, uint64_t, struct vurs_dirent *))c->fn)(
            P(0), P(1), P(2), a[3], P(4));
        break;
    default:
        c->ret = -ENOSYS;
        break;
    }
#undef P
}

/* Call the callback described by `c`. Returns 0 when it returned (its result is in
 * c->ret / c->ret_ptr), or the number of the signal that ended it. */
int vurs_guard_call(struct vurs_guard_call *c) {
    sigjmp_buf point;
    sigjmp_buf *volatile outer = guard_point;
    prepare_thread();
    if (sigsetjmp(point, 0)) {
        guard_point = outer;
        unblock_fault_signals();
        return guard_signal;
    }
    guard_point = &point;
    invoke(c);
    guard_point = outer;
    return 0;
}

/* Leave the guarded region while vurs's own (Rust) code runs inside a callback (a
 * service call): a fault there is vurs's, and the jump must not cross Rust frames.
 * Returns the token to give back to vurs_guard_resume. */
void *vurs_guard_pause(void) {
    sigjmp_buf *point = guard_point;
    guard_point = NULL;
    return point;
}

void vurs_guard_resume(void *token) {
    guard_point = token;
}

/* memcpy through pointers a module gave: 0, or -EFAULT if one of them faults. */
int vurs_guard_copy(void *dst, const void *src, size_t n) {
    sigjmp_buf point;
    sigjmp_buf *volatile outer = guard_point;
    prepare_thread();
    if (sigsetjmp(point, 0)) {
        guard_point = outer;
        unblock_fault_signals();
        return -EFAULT;
    }
    guard_point = &point;
    memcpy(dst, src, n);
    guard_point = outer;
    return 0;
}

/* strnlen of a string a module gave: its length (at most max), or -EFAULT. */
int64_t vurs_guard_strnlen(const char *s, size_t max) {
    sigjmp_buf point;
    sigjmp_buf *volatile outer = guard_point;
    volatile int64_t n = 0;
    prepare_thread();
    if (sigsetjmp(point, 0)) {
        guard_point = outer;
        unblock_fault_signals();
        return -EFAULT;
    }
    guard_point = &point;
    n = (int64_t)strnlen(s, max);
    guard_point = outer;
    return n;
}
