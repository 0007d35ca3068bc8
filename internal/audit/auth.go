package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Authentication of what the digests' signatures do not cover.
//
// Signed digests protect delivery files once a digest lists them. The rest
// is kept in plain files and rows that someone who can write the data
// directory could rewrite: the head (newest digest, in the head store), the
// seal state (pending files and their hashes, intents, sealed position) and
// the journal. With the key in Options.MACKey (derived from the master key,
// which such a writer does not have):
//
//   - the head and the seal state carry an HMAC-SHA256 over their contents;
//   - the journal's frames are chained (chain.go) and the head records a
//     checkpoint of the chain, saved every CheckpointInterval while events
//     arrive, at each seal, each digest and on Close (never per fsync);
//   - each of head and state records the other's save counter, so putting
//     back an older genuine copy of one of them is detected.
//
// What stays possible without the key: destroying the trail (detected
// only as an absence), putting back older genuine copies of the head AND
// the state AND the trail files together (an older consistent trail; Verify
// reports the head's age), and removing the events written after the last
// checkpoint (at most CheckpointInterval of events before a crash).

const (
	headMACDomain  = "keyless-audit-head/1\n"
	stateMACDomain = "keyless-audit-seal-state/1\n"
	// MACKeySize is the size of Options.MACKey and VerifyOptions.MACKey.
	MACKeySize = 32
)

// Errors opening a trail whose authenticated state does not hold.
var (
	// ErrUnauthenticated: the head or the seal state does not carry a valid
	// MAC (edited, replaced, or another master key).
	ErrUnauthenticated = errors.New("audit: trail state does not authenticate")
	// ErrRolledBack: the head or the seal state is older than the other
	// records (an older copy was put back, or one was deleted).
	ErrRolledBack = errors.New("audit: trail state rolled back")
	// ErrJournalLost: the journal no longer holds acknowledged events that
	// the authenticated checkpoint covers.
	ErrJournalLost = errors.New("audit: journal lost acknowledged events")
)

// operatorHint ends the errors that stop Open on evidence of tampering.
const operatorHint = "keyless will not extend this trail. Keep a copy of the trail directory as evidence and run `keyless audit verify` for the full report; " +
	"then restore the trail directory and the store from a backup taken after this point, or move the trail directory aside and run `keyless audit reset-head` to start a new trail"

var errNoMAC = errors.New("no MAC (written before authentication)")

