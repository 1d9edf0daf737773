/* faulty: a vurs module that misbehaves on purpose, for the fault-containment tests
 * (tests/faults.rs). It serves sched_yield; what its handler does is chosen by options:
 *   mode=ok        return 4242 (the module works)
 *   mode=error     return -E (option errno=E, default EACCES)
 *   mode=segv      write through a NULL pointer          (SIGSEGV)
 *   mode=overflow  recurse until the stack is exhausted  (SIGSEGV on the guard page)
 *   mode=fpe       divide by zero                        (SIGFPE)
 *   mode=ill       execute an undefined instruction      (SIGILL)
 *   mode=bus       read a mapped file past its end       (SIGBUS)
 *   mode=initfail  init refuses to start, with a reason
 *   mode=initsegv  init itself crashes
 * Whatever the mode, a call whose first argument is 1 blocks for block_ms milliseconds
 * (default 3000) first; if flag=PATH is given, the file PATH is created when the module
 * starts blocking (so a test knows the call is inside the module). A call whose first
 * argument is 2 blocks for 100 ms (long enough for vurs to see a module that blocks).
 * Compile with -DFAULTY_MAY_BLOCK to set VURS_F_MAY_BLOCK (calls run on worker threads). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "vurs_module.h"

static const int32_t calls[] = {SYS_sched_yield};

struct faulty {
    char mode[32];
    int err;
    long block_ms;
    char flag[512];
};

static void opt(const char *options, const char *key, char *out, size_t cap) {
    size_t k = strlen(key);
    for (const char *p = options; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > k && !strncmp(p, key, k) && p[k] == '=') {
            size_t m = n - k - 1 < cap - 1 ? n - k - 1 : cap - 1;
            memcpy(out, p + k + 1, m);
            out[m] = 0;
        }
        p = end ? end + 1 : NULL;
    }
}

static void *init(const struct vurs_services *svc, const char *options, char *err, size_t errlen) {
    (void)svc;
    static struct faulty f;
    char num[32] = "";
    strcpy(f.mode, "ok");
    opt(options, "mode", f.mode, sizeof f.mode);
    opt(options, "errno", num, sizeof num);
    f.err = *num ? atoi(num) : EACCES;
    strcpy(num, "3000");
    opt(options, "block_ms", num, sizeof num);
    f.block_ms = atol(num);
    opt(options, "flag", f.flag, sizeof f.flag);
    if (!strcmp(f.mode, "initfail")) {
        snprintf(err, errlen, "refusing to start (mode=initfail)");
        return NULL;
    }
    if (!strcmp(f.mode, "initsegv"))
        *(volatile int *)0 = 1;
    return &f;
}

static void fini(void *inst) { (void)inst; }

static volatile int zero = 0, seven = 7;
static int recurse(int n) {
    volatile char pad[4096];
    pad[0] = (char)n;
    return recurse(n + 1) + pad[0];
}

static int bus_error(void) {
    char path[] = "/tmp/vurs-faulty-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return -errno;
    unlink(path);
    volatile char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0); /* the file is empty */
    close(fd);
    if (p == MAP_FAILED) return -errno;
    return p[0]; /* SIGBUS: no file behind the page */
}

static int syscall_(void *inst, const struct vurs_call *call, struct vurs_result *res) {
    struct faulty *f = inst;
    if (call->nr != SYS_sched_yield) return 0;
    if (call->args[0] == 1) {
        if (*f->flag) close(open(f->flag, O_CREAT | O_WRONLY, 0644));
        struct timespec ts = {f->block_ms / 1000, (f->block_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR) {}
    }
    if (call->args[0] == 2) {
        struct timespec ts = {0, 100 * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR) {}
    }
    if (!strcmp(f->mode, "error")) return -f->err;
    if (!strcmp(f->mode, "segv")) *(volatile int *)0 = 1;
    if (!strcmp(f->mode, "overflow")) return recurse(0);
    if (!strcmp(f->mode, "fpe")) return seven / zero;
    if (!strcmp(f->mode, "ill")) __builtin_trap();
    if (!strcmp(f->mode, "bus")) return bus_error();
    res->verdict = VURS_RETURN;
    res->retval = 4242;
    return 0;
}

#ifdef FAULTY_MAY_BLOCK
#define FAULTY_FLAGS VURS_F_MAY_BLOCK
#else
#define FAULTY_FLAGS 0
#endif

const struct vurs_module vurs_module_v1 = {
    .abi_major = VURS_ABI_MAJOR, .abi_minor = VURS_ABI_MINOR, .size = sizeof(struct vurs_module),
    .flags = FAULTY_FLAGS, .name = "faulty", .description = "misbehaves on purpose (fault tests)",
    .syscalls = calls, .nsyscalls = 1, .init = init, .fini = fini, .syscall = syscall_,
};
