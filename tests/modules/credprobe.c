/* credprobe: a syscall-service test module. getpid(2) returns the caller's effective uid
 * as vurs hands it to modules (struct vurs_caller), so a test can check that vurs follows
 * the credential changes of the traced process. */
#include <stddef.h>
#include <sys/syscall.h>
#include "vurs_module.h"

static const int32_t calls[] = {SYS_getpid};

static void *init(const struct vurs_services *svc, const char *options, char *err, size_t errlen) {
    (void)svc; (void)options; (void)err; (void)errlen;
    return (void *)1;
}

static int syscall_(void *inst, const struct vurs_call *call, struct vurs_result *res) {
    (void)inst;
    res->verdict = VURS_RETURN;
    res->retval = (int64_t)call->caller->euid;
    return 0;
}

const struct vurs_module vurs_module_v1 = {
    .abi_major = VURS_ABI_MAJOR,
    .abi_minor = VURS_ABI_MINOR,
    .size = sizeof(struct vurs_module),
    .name = "credprobe",
    .description = "getpid returns the caller's effective uid (test module)",
    .flags = VURS_F_CREDS,
    .syscalls = calls,
    .nsyscalls = 1,
    .init = init,
    .syscall = syscall_,
};
