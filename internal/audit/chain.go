package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// The journal chain. Every version-2 frame carries the chain hash after the
// frame before it; the hash after frame n is
//
//	SHA-256("keyless-journal-chain/1" || hash after frame n-1 || seq_n (uint64 LE) || SHA-256(payload_n))
//
// and the chain runs on across segments and sealing: the seal state keeps
// the hash after the last sealed frame (SealedChain), the authenticated
// head the hash at its checkpoint (JournalSeq, JournalChain). A frame
// removed, inserted, reordered or rewritten changes every hash after it, so
// a journal that lost synced frames, or whose frames were rewritten with
// fresh CRCs, no longer reaches the checkpoint. Version-1 frames (written
// before chaining, accepted up to the seal state's LegacyThrough) leave the
// chain unchanged.
//
// Payload hashes are taken by the callers of Start, in parallel; the journal
// writer only computes the short chain step.

const chainDomain = "keyless-journal-chain/1"

type chainHash = [32]byte

// chainNext is the chain hash after a frame, from the one before it.
func chainNext(prev *chainHash, seq uint64, payloadSum *[32]byte) chainHash {
	var b [len(chainDomain) + 32 + 8 + 32]byte
	n := copy(b[:], chainDomain)
	n += copy(b[n:], prev[:])
	binary.LittleEndian.PutUint64(b[n:], seq)
	n += 8
	copy(b[n:], payloadSum[:])
	return sha256.Sum256(b[:])
}

func chainHex(h chainHash) string { return hex.EncodeToString(h[:]) }

// parseChain decodes a hex chain hash; "" is the zero hash (a trail's chain
// starts from it, and legacy trails have none).
func parseChain(s string) (chainHash, error) {
	var h chainHash
	if s == "" {
		return h, nil
	}
	if len(s) != 64 {
		return h, fmt.Errorf("chain hash %q is not 64 hex characters", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("chain hash %q: %w", s, err)
	}
	return h, nil
}

// ErrChainBroken reports journal frames that do not continue the chain:
// frames were removed, inserted or rewritten.
var ErrChainBroken = errors.New("audit: journal chain broken")

// chainWalk follows the chain over journal frames in sequence order, from
// the seal state's position: the first frame after LastSealedSeq must
// carry SealedChain, and each chained frame the hash after the one before.
type chainWalk struct {
	sealed        uint64    // LastSealedSeq
	sealedChain   chainHash // hash after it
	legacyThrough uint64    // unchained frames are accepted up to here
	// Hash is the chain hash after the last frame walked (valid when
	// Known); Last is that frame's sequence number.
	Hash  chainHash
	Known bool
	Last  uint64
}

func newChainWalk(st *sealState) (*chainWalk, error) {
	h, err := parseChain(st.SealedChain)
	if err != nil {
		return nil, fmt.Errorf("%w: sealedChain: %w", ErrBadState, err)
	}
	return &chainWalk{sealed: st.LastSealedSeq, sealedChain: h, legacyThrough: st.LegacyThrough}, nil
}

// step checks frame f (its sequence continuity is checked by the caller)
// and moves past it; sum is SHA-256(f.Payload), which callers also use for
// the event index. Frames at or below the sealed position are already
// covered by the seal state; the chain is still followed through them, and
// must arrive at SealedChain.
func (c *chainWalk) step(f frame, sum *[32]byte) error {
	switch {
	case !f.Chained:
		if f.Seq > c.legacyThrough && f.Seq > c.sealed {
			return fmt.Errorf("%w: frame seq %d is in the old unchained format, which is accepted only for frames written before the upgrade (through seq %d)",
				ErrChainBroken, f.Seq, max(c.legacyThrough, c.sealed))
		}
		if !c.Known && f.Seq == c.sealed+1 {
			c.Hash, c.Known = c.sealedChain, true
		}
	default:
		expect, known := c.Hash, c.Known
		if !known && f.Seq == c.sealed+1 {
			expect, known = c.sealedChain, true
		}
		if known && f.Prev != expect {
			if f.Seq == c.sealed+1 && !c.Known {
				return fmt.Errorf("%w: frame seq %d does not continue the chain of the sealed events (through seq %d)", ErrChainBroken, f.Seq, c.sealed)
			}
			return fmt.Errorf("%w: frame seq %d does not continue the chain of frame %d", ErrChainBroken, f.Seq, c.Last)
		}
		c.Hash, c.Known = chainNext(&f.Prev, f.Seq, sum), true
	}
	c.Last = f.Seq
	if f.Seq == c.sealed && c.Known && c.Hash != c.sealedChain {
		return fmt.Errorf("%w: the frames through seq %d do not hash to the chain the seal state recorded when sealing them", ErrChainBroken, f.Seq)
	}
	return nil
}

// resync restarts the walk at f, after a break has been reported, so one
// edit is reported once and not at every later frame.
func (c *chainWalk) resync(f frame, sum *[32]byte) {
	if f.Chained {
		c.Hash, c.Known = chainNext(&f.Prev, f.Seq, sum), true
	}
	c.Last = f.Seq
}
