package lint

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// duplicate is the second of two object keys that are equal ignoring case
// (TP019): where it is, and in which statement.
type duplicate struct {
	key          string
	path         string // JSON path of the object holding it
	statement    int    // -1 outside the Statement element
	line, column int    // 1-based; column in characters
}

// findDuplicateKey looks for the first duplicate object key in doc, as
// internal/policy refuses them (keys compared with simple case folding).
// It is a separate walk so that the finding does not depend on the text
// of the parser's error; it reports nothing for a document that is not
// JSON.
func findDuplicateKey(doc []byte) (duplicate, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		object bool
		seen   map[string]bool
		path   string
		index  int    // next array element
		key    string // last key (objects)
		inStmt int
		// stmtObject: the object is a statement.
		stmtObject bool
	}
	var stack []*frame
	pathOf := func() (string, int) {
		if len(stack) == 0 {
			return "$", -1
		}
		top := stack[len(stack)-1]
		return top.path, top.inStmt
	}
	// childPath is the path of the value about to be read.
	childPath := func() (string, int) {
		if len(stack) == 0 {
			return "$", -1
		}
		top := stack[len(stack)-1]
		if top.object {
			// Elements of the document and of a statement as
			// .Name, what is inside them as ["name"] (as Guardrail
			// writes paths).
			p := top.path + "[" + strconv.Quote(top.key) + "]"
			if top.path == "$" || top.stmtObject {
				p = top.path + "." + top.key
			}
			return p, top.inStmt
		}
		p := top.path + "[" + strconv.Itoa(top.index) + "]"
		stmt := top.inStmt
		if stmt < 0 && strings.EqualFold(top.path, "$.Statement") {
			stmt = top.index
		}
		return p, stmt
	}
	// A statement written as a single object.
	expectKey := func() bool { return len(stack) > 0 && stack[len(stack)-1].object }
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return duplicate{}, false
		}
		if expectKey() {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && !stack[len(stack)-1].object {
					stack[len(stack)-1].index++
				}
				if len(stack) == 0 {
					return duplicate{}, false
				}
				continue
			}
			key, _ := tok.(string)
			top := stack[len(stack)-1]
			fk := foldKey(key)
			if top.seen[fk] {
				path, stmt := pathOf()
				line, col := position(doc, keyStart(doc, int(before)))
				return duplicate{key: key, path: path, statement: stmt, line: line, column: col}, true
			}
			top.seen[fk] = true
			top.key = key
			// The value follows.
			tok, err = dec.Token()
			if err != nil {
				return duplicate{}, false
			}
		}
		path, stmt := childPath()
		switch d, _ := tok.(json.Delim); d {
		case '{':
			isStmt := path == "$.Statement" || len(stack) > 0 && !stack[len(stack)-1].object && stack[len(stack)-1].path == "$.Statement"
			if path == "$.Statement" {
				stmt = 0 // a statement object without an array
			}
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, path: path, inStmt: stmt, stmtObject: isStmt})
			continue
		case '[':
			stack = append(stack, &frame{path: path, inStmt: stmt})
			continue
		case ']':
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && !stack[len(stack)-1].object {
				stack[len(stack)-1].index++
			}
			if len(stack) == 0 {
				return duplicate{}, false
			}
			continue
		}
		// A scalar.
		if len(stack) == 0 {
			return duplicate{}, false
		}
		if top := stack[len(stack)-1]; !top.object {
			top.index++
		}
	}
}

// keyStart is the offset of the opening quote of the key read after off.
func keyStart(doc []byte, off int) int {
	for off < len(doc) && doc[off] != '"' {
		off++
	}
	return off
}

// position is the 1-based line and column (in characters) of offset off.
func position(doc []byte, off int) (line, col int) {
	line, col = 1, 1
	for i := 0; i < off && i < len(doc); {
		r, n := utf8.DecodeRune(doc[i:])
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += n
	}
	return line, col
}

// foldKey is the key's case-folded form: the smallest rune of each
// character's simple-folding orbit.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

func (d duplicate) finding() Finding {
	r, _ := RuleByID("TP019")
	where := "at line " + strconv.Itoa(d.line) + ", column " + strconv.Itoa(d.column)
	return Finding{Rule: r.ID, Severity: r.Severity, Statement: d.statement, Path: d.path,
		Message: "Duplicate JSON key " + strconv.Quote(d.key) + " in " + d.path + " " + where +
			": IAM parsers disagree on which one wins, so the document must be rejected; keep one key and merge the values.",
		Fix:  "remove one of the two " + strconv.Quote(d.key) + " keys in " + d.path + " (merge their values)",
		Line: d.line, Column: d.column}
}
