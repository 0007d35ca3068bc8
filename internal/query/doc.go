// Package query owns the Logs Insights query language over audit events:
// parsing (Parse, *SyntaxError with line, column and caret), planning,
// parallel evaluation over audit.Scan, and stats.
//
// # Language
//
// Commands chained with |: fields, display, filter, stats, sort, limit,
// dedup and parse (glob with * or regex with named groups); keywords are
// case-insensitive, # starts a comment. Expressions: numbers, "double" and
// 'single' quoted strings, fields (flattened JSON paths such as
// userIdentity.sessionContext.sessionIssuer.arn or resources.0.ARN;
// `backquotes` for other names), arithmetic + - * / % ^, comparisons
// = != < <= > >=, and, or, not, like "substring" (case-sensitive), like
// /regex/, =~ /regex/ (substring match; (?i) for case-insensitive),
// in [...], not in [...], and the functions of Logs Insights' documentation.
// A second stats over the first one's output is supported.
//
// System fields: @timestamp is eventTime parsed as a time; @message is the
// event's raw JSON text. A field holding an object or array reads as its
// compact JSON text; JSON true/false are booleans, numbers are numbers
// (keeping their source text for string operations), null is null.
//
// # Semantics (where the AWS documentation is silent, decided here)
//
//   - Comparisons: number with number numerically; a string that parses as
//     a number compares numerically with a number; a time with a string
//     parses the string (RFC 3339, "2006-01-02 15:04:05", or a date), with a
//     number as epoch milliseconds; anything else by string form.
//   - Null (a missing field or JSON null): every comparison, like, =~ and in
//     is false, except != which is true against a non-null value; not like
//     and not in are true. Arithmetic with null, a non-number, a division or
//     modulo by zero, or an infinite/NaN result gives null.
//   - filter keeps a row when its condition is true: a boolean true, a
//     non-zero number, a non-empty string, or a time.
//   - sort without asc/desc sorts ascending (the documentation shows no
//     default; ascending is the SQL convention). Order: non-numbers before
//     numbers, non-numbers in the documented "natural" order (digit runs by
//     length then value, the rest by code point: "5A" before "111A"), nulls
//     last in both directions; ties keep the default order.
//   - Default order (no sort): @timestamp descending, ties by input order
//     (file, index), so results do not depend on the parallelism.
//   - stats output (no sort): by the group keys ascending. Columns: the by
//     groups, then the aggregates, named by their "as" or their source text.
//     stats with no group over no input gives one row (count 0).
//   - count_distinct is exact; pct(f, p) is the nearest-rank percentile (the
//     smallest value with at least p% of the values at or below it); stddev
//     is the sample standard deviation; earliest/latest take the value at
//     the smallest/largest @timestamp (ties by input order); min/max order
//     like sort (numeric strings as numbers); sum/avg/stddev ignore
//     non-numbers. Float sums are added in worker order: a result with
//     non-integer inputs may differ in the last bits between runs.
//   - Records matched: rows reaching the first stats, limit or dedup (the
//     end of the query when it has none), i.e. rows that passed the filters
//     before them.
//   - Columns: the last display; else the last stats' columns and any
//     fields after it; else the fields of fields commands; else @timestamp
//     and @message.
//
// # Execution
//
// Each scan worker has its own evaluator (no locks on the hot path): one
// pass over the record (extract.go, a trie of the paths the query reads)
// extracts only those paths, skipping every other subtree, and stops when
// all were found; strings point into
// the record unless they have escapes, and are copied only when kept (a
// row, a group key). A top-level filter conjunct `F like "text"`,
// `F = "text"` or `F in [...]` first checks the raw bytes for the text
// (exact: texts with JSON-escapable or structural bytes and records with
// \u escapes skip the check). stats keeps partial aggregates per worker,
// `sort | limit N` and `limit N` a heap of N rows per worker; they merge at
// the end.
package query
