/* allops: a serving module in C that implements every callback of ABI 1.1 by passing each
 * one to a host directory (the mount's source), so that tests can run real programs on
 * a served mount and compare with the same programs on a real directory. Mount it with
 * `--mount type=allops,source=HOSTDIR,target=/x[,ro]`.
 * Module options: `log=FILE`: at fini, write the lifecycle counts
 * ("fork N exec N exit N") and the last caller's uid seen by svc->caller().
 * It checks no permission itself (vurs applies the DAC rules), unless `own` is given,
 * which sets nothing but makes `access` answer from the host (for the flag test the
 * descriptor would differ: see allops_own in tests/abi11.rs). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "vurs_module.h"

struct inst { const struct vurs_services *svc; char log[PATH_MAX]; };
struct mnt { char src[PATH_MAX]; };
struct handle { int fd; DIR *dir; };

static atomic_int forks, execs, exits, callers, last_uid = -1;

static void *init(const struct vurs_services *svc, const char *options, char *err, size_t errlen) {
    struct inst *i = calloc(1, sizeof *i);
    i->svc = svc;
    if (options && !strncmp(options, "log=", 4))
        snprintf(i->log, sizeof i->log, "%s", options + 4);
    else if (options && *options) {
        snprintf(err, errlen, "allops: unknown option '%s'", options);
        free(i);
        return NULL;
    }
    if (svc->size < offsetof(struct vurs_services, set_ids) || svc->abi_minor < 1) {
        snprintf(err, errlen, "allops: needs vurs ABI 1.1");
        free(i);
        return NULL;
    }
    return i;
}
static void fini(void *inst) {
    struct inst *i = inst;
    if (i->log[0]) {
        FILE *f = fopen(i->log, "w");
        if (f) {
            fprintf(f, "fork %d exec %d exit %d callers %d uid %d\n", forks, execs, exits, callers, last_uid);
            fclose(f);
        }
    }
    free(i);
}
static int mount_(void *inst, const char *source, const char *target, const char *options, void **mnt,
                  char *err, size_t errlen) {
    (void)inst; (void)target; (void)options;
    struct stat st;
    if (!source || stat(source, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "allops: source '%s' is not a directory", source ? source : "");
        return -ENOTDIR;
    }
    struct mnt *m = calloc(1, sizeof *m);
    snprintf(m->src, sizeof m->src, "%s", source);
    *mnt = m;
    return 0;
}
static void umount_(void *inst, void *mnt) { (void)inst; free(mnt); }

/* The host path of `sub`, and a note of who asked (svc->caller()). */
static const char *host(void *inst, void *mnt, const char *sub, char *buf) {
    struct inst *i = inst;
    const struct vurs_caller *c = i->svc->caller();
    if (c) {
        callers++;
        last_uid = (int)c->fsuid;
    }
    snprintf(buf, PATH_MAX, "%s%s%s", ((struct mnt *)mnt)->src, *sub ? "/" : "", sub);
    return buf;
}
#define H(sub) char hb_[PATH_MAX]; const char *p = host(inst, mnt, sub, hb_)
#define R(x) return (x) < 0 ? -errno : 0

static void to_vurs(const struct stat *s, struct vurs_stat *st) {
    memset(st, 0, sizeof *st);
    st->dev = s->st_dev; st->ino = s->st_ino; st->mode = s->st_mode; st->nlink = (uint32_t)s->st_nlink;
    st->uid = s->st_uid; st->gid = s->st_gid; st->rdev = s->st_rdev; st->size = s->st_size;
    st->blksize = s->st_blksize; st->blocks = s->st_blocks;
    st->atime_sec = s->st_atim.tv_sec; st->atime_nsec = (uint32_t)s->st_atim.tv_nsec;
    st->mtime_sec = s->st_mtim.tv_sec; st->mtime_nsec = (uint32_t)s->st_mtim.tv_nsec;
    st->ctime_sec = s->st_ctim.tv_sec; st->ctime_nsec = (uint32_t)s->st_ctim.tv_nsec;
}

