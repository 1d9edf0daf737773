/* fork_kill: a child that forks in a loop is SIGKILLed at varying moments, 200 times. A
 * SIGKILL can land between a fork and the tracer's fork event, leaving the new process
 * orphaned before the tracer learned of it: the tracer must adopt it, not wait forever.
 * Prints "done" and exits 0. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    alarm(60);
    for (int round = 0; round < 200; round++) {
        pid_t p = fork();
        if (p == 0) {
            for (;;) {
                pid_t c = fork();
                if (c == 0) _exit(0);
                if (c > 0) waitpid(c, 0, 0);
            }
        }
        usleep(200 + (round * 37) % 900);
        kill(p, SIGKILL);
        waitpid(p, 0, 0);
    }
    puts("done");
    return 0;
}
