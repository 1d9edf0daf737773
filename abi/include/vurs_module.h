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
#define VURS_ABI_MINOR 2
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
                                        them current (set*id calls trap), and show the ids
                                        set_ids sets in /proc/PID/status (path calls trap;
                                        since ABI 1.1) */
#define VURS_F_OWN_PERMISSIONS 0x0080u /* serving: the module checks permissions itself (its
                                        `access` callback and its errors); without it vurs
                                        applies the kernel's DAC rules to the module's stat
                                        answers, as FUSE's default_permissions (since 1.1) */

/* verdict of a handler (vurs_result.verdict) */
#define VURS_PASS    0u /* let the kernel run the call unchanged */
#define VURS_RETURN  1u /* skip the call; the caller sees `retval` (value or -errno) */
#define VURS_REWRITE 2u /* let the kernel run the call with `args` changed per `args_mask` */
#define VURS_PASS_EXIT 3u /* let the call go on (kernel or path modules), with `args` changed
                             per `args_mask` as for VURS_REWRITE when the mask is not zero,
                             then call the module's `syscall_exit` with its result (since
                             ABI 1.1) */

/* vurs_timespec.nsec for utimens: leave this time as it is (as UTIME_OMIT); vurs turns
 * UTIME_NOW into the session's clock before calling the module */
#define VURS_UTIME_OMIT ((1l << 30) - 2l)

/* access intent of a path lookup (redirect `access` argument) */
#define VURS_ACCESS_READ   0x1u /* reads the object or its metadata */
#define VURS_ACCESS_WRITE  0x2u /* changes the object, its metadata or its directory */
#define VURS_ACCESS_EXEC   0x4u /* executes it */
#define VURS_ACCESS_CREATE 0x8u /* may create the object */
#define VURS_ACCESS_REMOVE 0x10u /* removes the name: unlink, rmdir, the source of a rename
                                    (with VURS_ACCESS_WRITE; since ABI 1.1) */

/* log levels for vurs_services.log */
#define VURS_LOG_ERROR 0
#define VURS_LOG_WARN  1
#define VURS_LOG_INFO  2
#define VURS_LOG_DEBUG 3

/* The process that made the call, as libfuse's fuse_context. The ids are the session's
 * view of the caller: the kernel's ids of that process, unless a module (fakeroot) set
 * other ones with vurs_services.set_ids; vurs's own ids never show here.
 * Fields after `egid` exist since ABI 1.1: read them only when vurs_services.abi_minor >= 1
 * (the struct has no size field of its own). */
struct vurs_caller {
    int32_t pid;       /* thread-group id */
    int32_t tid;       /* thread id */
    uint32_t uid, euid, gid, egid;
    /* since ABI 1.1 */
    uint32_t suid, sgid;      /* saved set-user/group ids */
    uint32_t fsuid, fsgid;    /* ids for file-system access checks */
    uint32_t umask;
    uint32_t ngroups;         /* supplementary groups: `groups[0..ngroups]` */
    const uint32_t *groups;
};

/* A process's ids for vurs_services.set_ids (since ABI 1.1). */
struct vurs_ids {
    uint32_t size;            /* sizeof(struct vurs_ids) as the module was built */
    uint32_t uid, euid, suid, fsuid;
    uint32_t gid, egid, sgid, fsgid;
    uint32_t ngroups;         /* at most 65536 */
    const uint32_t *groups;
};

/* A time for utimens and the clock services (since ABI 1.1). */
struct vurs_timespec {
    int64_t sec;
    int64_t nsec;             /* 0..999999999, or VURS_UTIME_OMIT */
};

/* File-system statistics for statfs, as struct statfs (since ABI 1.1). */
struct vurs_statfs {
    uint64_t type;            /* f_type magic */
    uint64_t bsize, frsize;
    uint64_t blocks, bfree, bavail;
    uint64_t files, ffree;
    uint64_t namelen;
    uint64_t flags;           /* ST_RDONLY, ST_NOSUID, ... (vurs adds ST_RDONLY on a ro mount) */
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
    uint32_t args_mask;/* VURS_REWRITE, VURS_PASS_EXIT: bit i set = args[i] replaces the
                          caller's argument i */
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

