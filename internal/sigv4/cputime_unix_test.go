//go:build unix

package sigv4_test

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time of the test process. Benchmarks
// report it per operation because wall-clock figures on a shared machine
// include time spent waiting for a core.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
