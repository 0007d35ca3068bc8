package audit

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
)

// ErrBadLogFile reports a document that is not a CloudTrail log.
var ErrBadLogFile = errors.New("audit: not a CloudTrail log document")

// Records streams the events of a CloudTrail document without loading it
// whole: a delivery file ({"Records":[...]}), a JSON array of events, or the
// output of `aws cloudtrail lookup-events` ({"Events":[{"CloudTrailEvent":
// "<json>"}]}). Other top-level keys are skipped. Iteration stops after the
// first error.
func Records(r io.Reader) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		dec := json.NewDecoder(r)
		tok, err := dec.Token()
		if err != nil {
			yield(nil, fmt.Errorf("%w: %w", ErrBadLogFile, err))
			return
		}
		switch tok {
		case json.Delim('['):
			if !decodeEvents(dec, yield, false) {
				return
			}
		case json.Delim('{'):
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					yield(nil, fmt.Errorf("%w: %w", ErrBadLogFile, err))
					return
				}
				switch key {
				case "Records", "Events":
					if err := expectDelim(dec, '['); err != nil {
						yield(nil, err)
						return
					}
					if !decodeEvents(dec, yield, key == "Events") {
						return
					}
				default:
					var skip json.RawMessage
					if err := dec.Decode(&skip); err != nil {
						yield(nil, fmt.Errorf("%w: %w", ErrBadLogFile, err))
						return
					}
				}
			}
			if err := expectDelim(dec, '}'); err != nil {
				yield(nil, err)
				return
			}
		default:
			yield(nil, fmt.Errorf("%w: starts with %v", ErrBadLogFile, tok))
			return
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			yield(nil, fmt.Errorf("%w: data after the document", ErrBadLogFile))
		}
	}
}

// decodeEvents decodes array elements up to and including the closing ']'.
// lookup selects the lookup-events shape, where each event is a JSON string.
func decodeEvents(dec *json.Decoder, yield func(*Event, error) bool, lookup bool) bool {
	for dec.More() {
		ev := new(Event)
		if lookup {
			var le struct {
				CloudTrailEvent string `json:"CloudTrailEvent"`
			}
			if err := dec.Decode(&le); err != nil {
				yield(nil, fmt.Errorf("%w: %w", ErrBadLogFile, err))
				return false
			}
			if err := json.Unmarshal([]byte(le.CloudTrailEvent), ev); err != nil {
				yield(nil, fmt.Errorf("%w: CloudTrailEvent: %w", ErrBadLogFile, err))
				return false
			}
		} else if err := dec.Decode(ev); err != nil {
			yield(nil, fmt.Errorf("%w: %w", ErrBadLogFile, err))
			return false
		}
		if !yield(ev, nil) {
			return false
		}
	}
	if err := expectDelim(dec, ']'); err != nil {
		yield(nil, err)
		return false
	}
	return true
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadLogFile, err)
	}
	if tok != d {
		return fmt.Errorf("%w: got %v, want %v", ErrBadLogFile, tok, d)
	}
	return nil
}

// ReadLogFile streams the events of one CloudTrail file, gzipped or not
// (detected from the content, not the name).
func ReadLogFile(path string) iter.Seq2[*Event, error] {
	return readLogFile(path, func() (*os.File, error) { return os.Open(path) })
}

// readLogFile streams the events of the file open returns; name is for
// messages.
func readLogFile(name string, open func() (*os.File, error)) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		f, err := open()
		if err != nil {
			yield(nil, fmt.Errorf("audit: open log file: %w", err))
			return
		}
		defer f.Close()
		r, err := maybeGunzip(f)
		if err != nil {
			yield(nil, fmt.Errorf("audit: %s: %w", name, err))
			return
		}
		for ev, err := range Records(r) {
			if err != nil {
				err = fmt.Errorf("audit: %s: %w", name, err)
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// maybeGunzip returns a reader of the uncompressed content of r.
func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(2)
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		zr.Multistream(false)
		return zr, nil
	}
	return br, nil
}

// rawRecords decodes a delivery file's records without interpreting them, to
// hash each as written. Only the {"Records":[...]} shape is accepted.
func rawRecords(data []byte) ([]json.RawMessage, error) {
	var doc struct {
		Records *[]json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadLogFile, err)
	}
	if doc.Records == nil {
		return nil, fmt.Errorf("%w: no Records array", ErrBadLogFile)
	}
	return *doc.Records, nil
}
