/*
 * vurs_module.h - the vurs module ABI.  This header is the single source of truth:
 * the Rust crate `vurs-abi` mirrors it with #[repr(C)] types and a test compiles this
 * header and checks that sizes, offsets and constants agree.
 *
 * A module is a shared object that exports one symbol, VURS_MODULE_SYMBOL, of type
 * `const struct vurs_module`.  vurs reads the descriptor, checks `abi_major` (must equal
 * VURS_ABI_MAJOR) and `size` (fields beyond `size` are treated as absent), then calls
 * `init` once per load.
 *
 * Versioning (docs/abi.md): a new minor only appends fields at the end of a struct and
 * adds constants; every struct carries its own size so either side can tell which
 * fields the other one knows.  A new major is a different symbol name.
 *
 * Threading: vurs may call any callback of one instance from several threads at once,
 * unless the module sets VURS_F_SERIAL, in which case vurs serializes all calls into that
 * instance.  Callbacks must not call fork(), must not keep pointers they were given
 * beyond the call (except `svc`, which lives as long as the instance), and should
 * return quickly unless the module sets VURS_F_MAY_BLOCK (then its calls run on worker
 * threads and may block on I/O).
 *
 * Errors are returned as negative errno values (-ENOENT, ...), which is what the traced
 * program sees.
 */
#ifndef VURS_MODULE_H
#define VURS_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VURS_ABI_MAJOR 1
#define VURS_ABI_MINOR 0
#define VURS_MODULE_SYMBOL "vurs_module_v1"

/* vurs_module.flags: what a module serves and how it may be called */
#define VURS_F_PATH_REDIRECT 0x0001u /* mounts map paths to host paths (callback redirect) */
#define VURS_F_PATH_SERVE    0x0002u /* mounts are served: open/stat/... callbacks, virtual fds */
#define VURS_F_MAY_BLOCK     0x0004u /* calls may block: run them on worker threads */
#define VURS_F_SERIAL        0x0008u /* never call this instance from two threads at once */
#define VURS_F_HIDE_VDSO     0x0010u /* clock calls must trap: hide the vDSO from tracees */
#define VURS_F_SUBTREE       0x0020u /* redirect maps the mount one-to-one onto a host tree:
                                        redirect(sub) is redirect("") + "/" + sub for reads,
                                        so the kernel may resolve a plain name relative to a
                                        directory inside it without asking the module */
#define VURS_F_CREDS         0x0040u /* the module reads struct vurs_caller's credentials: keep
                                        them current (set*id calls trap; since ABI 1.1) */

/* verdict of a handler (vurs_result.verdict) */
#define VURS_PASS    0u /* let the kernel run the call unchanged */
#define VURS_RETURN  1u /* skip the call; the caller sees `retval` (value or -errno) */
#define VURS_REWRITE 2u /* let the kernel run the call with `args` changed per `args_mask` */

/* access intent of a path lookup (redirect `access` argument) */
#define VURS_ACCESS_READ   0x1u /* reads the object or its metadata */
#define VURS_ACCESS_WRITE  0x2u /* changes the object, its metadata or its directory */
#define VURS_ACCESS_EXEC   0x4u /* executes it */
#define VURS_ACCESS_CREATE 0x8u /* may create the object */

/* log levels for vurs_services.log */
#define VURS_LOG_ERROR 0
#define VURS_LOG_WARN  1
#define VURS_LOG_INFO  2
#define VURS_LOG_DEBUG 3

/* The process that made the call. In ABI 1.0 the credentials are those of vurs itself
 * (tracees run with no_new_privs, so they cannot gain others; a root session whose
 * processes drop privileges is not tracked yet). */
struct vurs_caller {
    int32_t pid;       /* thread-group id */
    int32_t tid;       /* thread id */
    uint32_t uid, euid, gid, egid;
};

/* One trapped system call, as the module sees it. */
struct vurs_call {
    uint32_t size;     /* sizeof(struct vurs_call) as vurs was built */
    int32_t nr;        /* system call number of the host architecture */
    uint64_t args[6];  /* raw arguments */
    const struct vurs_caller *caller;
    void *ctx;         /* opaque: pass to the memory services below */
};

/* What a handler decided. vurs zeroes it and sets `size` before the call. */
struct vurs_result {
    uint32_t size;
    uint32_t verdict;  /* VURS_PASS, VURS_RETURN or VURS_REWRITE */
    int64_t retval;    /* VURS_RETURN: the value the caller sees, or -errno */
    uint32_t args_mask;/* VURS_REWRITE: bit i set = args[i] replaces the caller's argument i */
    uint32_t reserved;
    uint64_t args[6];
};

/* File metadata in an architecture-neutral layout; vurs converts it to the
 * caller's struct stat or struct statx. */
struct vurs_stat {
    uint64_t dev, ino;
    uint32_t mode, nlink, uid, gid;
    uint64_t rdev;
    int64_t size, blksize, blocks;
    int64_t atime_sec, mtime_sec, ctime_sec;
    uint32_t atime_nsec, mtime_nsec, ctime_nsec, reserved;
};

/* One directory entry for readdir (d_type as in <dirent.h>). */
struct vurs_dirent {
    uint64_t ino;
    uint8_t type;
    char name[256];
};

