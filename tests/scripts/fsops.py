"""Every file-system operation of ABI 1.1 on directory argv[1], one line each: the call,
then "ok" and what it returned, or the errno name. tests/abi11.rs runs it on a real
directory and, under vurs, on a served mount, and compares the lines."""
import ctypes, errno, os, stat, sys

D = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def p(s):
    return os.path.join(D, s)


def t(name, f):
    try:
        r = f()
        print(name, "ok", "" if r is None else r)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))


def renameat2(a, b, flags):
    if libc.renameat2(-100, p(a).encode(), -100, p(b).encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def desc(path):
    st = os.lstat(path)
    return f"{stat.filemode(st.st_mode)} size={st.st_size if not stat.S_ISDIR(st.st_mode) else '-'} nlink={st.st_nlink if not stat.S_ISDIR(st.st_mode) else '-'}"


def write(path, data, flags=os.O_WRONLY | os.O_TRUNC):
    fd = os.open(path, flags, 0o666)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


os.umask(0o022)
t("mkdir", lambda: os.mkdir(p("d"), 0o777))
t("mkdir exists", lambda: os.mkdir(p("d")))
t("mkdir no parent", lambda: os.mkdir(p("nope/x")))
t("stat d", lambda: desc(p("d")))
t("create excl", lambda: os.close(os.open(p("d/f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)))
t("create excl again", lambda: os.open(p("d/f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
t("stat f", lambda: desc(p("d/f")))
t("write trunc", lambda: write(p("d/f"), b"hello world"))
t("read", lambda: read(p("d/f")))
t("open f/", lambda: os.open(p("d/f/"), os.O_RDONLY))
t("creat f/", lambda: os.open(p("d/g/"), os.O_CREAT | os.O_WRONLY))
t("open dir for write", lambda: os.open(p("d"), os.O_WRONLY))
t("open O_DIRECTORY file", lambda: os.open(p("d/f"), os.O_RDONLY | os.O_DIRECTORY))


def fdops():
    fd = os.open(p("d/f"), os.O_RDWR)
    try:
        os.fsync(fd)
        os.fdatasync(fd)
        os.ftruncate(fd, 5)
        os.fchmod(fd, 0o640)
        os.fchown(fd, -1, -1)
        os.utime(fd, ns=(1_000_000_000, 2_000_000_000))
        st = os.fstat(fd)
        sv = os.fstatvfs(fd)
        return f"{stat.filemode(st.st_mode)} {st.st_size} {st.st_mtime_ns} namemax={sv.f_namemax}"
    finally:
        os.close(fd)


t("fd ops", fdops)
t("read after ftruncate", lambda: read(p("d/f")))
t("truncate", lambda: os.truncate(p("d/f"), 100))
t("truncate dir", lambda: os.truncate(p("d"), 1))
t("truncate negative", lambda: os.truncate(p("d/f"), -1))
t("size", lambda: os.stat(p("d/f")).st_size)
t("chmod", lambda: os.chmod(p("d/f"), 0o600))
t("chown same", lambda: os.chown(p("d/f"), os.getuid(), os.getgid()))
t("utime", lambda: os.utime(p("d/f"), ns=(3_000_000_007, 4_000_000_009)))
t("mtime", lambda: (os.stat(p("d/f")).st_atime_ns, os.stat(p("d/f")).st_mtime_ns))
def libc_utimens_omit(path):
    class TS(ctypes.Structure):
        _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
    ts = (TS * 2)(TS(5, 0), TS(0, (1 << 30) - 2))
    if libc.utimensat(-100, path.encode(), ts, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return os.stat(path).st_atime_ns


t("utime omit", lambda: libc_utimens_omit(p("d/f")))
t("mtime after omit", lambda: os.stat(p("d/f")).st_mtime_ns)


t("link", lambda: os.link(p("d/f"), p("d/h")))
t("link exists", lambda: os.link(p("d/f"), p("d/h")))
t("link dir", lambda: os.link(p("d"), p("d2")))
t("nlink", lambda: os.stat(p("d/f")).st_nlink)
t("symlink", lambda: os.symlink("f", p("d/s")))
t("symlink exists", lambda: os.symlink("f", p("d/s")))
t("readlink", lambda: os.readlink(p("d/s")))
t("read via symlink", lambda: read(p("d/s"))[:5])
t("lstat s", lambda: desc(p("d/s")))
t("mkfifo", lambda: os.mkfifo(p("d/fifo"), 0o644))
t("stat fifo", lambda: desc(p("d/fifo")))
t("mknod reg", lambda: os.mknod(p("d/reg"), 0o644 | stat.S_IFREG))
t("stat reg", lambda: desc(p("d/reg")))
t("rename", lambda: os.rename(p("d/reg"), p("d/reg2")))
t("rename missing", lambda: os.rename(p("d/reg"), p("d/reg3")))
t("rename noreplace", lambda: renameat2("d/reg2", "d/h", RENAME_NOREPLACE))
t("rename exchange", lambda: renameat2("d/reg2", "d/fifo", RENAME_EXCHANGE))
t("after exchange", lambda: (desc(p("d/reg2")), desc(p("d/fifo"))))
t("rename both flags", lambda: renameat2("d/reg2", "d/fifo", RENAME_EXCHANGE | RENAME_NOREPLACE))
t("mkdir e", lambda: os.mkdir(p("d/e")))
t("rename dir into itself", lambda: os.rename(p("d/e"), p("d/e/x")))
t("rename file over dir", lambda: os.rename(p("d/reg2"), p("d/e")))
t("rename dir over file", lambda: os.rename(p("d/e"), p("d/reg2")))
t("lstat d/.", lambda: desc(p("d/.")))
t("lstat d/e/..", lambda: desc(p("d/e/..")))
t("rmdir d/.", lambda: os.rmdir(p("d/.")))
t("rmdir nonempty", lambda: os.rmdir(p("d")))
t("rmdir file", lambda: os.rmdir(p("d/f")))
t("unlink dir", lambda: os.unlink(p("d/e")))
t("setxattr", lambda: os.setxattr(p("d/f"), "user.k", b"v1"))
t("setxattr create exists", lambda: os.setxattr(p("d/f"), "user.k", b"v2", os.XATTR_CREATE))
t("setxattr replace missing", lambda: os.setxattr(p("d/f"), "user.q", b"v2", os.XATTR_REPLACE))
t("getxattr", lambda: os.getxattr(p("d/f"), "user.k"))
t("getxattr missing", lambda: os.getxattr(p("d/f"), "user.zz"))
t("listxattr", lambda: sorted(os.listxattr(p("d/f"))))
t("lgetxattr symlink", lambda: os.getxattr(p("d/s"), "user.k", follow_symlinks=False))
t("removexattr", lambda: os.removexattr(p("d/f"), "user.k"))
t("removexattr missing", lambda: os.removexattr(p("d/f"), "user.k"))


def fxattr():
    fd = os.open(p("d/f"), os.O_RDONLY)
    try:
        os.setxattr(fd, "user.f", b"fd")
        v = os.getxattr(fd, "user.f")
        names = sorted(os.listxattr(fd))
        os.removexattr(fd, "user.f")
        return (v, names)
    finally:
        os.close(fd)


t("f*xattr", fxattr)
t("access r", lambda: os.access(p("d/f"), os.R_OK))
t("access missing", lambda: os.access(p("d/zz"), os.F_OK))
t("statvfs", lambda: (os.statvfs(p("d")).f_namemax, bool(os.statvfs(p("d")).f_flag & os.ST_RDONLY)))
t("listdir", lambda: sorted(os.listdir(p("d"))))
t("unlink", lambda: os.unlink(p("d/h")))
t("unlink missing", lambda: os.unlink(p("d/h")))
t("rmdir e", lambda: os.rmdir(p("d/e")))
for n in ["f", "s", "fifo", "reg2"]:
    t("unlink " + n, lambda: os.unlink(p("d/" + n)))
t("rmdir d", lambda: os.rmdir(p("d")))
t("listdir root", lambda: sorted(os.listdir(D)))
