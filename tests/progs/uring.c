/* uring: try io_uring_setup(4, ...) and print "ok" (a ring was made) or "errno=N". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    unsigned char params[120]; /* struct io_uring_params, zeroed */
    memset(params, 0, sizeof params);
    long fd = syscall(SYS_io_uring_setup, 4, params);
    if (fd < 0) {
        printf("errno=%d\n", errno);
        return 0;
    }
    close((int)fd);
    printf("ok\n");
    return 0;
}
