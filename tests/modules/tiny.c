/* tiny: the smallest useful vurs module, for the loader and ABI-version tests.
 * It serves one system call, sched_yield, which returns TINY_RET (default 4242) so a
 * test can tell that the module was loaded and its callbacks are called.
 * Compile-time knobs (gcc -D...):
 *   TINY_NAME   module name, a string literal (default "tiny")
 *   TINY_MAJOR  abi_major it claims (default VURS_ABI_MAJOR)
 *   TINY_MINOR  abi_minor it claims (default VURS_ABI_MINOR)
 *   TINY_EXTRA  export a larger descriptor, as a newer minor that appended fields would:
 *               .size covers the extra fields, which vurs must ignore
 *   TINY_RET    the value sched_yield returns */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include "vurs_module.h"

#ifndef TINY_NAME
#define TINY_NAME "tiny"
#endif
#ifndef TINY_MAJOR
#define TINY_MAJOR VURS_ABI_MAJOR
#endif
#ifndef TINY_MINOR
#define TINY_MINOR VURS_ABI_MINOR
#endif
#ifndef TINY_RET
#define TINY_RET 4242
#endif

static const int32_t calls[] = {SYS_sched_yield};

static void *init(const struct vurs_services *svc, const char *options, char *err, size_t errlen) {
    (void)svc;
    if (options && *options) {
        snprintf(err, errlen, "unknown option '%s'", options);
        return NULL;
    }
    return (void *)1;
}
static void fini(void *inst) { (void)inst; }
static int syscall_(void *inst, const struct vurs_call *call, struct vurs_result *res) {
    (void)inst;
    if (call->nr != SYS_sched_yield) return 0; /* VURS_PASS: res is zeroed */
    res->verdict = VURS_RETURN;
    res->retval = TINY_RET;
    return 0;
}

#define TINY_DESC                                                                       \
    .abi_major = TINY_MAJOR, .abi_minor = TINY_MINOR, .flags = 0, .name = TINY_NAME,    \
    .description = "tiny test module (answers sched_yield)",                             \
    .syscalls = calls, .nsyscalls = 1, .init = init, .fini = fini, .syscall = syscall_

#ifdef TINY_EXTRA
/* A descriptor from the future: fields appended after the 1.0 ones. */
struct tiny_future {
    struct vurs_module v1;
    void (*future_callback)(void);
    uint64_t future_flags;
};
static void future(void) {}
const struct tiny_future vurs_module_v1 = {
    .v1 = {TINY_DESC, .size = sizeof(struct tiny_future)},
    .future_callback = future,
    .future_flags = ~0ull,
};
#else
#ifndef TINY_SIZE /* the descriptor size it claims (a 1.0 module: offsetof(struct vurs_module, mkdir)) */
#define TINY_SIZE sizeof(struct vurs_module)
#endif
const struct vurs_module vurs_module_v1 = {TINY_DESC, .size = TINY_SIZE};
#endif