func macOf(key []byte, domain string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("audit: encode for MAC: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil)), nil
}

func checkMAC(key []byte, domain string, v any, got string) error {
	if got == "" {
		return errNoMAC
	}
	want, err := macOf(key, domain, v)
	if err != nil {
		return err
	}
	g, err := hex.DecodeString(got)
	w, _ := hex.DecodeString(want)
	if err != nil || !hmac.Equal(g, w) {
		return errors.New("MAC does not match (edited, or another master key)")
	}
	return nil
}

// headMAC is the MAC of h over every field but MAC.
func headMAC(key []byte, h Head) (string, error) {
	h.MAC = ""
	return macOf(key, headMACDomain, h)
}

func checkHeadMAC(key []byte, h Head) error {
	mac := h.MAC
	h.MAC = ""
	return checkMAC(key, headMACDomain, h, mac)
}

func stateMAC(key []byte, st *sealState) (string, error) {
	c := *st
	c.MAC = ""
	return macOf(key, stateMACDomain, &c)
}

func checkStateMAC(key []byte, st *sealState) error {
	if st.Version == stateVersionLegacy {
		return errNoMAC
	}
	c := *st
	c.MAC = ""
	return checkMAC(key, stateMACDomain, &c, st.MAC)
}

// writeState saves st as the next version of the state: Seq advanced, the
// newest head's Seq recorded, MAC set.
func (t *Trail) writeState(st *sealState) error {
	st.Version = stateVersion
	st.Seq = 1
	if t.state != nil {
		st.Seq = t.state.Seq + 1
	}
	st.HeadSeq = t.head.Seq
	mac, err := stateMAC(t.opts.MACKey, st)
	if err != nil {
		return err
	}
	st.MAC = mac
	if err := saveState(t.sync, t.root, st); err != nil {
		return err
	}
	t.state = st
	return nil
}

// chainPos is a position of the journal chain.
type chainPos struct {
	seq  uint64
	hash chainHash
}

// setSynced records that the journal is durable through pos (the writer
// calls it after each fsync).
func (t *Trail) setSynced(pos chainPos) {
	t.posMu.Lock()
	t.synced = pos
	t.posMu.Unlock()
}

func (t *Trail) syncedPos() chainPos {
	t.posMu.Lock()
	defer t.posMu.Unlock()
	return t.synced
}

// checkpointPos is the checkpoint the next head records: the synced
// journal position, or the sealed one when nothing newer is synced.
// Callers hold sealMu.
func (t *Trail) checkpointPos() (chainPos, error) {
	pos := t.syncedPos()
	if pos.seq <= t.state.LastSealedSeq {
		h, err := parseChain(t.state.SealedChain)
		if err != nil {
			return chainPos{}, fmt.Errorf("%w: sealedChain: %w", ErrBadState, err)
		}
		return chainPos{seq: t.state.LastSealedSeq, hash: h}, nil
	}
	return pos, nil
}

// saveHead saves an authenticated head for the current state and journal
// checkpoint. Callers hold sealMu.
func (t *Trail) saveHead(ctx context.Context) error {
	pos, err := t.checkpointPos()
	if err != nil {
		return err
	}
	h := Head{
		Seq: t.head.Seq + 1, StateSeq: t.state.Seq, JournalSeq: pos.seq,
		Keys: slices.Clone(t.state.Keys), SavedAt: t.opts.Now().UTC(), AdoptedAt: t.state.AdoptedAt,
	}
	if pos.seq > 0 {
		h.JournalChain = chainHex(pos.hash)
	}
	if d := t.state.LastDigest; d != nil {
		h.DigestS3Object, h.DigestEndTime, h.HashValue, h.Signature = d.DigestS3Object, d.DigestEndTime, d.HashValue, d.Signature
	}
	if h.MAC, err = headMAC(t.opts.MACKey, h); err != nil {
		return err
	}
	if err := t.opts.Head.Save(ctx, h); err != nil {
		t.headDirty = true
		return fmt.Errorf("audit: save digest head: %w", err)
	}
	t.head, t.headDirty = h, false
	t.stats.checkpoints.Add(1)
	return nil
}

// checkpoint saves the head when the synced journal has moved past the
// last checkpoint (the background checkpointer calls it).
func (t *Trail) checkpoint(ctx context.Context) error {
	t.sealMu.Lock()
	defer t.sealMu.Unlock()
	pos, err := t.checkpointPos()
	if err != nil {
		return err
	}
	if pos.seq == t.head.JournalSeq && !t.headDirty {
		return nil
	}
	return t.saveHead(ctx)
}

func (t *Trail) runCheckpointer() {
	defer close(t.checkpointerDone)
	tick := time.NewTicker(t.opts.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stopCheckpointer:
			return
		case <-tick.C:
			if err := t.checkpoint(context.Background()); err != nil {
				t.stats.sealErrors.Add(1)
				t.log.Error("audit checkpoint failed", "err", err)
			}
		}
	}
}

