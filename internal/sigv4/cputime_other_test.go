//go:build !unix

package sigv4_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
