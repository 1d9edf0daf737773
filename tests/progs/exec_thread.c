/* exec_thread.c - tracer stress: execve() from a non-leader thread.
 * The main thread starts a "busy" thread (loops in user space and on getppid() syscalls) and an
 * "exec" thread, then blocks in pthread_join (a futex wait). The exec thread waits until the
 * busy thread is running, then execve()s /bin/echo exec-from-thread ok. The kernel kills the
 * other threads and the exec'ing thread takes over the thread-group leader's pid: a tracer sees
 * the leader vanish (no exit report for it under ptrace), and PTRACE_EVENT_EXEC arrives with the
 * old tid in PTRACE_GETEVENTMSG. The tracer must survive and keep tracing the new image.
 * Expected stdout (exit status 0, from echo):
 *   exec-from-thread ok */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static atomic_int busy_running;
static volatile unsigned long spin;

static void *busy(void *a) {
    (void)a;
    atomic_store(&busy_running, 1);
    for (;;) {
        for (int i = 0; i < 100000; i++) spin++;
        syscall(SYS_getppid);
    }
    return NULL;
}

static void *execer(void *a) {
    (void)a;
    while (!atomic_load(&busy_running)) sched_yield();
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    char *av[] = {"echo", "exec-from-thread ok", NULL};
    execve("/bin/echo", av, environ);
    fprintf(stderr, "exec_thread: execve: %s\n", strerror(errno));
    _exit(1);
}

int main(void) {
    alarm(30);   /* survives execve; echo finishes long before */
    pthread_t b, e;
    if (pthread_create(&b, NULL, busy, NULL) || pthread_create(&e, NULL, execer, NULL)) {
        fprintf(stderr, "exec_thread: pthread_create failed\n");
        return 1;
    }
    pthread_join(e, NULL);   /* never returns: execve replaces the process */
    fprintf(stderr, "exec_thread: exec thread returned\n");
    return 1;
}
