/* threads_io.c - tracer stress: 32 threads doing many small syscalls concurrently.
 * Each thread creates its own file in DIR (argv[1], or a fresh mkdtemp dir under $TMPDIR or
 * /tmp), writes 1000 lines with one write() each, then reads every line back with pread() at
 * its offset and compares; finally fstat checks the size, and the file is removed (and the temp
 * dir, if we created it). Checks that the tracer handles many threads stopping at once, keeps
 * per-thread syscall state apart (args/results of one thread never leak into another), and
 * that open/openat paths work from all threads.
 * usage: threads_io [DIR]
 * Expected stdout:  threads 32 ok          exit status 0 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NT 32
#define NL 1000

static const char *dir;
static pthread_barrier_t bar;

static void *worker(void *arg) {
    long t = (long)arg;
    char path[4096], line[128], back[128];
    snprintf(path, sizeof path, "%s/threads_io.%02ld", dir, t);
    pthread_barrier_wait(&bar);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) { fprintf(stderr, "threads_io: open %s: %s\n", path, strerror(errno)); return (void *)1; }
    off_t off[NL + 1];
    off[0] = 0;
    for (int i = 0; i < NL; i++) {
        int n = snprintf(line, sizeof line, "thread %02ld line %04d %*s|\n", t, i, (int)((t + i) % 17), "");
        ssize_t w = write(fd, line, n);
        if (w != n) { fprintf(stderr, "threads_io: t%ld write %d: %zd %s\n", t, i, w, strerror(errno)); return (void *)1; }
        off[i + 1] = off[i] + n;
    }
    for (int i = NL - 1; i >= 0; i--) {   /* backwards, so pread offsets really matter */
        int n = snprintf(line, sizeof line, "thread %02ld line %04d %*s|\n", t, i, (int)((t + i) % 17), "");
        ssize_t r = pread(fd, back, n, off[i]);
        if (r != n || memcmp(back, line, n)) {
            fprintf(stderr, "threads_io: t%ld pread line %d: got %zd bytes '%.*s'\n", t, i, r, r > 0 ? (int)r : 0, back);
            return (void *)1;
        }
    }
    struct stat st;
    if (fstat(fd, &st) || st.st_size != off[NL]) {
        fprintf(stderr, "threads_io: t%ld size %lld want %lld\n", t, (long long)st.st_size, (long long)off[NL]);
        return (void *)1;
    }
    close(fd);
    if (unlink(path)) { fprintf(stderr, "threads_io: unlink %s: %s\n", path, strerror(errno)); return (void *)1; }
    return NULL;
}

int main(int argc, char **argv) {
    char tmpl[4096];
    int made = 0;
    alarm(30);
    if (argc > 1) dir = argv[1];
    else {
        const char *td = getenv("TMPDIR");
        snprintf(tmpl, sizeof tmpl, "%s/threads_io.XXXXXX", td && *td ? td : "/tmp");
        if (!mkdtemp(tmpl)) { fprintf(stderr, "threads_io: mkdtemp %s: %s\n", tmpl, strerror(errno)); return 1; }
        dir = tmpl;
        made = 1;
    }
    pthread_barrier_init(&bar, NULL, NT);
    pthread_t th[NT];
    for (long t = 0; t < NT; t++) {
        int e = pthread_create(&th[t], NULL, worker, (void *)t);
        if (e) { fprintf(stderr, "threads_io: pthread_create: %s\n", strerror(e)); return 1; }
    }
    int bad = 0;
    for (int t = 0; t < NT; t++) {
        void *r;
        pthread_join(th[t], &r);
        if (r) bad++;
    }
    if (made && rmdir(dir)) { fprintf(stderr, "threads_io: rmdir %s: %s\n", dir, strerror(errno)); bad++; }
    if (bad) { fprintf(stderr, "threads_io: %d failures\n", bad); return 1; }
    printf("threads %d ok\n", NT);
    return 0;
}
