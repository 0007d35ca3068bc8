package query

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/keylessci/keyless/internal/audit"
)

// pathNode is a node of the trie of the JSON paths a query reads.
type pathNode struct {
	key   string // object key, or array index when isIdx
	idx   int
	isIdx bool
	kids  []*pathNode
	slots []int // env slots that take this node's value
	id    int   // among the nodes with slots, for the found-set
}

func (n *pathNode) child(seg string) *pathNode {
	isIdx, idx := false, 0
	if i, err := strconv.Atoi(seg); err == nil && i >= 0 && seg == strconv.Itoa(i) {
		isIdx, idx = true, i
	}
	for _, k := range n.kids {
		if k.key == seg && k.isIdx == isIdx {
			return k
		}
	}
	k := &pathNode{key: seg, idx: idx, isIdx: isIdx}
	n.kids = append(n.kids, k)
	return k
}

// extractor pulls the values of a fixed set of flattened paths out of a
// JSON object in one pass, skipping every subtree no path goes into.
type extractor struct {
	root  pathNode
	total int // number of nodes with slots
}

func splitPath(name string) []string {
	var segs []string
	start := 0
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			segs = append(segs, name[start:i])
			start = i + 1
		}
	}
	return append(segs, name[start:])
}

func (x *extractor) add(name string, slot int) {
	n := &x.root
	for _, seg := range splitPath(name) {
		n = n.child(seg)
	}
	if len(n.slots) == 0 {
		n.id = x.total
		x.total++
	}
	n.slots = append(n.slots, slot)
}

// jsonVal is a value found in a record: the bytes of a string's content
// (without quotes), or of the JSON literal/object/array.
type jsonVal struct {
	b       []byte
	typ     byte // '"', 'n' number, 't', 'f', 'z' (null), '{', '['
	escaped bool
}

type extractState struct {
	x     *extractor
	found int    // distinct wanted nodes met (a duplicate key counts once)
	seen  uint64 // which ones, by id; early exit only when total <= 64
	hold  int    // > 0 inside a value that is itself wanted: no early exit
	set   func(slots []int, v jsonVal)
}

// run walks the record; it stops as soon as every path was found. Malformed
// input ends the walk early (what was found so far stays).
func (x *extractor) run(data []byte, set func(slots []int, v jsonVal)) {
	if x.total == 0 {
		return
	}
	st := extractState{x: x, set: set}
	i := skipWS(data, 0)
	if i < len(data) && data[i] == '{' {
		st.object(data, i, &x.root)
	}
}

func skipWS(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\n' || d[i] == '\t' || d[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the closing quote of the string
// whose opening quote is at i, and whether it has escapes; -1 if none.
func stringEnd(d []byte, i int) (int, bool) {
	escaped := false
	j := i + 1
	for {
		k := indexQuoteOrBackslash(d[j:])
		if k < 0 {
			return -1, escaped
		}
		j += k
		if d[j] == '"' {
			return j + 1, escaped
		}
		escaped = true
		j += 2
		if j > len(d) {
			return -1, escaped
		}
	}
}

func indexQuoteOrBackslash(d []byte) int {
	for i, c := range d {
		if c == '"' || c == '\\' {
			return i
		}
	}
	return -1
}

func (st *extractState) done() bool {
	return st.found == st.x.total && st.x.total <= 64 && st.hold == 0
}

// value handles the value at i for node n; returns the index past it.
func (st *extractState) value(d []byte, i int, n *pathNode) int {
	var end int
	hold := len(n.slots) > 0 && len(n.kids) > 0
	if hold {
		st.hold++
	}
	switch {
	case len(n.kids) > 0 && i < len(d) && d[i] == '{':
		end = st.object(d, i, n)
	case len(n.kids) > 0 && i < len(d) && d[i] == '[':
		end = st.array(d, i, n)
	default:
		end = audit.ValueEnd(d, i)
	}
	if hold {
		st.hold--
	}
	if end < 0 {
		return -1
	}
	if len(n.slots) > 0 {
		v := jsonVal{b: d[i:end]}
		switch c := d[i]; c {
		case '"':
			v.typ = '"'
			v.b = d[i+1 : end-1]
			for _, ch := range v.b {
				if ch == '\\' {
					v.escaped = true
					break
				}
			}
		case '{', '[', 't', 'f':
			v.typ = c
		case 'n':
			v.typ = 'z'
		default:
			v.typ = 'n'
		}
		if n.id < 64 && st.seen&(1<<n.id) == 0 {
			st.seen |= 1 << n.id
			st.found++
		}
		st.set(n.slots, v)
	}
	return end
}

func (st *extractState) object(d []byte, i int, n *pathNode) int {
	i++ // {
	for {
		i = skipWS(d, i)
		if i >= len(d) {
			return -1
		}
		if d[i] == '}' {
			return i + 1
		}
		if d[i] == ',' {
			i++
			continue
		}
		if d[i] != '"' {
			return -1
		}
		ke, kesc := stringEnd(d, i)
		if ke < 0 {
			return -1
		}
		key := d[i+1 : ke-1]
		i = skipWS(d, ke)
		if i >= len(d) || d[i] != ':' {
			return -1
		}
		i = skipWS(d, i+1)
		var kid *pathNode
		var ks string
		if !kesc {
			ks = unsafe.String(unsafe.SliceData(key), len(key))
		} else {
			var buf [64]byte
			if u, ok := unescape(key, buf[:0]); ok {
				ks = string(u)
			}
		}
		for _, k := range n.kids {
			if k.key == ks {
				kid = k
				break
			}
		}
		if kid == nil {
			i = audit.ValueEnd(d, i)
		} else {
			i = st.value(d, i, kid)
			if st.done() {
				return len(d)
			}
		}
		if i < 0 {
			return -1
		}
	}
}

func (st *extractState) array(d []byte, i int, n *pathNode) int {
	i++ // [
	idx := 0
	for {
		i = skipWS(d, i)
		if i >= len(d) {
			return -1
		}
		if d[i] == ']' {
			return i + 1
		}
		if d[i] == ',' {
			i++
			idx++
			continue
		}
		var kid *pathNode
		for _, k := range n.kids {
			if k.isIdx && k.idx == idx {
				kid = k
				break
			}
		}
		if kid == nil {
			i = audit.ValueEnd(d, i)
		} else {
			i = st.value(d, i, kid)
			if st.done() {
				return len(d)
			}
		}
		if i < 0 {
			return -1
		}
	}
}

// unescape appends the decoded JSON string content b to dst.
func unescape(b, dst []byte) ([]byte, bool) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(b) {
			return dst, false
		}
		switch b[i] {
		case '"', '\\', '/':
			dst = append(dst, b[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(b, i+1)
			if !ok {
				return dst, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
					if r2, ok := hex4(b, i+3); ok {
						if rr := utf16.DecodeRune(r, r2); rr != utf8.RuneError {
							r = rr
							i += 6
						}
					}
				}
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, false
		}
	}
	return dst, true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
