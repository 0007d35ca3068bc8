package query

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsQueriesRun: every ```query block of docs/audit-query.md parses
// and runs over the real CloudTrail events, so the examples users copy
// stay true.
func TestDocsQueriesRun(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "audit-query.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	for line := range strings.Lines(string(raw)) {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```query":
			cur = new(strings.Builder)
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line)
		}
	}
	if len(blocks) < 4 {
		t.Fatalf("found %d query blocks in docs/audit-query.md, want the examples (>= 4)", len(blocks))
	}
	real := filepath.Join("..", "audit", "testdata", "real", "invictus")
	for _, src := range blocks {
		q, err := Parse(src)
		if err != nil {
			if se, ok := err.(*SyntaxError); ok {
				t.Errorf("docs query does not parse: %v\n%s", err, se.Caret(src))
			} else {
				t.Errorf("docs query does not parse: %v", err)
			}
			continue
		}
		if _, err := q.Run(context.Background(), []string{real}, Options{}); err != nil {
			t.Errorf("docs query %q: %v", src, err)
		}
	}
}
