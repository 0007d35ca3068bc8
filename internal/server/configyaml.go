package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The configuration file is read with a walk over YAML nodes rather than
// through JSON, so that every error names the key path and the line (and a
// mistyped key the nearest valid one). Keys are the json tag names of
// Config's fields; a file's value replaces the default (lists included).

// ConfigError is a problem at one place of a configuration file.
type ConfigError struct {
	File string
	Line int
	// Path is the key path, for example audit.seal_interval or
	// issuers[0].url ("" for the document itself).
	Path string
	Msg  string
}

func (e *ConfigError) Error() string {
	where := fmt.Sprintf("config %s:%d", e.File, e.Line)
	if e.Path == "" {
		return where + ": " + e.Msg
	}
	return where + ": " + e.Path + ": " + e.Msg
}

// decodeConfigYAML merges the YAML document b (named file in errors) over
// c. Every problem is reported, each as a *ConfigError.
func decodeConfigYAML(file string, b []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file changes nothing
		}
		return fmt.Errorf("config %s: %w", file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return fmt.Errorf("config %s: %w", file, err)
		}
		return &ConfigError{File: file, Line: line, Msg: "a second YAML document (---): keep the configuration in one"}
	}
	d := &yamlDecoder{file: file}
	// Decode into a copy, so that a file with errors changes nothing.
	tmp := *c
	d.decode(&doc, reflect.ValueOf(&tmp).Elem(), "")
	if err := errors.Join(d.errs...); err != nil {
		return err
	}
	*c = tmp
	return nil
}

type yamlDecoder struct {
	file string
	errs []error
}

// maxConfigErrors bounds the errors reported (and the work done once they
// are reached: aliases could otherwise repeat one bad mapping many times).
const maxConfigErrors = 20

func (d *yamlDecoder) fail(n *yaml.Node, path, format string, args ...any) {
	switch {
	case len(d.errs) < maxConfigErrors:
		d.errs = append(d.errs, &ConfigError{File: d.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
	case len(d.errs) == maxConfigErrors:
		d.errs = append(d.errs, fmt.Errorf("config %s: more errors follow; fix these first", d.file))
	}
}

func (d *yamlDecoder) full() bool { return len(d.errs) > maxConfigErrors }

var durationType = reflect.TypeFor[Duration]()

// kindName describes a node for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func (d *yamlDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.full() {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return
		}
		d.decode(n.Content[0], v, path)
		return
	case yaml.AliasNode:
		d.decode(n.Alias, v, path)
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // key: (nothing) keeps the default
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a duration such as 30s, 5m or 1h, got %s", kindName(n))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "invalid duration %q (use forms like 30s, 5m, 1h)", n.Value)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list (lines starting with \"- \", or [a, b]), got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			d.decode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *yamlDecoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a single value, got %s", kindName(n))
		return
	}
	s := n.Value
	switch v.Kind() {
	case reflect.String:
		// Any scalar: account_id: 123456789012 means the digits as written.
		v.SetString(s)
	case reflect.Bool:
		b, err := ParseBool(s)
		if err != nil {
			d.fail(n, path, "want true or false, got %q", s)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(s, intBase(s), v.Type().Bits())
		if err != nil {
			d.fail(n, path, "want a whole number%s, got %q", rangeHint(err), s)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(s, intBase(s), v.Type().Bits())
		if err != nil {
			d.fail(n, path, "want a whole number, not negative%s, got %q", rangeHint(err), s)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			d.fail(n, path, "want a number%s, got %q", rangeHint(err), s)
			return
		}
		v.SetFloat(f)
	default:
		// A Config field of a kind this decoder does not know: caught by
		// TestSampleConfigCoversEveryField.
		d.fail(n, path, "cannot be set from a file (%s)", v.Type())
	}
}

// intBase reads decimal, and 0x/0o/0b prefixes, but not a leading zero as
// octal (max_sources: 016384 is decimal to anyone but a C compiler).
func intBase(s string) int {
	t := strings.TrimLeft(s, "+-")
	if len(t) > 1 && t[0] == '0' && t[1] >= '0' && t[1] <= '9' {
		return 10
	}
	return 0
}

func rangeHint(err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return " in range"
	}
	return ""
}

func (d *yamlDecoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping (key: value lines), got %s", kindName(n))
		return
	}
	fields := configFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be plain names")
			continue
		}
		kpath := joinPath(path, k.Value)
		if k.Value == "<<" {
			d.fail(k, kpath, "merge keys (<<) are not supported: write the keys out")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.fail(k, kpath, "given twice (first on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			msg := "unknown key"
			if near := nearestKey(k.Value, fields); near != "" {
				msg += "; did you mean " + near + "?"
			} else {
				msg += "; valid keys here: " + strings.Join(sortedKeys(fields), ", ")
			}
			d.fail(k, kpath, "%s", msg)
			continue
		}
		d.decode(val, v.FieldByIndex(f.Index), kpath)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// configKey is the key name of a struct field (its json tag name), and
// whether the field is a configuration key at all.
func configKey(f reflect.StructField) (string, bool) {
	if !f.IsExported() || f.Anonymous {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return "", false
	}
	if name == "" {
		name = f.Name
	}
	return name, true
}

// configField is one key of a configuration struct.
type configField struct {
	Name  string
	Field reflect.StructField
}

// configFieldList lists the keys of a struct in declaration order.
func configFieldList(t reflect.Type) []configField {
	var out []configField
	for _, f := range reflect.VisibleFields(t) {
		if name, ok := configKey(f); ok {
			out = append(out, configField{name, f})
		}
	}
	return out
}

// configFields maps the key names of a struct to its fields.
func configFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for _, f := range configFieldList(t) {
		out[f.Name] = f.Field
	}
	return out
}

func sortedKeys(m map[string]reflect.StructField) []string {
	return slices.Sorted(maps.Keys(m))
}

// nearestKey is the valid key a mistyped one most likely meant: the same
// letters in another case or with other separators, else the closest by
// edit distance (at most a third of the key's length, and at least 2).
func nearestKey(key string, fields map[string]reflect.StructField) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", -1
	for _, name := range sortedKeys(fields) {
		if norm(name) == norm(key) {
			return name
		}
		dist := editDistance(strings.ToLower(key), name)
		if bestDist < 0 || dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if bestDist >= 0 && bestDist <= max(2, len(key)/3) {
		return best
	}
	return ""
}
