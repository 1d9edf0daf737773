// gochown: a static Go program (raw system calls, no libc) that chowns FILE to
// 1234:5678 and prints the owner stat reports and its euid: a fake root must hold for it
// as for programs that go through libc (tests/fakeroot.rs).
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	f := os.Args[1]
	if err := os.Chown(f, 1234, 5678); err != nil {
		fmt.Println("chown:", err)
		os.Exit(1)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(f, &st); err != nil {
		fmt.Println("stat:", err)
		os.Exit(1)
	}
	fmt.Printf("uid=%d gid=%d euid=%d\n", st.Uid, st.Gid, os.Geteuid())
}
