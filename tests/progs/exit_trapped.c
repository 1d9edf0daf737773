/* exit_trapped PATH: 16 threads loop on open(PATH)/close (calls vurs virtualizes); once
 * all run, the main thread calls exit(3) (exit_group) while they sit in trapped calls.
 * Prints "exiting" and exits 3. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int running;
static const char *path;

static void *worker(void *a) {
    (void)a;
    atomic_fetch_add(&running, 1);
    for (;;) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) close(fd);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    path = argv[1];
    pthread_t t;
    for (int i = 0; i < 16; i++) pthread_create(&t, NULL, worker, NULL);
    while (atomic_load(&running) < 16) usleep(100);
    usleep(2000);
    printf("exiting\n");
    fflush(stdout);
    exit(3);
}
