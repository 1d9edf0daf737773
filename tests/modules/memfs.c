/* memfs: a vurs module written in C that *serves* a small read-only tree from memory,
 * used by the module-system tests. Mounted as type "memfs"; the tree:
 *   hello.txt        "hello from memfs\n"
 *   dir/             a directory
 *   dir/numbers.txt  the lines "1".."1000"
 *   link             symlink to "hello.txt"
 * Module option `block` declares nothing; the descriptor sets VURS_F_MAY_BLOCK so its
 * calls run on vurs's worker threads, and VURS_F_PATH_SERVE (compiled with
 * -DMEMFS_UNDECLARED, VURS_F_PATH_SERVE only: a module that blocks without saying so).
 * With MEMFS_HOLD=P in vurs's environment, a stat of `hold` creates the file P.in, waits
 * (up to 60 s) until a file P.go exists, 300 ms more, then answers as for hello.txt; and
 * fini creates the file P.fini. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include "vurs_module.h"

struct node { const char *path; int mode; const char *link; char *data; size_t size; };
static struct node nodes[] = {
    {"", S_IFDIR | 0755, NULL, NULL, 0},
    {"hello.txt", S_IFREG | 0644, NULL, "hello from memfs\n", 17},
    {"dir", S_IFDIR | 0755, NULL, NULL, 0},
    {"dir/numbers.txt", S_IFREG | 0644, NULL, NULL, 0},
    {"link", S_IFLNK | 0777, "hello.txt", NULL, 0},
};
#define NNODES (sizeof nodes / sizeof nodes[0])

static struct node *find(const char *sub) {
    for (size_t i = 0; i < NNODES; i++)
        if (!strcmp(nodes[i].path, sub)) return &nodes[i];
    return NULL;
}

static void *init(const struct vurs_services *svc, const char *options, char *err, size_t errlen) {
    (void)svc;
    if (options && *options && strcmp(options, "block")) {
        snprintf(err, errlen, "unknown option '%s'", options);
        return NULL;
    }
    static int ready;
    if (!ready) {
        size_t cap = 8000, n = 0;
        char *buf = malloc(cap);
        for (int i = 1; i <= 1000; i++) n += (size_t)snprintf(buf + n, cap - n, "%d\n", i);
        nodes[3].data = buf;
        nodes[3].size = n;
        ready = 1;
    }
    return (void *)1;
}
static void touch(const char *suffix) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s", getenv("MEMFS_HOLD"), suffix);
    close(open(path, O_CREAT | O_WRONLY, 0644));
}
static void fini(void *inst) {
    (void)inst;
    if (getenv("MEMFS_HOLD")) touch(".fini");
}
static int mount_(void *inst, const char *source, const char *target, const char *options, void **mnt,
                  char *err, size_t errlen) {
    (void)inst; (void)source; (void)target;
    if (options && *options && strcmp(options, "ro")) {
        snprintf(err, errlen, "memfs: unknown mount option '%s'", options);
        return -EINVAL;
    }
    *mnt = (void *)1;
    return 0;
}
static void umount_(void *inst, void *mnt) { (void)inst; (void)mnt; }

static void fill(const struct node *n, struct vurs_stat *st) {
    memset(st, 0, sizeof *st);
    st->dev = 0x4d45; st->ino = (uint64_t)(n - nodes) + 1; st->mode = (uint32_t)n->mode;
    st->nlink = S_ISDIR(n->mode) ? 2 : 1; st->size = S_ISLNK(n->mode) ? (int64_t)strlen(n->link) : (int64_t)n->size;
    st->blksize = 4096; st->blocks = (st->size + 511) / 512;
    st->mtime_sec = st->atime_sec = st->ctime_sec = 1700000000;
}
static int open_(void *inst, void *mnt, const char *sub, int32_t flags, uint32_t mode, void **handle) {
    (void)inst; (void)mnt; (void)mode;
    struct node *n = find(sub);
    if (n && S_ISLNK(n->mode) && !(flags & O_NOFOLLOW)) n = find(n->link);
    if (!n) return (flags & O_CREAT) ? -EROFS : -ENOENT;
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return S_ISDIR(n->mode) ? -EISDIR : -EROFS;
    if ((flags & O_DIRECTORY) && !S_ISDIR(n->mode)) return -ENOTDIR;
    *handle = n;
    return 0;
}
static void hold(void) {
    char go[4096];
    snprintf(go, sizeof go, "%s.go", getenv("MEMFS_HOLD"));
    touch(".in");
    struct timespec ts = {0, 10 * 1000000L}, tail = {0, 300 * 1000000L};
    for (int i = 0; i < 6000 && access(go, F_OK); i++) nanosleep(&ts, NULL);
    nanosleep(&tail, NULL);
}
static int stat_(void *inst, void *mnt, const char *sub, struct vurs_stat *st) {
    (void)inst; (void)mnt;
    if (!strcmp(sub, "hold") && getenv("MEMFS_HOLD")) {
        hold();
        sub = "hello.txt";
    }
    struct node *n = find(sub);
    if (!n) return -ENOENT;
    fill(n, st);
    return 0;
}
static int64_t readlink_(void *inst, void *mnt, const char *sub, char *buf, size_t cap) {
    (void)inst; (void)mnt;
    struct node *n = find(sub);
    if (!n) return -ENOENT;
    if (!S_ISLNK(n->mode)) return -EINVAL;
    size_t l = strlen(n->link);
    if (l > cap) l = cap;
    memcpy(buf, n->link, l);
    return (int64_t)l;
}
static int64_t pread_(void *inst, void *h, void *buf, size_t len, int64_t off) {
    (void)inst;
    struct node *n = h;
    if (S_ISDIR(n->mode)) return -EISDIR;
    if (off < 0) return -EINVAL;
    if ((size_t)off >= n->size) return 0;
    if (len > n->size - (size_t)off) len = n->size - (size_t)off;
    memcpy(buf, n->data + off, len);
    return (int64_t)len;
}
static int fstat_(void *inst, void *h, struct vurs_stat *st) { (void)inst; fill(h, st); return 0; }
static int readdir_(void *inst, void *h, uint64_t index, struct vurs_dirent *out) {
    (void)inst;
    struct node *d = h;
    if (!S_ISDIR(d->mode)) return -ENOTDIR;
    uint64_t k = 0;
    const char *names[2] = {".", ".."};
    if (index < 2) {
        memset(out, 0, sizeof *out);
        out->ino = 1; out->type = DT_DIR; strcpy(out->name, names[index]);
        return 1;
    }
    k = 2;
    size_t dl = strlen(d->path);
    for (size_t i = 1; i < NNODES; i++) {
        const char *p = nodes[i].path;
        if (dl && (strncmp(p, d->path, dl) || p[dl] != '/')) continue;
        const char *rest = dl ? p + dl + 1 : p;
        if (!*rest || strchr(rest, '/')) continue;
        if (k++ == index) {
            memset(out, 0, sizeof *out);
            out->ino = i + 1;
            out->type = S_ISDIR(nodes[i].mode) ? DT_DIR : S_ISLNK(nodes[i].mode) ? DT_LNK : DT_REG;
            snprintf(out->name, sizeof out->name, "%s", rest);
            return 1;
        }
    }
    return 0;
}
static void close_(void *inst, void *h) { (void)inst; (void)h; }

const struct vurs_module vurs_module_v1 = {
    .abi_major = VURS_ABI_MAJOR,
    .abi_minor = VURS_ABI_MINOR,
    .size = sizeof(struct vurs_module),
#ifdef MEMFS_UNDECLARED
    .flags = VURS_F_PATH_SERVE,
#else
    .flags = VURS_F_PATH_SERVE | VURS_F_MAY_BLOCK,
#endif
    .name = "memfs",
    .description = "a small read-only tree served from memory (test module)",
    .init = init, .fini = fini, .mount = mount_, .umount = umount_,
    .open = open_, .stat = stat_, .readlink = readlink_, .pread = pread_, .fstat = fstat_,
    .readdir = readdir_, .close = close_,
};
