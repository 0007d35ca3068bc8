package main

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/server"
)

// Set at link time by scripts/release.sh:
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// Only the linker writes them; a plain `go build` leaves them empty and
// the values come from what Go stamped in the binary (readBuildInfo).
var (
	version string
	commit  string
	date    string
)

// readBuildInfo describes this binary: the link-time values when the
// release script set them, else Go's own stamp.
func readBuildInfo() server.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return resolveBuildInfo(version, commit, date, bi)
}

// pseudoVersion matches the versions Go derives from a commit rather than a
// tag (v0.0.0-20250102150405-abcdef123456, vX.Y.Z-0.2025…-…, …).
var pseudoVersion = regexp.MustCompile(`\d{14}-[0-9a-f]{12}`)

// resolveBuildInfo combines the link-time values with Go's build info (nil
// when the binary has none). The version is the release script's; else the
// module version `go install …@vX.Y.Z` records; else "devel" (a local
// build, whose pseudo-version only repeats the commit). The commit and
// date fall back to Go's VCS stamp (vcs.revision, vcs.time), present
// unless the build ran with -buildvcs=false or outside a checkout.
func resolveBuildInfo(ldVersion, ldCommit, ldDate string, bi *debug.BuildInfo) server.BuildInfo {
	b := server.BuildInfo{Version: ldVersion, Commit: ldCommit, Date: ldDate,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		if b.Version == "" {
			b.Version = "devel"
		}
		return b
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	if b.Version == "" {
		v := bi.Main.Version
		if v == "" || v == "(devel)" || strings.Contains(v, "+dirty") || pseudoVersion.MatchString(v) {
			v = "devel"
		}
		b.Version = v
	}
	var vcsRev, vcsTime string
	var vcsModified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			vcsRev = s.Value
		case "vcs.time":
			vcsTime = s.Value
		case "vcs.modified":
			vcsModified = s.Value == "true"
		}
	}
	if b.Commit == "" {
		b.Commit, b.Modified = vcsRev, vcsModified
	}
	if b.Date == "" {
		b.Date = vcsTime
	}
	return b
}

// versionText is what `keyless version` and `keyless --version` print.
func versionText(b server.BuildInfo) string {
	commit := b.Commit
	switch {
	case commit == "":
		commit = "unknown"
	case b.Modified:
		commit += " (modified)"
	}
	date := b.Date
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("keyless %s\n  commit:     %s\n  build date: %s\n  go:         %s %s", b.Version, commit, date, b.GoVersion, b.Platform)
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version of this binary",
		Long: `Print what this keyless binary is: its release version ("devel" for a local
build), the commit it was built from, the build date (the commit's time:
release builds are reproducible) and the Go version and platform.

keyless --version prints the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeVersion(cmd.OutOrStdout(), readBuildInfo(), output)
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "text or json")
	return cmd
}

func writeVersion(w io.Writer, b server.BuildInfo, output string) error {
	switch output {
	case "text":
		_, err := fmt.Fprintln(w, versionText(b))
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	default:
		return usageErrorf("--output must be text or json, not %q", output)
	}
}
