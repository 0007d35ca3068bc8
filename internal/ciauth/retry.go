package ciauth

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Backoff is a bounded exponential backoff with full jitter: before retry n
// (0-based) it waits a uniformly random time in [0, min(Cap, Base·2ⁿ)).
// Full jitter spreads the retries of many CI jobs that failed together
// (a throttled STS, an IdP blip) instead of synchronising them.
type Backoff struct {
	Base        time.Duration // first window; 1s when zero
	Cap         time.Duration // largest window; 20s when zero
	MaxAttempts int           // total attempts including the first; 5 when zero
}

// The policy used when Options leave it unset: at most five attempts and at
// most 1+2+4+8 = 15 s of waiting, well inside a GitHub token's lifetime.
const (
	defaultBackoffBase     = time.Second
	defaultBackoffCap      = 20 * time.Second
	defaultBackoffAttempts = 5
)

func (b Backoff) orDefault(attempts int) Backoff {
	if b.Base <= 0 {
		b.Base = defaultBackoffBase
	}
	if b.Cap <= 0 {
		b.Cap = defaultBackoffCap
	}
	if b.MaxAttempts <= 0 {
		b.MaxAttempts = attempts
	}
	return b
}

// Window is the upper bound of the wait before retry n.
func (b Backoff) Window(n int) time.Duration {
	w := b.Base
	for i := 0; i < n && w < b.Cap; i++ {
		w *= 2
	}
	return min(w, b.Cap)
}

// Delay draws the wait before retry n from rnd.
func (b Backoff) Delay(n int, rnd io.Reader) (time.Duration, error) {
	w := b.Window(n)
	if w <= 0 {
		return 0, nil
	}
	var buf [8]byte
	if _, err := io.ReadFull(rnd, buf[:]); err != nil {
		return 0, fmt.Errorf("drawing backoff jitter: %w", err)
	}
	// Scale a uniform 64-bit value into [0, w) without modulo bias worth
	// caring about at these magnitudes.
	frac := float64(binary.BigEndian.Uint64(buf[:])>>11) / float64(1<<53)
	return time.Duration(frac * float64(w)), nil
}

// sleepCtx waits d or until ctx ends. Timers are used (not a clock) so
// testing/synctest can drive it.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryLoop calls fn until it succeeds, reports a non-retryable failure, the
// attempts run out or ctx ends. onRetry (optional) hears about each wait.
func retryLoop(ctx context.Context, b Backoff, rnd io.Reader, sleep func(context.Context, time.Duration) error,
	onRetry func(attempt int, wait time.Duration, err error), fn func(context.Context) (retry bool, err error)) error {
	b = b.orDefault(defaultBackoffAttempts)
	if rnd == nil {
		rnd = rand.Reader
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	for attempt := 1; ; attempt++ {
		retry, err := fn(ctx)
		if err == nil {
			return nil
		}
		if !retry || attempt >= b.MaxAttempts || ctx.Err() != nil {
			return err
		}
		wait, derr := b.Delay(attempt-1, rnd)
		if derr != nil {
			return fmt.Errorf("%w (and %w)", err, derr)
		}
		if onRetry != nil {
			onRetry(attempt, wait, err)
		}
		if serr := sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (gave up waiting to retry: %w)", err, serr)
		}
	}
}
