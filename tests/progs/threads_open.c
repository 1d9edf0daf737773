/* threads_open NTHREADS ITERS DIR: NTHREADS threads each open, read and close DIR/f(k%8)
 * ITERS times, checking the bytes read against the file's first read by the main thread.
 * Prints "threads N opens M bad 0" on success. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *dir;
static int iters;
static char want[8][4096];
static long want_len[8];
static atomic_long opens, bad;

static long slurp(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long n = 0, r;
    while (n < (long)cap && (r = read(fd, buf + n, cap - n)) > 0) n += r;
    close(fd);
    return n;
}

static void *worker(void *arg) {
    long t = (long)arg;
    char path[4096], buf[4096];
    for (int k = 0; k < iters; k++) {
        int f = (int)((t + k) % 8);
        snprintf(path, sizeof path, "%s/f%d", dir, f);
        long n = slurp(path, buf, sizeof buf);
        atomic_fetch_add(&opens, 1);
        if (n != want_len[f] || memcmp(buf, want[f], n)) atomic_fetch_add(&bad, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int nt = atoi(argv[1]);
    iters = atoi(argv[2]);
    dir = argv[3];
    char path[4096];
    for (int f = 0; f < 8; f++) {
        snprintf(path, sizeof path, "%s/f%d", dir, f);
        want_len[f] = slurp(path, want[f], sizeof want[f]);
        if (want_len[f] < 0) { perror(path); return 1; }
    }
    pthread_t *th = calloc(nt, sizeof *th);
    for (long t = 0; t < nt; t++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 64 * 1024);
        if (pthread_create(&th[t], &a, worker, (void *)t)) { perror("pthread_create"); return 1; }
    }
    for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
    printf("threads %d opens %ld bad %ld\n", nt, (long)opens, (long)bad);
    return bad != 0;
}
