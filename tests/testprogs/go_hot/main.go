// go_hot: a Go program whose hot leaves are assembly (crypto/sha256.block, with a frame
// but using BP as a general register; internal/bytealg.IndexByte, without a frame), and
// a function whose frame is too large for an rsp offset. For the Go unwind-table tests
// (tests/unit/unwind_go_test.cpp) and profiling tests. Usage: go_hot [SECONDS]
package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"time"
)

//go:noinline
func hashLoop(buf []byte, n int) [32]byte {
	var sum [32]byte
	for i := 0; i < n; i++ {
		sum = sha256.Sum256(buf)
		buf[0] = sum[0]
	}
	return sum
}

//go:noinline
func scanLoop(buf []byte, n int) int {
	found := 0
	for i := 0; i < n; i++ {
		found += bytes.IndexByte(buf, byte(1+i%2))
	}
	return found
}

// A 40 KiB frame: more than an int16 rsp offset reaches.
//
//go:noinline
func bigFrame(seed byte) byte {
	var local [40 << 10]byte
	for i := range local {
		local[i] = seed + byte(i)
	}
	return local[len(local)/2] ^ hashLoop(local[:64], 1)[0]
}

func main() {
	secs := 1.0
	if len(os.Args) > 1 {
		if v, err := strconv.ParseFloat(os.Args[1], 64); err == nil {
			secs = v
		}
	}
	buf := make([]byte, 1<<20) // on the heap
	buf[len(buf)-1] = 2
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	var s [32]byte
	n := bigFrame(7)
	for time.Now().Before(deadline) {
		s = hashLoop(buf[:1<<16], 64)
		n += byte(scanLoop(buf, 16))
	}
	fmt.Printf("%x %d\n", s[:4], n)
}
