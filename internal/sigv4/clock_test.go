package sigv4_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keylessci/keyless/internal/sigv4"
)

// TestZeroVerifierClock runs the zero-value Verifier (time.Now, 15 minutes)
// on synctest's fake clock: a request signed now stays valid for exactly the
// window, header-signed and presigned alike.
func TestZeroVerifierClock(t *testing.T) {
	for _, c := range []sdkCase{sdkCases[0], sdkCases[5]} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var v sigv4.Verifier
				c.at = time.Now()
				w := c.sign(t)
				if _, err := check(&v, w, c.secret); err != nil {
					t.Fatalf("fresh request refused: %v", err)
				}
				// The bubble's clock starts on a whole second, so the request
				// is now exactly 15 minutes old: the edge, still accepted.
				time.Sleep(15 * time.Minute)
				if _, err := check(&v, w, c.secret); err != nil {
					t.Fatalf("refused at the edge of the window: %v", err)
				}
				time.Sleep(time.Second)
				_, err := check(&v, w, c.secret)
				if !errors.Is(err, sigv4.ErrClockSkew) || awsCode(err) != "SignatureDoesNotMatch" {
					t.Fatalf("after the window: %v", err)
				}
			})
		})
	}
}
