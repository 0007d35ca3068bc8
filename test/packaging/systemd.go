package packaging

import (
	"fmt"
	"strings"
)

// UnitEntry is one Key=Value line of a systemd unit file.
type UnitEntry struct {
	Section, Key, Value string
	Line                int
}

// Unit is a parsed systemd unit file, entries in file order.
type Unit []UnitEntry

// Values returns every value of section.key in order, with systemd's list
// semantics: an empty assignment resets what came before.
func (u Unit) Values(section, key string) []string {
	var out []string
	for _, e := range u {
		if e.Section != section || e.Key != key {
			continue
		}
		if e.Value == "" {
			out = out[:0]
			continue
		}
		out = append(out, e.Value)
	}
	return out
}

// Last returns the effective value of a single-valued setting and whether
// it is set at all (possibly to "").
func (u Unit) Last(section, key string) (string, bool) {
	v, ok := "", false
	for _, e := range u {
		if e.Section == section && e.Key == key {
			v, ok = e.Value, true
		}
	}
	return v, ok
}

// ParseUnit reads a unit file as systemd.syntax(7) describes: [Section]
// headers, Key=Value assignments, # and ; comments, and a backslash at the
// end of a line joining it to the next with a space.
func ParseUnit(src string) (Unit, error) {
	var (
		u       Unit
		section string
		cont    strings.Builder
		start   int
	)
	lines := strings.Split(strings.TrimSuffix(strings.ReplaceAll(src, "\r\n", "\n"), "\n"), "\n")
	for i, raw := range lines {
		line := strings.TrimSpace(raw)
		if cont.Len() == 0 {
			if line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			start = i + 1
			if line[0] == '[' {
				if !strings.HasSuffix(line, "]") || len(line) < 3 {
					return nil, fmt.Errorf("line %d: bad section header %q", i+1, line)
				}
				section = line[1 : len(line)-1]
				continue
			}
		} else if line != "" && (line[0] == '#' || line[0] == ';') {
			continue // comments inside a continuation are skipped
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cont.WriteString(body)
			cont.WriteByte(' ')
			continue
		}
		cont.WriteString(line)
		text := cont.String()
		cont.Reset()
		if section == "" {
			return nil, fmt.Errorf("line %d: assignment outside a section", start)
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("line %d: want Key=Value, got %q", start, text)
		}
		u = append(u, UnitEntry{Section: section, Key: strings.TrimSpace(k), Value: strings.TrimSpace(v), Line: start})
	}
	if cont.Len() > 0 {
		return nil, fmt.Errorf("line %d: the file ends in a continuation", start)
	}
	return u, nil
}
