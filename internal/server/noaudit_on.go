//go:build keyless_bench_noaudit

package server

// benchNoAudit: this binary records nothing. It exists only to measure the
// audit trail's cost against the normal build (bench/run.sh); never ship it.
const benchNoAudit = true
