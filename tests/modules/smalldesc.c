/* smalldesc: a module whose descriptor claims fewer bytes than ABI 1.0 has (a corrupt or
 * hand-made descriptor); vurs must refuse it with one line, not read past it. */
#include "vurs_module.h"

static void *init(const struct vurs_services *svc, const char *options, char *err, size_t errlen) {
    (void)svc; (void)options; (void)err; (void)errlen;
    return (void *)1;
}

const struct vurs_module vurs_module_v1 = {
    .abi_major = VURS_ABI_MAJOR, .abi_minor = VURS_ABI_MINOR, .size = 16, .name = "smalldesc",
    .description = "descriptor with a too-small size", .init = init,
};
