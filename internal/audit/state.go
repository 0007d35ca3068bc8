package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// sealState is the sealer's durable bookkeeping (journal/seal-state.json).
// It is replaced atomically, so every crash leaves either the old or the new
// version. Together with the intent it makes sealing idempotent:
//
//   - Before writing delivery or digest files, their paths are saved as the
//     intent. On recovery, files named by an intent are deleted (nothing
//     references them yet) and the work is redone from the journal.
//   - Once written, one state update clears the intent and records the
//     result (lastSealedSeq and the pending files, or the new digest).
//   - Journal segments are deleted only after that; on recovery, frames at or
//     below lastSealedSeq are skipped, so nothing is sealed twice.
type sealState struct {
	Version int `json:"version"`
	// LastSealedSeq is the highest journal sequence number written to a
	// delivery file.
	LastSealedSeq uint64 `json:"lastSealedSeq"`
	// ChainStart is the digestStartTime of the first digest.
	ChainStart time.Time `json:"chainStart"`
	// Pending are delivery files not yet covered by a digest, in delivery
	// order; their hashes are taken at write time.
	Pending []pendingFile `json:"pending"`
	// LastDigest is the newest digest written (the head).
	LastDigest *Head       `json:"lastDigest,omitempty"`
	Intent     *sealIntent `json:"intent,omitempty"`
}

type pendingFile struct {
	Path            string    `json:"path"`
	HashValue       string    `json:"hashValue"`
	Delivered       time.Time `json:"delivered"`
	OldestEventTime time.Time `json:"oldestEventTime"`
	NewestEventTime time.Time `json:"newestEventTime"`
	Events          int       `json:"events"`
	FirstSeq        uint64    `json:"firstSeq"`
	LastSeq         uint64    `json:"lastSeq"`
}

// sealIntent names files being written (relative paths).
type sealIntent struct {
	Files []string `json:"files"`
}

const stateVersion = 1

// ErrBadState reports an unreadable seal state.
var ErrBadState = errors.New("audit: corrupt seal state")

// loadState reads the seal state; (nil, nil) when there is none.
func loadState(dir string) (*sealState, error) {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(stateFile)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read seal state: %w", err)
	}
	var st sealState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%w: version %d", ErrBadState, st.Version)
	}
	return &st, nil
}

func saveState(sync syncFunc, dir string, st *sealState) error {
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("audit: encode seal state: %w", err)
	}
	return writeFileAtomic(sync, dir, filepath.Join(dir, filepath.FromSlash(tmpDir)),
		filepath.Join(dir, filepath.FromSlash(stateFile)), append(b, '\n'))
}

func (st *sealState) clone() *sealState {
	c := *st
	c.Pending = append([]pendingFile(nil), st.Pending...)
	if st.LastDigest != nil {
		h := *st.LastDigest
		c.LastDigest = &h
	}
	if st.Intent != nil {
		in := sealIntent{Files: append([]string(nil), st.Intent.Files...)}
		c.Intent = &in
	}
	return &c
}
