package oidc

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestMemoryReplayCache(t *testing.T) {
	now := time.Unix(testTokenT, 0)
	c := NewMemoryReplayCache(2, func() time.Time { return now })
	ctx := context.Background()
	use := func(key string, exp time.Time) (bool, error) { return c.Use(ctx, key, exp) }

	steps := []struct {
		key     string
		expiry  time.Duration
		advance time.Duration
		fresh   bool
		err     error
	}{
		{key: "a", expiry: time.Minute, fresh: true},
		{key: "a", expiry: time.Minute, fresh: false},
		{key: "b", expiry: 10 * time.Minute, fresh: true},
		{key: "c", expiry: time.Minute, err: ErrReplayCacheFull},                // full, nothing expired
		{key: "c", expiry: time.Minute, advance: 61 * time.Second, fresh: true}, // "a" expired and purged
		{key: "a", expiry: time.Minute, err: ErrReplayCacheFull},                // b and c live
		{key: "b", expiry: time.Minute, fresh: false},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		fresh, err := use(s.key, now.Add(s.expiry))
		if !errors.Is(err, s.err) || (err == nil && fresh != s.fresh) {
			t.Fatalf("step %d Use(%q) = %v, %v; want %v, %v", i, s.key, fresh, err, s.fresh, s.err)
		}
	}
}

func TestErrorMatching(t *testing.T) {
	e := &Error{Code: CodeExpiredToken, Message: "m", Reason: "r", Rule: "V09", Err: ErrExpired}
	var err error = e
	if !errors.Is(err, &Error{Code: CodeExpiredToken}) || errors.Is(err, &Error{Code: CodeInvalidIdentityToken}) {
		t.Error("code matching broken")
	}
	if !errors.Is(err, ErrExpired) {
		t.Error("sentinel not reachable")
	}
	if got, want := e.Error(), "oidc: ExpiredTokenException (V09): r"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
