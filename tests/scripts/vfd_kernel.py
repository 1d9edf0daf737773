# What only the kernel can do with a descriptor, done on DIR/f (a served file under vurs,
# a real one natively): poll and epoll on a mix with a pipe, mmap (shared read-only,
# private copy-on-write, shared writable), SCM_RIGHTS to a child, fexecve.
import fcntl, mmap, os, select, socket, struct, sys

D = sys.argv[1]
with open(D + "/f", "w") as f:
    f.write("hello served file\n" * 3)
fd = os.open(D + "/f", os.O_RDONLY)
r, w = os.pipe()

p = select.poll()
p.register(r, select.POLLIN)
p.register(fd, select.POLLIN | select.POLLPRI)
print("poll, pipe empty:", sorted((f == fd, e) for f, e in p.poll(2000)))
os.write(w, b"x")
print("poll, pipe full:", sorted((f == fd, e) for f, e in p.poll(2000)))
p.register(fd, select.POLLOUT)
print("poll out on a read-only file:", sorted((f == fd, e) for f, e in p.poll(0)))

ep = select.epoll()
ep.register(r, select.EPOLLIN)
try:
    ep.register(fd, select.EPOLLIN)
    print("epoll register: ok")
except OSError as e:
    print("epoll register:", e.errno)
print("epoll wait:", [(f == r, e) for f, e in ep.poll(1)])

m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
print("mmap shared read-only:", m[:17], len(m))
m.close()
m = mmap.mmap(fd, 0, access=mmap.ACCESS_COPY)
m[:5] = b"HELLO"
print("mmap private:", m[:17])
m.close()
print("file after a private write:", open(D + "/f").read(17))
try:
    mmap.mmap(fd, 0, access=mmap.ACCESS_WRITE)
except OSError as e:
    print("shared writable of a read-only descriptor:", e.errno)
rw = os.open(D + "/f", os.O_RDWR)
m = mmap.mmap(rw, 0)
m[:5] = b"SHARE"
m.close()
os.close(rw)
print("file after a shared write:", open(D + "/f").read(17))

a, b = socket.socketpair(socket.AF_UNIX)
os.lseek(fd, 6, os.SEEK_SET)
pid = os.fork()
if pid == 0:
    msg, fds, _, _ = socket.recv_fds(b, 10, 1)
    print("child got", msg, os.read(fds[0], 12), "offset", os.lseek(fds[0], 0, os.SEEK_CUR))
    sys.stdout.flush()
    os._exit(0)
sent = socket.send_fds(a, [b"msg"], [fd])
os.waitpid(pid, 0)
print("send_fds:", sent)
# (the sender's offset is not printed: the receiver's description is a copy's, its
# reads do not move the sender's offset under vurs; docs/modules.md)
sys.stdout.flush()

with open(D + "/run.sh", "w") as f:
    f.write("#!/bin/sh\necho fexecve ran \"$@\"\n")
os.chmod(D + "/run.sh", 0o755)
xfd = os.open(D + "/run.sh", os.O_RDONLY)
os.set_inheritable(xfd, True)  # the interpreter of a script run by fexecve opens /dev/fd/N
pid = os.fork()
if pid == 0:
    os.execve(xfd, ["run.sh", "arg"], {"PATH": "/usr/bin:/bin"})
_, st = os.waitpid(pid, 0)
print("fexecve status:", os.waitstatus_to_exitcode(st))
