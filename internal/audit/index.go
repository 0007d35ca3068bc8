package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// The event index of a delivery file lists, in file order, each record's
// eventID and a short hash of its JSON. The digest's file hash is what proves
// a file intact; the index only explains a mismatch (which event was edited,
// inserted, removed or moved). It is not signed: a forged index can mislead
// the explanation but cannot hide the mismatch.
const indexHeader = "keyless-event-index 1"

type indexEntry struct {
	ID   string
	Hash string // first 16 hex characters of SHA-256 of the compact record
}

func recordHash(compact []byte) string {
	sum := sha256.Sum256(compact)
	return hex.EncodeToString(sum[:8])
}

func encodeIndex(entries []indexEntry) []byte {
	var b bytes.Buffer
	b.WriteString(indexHeader + "\n")
	for _, e := range entries {
		b.WriteString(e.ID)
		b.WriteByte(' ')
		b.WriteString(e.Hash)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ErrBadIndex reports an unreadable event index.
var ErrBadIndex = errors.New("audit: malformed event index")

func parseIndex(data []byte) ([]indexEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	if !sc.Scan() || sc.Text() != indexHeader {
		return nil, fmt.Errorf("%w: bad header", ErrBadIndex)
	}
	var out []indexEntry
	for sc.Scan() {
		id, h, ok := strings.Cut(sc.Text(), " ")
		if !ok || id == "" || !isHexLen(h, 16) {
			return nil, fmt.Errorf("%w: line %d", ErrBadIndex, len(out)+2)
		}
		out = append(out, indexEntry{ID: id, Hash: h})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadIndex, err)
	}
	return out, nil
}

// indexRecords computes index entries for raw records as found in a file.
func indexRecords(records []json.RawMessage) []indexEntry {
	out := make([]indexEntry, len(records))
	var buf bytes.Buffer
	for i, r := range records {
		buf.Reset()
		c := []byte(r)
		if err := json.Compact(&buf, r); err == nil {
			c = buf.Bytes()
		}
		var id struct {
			EventID string `json:"eventID"`
		}
		_ = json.Unmarshal(r, &id) // an undecodable record keeps an empty id
		out[i] = indexEntry{ID: id.EventID, Hash: recordHash(c)}
	}
	return out
}

// eventChange is one difference between the index written at sealing time
// (want) and a file's records (got).
type eventChange struct {
	Kind  ProblemKind
	Index int // in got for modified/inserted/moved; in want for removed
	ID    string
}

// diffIndex explains how got differs from want. Moved events are those
// outside a longest run of common events kept in order, so one event moved
// far is reported once, not every event it jumped over.
func diffIndex(want, got []indexEntry) []eventChange {
	wantPos := make(map[string]int, len(want))
	for i, e := range want {
		wantPos[e.ID] = i
	}
	var changes []eventChange
	seen := make(map[string]bool, len(got))
	type common struct{ gotIdx, wantIdx int }
	var commons []common
	for i, e := range got {
		j, ok := wantPos[e.ID]
		switch {
		case !ok || seen[e.ID]:
			changes = append(changes, eventChange{Kind: ProblemEventInserted, Index: i, ID: e.ID})
			continue
		case want[j].Hash != e.Hash:
			changes = append(changes, eventChange{Kind: ProblemEventModified, Index: i, ID: e.ID})
		}
		seen[e.ID] = true
		commons = append(commons, common{i, j})
	}
	for i, e := range want {
		if !seen[e.ID] {
			changes = append(changes, eventChange{Kind: ProblemEventRemoved, Index: i, ID: e.ID})
		}
	}
	// Longest increasing subsequence of want positions, in got order.
	seq := make([]int, len(commons))
	for i, c := range commons {
		seq[i] = c.wantIdx
	}
	for _, k := range notInLIS(seq) {
		c := commons[k]
		changes = append(changes, eventChange{Kind: ProblemEventReordered, Index: c.gotIdx, ID: got[c.gotIdx].ID})
	}
	sort.SliceStable(changes, func(a, b int) bool { return changes[a].Index < changes[b].Index })
	return changes
}

// notInLIS returns the positions of seq outside one longest strictly
// increasing subsequence (O(n log n)).
func notInLIS(seq []int) []int {
	if len(seq) == 0 {
		return nil
	}
	tails := []int{} // tails[k] = index in seq of the smallest tail of a run of length k+1
	prev := make([]int, len(seq))
	for i, v := range seq {
		k := sort.Search(len(tails), func(k int) bool { return seq[tails[k]] >= v })
		if k > 0 {
			prev[i] = tails[k-1]
		} else {
			prev[i] = -1
		}
		if k == len(tails) {
			tails = append(tails, i)
		} else {
			tails[k] = i
		}
	}
	in := make([]bool, len(seq))
	for i := tails[len(tails)-1]; i >= 0; i = prev[i] {
		in[i] = true
	}
	var out []int
	for i, ok := range in {
		if !ok {
			out = append(out, i)
		}
	}
	return out
}
