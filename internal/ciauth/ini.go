package ciauth

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// The AWS shared config and credentials files are INI files read by Python's
// configparser (botocore, the AWS CLI) and by each SDK's own parser. The
// editor below changes one section and leaves every other byte alone:
// comments, blank lines, other sections, unknown keys, nested blocks
// ("s3 =\n  addressing_style = path") and the line-ending style.
//
// The parsing rules follow configparser's: a section header starts in
// column 0 with '[' and its name runs to the last ']'; a key line starts in
// column 0 and has '=' or ':'; an indented non-blank line continues the key
// above it; lines starting with '#' or ';' are comments.

// iniLine is one physical line, terminator included.
type iniLine struct {
	text string // without the terminator
	eol  string // "\n", "\r\n" or "" on an unterminated last line
}

func splitLines(data []byte) []iniLine {
	var lines []iniLine
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lines = append(lines, iniLine{text: string(data)})
			break
		}
		text, eol := string(data[:i]), "\n"
		if strings.HasSuffix(text, "\r") {
			text, eol = text[:len(text)-1], "\r\n"
		}
		lines = append(lines, iniLine{text: text, eol: eol})
		data = data[i+1:]
	}
	return lines
}

// sectionName returns the header's name and true if line is a header.
func sectionName(line string) (string, bool) {
	if !strings.HasPrefix(line, "[") {
		return "", false
	}
	end := strings.LastIndexByte(line, ']')
	if end < 2 {
		return "", false
	}
	return line[1:end], true
}

func isComment(line string) bool {
	t := strings.TrimSpace(line)
	return strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";")
}

func isIndented(line string) bool {
	return strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")
}

// keyOf returns the lower-cased key of a key line.
func keyOf(line string) (string, bool) {
	if line == "" || isIndented(line) || isComment(line) {
		return "", false
	}
	i := strings.IndexAny(line, "=:")
	if i <= 0 {
		return "", false
	}
	return strings.ToLower(strings.TrimSpace(line[:i])), true
}

// iniKV is one key to set, in the order it should be appended.
type iniKV struct{ Key, Value string }

// errBadINIValue: a value that would break the file (a newline would start
// a new key or section).
var errBadINIValue = errors.New("value cannot be stored in an AWS config file")

// setINISection sets keys in the first section that match() accepts, or
// appends a new section named header when there is none. Lines outside that
// section are copied unchanged.
func setINISection(data []byte, match func(name string) bool, header string, kvs []iniKV) ([]byte, error) {
	for _, kv := range kvs {
		if strings.ContainsAny(kv.Value, "\r\n\x00") || strings.ContainsAny(kv.Key, "\r\n\x00=:[]") {
			return nil, fmt.Errorf("%w: %s", errBadINIValue, kv.Key)
		}
	}
	lines := splitLines(data)
	eol := "\n"
	if len(lines) > 0 && lines[0].eol == "\r\n" {
		eol = "\r\n"
	}

	start := -1 // index of the header line
	for i, l := range lines {
		if name, ok := sectionName(l.text); ok && match(name) {
			start = i
			break
		}
	}
	if start < 0 {
		var b bytes.Buffer
		b.Write(data)
		if len(lines) > 0 && lines[len(lines)-1].eol == "" {
			b.WriteString(eol) // terminate the unterminated last line
		}
		if len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1].text) != "" {
			b.WriteString(eol) // one blank line between sections
		}
		b.WriteString("[" + header + "]" + eol)
		for _, kv := range kvs {
			b.WriteString(kv.Key + " = " + kv.Value + eol)
		}
		return b.Bytes(), nil
	}

	end := len(lines) // index after the section's last line
	for i := start + 1; i < len(lines); i++ {
		if _, ok := sectionName(lines[i].text); ok {
			end = i
			break
		}
	}

	pending := make(map[string]int, len(kvs))
	for i, kv := range kvs {
		pending[strings.ToLower(kv.Key)] = i
	}
	out := make([]iniLine, 0, len(lines)+len(kvs))
	out = append(out, lines[:start+1]...)
	lastKey := len(out) // insertion point: after the last key (and its continuation) seen
	for i := start + 1; i < end; i++ {
		l := lines[i]
		if k, ok := keyOf(l.text); ok {
			if idx, want := pending[k]; want {
				delete(pending, k)
				out = append(out, iniLine{text: kvs[idx].Key + " = " + kvs[idx].Value, eol: l.eol})
				// Drop the old value's continuation lines.
				for i+1 < end && isIndented(lines[i+1].text) && strings.TrimSpace(lines[i+1].text) != "" {
					i++
				}
				lastKey = len(out)
				continue
			}
			out = append(out, l)
			lastKey = len(out)
			continue
		}
		out = append(out, l)
		if isIndented(l.text) && strings.TrimSpace(l.text) != "" && lastKey == len(out)-1 {
			lastKey = len(out) // a continuation line of the key above
		}
	}
	if len(pending) > 0 {
		var add []iniLine
		for _, kv := range kvs {
			if _, ok := pending[strings.ToLower(kv.Key)]; ok {
				add = append(add, iniLine{text: kv.Key + " = " + kv.Value, eol: eol})
			}
		}
		// The line before the insertion point may be an unterminated last line.
		if lastKey > 0 && out[lastKey-1].eol == "" {
			out[lastKey-1].eol = eol
		}
		out = append(out[:lastKey], append(add, out[lastKey:]...)...)
	}
	out = append(out, lines[end:]...)

	var b bytes.Buffer
	for _, l := range out {
		b.WriteString(l.text)
		b.WriteString(l.eol)
	}
	return b.Bytes(), nil
}

// configSectionMatcher matches a profile's section in ~/.aws/config, where
// non-default profiles are written "[profile NAME]" ("[default]" or
// "[profile default]" for the default one).
func configSectionMatcher(profile string) (func(string) bool, string) {
	header := "profile " + profile
	if profile == "default" {
		header = "default"
	}
	return func(name string) bool {
		f := strings.Fields(name)
		if profile == "default" && len(f) == 1 && f[0] == "default" {
			return true
		}
		return len(f) == 2 && f[0] == "profile" && f[1] == profile
	}, header
}

// credentialsSectionMatcher matches "[NAME]" in ~/.aws/credentials.
func credentialsSectionMatcher(profile string) (func(string) bool, string) {
	return func(name string) bool { return strings.TrimSpace(name) == profile }, profile
}
