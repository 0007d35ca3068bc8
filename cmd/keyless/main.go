// Command keyless is the single binary of the keyless system: the server
// (STS, IAM, the OIDC issuer, the audit trail) and the client commands that
// talk to it or work on its files. main stays thin: it builds the cobra tree
// and maps errors to exit codes; the work lives in internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/ciauth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, newRootCmd(), os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses. Commands may choose others (exitCoder): audit verify
// says 1 for a tampered trail and 2 when it cannot check.
const (
	exitFailure = 1
	exitUsage   = 2
)

// run executes the command line and returns the exit status: 0 on
// success; 2 for a usage error, whether cobra refused the command line
// before any command ran (unknown command or flag, a flag value that does
// not parse, a wrong number of arguments, conflicting flags) or a command
// returned one (usageErrorf, ciauth.ErrUsage); the status an exitCoder
// error chooses; 1 for every other failure.
func run(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer) int {
	// cobra adds help and completion when it executes; add them first so
	// that they get the same treatment.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd(args...)
	markCommandErrors(root)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "keyless:", err)
	_, ran := errors.AsType[*commandError](err)
	_, usage := errors.AsType[*usageError](err)
	if !ran || usage || errors.Is(err, ciauth.ErrUsage) {
		// Say where the usage is.
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	var ec exitCoder
	switch {
	case errors.As(err, &ec):
		return ec.ExitCode()
	case ran:
		return exitFailure
	}
	// cobra refused the command line.
	return exitUsage
}

// exitCoder lets a command choose its exit status (e.g. audit verify
// distinguishes "tampered" from "could not read").
type exitCoder interface{ ExitCode() int }

// commandError marks an error returned by a command's own code, as opposed
// to one cobra returns before any command runs (all usage errors).
type commandError struct{ err error }

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// markCommandErrors wraps the hooks of every command of the tree so that
// their errors are told apart from cobra's own.
func markCommandErrors(c *cobra.Command) {
	wrap := func(f func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
		if f == nil {
			return nil
		}
		return func(cmd *cobra.Command, args []string) error {
			if err := f(cmd, args); err != nil {
				return &commandError{err}
			}
			return nil
		}
	}
	if c.HasSubCommands() && !c.Runnable() {
		// A group: without this cobra prints its help and exits 0 for
		// "keyless admin typo".
		c.RunE = groupRunE
	}
	c.PersistentPreRunE = wrap(c.PersistentPreRunE)
	c.PreRunE = wrap(c.PreRunE)
	c.RunE = wrap(c.RunE)
	c.PostRunE = wrap(c.PostRunE)
	c.PersistentPostRunE = wrap(c.PersistentPostRunE)
	for _, sub := range c.Commands() {
		markCommandErrors(sub)
	}
}

// groupRunE runs a command group: its help alone, a usage error with
// arguments (an unknown subcommand).
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return usageErrorf("%s", msg)
}

// usageError is a command's own usage error (a flag value it refuses, a
// missing setting): exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf makes a *usageError with exit status 2.
func usageErrorf(format string, args ...any) error {
	return exitCode(exitUsage, &usageError{fmt.Errorf(format, args...)})
}
