package broker

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestUpstreamConnectionsReused: the default client keeps its connections
// to the upstream for the next calls. Two waves of n concurrent exchanges
// (the upstream holds each wave's answers until all n calls arrived) use n
// connections in all; with net/http's default of two idle connections per
// host, the second wave opened n-2 new ones (against AWS, as many TCP and
// TLS handshakes, and ephemeral ports in TIME-WAIT).
func TestUpstreamConnectionsReused(t *testing.T) {
	const n = 8
	var (
		mu      sync.Mutex
		conns   = map[string]bool{}
		arrived = make(chan struct{}, n)
		release chan struct{}
	)
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		wait := release
		mu.Unlock()
		arrived <- struct{}{}
		select {
		case <-wait:
		case <-time.After(5 * time.Second):
		}
		_, _ = w.Write([]byte(okBody))
	})
	for wave := range 2 {
		mu.Lock()
		release = make(chan struct{})
		wait := release
		mu.Unlock()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				if _, err := f.b.Exchange(context.Background(), request()); err != nil {
					errs <- err
				}
			})
		}
		for range n {
			select {
			case <-arrived:
			case <-time.After(5 * time.Second):
				t.Fatalf("wave %d: fewer than %d concurrent calls reached the upstream", wave, n)
			}
		}
		close(wait)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("wave %d: %v", wave, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != n {
		t.Errorf("2 waves of %d concurrent exchanges used %d upstream connections, want %d (kept for reuse)", n, len(conns), n)
	}
}
