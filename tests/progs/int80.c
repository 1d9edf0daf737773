/* int80: make a raw 32-bit system call (int $0x80, ia32 getpid = 20) from a 64-bit
 * process and print "ia32 works" if it returned our pid, or "ia32 error N". */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    if (r == getpid()) printf("ia32 works\n");
    else printf("ia32 error %ld\n", -r);
    return 0;
}