static int open_(void *inst, void *mnt, const char *sub, int32_t flags, uint32_t mode, void **handle) {
    H(sub);
    int fd = open(p, (flags & ~O_CLOEXEC) | O_CLOEXEC, mode);
    if (fd < 0) return -errno;
    struct handle *h = calloc(1, sizeof *h);
    h->fd = fd;
    *handle = h;
    return 0;
}
static int stat_(void *inst, void *mnt, const char *sub, struct vurs_stat *st) {
    H(sub);
    struct stat s;
    if (lstat(p, &s)) return -errno;
    to_vurs(&s, st);
    return 0;
}
static int64_t readlink_(void *inst, void *mnt, const char *sub, char *buf, size_t cap) {
    H(sub);
    ssize_t n = readlink(p, buf, cap);
    return n < 0 ? -errno : n;
}
static int64_t pread_(void *inst, void *handle, void *buf, size_t len, int64_t off) {
    (void)inst;
    ssize_t n = pread(((struct handle *)handle)->fd, buf, len, off);
    return n < 0 ? -errno : n;
}
static int64_t pwrite_(void *inst, void *handle, const void *buf, size_t len, int64_t off) {
    (void)inst;
    ssize_t n = pwrite(((struct handle *)handle)->fd, buf, len, off);
    return n < 0 ? -errno : n;
}
static int fstat_(void *inst, void *handle, struct vurs_stat *st) {
    (void)inst;
    struct stat s;
    if (fstat(((struct handle *)handle)->fd, &s)) return -errno;
    to_vurs(&s, st);
    return 0;
}
static int readdir_(void *inst, void *handle, uint64_t index, struct vurs_dirent *out) {
    (void)inst;
    struct handle *h = handle;
    if (!h->dir) {
        h->dir = fdopendir(dup(h->fd));
        if (!h->dir) return -errno;
    }
    rewinddir(h->dir);
    struct dirent *d = NULL;
    for (uint64_t k = 0; k <= index; k++)
        if (!(d = readdir(h->dir))) return 0;
    out->ino = d->d_ino;
    out->type = d->d_type;
    snprintf(out->name, sizeof out->name, "%s", d->d_name);
    return 1;
}
static void close_(void *inst, void *handle) {
    (void)inst;
    struct handle *h = handle;
    if (h->dir) closedir(h->dir);
    close(h->fd);
    free(h);
}

