package store

import "context"

// A commit hook makes a change and its record one decision: the backend
// calls it after a write transaction's statements succeeded and before it
// commits, and rolls the transaction back when the hook fails. The server
// records a mutating call's audit event durably from the hook, so that no
// change is applied without its record ("nothing changes without its
// record") — and a change whose record cannot be written is not applied.

type commitHookKey struct{}

// CommitHook is called before a write transaction under its context
// commits. It runs while the transaction holds the write lock: it must not
// use the store.
type CommitHook func(ctx context.Context) error

// WithCommitHook returns a context whose write transactions call hook
// before they commit. Every backend honours it for every write it makes
// under that context.
func WithCommitHook(ctx context.Context, hook CommitHook) context.Context {
	return context.WithValue(ctx, commitHookKey{}, hook)
}

// CommitHookFrom returns the hook of ctx, or nil. Backends call it.
func CommitHookFrom(ctx context.Context) CommitHook {
	h, _ := ctx.Value(commitHookKey{}).(CommitHook)
	return h
}