/* Services vurs offers to a module; valid from init until fini. */
struct vurs_services {
    uint32_t size;       /* sizeof(struct vurs_services) as vurs was built */
    uint32_t abi_minor;  /* VURS_ABI_MINOR of vurs */
    /* Copy between the caller's memory and ours; return bytes copied or -EFAULT. */
    int64_t (*read_mem)(void *ctx, uint64_t addr, void *buf, size_t len);
    int64_t (*write_mem)(void *ctx, uint64_t addr, const void *buf, size_t len);
    /* Read a NUL-terminated string of at most cap-1 bytes; returns its length,
     * -EFAULT or -ENAMETOOLONG. */
    int64_t (*read_string)(void *ctx, uint64_t addr, char *buf, size_t cap);
    /* Copy `len` bytes into memory of the caller that no program owns and that stays
     * valid until the call completes; returns its address, or 0 if none is left.
     * The first time a process needs scratch memory it has none yet: the call returns 0,
     * vurs maps some and calls the handler again for the same system call. So ask for
     * scratch before doing anything that must not happen twice. */
    uint64_t (*scratch)(void *ctx, const void *data, size_t len);
    /* Write one line to vurs's log (--trace / stderr). */
    void (*log)(int level, const char *module, const char *msg);
    /* The caller's virtual working directory (NUL-terminated) into buf; returns its
     * length, -ERANGE if cap is too small, or another -errno. Costs a /proc lookup, so
     * it is not part of struct vurs_caller. */
    int64_t (*cwd)(void *ctx, char *buf, size_t cap);
};

/* The module descriptor exported as VURS_MODULE_SYMBOL. Callbacks a module does not
 * implement are NULL; a NULL handler means "not served here" (the call goes on as if
 * no module claimed it, or fails with ENOSYS where it cannot: see docs/modules.md). */
struct vurs_module {
    uint32_t abi_major;       /* VURS_ABI_MAJOR */
    uint32_t abi_minor;       /* VURS_ABI_MINOR the module was built against */
    uint32_t size;            /* sizeof(struct vurs_module) as the module was built */
    uint32_t flags;           /* VURS_F_* */
    const char *name;         /* mount type and lsmod name, e.g. "fsremap" */
    const char *description;  /* one line */
    const int32_t *syscalls;  /* syscall service: numbers this module handles */
    uint32_t nsyscalls;
    uint32_t reserved;

    /* Lifecycle. init parses `options` ("k=v,k=v", may be empty) and returns an
     * instance (any non-NULL pointer), or NULL with a one-line reason in err. */
    void *(*init)(const struct vurs_services *svc, const char *options, char *err, size_t errlen);
    void (*fini)(void *inst);

    /* Mounts (path modules). `target` is an absolute canonical virtual path; `options`
     * holds the mount's options ("ro,k=v"). Returns 0 and a per-mount pointer in *mnt, or
     * -errno with a reason in err. umount releases it. */
    int (*mount)(void *inst, const char *source, const char *target, const char *options,
                 void **mnt, char *err, size_t errlen);
    void (*umount)(void *inst, void *mnt);

    /* Redirect service: map `subpath` (relative to the mount's target, "" for the target
     * itself, never starting with '/') to a host path written to out (NUL-terminated).
     * Returns 0 or -errno (e.g. -EROFS for VURS_ACCESS_WRITE on a read-only mount). */
    int (*redirect)(void *inst, void *mnt, const char *subpath, uint32_t access, char *out,
                    size_t outcap);

    /* Serve service: paths under the mount are implemented by the module. vurs resolves
     * symlinks and ".." inside the mount itself (with stat and readlink), so `subpath` is
     * canonical; `stat` never follows a final symlink (lstat semantics); `open` is called
     * with the final component already followed unless O_NOFOLLOW. */
    int (*open)(void *inst, void *mnt, const char *subpath, int32_t flags, uint32_t mode,
                void **handle);
    int (*stat)(void *inst, void *mnt, const char *subpath, struct vurs_stat *st);
    int64_t (*readlink)(void *inst, void *mnt, const char *subpath, char *buf, size_t cap);
    int64_t (*pread)(void *inst, void *handle, void *buf, size_t len, int64_t off);
    int64_t (*pwrite)(void *inst, void *handle, const void *buf, size_t len, int64_t off);
    int (*fstat)(void *inst, void *handle, struct vurs_stat *st);
    /* Directory entry number `index` (0, 1, ...): 1 = filled, 0 = end, or -errno. */
    int (*readdir)(void *inst, void *handle, uint64_t index, struct vurs_dirent *out);
    void (*close)(void *inst, void *handle);

    /* Syscall service: called for each call whose number is in `syscalls`. Return 0 and
     * fill `res`; a negative return -E is a shortcut for VURS_RETURN with retval -E. */
    int (*syscall)(void *inst, const struct vurs_call *call, struct vurs_result *res);

    /* Targets a serving module mounts itself when loaded at start (NULL-terminated list,
     * or NULL): each gets mount(inst, NAME, target, "", ...). E.g. the uname module serves
     * /proc/sys/kernel/hostname. */
    const char *const *auto_mounts;
};

/* The symbol a module exports. */
typedef const struct vurs_module vurs_module_v1_t;

#ifdef __cplusplus
}
#endif
#endif /* VURS_MODULE_H */
