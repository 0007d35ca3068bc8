package server

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/keylessci/keyless/internal/issuer"
)

// sampleConfig is the documented sample configuration.
const sampleConfig = "../../docs/keyless.yaml"

// TestSampleConfig: docs/keyless.yaml loads, validates, and says what the
// defaults are (loading it changes nothing), so it cannot drift from the
// code; its commented issuer example loads too and shows the issuer
// defaults.
func TestSampleConfig(t *testing.T) {
	c := Defaults()
	if err := c.LoadFile(sampleConfig); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Defaults(), c, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("the sample's values are not the defaults (-defaults +sample):\n%s", diff)
	}
	example := sampleIssuerExample(t)
	var withIssuer Config
	if err := decodeConfigYAML("issuer example", []byte("issuers:\n"+example), &withIssuer); err != nil {
		t.Fatalf("the commented issuer example does not load: %v\n%s", err, example)
	}
	if len(withIssuer.Issuers) != 1 {
		t.Fatalf("issuer example: %+v", withIssuer.Issuers)
	}
	is := withIssuer.Issuers[0]
	want := IssuerConfig{ID: issuer.DefaultID, URL: is.URL, Profile: issuer.ProfileGeneric, Algorithm: issuer.RS256,
		TokenLifetime: Duration(issuer.DefaultTokenLifetime), MaxTokenLifetime: Duration(issuer.DefaultMaxTokenLifetime),
		RotationPeriod: Duration(issuer.DefaultRotationPeriod), JWKSMaxAge: Duration(issuer.DefaultJWKSMaxAge)}
	if diff := cmp.Diff(want, is); diff != "" {
		t.Errorf("the issuer example does not show the defaults (-want +got):\n%s", diff)
	}
}

// TestSampleConfigCoversEveryField: every key of Config appears in the
// sample (issuer keys in its commented example), and every key is one the
// decoder can set: a new field without documentation fails here.
func TestSampleConfigCoversEveryField(t *testing.T) {
	b, err := os.ReadFile(sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	collectKeys(doc.Content[0], "", present)
	var ex yaml.Node
	if err := yaml.Unmarshal([]byte("issuers:\n"+sampleIssuerExample(t)), &ex); err != nil {
		t.Fatal(err)
	}
	collectKeys(ex.Content[0], "", present)
	var missing []string
	for _, p := range leafKeys(reflect.TypeFor[Config](), "") {
		if !present[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/keyless.yaml does not document: %s", strings.Join(missing, ", "))
	}
}

// sampleIssuerExample is the commented list item after "issuers: []",
// uncommented.
func sampleIssuerExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	i := slices.Index(lines, "issuers: []")
	if i < 0 {
		t.Fatal(`the sample has no "issuers: []" line`)
	}
	var out strings.Builder
	for _, l := range lines[i+1:] {
		rest, ok := strings.CutPrefix(l, "#")
		if !ok {
			break
		}
		out.WriteString(rest + "\n")
	}
	return out.String()
}

// collectKeys records the key paths of a node tree (list items as []).
func collectKeys(n *yaml.Node, path string, out map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := joinPath(path, n.Content[i].Value)
			out[p] = true
			collectKeys(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for _, e := range n.Content {
			collectKeys(e, path+"[]", out)
		}
	}
}

// leafKeys lists the key paths of every settable value of a config type.
func leafKeys(t reflect.Type, path string) []string {
	if t == durationType {
		return []string{path}
	}
	switch t.Kind() {
	case reflect.Struct:
		var out []string
		for _, f := range configFieldList(t) {
			out = append(out, leafKeys(f.Field.Type, joinPath(path, f.Name))...)
		}
		return out
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return leafKeys(t.Elem(), path+"[]")
		}
	}
	return []string{path}
}