// openAuth checks, when the trail is opened, the seal state and the head
// store's head against the MAC key and against each other. A state in the
// old unauthenticated format with an unauthenticated (or no) head is
// adopted at the end of recovery. fresh: there was no seal state.
func (t *Trail) openAuth(ctx context.Context, fresh bool) error {
	st := t.state
	h, err := t.opts.Head.Load(ctx)
	noHead := errors.Is(err, ErrNoHead)
	if err != nil && !noHead {
		return fmt.Errorf("audit: load digest head: %w", err)
	}
	legacy := st.Version == stateVersionLegacy
	if fresh {
		if !noHead {
			// The trail lost everything the head store knows about
			// (restored from an old backup, emptied, or state deleted):
			// continuing would fork the chain.
			return fmt.Errorf("%w: the head store has head #%d (digest %q, saved %s) but the trail has no seal state. %s",
				ErrHeadAhead, h.Seq, h.DigestS3Object, fmtTime(h.SavedAt), operatorHint)
		}
		return nil
	}
	if !legacy {
		if err := checkStateMAC(t.opts.MACKey, st); err != nil {
			return fmt.Errorf("%w: %s: %w. %s", ErrUnauthenticated, stateFile, err, operatorHint)
		}
	}
	switch {
	case noHead:
		if !legacy && st.HeadSeq > 0 {
			return fmt.Errorf("%w: the head store has no head, but the seal state was saved after head #%d: the head was deleted. %s",
				ErrRolledBack, st.HeadSeq, operatorHint)
		}
	case h.MAC == "":
		if !legacy {
			return fmt.Errorf("%w: the head store's head has no MAC but the seal state is authenticated: the head was replaced. %s",
				ErrUnauthenticated, operatorHint)
		}
	default:
		if err := checkHeadMAC(t.opts.MACKey, h); err != nil {
			return fmt.Errorf("%w: the head store's head: %w. %s", ErrUnauthenticated, err, operatorHint)
		}
		if legacy {
			return fmt.Errorf("%w: %s has no MAC but the head is authenticated: the seal state was replaced. %s",
				ErrUnauthenticated, stateFile, operatorHint)
		}
		if h.StateSeq > st.Seq {
			return fmt.Errorf("%w: %s is version #%d but head #%d (saved %s) was saved after version #%d: an older seal state was put back. %s",
				ErrRolledBack, stateFile, st.Seq, h.Seq, fmtTime(h.SavedAt), h.StateSeq, operatorHint)
		}
		if st.HeadSeq > h.Seq {
			return fmt.Errorf("%w: the head store has head #%d but %s was saved after head #%d: an older head was put back. %s",
				ErrRolledBack, h.Seq, stateFile, st.HeadSeq, operatorHint)
		}
	}
	if d := st.LastDigest; d != nil && !legacy {
		// The authenticated state's newest digest must be there: a head
		// put back from before it would otherwise hide its deletion.
		if err := checkShape(d.DigestS3Object, shapeDigest); err != nil {
			return fmt.Errorf("audit: %s: last digest: %w", stateFile, err)
		}
		raw, err := readGzipFile(t.root, d.DigestS3Object, shapeDigest)
		if err != nil {
			return fmt.Errorf("%w: the newest digest %s, recorded by %s, cannot be read: %w. %s", ErrRolledBack, d.DigestS3Object, stateFile, err, operatorHint)
		}
		if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != d.HashValue {
			return fmt.Errorf("%w: the newest digest %s is not the one %s recorded. %s", ErrRolledBack, d.DigestS3Object, stateFile, operatorHint)
		}
	}
	if !noHead {
		if err := checkShape(h.DigestS3Object, shapeDigest); h.DigestS3Object != "" && err != nil {
			return fmt.Errorf("audit: the head: %w", err)
		}
		if h.DigestS3Object != "" && (st.LastDigest == nil || h.DigestEndTime.After(st.LastDigest.DigestEndTime)) {
			// The trail lost digests the head store knows about.
			return fmt.Errorf("%w: head %s. %s", ErrHeadAhead, h.DigestS3Object, operatorHint)
		}
		t.head = h
	}
	t.adopting = legacy
	return nil
}

// adopt authenticates a trail written before authentication existed, as
// found: its journal so far is accepted without a chain, its digest keys
// are those its chain names. Recovery has checked it otherwise.
func (t *Trail) adopt(lastSeq uint64) *sealState {
	st := t.state.clone()
	st.AdoptedAt = t.opts.Now().UTC()
	st.LegacyThrough = max(lastSeq, st.LastSealedSeq)
	st.SealedChain = ""
	st.Keys = t.chainKeys()
	t.log.Warn("audit: adopting a trail written before its head and seal state were authenticated; from now on they are, and rollbacks before this moment cannot be detected",
		"journalThrough", st.LegacyThrough, "digestKeys", st.Keys, "lastDigest", digestName(st.LastDigest))
	return st
}

// chainKeys lists the fingerprints of the keys of the digests reachable
// from the state's newest digest.
func (t *Trail) chainKeys() []string {
	var keys []string
	seen := map[string]bool{}
	cur := ""
	if t.state.LastDigest != nil {
		cur = t.state.LastDigest.DigestS3Object
	}
	for cur != "" && !seen[cur] {
		seen[cur] = true
		raw, err := readGzipFile(t.root, cur, shapeDigest)
		if err != nil {
			t.log.Warn("audit: adopting: digest unreadable; the chain's older keys are not adopted", "digest", cur, "err", err)
			break
		}
		d, err := ParseDigest(raw)
		if err != nil {
			t.log.Warn("audit: adopting: digest malformed; the chain's older keys are not adopted", "digest", cur, "err", err)
			break
		}
		if !slices.Contains(keys, d.DigestPublicKeyFingerprint) {
			keys = append(keys, d.DigestPublicKeyFingerprint)
		}
		cur = ""
		if d.PreviousDigestS3Object != nil {
			cur = *d.PreviousDigestS3Object
		}
	}
	slices.Sort(keys)
	return keys
}

func digestName(h *Head) string {
	if h == nil {
		return ""
	}
	return h.DigestS3Object
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}
