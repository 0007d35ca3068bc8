//go:build !keyless_bench_noaudit

package server

// benchNoAudit is true only in the benchmark-only build that measures what
// the audit trail costs (bench/run.sh builds it with -tags
// keyless_bench_noaudit). Release builds always audit.
const benchNoAudit = false
