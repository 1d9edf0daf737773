/* Run from a served mount: prints its arguments and where it was run from. */
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    printf("argc %d argv0 %s", argc, argv[0]);
    for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    return 7;
}
