// go_cgo: Go calling C through cgo (C code in the same .text, not in .gopclntab), for
// the Go unwind-table tests. Usage: go_cgo [SECONDS]
package main

/*
__attribute__((noinline)) static unsigned long c_work(unsigned long n) {
	unsigned long h = 1469598103934665603UL;
	for (unsigned long i = 0; i < n; i++)
		h = (h ^ i) * 1099511628211UL;
	return h;
}
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

//go:noinline
func callC(n int) uint64 { return uint64(C.c_work(C.ulong(n))) }

func main() {
	secs := 0.1
	if len(os.Args) > 1 {
		if v, err := strconv.ParseFloat(os.Args[1], 64); err == nil {
			secs = v
		}
	}
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	var h uint64
	for time.Now().Before(deadline) {
		h += callC(1 << 16)
	}
	fmt.Println(h != 0)
}
