package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTrailPath(t *testing.T) {
	at := time.Date(2025, 4, 16, 3, 46, 0, 0, time.UTC)
	for _, tc := range []struct {
		rel  string
		want parsedName
	}{
		{LogFilePath(testAccount, "eu-west-1", at, "AbCdEfGh12345678"), parsedName{kindLog, testAccount, "eu-west-1", at}},
		{DigestFilePath(testAccount, testRegion, "my_trail-1", at.Add(56*time.Second)), parsedName{kindDigest, testAccount, testRegion, at.Add(56 * time.Second)}},
		{"AWSLogs/123456789012/CloudTrail/us-east-1/2025/04/17/123456789012_CloudTrail_us-east-1_20250416T0346Z_AbCdEfGh12345678.json.gz", parsedName{}}, // date folder disagrees
		{"AWSLogs/123456789012/CloudTrail/us-east-1/2025/04/16/999999999999_CloudTrail_us-east-1_20250416T0346Z_AbCdEfGh12345678.json.gz", parsedName{}}, // account disagrees
		{"AWSLogs/123456789012/CloudTrail/us-east-1/2025/04/16/123456789012_CloudTrail_us-east-1_20250416T0346Z_short.json.gz", parsedName{}},
		{"AWSLogs/123456789012/CloudTrail/us-east-1/2025/04/16/123456789012_CloudTrail_us-east-1_20250416T0346Z_AbCdEfGh1234567!.json.gz", parsedName{}},
		{"AWSLogs/123456789012/CloudTrail/us-east-1/2025/04/16/123456789012_CloudTrail_us-east-1_20250416T0346Z_AbCdEfGh12345678.json", parsedName{}},
		{"AWSLogs/12345/CloudTrail/us-east-1/2025/04/16/x.json.gz", parsedName{}},
		{"AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2025/04/16/123456789012_CloudTrail_us-east-1_20250416T0346Z_AbCdEfGh12345678.json.gz", parsedName{}},
		{"journal/00000000000000000001.wal", parsedName{}},
	} {
		got := parseTrailPath(tc.rel)
		if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(parsedName{})); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.rel, d)
		}
	}
}

func TestSegmentNames(t *testing.T) {
	for _, seq := range []uint64{1, 42, 1<<63 + 5} {
		got, ok := parseSegmentName(segmentName(seq))
		if !ok || got != seq {
			t.Errorf("segment name of %d does not round-trip: %d %v", seq, got, ok)
		}
	}
	for _, bad := range []string{"1.wal", "0000000000000000000x.wal", "99999999999999999999.wal", "00000000000000000001.tmp"} {
		if _, ok := parseSegmentName(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRandomSuffix(t *testing.T) {
	seen := map[string]bool{}
	r := newRand(9)
	for range 200 {
		s, err := randomSuffix(r, 16)
		if err != nil || len(s) != 16 || !isAlnum(s) || seen[s] {
			t.Fatalf("suffix %q, %v", s, err)
		}
		seen[s] = true
	}
}

func TestDiffIndex(t *testing.T) {
	e := func(ids ...string) []indexEntry {
		var out []indexEntry
		for _, id := range ids {
			h := "00000000000000" + id[:1] + id[:1]
			if strings.HasSuffix(id, "'") {
				h = "ffffffffffffffff"
				id = strings.TrimSuffix(id, "'")
			}
			out = append(out, indexEntry{ID: id, Hash: h})
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		want, got []indexEntry
		changes   []eventChange
	}{
		{"same", e("a", "b", "c"), e("a", "b", "c"), nil},
		{"swap", e("a", "b", "c", "d"), e("a", "c", "b", "d"), []eventChange{{ProblemEventReordered, 1, "c"}}},
		{"moved to end", e("a", "b", "c", "d", "e"), e("b", "c", "d", "e", "a"), []eventChange{{ProblemEventReordered, 4, "a"}}},
		{"modified", e("a", "b", "c"), e("a", "b'", "c"), []eventChange{{ProblemEventModified, 1, "b"}}},
		{"inserted", e("a", "b"), e("a", "x", "b"), []eventChange{{ProblemEventInserted, 1, "x"}}},
		{"removed", e("a", "b", "c"), e("a", "c"), []eventChange{{ProblemEventRemoved, 1, "b"}}},
		{"duplicated", e("a", "b"), e("a", "b", "a"), []eventChange{{ProblemEventInserted, 2, "a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.changes, diffIndex(tc.want, tc.got)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestOpenValidatesOptions(t *testing.T) {
	good := testOptions(t, t.TempDir(), newClock(t0), &memHead{})
	for name, mod := range map[string]func(*Options){
		"no dir":      func(o *Options) { o.Dir = "" },
		"bad account": func(o *Options) { o.AccountID = "12345" },
		"bad region":  func(o *Options) { o.Region = "US East" },
		"no key":      func(o *Options) { o.SigningKey = SigningKey{} },
		"no head":     func(o *Options) { o.Head = nil },
	} {
		o := good
		mod(&o)
		if tr, err := Open(context.Background(), o); err == nil {
			tr.Close(context.Background())
			t.Errorf("%s: Open succeeded", name)
		}
	}
}
