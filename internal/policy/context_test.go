package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestContext(t *testing.T) {
	c := NewContext(4)
	c.Set("aws:CurrentTime", "2024-01-01T00:00:00Z")
	c.Set("token.actions.githubusercontent.com:amr", "a", "b")
	c.Set("Empty")
	if v, ok := c.Get("AWS:currenttime"); !ok || !cmp.Equal(v, []string{"2024-01-01T00:00:00Z"}) {
		t.Errorf("case-insensitive Get = %v %v", v, ok)
	}
	if v, ok := c.Get("Token.Actions.GitHubUserContent.com:AMR"); !ok || !cmp.Equal(v, []string{"a", "b"}) {
		t.Errorf("multivalued Get = %v %v", v, ok)
	}
	if v, ok := c.Get("empty"); !ok || len(v) != 0 {
		t.Errorf("empty key = %v %v", v, ok)
	}
	if _, ok := c.Get("missing"); ok {
		t.Error("missing key found")
	}
	c.Set("AWS:CURRENTTIME", "later")
	if v, _ := c.Get("aws:CurrentTime"); !cmp.Equal(v, []string{"later"}) {
		t.Errorf("Set did not replace: %v", v)
	}
	if diff := cmp.Diff([]string{"aws:CurrentTime", "token.actions.githubusercontent.com:amr", "Empty"}, c.Keys()); diff != "" {
		t.Errorf("Keys (-want +got):\n%s", diff)
	}
	c.Delete("EMPTY")
	if _, ok := c.Get("Empty"); ok || c.Len() != 2 {
		t.Errorf("Delete: len %d", c.Len())
	}
	// Values are copied: changing the caller's slice changes nothing.
	vals := []string{"x"}
	c.Set("k", vals...)
	vals[0] = "y"
	if v, _ := c.Get("k"); v[0] != "x" {
		t.Errorf("Set did not copy: %v", v)
	}
	c.Reset()
	if c.Len() != 0 || len(c.Keys()) != 0 {
		t.Errorf("Reset left %v", c.Keys())
	}
	var nilCtx *Context
	if _, ok := nilCtx.Get("k"); ok || nilCtx.Len() != 0 || nilCtx.Keys() != nil {
		t.Error("nil context is not empty")
	}
}

func TestContextTypedSetters(t *testing.T) {
	var c Context
	c.SetBool("aws:SecureTransport", true)
	c.SetInt("n", -42)
	c.SetTime("aws:CurrentTime", time.Date(2024, 5, 6, 7, 8, 9, 123, time.FixedZone("x", 3600)))
	for k, want := range map[string]string{"aws:SecureTransport": "true", "n": "-42", "aws:CurrentTime": "2024-05-06T06:08:09Z"} {
		if v, ok := c.Get(k); !ok || v[0] != want {
			t.Errorf("%s = %v, want %s", k, v, want)
		}
	}
}

func TestContextBuildAllocations(t *testing.T) {
	c := NewContext(10)
	keys := []string{"token.actions.githubusercontent.com:sub", "token.actions.githubusercontent.com:aud", "aws:sourceip"}
	allocs := testing.AllocsPerRun(100, func() {
		c.Reset()
		for _, k := range keys {
			c.Set(k, "value")
		}
	})
	if allocs != 0 {
		t.Errorf("rebuilding a reset context with lower-case keys allocates %v times", allocs)
	}
}