static int mkdir_(void *inst, void *mnt, const char *sub, uint32_t mode) { H(sub); R(mkdir(p, mode)); }
static int rmdir_(void *inst, void *mnt, const char *sub) { H(sub); R(rmdir(p)); }
static int unlink_(void *inst, void *mnt, const char *sub) { H(sub); R(unlink(p)); }
static int rename_(void *inst, void *mnt, const char *from, const char *to, uint32_t flags) {
    char a[PATH_MAX], b[PATH_MAX];
    host(inst, mnt, from, a);
    host(inst, mnt, to, b);
    R(syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags));
}
static int link_(void *inst, void *mnt, const char *from, const char *to) {
    char a[PATH_MAX], b[PATH_MAX];
    host(inst, mnt, from, a);
    host(inst, mnt, to, b);
    R(link(a, b));
}
static int symlink_(void *inst, void *mnt, const char *target, const char *sub) { H(sub); R(symlink(target, p)); }
static int mknod_(void *inst, void *mnt, const char *sub, uint32_t mode, uint64_t rdev) {
    H(sub);
    R(mknod(p, mode, rdev));
}
static int chmod_(void *inst, void *mnt, const char *sub, void *handle, uint32_t mode) {
    if (handle) R(fchmod(((struct handle *)handle)->fd, mode));
    H(sub);
    R(chmod(p, mode));
}
static int chown_(void *inst, void *mnt, const char *sub, void *handle, uint32_t uid, uint32_t gid) {
    if (handle) R(fchown(((struct handle *)handle)->fd, uid, gid));
    H(sub);
    R(lchown(p, uid, gid));
}
static int truncate_(void *inst, void *mnt, const char *sub, void *handle, int64_t size) {
    if (handle) R(ftruncate(((struct handle *)handle)->fd, size));
    H(sub);
    R(truncate(p, size));
}
static int utimens_(void *inst, void *mnt, const char *sub, void *handle, const struct vurs_timespec *tv) {
    struct timespec ts[2] = {{tv[0].sec, tv[0].nsec}, {tv[1].sec, tv[1].nsec}};
    if (handle) R(futimens(((struct handle *)handle)->fd, ts));
    H(sub);
    R(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW));
}
static int statfs_(void *inst, void *mnt, const char *sub, struct vurs_statfs *st) {
    H(sub);
    struct statfs s;
    if (statfs(p, &s)) return -errno;
    st->type = (uint64_t)s.f_type; st->bsize = (uint64_t)s.f_bsize; st->frsize = (uint64_t)s.f_frsize;
    st->blocks = s.f_blocks; st->bfree = s.f_bfree; st->bavail = s.f_bavail;
    st->files = s.f_files; st->ffree = s.f_ffree; st->namelen = (uint64_t)s.f_namelen;
    st->flags = (uint64_t)s.f_flags;
    return 0;
}
static int fsync_(void *inst, void *handle, int32_t datasync) {
    (void)inst;
    int fd = ((struct handle *)handle)->fd;
    R(datasync ? fdatasync(fd) : fsync(fd));
}
static int64_t getxattr_(void *inst, void *mnt, const char *sub, void *handle, const char *name, void *buf,
                         size_t cap) {
    ssize_t n;
    if (handle) n = fgetxattr(((struct handle *)handle)->fd, name, buf, cap);
    else { H(sub); n = lgetxattr(p, name, buf, cap); }
    return n < 0 ? -errno : n;
}
static int setxattr_(void *inst, void *mnt, const char *sub, void *handle, const char *name, const void *value,
                     size_t len, int32_t flags) {
    if (handle) R(fsetxattr(((struct handle *)handle)->fd, name, value, len, flags));
    H(sub);
    R(lsetxattr(p, name, value, len, flags));
}
static int64_t listxattr_(void *inst, void *mnt, const char *sub, void *handle, char *buf, size_t cap) {
    ssize_t n;
    if (handle) n = flistxattr(((struct handle *)handle)->fd, buf, cap);
    else { H(sub); n = llistxattr(p, buf, cap); }
    return n < 0 ? -errno : n;
}
static int removexattr_(void *inst, void *mnt, const char *sub, void *handle, const char *name) {
    if (handle) R(fremovexattr(((struct handle *)handle)->fd, name));
    H(sub);
    R(lremovexattr(p, name));
}
static int access_(void *inst, void *mnt, const char *sub, int32_t mask) { H(sub); R(access(p, mask)); }
static void proc_fork(void *inst, int32_t parent, int32_t child) { (void)inst; (void)parent; (void)child; forks++; }
static void proc_exec(void *inst, int32_t pid) { (void)inst; (void)pid; execs++; }
static void proc_exit(void *inst, int32_t pid) { (void)inst; (void)pid; exits++; }
static int syscall_(void *inst, const struct vurs_call *call, struct vurs_result *res) {
    (void)inst; (void)call;
    res->verdict = VURS_PASS_EXIT;
    return 0;
}
/* getppid answers 4242 + its real value (when vurs honours VURS_PASS_EXIT) */
static void syscall_exit(void *inst, const struct vurs_call *call, int64_t *retval) {
    (void)inst; (void)call;
    *retval += 4242;
}
/* not a clock: answers ENOSYS so the session's clock stays the time module's or the host's */
static int clock_(void *inst, int32_t clockid, struct vurs_timespec *ts) {
    (void)inst; (void)clockid; (void)ts;
    return -ENOSYS;
}

static const int32_t sys[] = {SYS_getppid};
#ifndef ALLOPS_FLAGS
#define ALLOPS_FLAGS 0
#endif
__attribute__((visibility("default"))) const struct vurs_module vurs_module_v1 = {
    .abi_major = VURS_ABI_MAJOR, .abi_minor = VURS_ABI_MINOR, .size = sizeof(struct vurs_module),
    .flags = VURS_F_PATH_SERVE | VURS_F_CREDS | ALLOPS_FLAGS, .name = "allops",
    .description = "every ABI 1.1 callback, passed to a host directory (tests)",
    .syscalls = sys, .nsyscalls = 1,
    .init = init, .fini = fini, .mount = mount_, .umount = umount_,
    .open = open_, .stat = stat_, .readlink = readlink_, .pread = pread_, .pwrite = pwrite_, .fstat = fstat_,
    .readdir = readdir_, .close = close_, .syscall = syscall_,
    .mkdir = mkdir_, .rmdir = rmdir_, .unlink = unlink_, .rename = rename_, .link = link_,
    .symlink = symlink_, .mknod = mknod_, .chmod = chmod_, .chown = chown_, .truncate = truncate_,
    .utimens = utimens_, .statfs = statfs_, .fsync = fsync_, .getxattr = getxattr_, .setxattr = setxattr_,
    .listxattr = listxattr_, .removexattr = removexattr_, .access = access_,
    .proc_fork = proc_fork, .proc_exec = proc_exec, .proc_exit = proc_exit, .syscall_exit = syscall_exit,
    .clock = clock_,
};