    /* ---- since ABI 1.1 (present when size covers them) ---- */
    /* The caller of the callback running on this thread, in every callback that acts for a
     * tracee (serving, redirect, syscall, syscall_exit, access...), as fuse_get_context();
     * NULL outside one (init, mount from the command line, lifecycle hooks). */
    const struct vurs_caller *(*caller)(void);
    /* The session's view of clock `clockid` (CLOCK_REALTIME, ...): the newest loaded module
     * with a `clock` callback answers (the time module), else the host. 0 or -errno. */
    int (*clock_gettime)(int32_t clockid, struct vurs_timespec *ts);
    /* fstatat(dirfd, path, st, flags) as the caller would see it: its cwd, its descriptors,
     * virtual mounts, its root; flags AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH. Only from a
     * syscall or syscall_exit handler (it needs ctx). 0 or -errno. */
    int (*stat_at)(void *ctx, int32_t dirfd, const char *path, int32_t flags, struct vurs_stat *st);
    /* Set the session's view of the calling process's ids (what struct vurs_caller shows to
     * every module and what vurs's own permission checks use from now on); inherited by
     * fork, kept by exec. The kernel's ids do not change: no real power is given. Only from
     * a syscall or syscall_exit handler. 0 or -errno. */
    int (*set_ids)(void *ctx, const struct vurs_ids *ids);
    /* The host path of the file the caller names with (dirfd, path, flags), as stat_at
     * resolves it (the final component need not exist): where the kernel finds it, the same
     * whatever the caller's mounts and root (a database of files keys on it, as fakeroot's).
     * Into buf, NUL-terminated; returns its length, -ERANGE if cap is too small, -EXDEV for
     * a file a module serves (no host path), or another -errno. Only from a syscall or
     * syscall_exit handler. */
    int64_t (*host_path)(void *ctx, int32_t dirfd, const char *path, int32_t flags, char *buf, size_t cap);

    /* ---- since ABI 1.2 (present when size covers it) ---- */
    /* Mount `mnt` (the pointer this module's mount() returned) is a plain subtree from now
     * on (plain = 1), or no longer (plain = 0). Plain means what VURS_F_SUBTREE says of
     * every mount of a module, for this mount and for now: redirect(sub) is
     * redirect("") + "/" + sub for reads, and each directory lists itself (list answers
     * -ENOSYS). vurs then lets the kernel resolve a plain name relative to a directory
     * inside the mount without asking the module. A copy-on-write module whose upper layer
     * is empty is plain; it withdraws that (plain = 0) before it answers the first call
     * that changes the view. Callable from any callback after mount() returned; vurs asks
     * redirect("") right after mount(): say it at the latest there. 0. */
    int (*set_plain)(void *mnt, int32_t plain);
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

    /* ---- since ABI 1.1 (vurs treats them as NULL when `size` does not cover them) ---- */

