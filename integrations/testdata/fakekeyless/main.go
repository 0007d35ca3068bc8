// Command fakekeyless stands in for keyless in the integrations' install
// tests: scripts/release.sh builds it like the real binary (its --package
// option), the tests serve the result as a release, and the installed
// binary says which version it is and records the arguments it was run
// with.
package main

import (
	"os"
	"strings"
)

// Set by the release script (-X main.version=... and so on), as in keyless.
var version, commit, date string

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		os.Stdout.WriteString("keyless " + version + "\n" + commit + " " + date + "\n")
		return
	}
	if f := os.Getenv("FAKE_KEYLESS_ARGS"); f != "" {
		if err := os.WriteFile(f, []byte(strings.Join(os.Args[1:], "\n")+"\n"), 0o644); err != nil {
			os.Exit(1)
		}
	}
}
