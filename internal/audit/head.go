package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Head anchors the digest chain: the newest digest and its signature. AWS
// keeps the newest digest's signature in S3 object metadata, outside the
// digest files; keyless keeps it in a [HeadStore] outside the trail
// directory, so deleting or replacing the newest digest is detected.
type Head struct {
	// DigestS3Object is the newest digest's path relative to the trail
	// directory (its digestS3Object).
	DigestS3Object string    `json:"digestS3Object"`
	DigestEndTime  time.Time `json:"digestEndTime"`
	// HashValue is the hex SHA-256 of the uncompressed digest file.
	HashValue string `json:"hashValue"`
	// Signature is the hex SHA256withRSA signature (x-amz-meta-signature).
	Signature string `json:"signature"`
}

// ErrNoHead is returned by HeadStore.Load when no head was ever saved.
var ErrNoHead = errors.New("audit: no digest head saved")

// HeadStore keeps the newest digest's [Head] outside the trail directory
// (keyless's store keeps it next to the encrypted signing key).
type HeadStore interface {
	// Load returns the saved head, or ErrNoHead.
	Load(ctx context.Context) (Head, error)
	// Save replaces the saved head durably.
	Save(ctx context.Context, h Head) error
}

// FileHeadStore is a HeadStore in one JSON file, written atomically. Place
// it outside the trail directory.
type FileHeadStore struct {
	Path string
}

// Load implements HeadStore.
func (s FileHeadStore) Load(context.Context) (Head, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return Head{}, ErrNoHead
	}
	if err != nil {
		return Head{}, fmt.Errorf("audit: read head: %w", err)
	}
	var h Head
	if err := json.Unmarshal(b, &h); err != nil {
		return Head{}, fmt.Errorf("audit: decode head %s: %w", s.Path, err)
	}
	return h, nil
}

// Save implements HeadStore.
func (s FileHeadStore) Save(_ context.Context, h Head) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return fmt.Errorf("audit: encode head: %w", err)
	}
	dir := filepath.Dir(s.Path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("audit: head dir: %w", err)
	}
	return writeFileAtomic(defaultSync, dir, dir, s.Path, append(b, '\n'))
}
