package ciauth

import (
	"errors"
	"testing"
)

func TestBackoffFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env     string
		in      int
		want    int
		wantErr bool
	}{
		{env: "", want: 0}, {env: "1", want: 1}, {env: "3", want: 3}, {env: "3", in: 7, want: 7},
		{env: "0", wantErr: true}, {env: "many", wantErr: true}, {env: "21", wantErr: true},
	} {
		got, err := backoffFromEnv(Backoff{MaxAttempts: tc.in}, Env{"AWS_MAX_ATTEMPTS": tc.env})
		if tc.wantErr {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("AWS_MAX_ATTEMPTS=%q: err = %v, want a usage error", tc.env, err)
			}
			continue
		}
		if err != nil || got.MaxAttempts != tc.want {
			t.Errorf("AWS_MAX_ATTEMPTS=%q over %d: %d, %v; want %d", tc.env, tc.in, got.MaxAttempts, err, tc.want)
		}
	}
}