    /* Serving: the rest of libfuse's operation set. Paths are canonical subpaths as for
     * `open`; `open` also creates (O_CREAT, O_EXCL, O_TRUNC with `mode`, already masked by
     * the caller's umask). Calls on an open descriptor (fchmod, ftruncate, fsetxattr...)
     * pass its `handle` and the subpath it was opened by; path calls pass handle NULL.
     * Unless VURS_F_OWN_PERMISSIONS, vurs has checked the caller's permissions already
     * (search on each directory, write on the parent, sticky bit, ownership for chmod and
     * utimens, CAP_CHOWN for chown) from the module's stat answers. All return 0 or
     * -errno (the get/list calls: a length). A NULL callback answers the caller EPERM for
     * mknod, ENOTSUP for xattrs, and ENOSYS otherwise. */
    int (*mkdir)(void *inst, void *mnt, const char *subpath, uint32_t mode);
    int (*rmdir)(void *inst, void *mnt, const char *subpath);
    int (*unlink)(void *inst, void *mnt, const char *subpath);
    /* flags: RENAME_NOREPLACE, RENAME_EXCHANGE (as renameat2) */
    int (*rename)(void *inst, void *mnt, const char *from, const char *to, uint32_t flags);
    /* a hard link `to` to the existing `from` (both in this mount) */
    int (*link)(void *inst, void *mnt, const char *from, const char *to);
    /* create symlink `subpath` whose text is `target` */
    int (*symlink)(void *inst, void *mnt, const char *target, const char *subpath);
    int (*mknod)(void *inst, void *mnt, const char *subpath, uint32_t mode, uint64_t rdev);
    int (*chmod)(void *inst, void *mnt, const char *subpath, void *handle, uint32_t mode);
    /* uid or gid (uint32_t)-1: leave it */
    int (*chown)(void *inst, void *mnt, const char *subpath, void *handle, uint32_t uid, uint32_t gid);
    int (*truncate)(void *inst, void *mnt, const char *subpath, void *handle, int64_t size);
    /* tv[0] access time, tv[1] modification time */
    int (*utimens)(void *inst, void *mnt, const char *subpath, void *handle,
                   const struct vurs_timespec *tv);
    int (*statfs)(void *inst, void *mnt, const char *subpath, struct vurs_statfs *st);
    int (*fsync)(void *inst, void *handle, int32_t datasync);
    /* flags: XATTR_CREATE, XATTR_REPLACE; get/list with cap 0 return the size needed */
    int64_t (*getxattr)(void *inst, void *mnt, const char *subpath, void *handle, const char *name,
                        void *buf, size_t cap);
    int (*setxattr)(void *inst, void *mnt, const char *subpath, void *handle, const char *name,
                    const void *value, size_t len, int32_t flags);
    int64_t (*listxattr)(void *inst, void *mnt, const char *subpath, void *handle, char *buf,
                         size_t cap);
    int (*removexattr)(void *inst, void *mnt, const char *subpath, void *handle, const char *name);
    /* access(2) mask (R_OK|W_OK|X_OK, or F_OK): asked only with VURS_F_OWN_PERMISSIONS */
    int (*access)(void *inst, void *mnt, const char *subpath, int32_t mask);

    /* Lifecycle of the session's processes (thread groups), so a module can keep
     * per-process state: `child` was forked by `parent` (its ids, cwd and descriptors are
     * copies); `pid` completed an execve; `pid` exited (its last thread is gone). */
    void (*proc_fork)(void *inst, int32_t parent, int32_t child);
    void (*proc_exec)(void *inst, int32_t pid);
    void (*proc_exit)(void *inst, int32_t pid);

    /* Syscall service: at the exit of a call its handler answered VURS_PASS_EXIT. *retval
     * holds the result (a value or -errno) and may be changed; the caller's memory may be
     * read and written through call->ctx. */
    void (*syscall_exit)(void *inst, const struct vurs_call *call, int64_t *retval);

    /* The module's view of clock `clockid` (a time module): what vurs_services
     * .clock_gettime answers while this module is loaded. 0 or -errno. */
    int (*clock)(void *inst, int32_t clockid, struct vurs_timespec *ts);

    /* Redirecting modules: entry number `index` (0, 1, ...) of directory `subpath` when its
     * listing is not that of the host directory `redirect` names (a merged view, as a
     * copy-on-write module shows): 1 = filled, 0 = end, -ENOSYS = list the host directory,
     * or another -errno. vurs answers getdents64 on such a directory from it, with the
     * entry number as the directory offset (telldir/seekdir work). */
    int (*list)(void *inst, void *mnt, const char *subpath, uint64_t index, struct vurs_dirent *out);
};

/* The symbol a module exports. */
typedef const struct vurs_module vurs_module_v1_t;

#ifdef __cplusplus
}
#endif
#endif /* VURS_MODULE_H */
