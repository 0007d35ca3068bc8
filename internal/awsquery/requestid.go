package awsquery

import (
	"io"

	"github.com/google/uuid"
)

// NewRequestID returns a random UUID (version 4) from rand, the shape AWS
// uses for request ids.
func NewRequestID(rand io.Reader) (string, error) {
	u, err := uuid.NewRandomFromReader(rand)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}
