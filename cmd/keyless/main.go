// Command keyless is the single binary of the keyless system: the server
// (STS, IAM, the OIDC issuer, the audit trail) and the client commands that
// talk to it or work on its files. main stays thin: it builds the cobra tree
// and maps errors to exit codes; the work lives in internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "keyless:", err)
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// exitCoder lets a command choose its exit status (e.g. audit verify
// distinguishes "tampered" from "could not read").
type exitCoder interface{ ExitCode() int }
