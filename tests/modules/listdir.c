/* listdir: a redirecting module in C with the ABI 1.1 `list` callback (a merged listing,
 * as a copy-on-write module shows). The mount maps TARGET onto the host directory SOURCE;
 * the listing of TARGET itself is the module's: ".", "..", then the host entries in
 * reverse byte order and one entry "listed-only" that exists nowhere; a subdirectory
 * answers -ENOSYS, so vurs lists the host directory. Paths resolve on the host as usual.
 * Mount: `--mount type=listdir,source=HOSTDIR,target=/x`. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vurs_module.h"

struct mnt { char src[PATH_MAX]; };

static void *init(const struct vurs_services *svc, const char *options, char *err, size_t errlen) {
    (void)svc;
    if (options && *options) {
        snprintf(err, errlen, "listdir: unknown option '%s'", options);
        return NULL;
    }
    return (void *)1;
}
static void fini(void *inst) { (void)inst; }

static int mount_(void *inst, const char *source, const char *target, const char *options, void **mnt,
                  char *err, size_t errlen) {
    (void)inst; (void)target; (void)options;
    struct mnt *m = calloc(1, sizeof *m);
    if (!m || snprintf(m->src, sizeof m->src, "%s", source) >= (int)sizeof m->src) {
        snprintf(err, errlen, "listdir: source too long");
        free(m);
        return -ENAMETOOLONG;
    }
    *mnt = m;
    return 0;
}
static void umount_(void *inst, void *mnt) { (void)inst; free(mnt); }

static int redirect(void *inst, void *mnt, const char *subpath, uint32_t access, char *out, size_t outcap) {
    (void)inst; (void)access;
    struct mnt *m = mnt;
    int n = *subpath ? snprintf(out, outcap, "%s/%s", m->src, subpath) : snprintf(out, outcap, "%s", m->src);
    return n < 0 || (size_t)n >= outcap ? -ENAMETOOLONG : 0;
}

static int by_name_desc(const void *a, const void *b) { return -strcmp(*(char *const *)a, *(char *const *)b); }

static int list(void *inst, void *mnt, const char *subpath, uint64_t index, struct vurs_dirent *out) {
    (void)inst;
    struct mnt *m = mnt;
    if (*subpath) return -ENOSYS;
    /* Entries: ".", "..", the host's (reverse order), "listed-only". */
    char *names[1024];
    size_t n = 0;
    names[n++] = strdup(".");
    names[n++] = strdup("..");
    DIR *d = opendir(m->src);
    if (!d) return -errno;
    size_t host0 = n;
    for (struct dirent *e; (e = readdir(d)) && n < 1023;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names + host0, n - host0, sizeof names[0], by_name_desc);
    names[n++] = strdup("listed-only");
    int r = 0;
    if (index < n) {
        out->ino = 1000 + index;
        out->type = DT_UNKNOWN;
        snprintf(out->name, sizeof out->name, "%s", names[index]);
        r = 1;
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    return r;
}

__attribute__((visibility("default"))) const struct vurs_module vurs_module_v1 = {
    .abi_major = VURS_ABI_MAJOR, .abi_minor = VURS_ABI_MINOR, .size = sizeof(struct vurs_module),
    .flags = VURS_F_PATH_REDIRECT, .name = "listdir",
    .description = "a redirecting module with a merged listing (tests)",
    .init = init, .fini = fini, .mount = mount_, .umount = umount_, .redirect = redirect,
    .list = list,
};
