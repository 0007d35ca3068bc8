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

// Head anchors the trail: the newest digest and its signature, and a
// checkpoint of the journal. AWS keeps the newest digest's signature in S3
// object metadata, outside the digest files; keyless keeps the head in a
// [HeadStore] outside the trail directory, so deleting or replacing the
// newest digest is detected.
//
// A trail opened with a MAC key writes authenticated heads: MAC is an
// HMAC-SHA256 (key Options.MACKey) over every other field, so a head store
// rewritten by someone without the key no longer verifies, and the other
// fields bind the head to the trail (see auth.go). Heads written before
// authentication existed have only the four digest fields; they are
// adopted (authenticated as found) when the trail is next opened.
type Head struct {
	// DigestS3Object is the newest digest's path relative to the trail
	// directory (its digestS3Object); "" before the first digest.
	DigestS3Object string    `json:"digestS3Object"`
	DigestEndTime  time.Time `json:"digestEndTime"`
	// HashValue is the hex SHA-256 of the uncompressed digest file.
	HashValue string `json:"hashValue"`
	// Signature is the hex SHA256withRSA signature (x-amz-meta-signature).
	Signature string `json:"signature"`

	// Seq counts the saves of the head: it only grows.
	Seq uint64 `json:"seq,omitempty"`
	// StateSeq is the seal state's Seq when the head was saved: a seal
	// state older than that was put back from an older copy.
	StateSeq uint64 `json:"stateSeq,omitempty"`
	// JournalSeq and JournalChain are the checkpoint: the journal held the
	// frames through JournalSeq, fsynced, and the chain hash after them
	// was JournalChain (hex). A journal that no longer reaches it lost
	// acknowledged events.
	JournalSeq   uint64 `json:"journalSeq,omitempty"`
	JournalChain string `json:"journalChain,omitempty"`
	// Keys are the fingerprints of every key that signed a digest of the
	// chain: the digest public keys the head vouches for.
	Keys []string `json:"keys,omitempty"`
	// SavedAt is when the head was saved: a running trail saves it every
	// CheckpointInterval while events arrive and with every digest (hourly).
	SavedAt time.Time `json:"savedAt,omitzero"`
	// AdoptedAt is when a trail written before authentication was adopted.
	AdoptedAt time.Time `json:"adoptedAt,omitzero"`
	MAC       string    `json:"mac,omitempty"`
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
	f, err := os.CreateTemp(dir, ".head-*.tmp")
	if err != nil {
		return fmt.Errorf("audit: save head: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.Path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("audit: save head: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: save head: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: save head: %w", err)
	}
	return nil
}
