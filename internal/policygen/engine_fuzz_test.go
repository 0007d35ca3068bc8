package policygen

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

func fuzzSeeds(f *testing.F) {
	for _, e := range twoProjects() {
		j, _ := json.Marshal(e)
		f.Add(j)
		f.Add(j[:len(j)/2])
	}
	golden, _ := filepath.Glob("../audit/testdata/golden/*.json")
	for _, g := range golden {
		if b, err := os.ReadFile(g); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"a":"x\"}","b":{"c":["]",{"d":"\\"}]},"e":1e5 , "f" : true}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r/s"},"eventSource":"s3.amazonaws.com","eventName":"GetObject"}`))
}

// FuzzRecordNoPanic: the engine's per-record path never panics, whatever
// the bytes (audit.Scan hands it valid JSON only, but nothing relies on it
// for memory safety).
func FuzzRecordNoPanic(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, by := range []byMode{{kind: 'r'}, {kind: 's'}, {kind: 'c', claim: "repository"}} {
			s := newWorkerState(newFilter(Options{}, by))
			s.record(data)
			m := mergeStates([]*workerState{s})
			resolve(m, Options{CollapseAfter: DefaultCollapseAfter}, by)
		}
	})
}

// FuzzRawJSONMembers: on a valid JSON object, rjEach yields exactly the
// members encoding/json sees, with the same raw values.
func FuzzRawJSONMembers(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil || bytes.IndexByte(data, '\\') >= 0 || !utf8.Valid(data) {
			return // not an object, escapes (keys are compared raw), or invalid UTF-8 (encoding/json replaces it)
		}
		seen := map[string]bool{}
		rjEach(data, func(k, v []byte) bool {
			seen[string(k)] = true
			want, ok := m[string(k)]
			if !ok {
				t.Fatalf("key %q not in %s", k, data)
			}
			// A duplicate key: encoding/json keeps the last value.
			if !bytes.Equal(want, v) && bytes.Count(data, append(append([]byte{'"'}, k...), '"')) < 2 {
				t.Fatalf("key %q: value %q, want %q", k, v, want)
			}
			return true
		})
		if len(seen) != len(m) {
			t.Fatalf("rjEach saw %d keys, encoding/json %d: %s", len(seen), len(m), data)
		}
	})
}
