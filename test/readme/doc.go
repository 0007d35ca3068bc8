// Package readme holds the tests that keep keyless's documentation true:
// the README's shell blocks, run in order with bash against a real
// `keyless serve` they start, exactly as a newcomer would paste them; every
// shell block of the README and docs/ either run or explicitly marked as not
// runnable here; and every relative link of the Markdown files resolving to
// a file (and heading) in the repository, with none in the README leaving it.
package readme
