/* exit_group.c - tracer stress: exit() of the main thread while 16 other threads are alive.
 * 8 threads sleep in nanosleep, 4 spin in user space, 4 loop on getppid() syscalls. Once all
 * are running, the main thread prints "before exit" and calls exit(3) (exit_group). The tracer
 * must handle the group exit (threads killed in all states: blocked in a syscall, in user
 * space, or stopped at a syscall stop) and report status 3 for the process.
 * Expected stdout:  before exit          exit status 3 (NOT 0) */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NT 16
static atomic_int started;
static volatile unsigned long spin;

static void *worker(void *a) {
    long k = (long)a;
    atomic_fetch_add(&started, 1);
    for (;;) {
        if (k < 8) { struct timespec ts = {60, 0}; nanosleep(&ts, NULL); }
        else if (k < 12) spin++;
        else syscall(SYS_getppid);
    }
    return NULL;
}

int main(void) {
    alarm(30);
    pthread_t th[NT];
    for (long k = 0; k < NT; k++)
        if (pthread_create(&th[k], NULL, worker, (void *)k)) { fprintf(stderr, "exit_group: pthread_create failed\n"); return 1; }
    while (atomic_load(&started) < NT) sched_yield();
    struct timespec ts = {0, 20 * 1000 * 1000};   /* let the sleepers enter nanosleep */
    nanosleep(&ts, NULL);
    printf("before exit\n");
    exit(3);
}
