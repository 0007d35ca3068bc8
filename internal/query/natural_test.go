package query

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestNaturalSortAWSExample sorts the example list of AWS's `sort` page
// (CWL_QuerySyntax-Sort): non-numbers in natural order, then numbers.
func TestNaturalSortAWSExample(t *testing.T) {
	want := []string{"!:", "#", "*%04", "0#", "5A", "111A", "2345_", "@", "@_", "A", "A9876fghj", "a12345hfh", "0", "1", "2", "3"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		got := slices.Clone(want)
		r.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortStableFunc(got, func(a, b string) int { return sortCompare(strVal(a), strVal(b)) })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("ascending sort (-want +got):\n%s", diff)
		}
	}
}

func TestNaturalCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"file9", "file10", -1},
		{"i-9", "i-10", -1},
		{"build-2", "build-2", 0},
		{"abc", "abd", -1},
		{"ab", "abc", -1},
		{"05", "5", 1}, // same value, longer run sorts later
		{"é1", "e1", 1},
	} {
		if got := naturalCompare(tc.a, tc.b); got != tc.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := naturalCompare(tc.b, tc.a); got != -tc.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

// TestNeedle: the anchored search finds a text wherever it is, whichever
// of its bytes is the anchor, and never reads outside the haystack.
func TestNeedle(t *testing.T) {
	for _, tc := range []struct {
		needle, hay string
		want        bool
	}{
		{"AssumeRole", `{"eventName":"AssumeRoleWithWebIdentity"}`, true},
		{"AssumeRole", `{"eventName":"AssumedRole"}`, false},
		{"AssumeRole", `AssumeRole`, true},
		{"AssumeRole", `ssumeRole`, false},
		{"AssumeRole", `RRRRAssumeRol`, false},
		{"AssumeRole", `Role AssumeRole`, true},
		{"ab", "xxab", true},
		{"ab", "b", false},
		{"x", "abc", false},
		{"", "abc", true},
		{"Δx", "aΔx", true},
	} {
		n := newNeedle(tc.needle)
		if got := n.in([]byte(tc.hay)); got != tc.want {
			t.Errorf("needle %q (anchor %d) in %q = %v, want %v", tc.needle, n.k, tc.hay, got, tc.want)
		}
	}
	if n := newNeedle("AssumeRole"); n.b[n.k] != 'R' {
		t.Errorf("anchor of AssumeRole is %q, want the rarer R", n.b[n.k])
	}
}
