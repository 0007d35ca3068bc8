package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
//
// From version 2 the state is authenticated: MAC is an HMAC with the
// trail's key (Options.MACKey) over everything else, so its pending files'
// hashes, intents and sealed position cannot be rewritten by someone
// without the master key; Seq and HeadSeq bind it to the head kept outside
// the trail, so an older genuine copy put back is detected (auth.go).
type sealState struct {
	Version int `json:"version"`
	// Seq counts the saves of the state.
	Seq uint64 `json:"seq,omitempty"`
	// HeadSeq is the Seq of the newest head saved before this state: a head
	// store holding an older head was rolled back.
	HeadSeq uint64 `json:"headSeq,omitempty"`
	// LastSealedSeq is the highest journal sequence number written to a
	// delivery file.
	LastSealedSeq uint64 `json:"lastSealedSeq"`
	// SealedChain is the journal chain hash (hex) after frame LastSealedSeq;
	// "" is the zero hash.
	SealedChain string `json:"sealedChain,omitempty"`
	// LegacyThrough: frames up to this sequence number were written before
	// frames were chained, and are accepted without a chain.
	LegacyThrough uint64 `json:"legacyThrough,omitempty"`
	// ChainStart is the digestStartTime of the first digest.
	ChainStart time.Time `json:"chainStart"`
	// Pending are delivery files not yet covered by a digest, in delivery
	// order; their hashes are taken at write time.
	Pending []pendingFile `json:"pending"`
	// LastDigest is the newest digest written (the head).
	LastDigest *Head `json:"lastDigest,omitempty"`
	// Keys are the fingerprints of the keys that signed this chain's
	// digests.
	Keys []string `json:"keys,omitempty"`
	// AdoptedAt is when a trail written before authentication was adopted
	// (its contents up to then are trusted as found).
	AdoptedAt time.Time   `json:"adoptedAt,omitzero"`
	Intent    *sealIntent `json:"intent,omitempty"`
	MAC       string      `json:"mac,omitempty"`
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

const (
	stateVersion       = 2
	stateVersionLegacy = 1 // no MAC, no chain: adopted once on open
)

// ErrBadState reports an unreadable seal state.
var ErrBadState = errors.New("audit: corrupt seal state")

// loadState reads the seal state; (nil, nil) when there is none. Its MAC
// is not checked here (see checkStateMAC).
func loadState(r *trailRoot) (*sealState, error) {
	b, err := r.readFile(stateFile, shapeState)
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
	if st.Version != stateVersion && st.Version != stateVersionLegacy {
		return nil, fmt.Errorf("%w: version %d", ErrBadState, st.Version)
	}
	return &st, nil
}

// saveState writes st as it is (its Seq and MAC set by the caller).
func saveState(sync syncFunc, r *trailRoot, st *sealState) error {
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("audit: encode seal state: %w", err)
	}
	return r.writeFileAtomic(sync, stateFile, shapeState, append(b, '\n'))
}

// paths checks every path the state names.
func (st *sealState) paths() error {
	for _, p := range st.Pending {
		if err := checkShape(p.Path, shapeLog); err != nil {
			return fmt.Errorf("pending file: %w", err)
		}
	}
	if st.LastDigest != nil {
		if err := checkShape(st.LastDigest.DigestS3Object, shapeDigest); err != nil {
			return fmt.Errorf("last digest: %w", err)
		}
	}
	if st.Intent != nil {
		for _, f := range st.Intent.Files {
			if err := checkShape(f, shapeLog|shapeIndex|shapeDigest); err != nil {
				return fmt.Errorf("intent: %w", err)
			}
		}
	}
	return nil
}

func (st *sealState) clone() *sealState {
	c := *st
	c.Pending = append([]pendingFile(nil), st.Pending...)
	c.Keys = append([]string(nil), st.Keys...)
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
