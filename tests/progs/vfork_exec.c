/* vfork_exec.c - tracer stress: vfork()+execve() and posix_spawn().
 * 1. vfork(); the child (sharing the parent's memory, parent suspended) execve()s
 *    /bin/echo vfork-child; the parent waits for it and checks exit status 0.
 * 2. posix_spawn() of /bin/echo posix_spawn-child (glibc implements it with
 *    clone(CLONE_VM|CLONE_VFORK) on a separate stack); wait, check status 0.
 * 3. posix_spawnp() of a missing program must fail with ENOENT (the exec error is reported back
 *    through the shared memory / pipe of the vfork-like child).
 * Checks CLONE_VFORK handling (parent must stay stopped until the child execs or exits, the
 * tracer must not write to memory that is shared) and exec of a new tracee.
 * Expected stdout (exit status 0):
 *   vfork-child
 *   posix_spawn-child
 *   vfork ok */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int check(const char *what, pid_t pid) {
    int st;
    pid_t r;
    while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {}
    if (r != pid) { fprintf(stderr, "vfork_exec: %s: waitpid: %s\n", what, strerror(errno)); return 1; }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "vfork_exec: %s: status 0x%x\n", what, st); return 1; }
    return 0;
}

int main(void) {
    alarm(30);
    fflush(stdout);
    volatile int marker = 0;
    pid_t p = vfork();
    if (p < 0) { fprintf(stderr, "vfork_exec: vfork: %s\n", strerror(errno)); return 1; }
    if (p == 0) {
        marker = 1;   /* shared memory: visible to the parent after we exec */
        char *av[] = {"echo", "vfork-child", NULL};
        execve("/bin/echo", av, environ);
        _exit(127);
    }
    if (marker != 1) { fprintf(stderr, "vfork_exec: vfork child did not share memory\n"); return 1; }
    if (check("vfork", p)) return 1;

    char *av2[] = {"echo", "posix_spawn-child", NULL};
    int e = posix_spawn(&p, "/bin/echo", NULL, NULL, av2, environ);
    if (e) { fprintf(stderr, "vfork_exec: posix_spawn: %s\n", strerror(e)); return 1; }
    if (check("posix_spawn", p)) return 1;

    char *av3[] = {"no-such-program-vurs", NULL};
    e = posix_spawnp(&p, "no-such-program-vurs", NULL, NULL, av3, environ);
    if (e != ENOENT) {
        fprintf(stderr, "vfork_exec: posix_spawnp of missing program returned %d (%s), want ENOENT\n", e, strerror(e));
        return 1;
    }
    printf("vfork ok\n");
    return 0;
}
