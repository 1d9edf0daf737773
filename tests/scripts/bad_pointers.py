# Bad pointers and over-long paths handed to calls that vurs traps: the program must get the
# errno the kernel gives natively (EFAULT, ENAMETOOLONG...), and vurs must go on serving.
# Usage: bad_pointers.py ROOT   (ROOT/f is a readable file)
import sys
ROOT = sys.argv[1].encode()
import ctypes, os, errno
libc = ctypes.CDLL(None, use_errno=True)
def sc(*a):
    r = libc.syscall(*[ctypes.c_long(x) for x in a])
    return -ctypes.get_errno() if r == -1 else r
AT=-100
print("openat bad ptr", sc(257, AT, 1, 0, 0))
big = ctypes.create_string_buffer(ROOT + b"/" + b"a"*8000)
print("openat long", sc(257, AT, ctypes.addressof(big), 0, 0))
p1=ctypes.create_string_buffer(ROOT + b"/f")
print("stat bad buf", sc(4, ctypes.addressof(p1), 1))
print("getcwd bad buf", sc(79, 1, 100))
p2=ctypes.create_string_buffer(b"/proc/self/cwd")
print("readlink bad buf", sc(89, ctypes.addressof(p2), 1, 100))
print("rename bad second", sc(82, ctypes.addressof(p1), 8))
print("execve bad argv", sc(59, ctypes.addressof(p1), 8, 0))
print("connect bad sockaddr", sc(42, 0, 8, 110))
print("clock_gettime bad", sc(228, 0, 8))
print("uname bad", sc(63, 8))
print("sethostname bad", sc(170, 8, 10))
print("nanosleep bad", sc(35, 8, 0))
print("mount bad", sc(165, 8, 8, 8, 0, 0))
print("ok", open(ROOT + b"/f").read().strip())
