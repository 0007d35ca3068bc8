package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzFrameReader: arbitrary segment bytes never panic the reader, every
// frame it returns has a valid checksum and lies inside the data, and
// Offset (the truncation point) never exceeds the data.
func FuzzFrameReader(f *testing.F) {
	good := []byte(segMagic)
	var prev chainHash
	for i := range 3 {
		payload := []byte(`{"eventID":"x","eventTime":"2025-01-01T00:00:00Z"}`)
		good = appendFrame(good, uint64(i+1), &prev, payload)
		sum := sha256.Sum256(payload)
		prev = chainNext(&prev, uint64(i+1), &sum)
	}
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add(append(bytes.Clone(good), 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte(segMagic))
	f.Add([]byte(segMagic[:4]))
	f.Add([]byte("not a segment at all"))
	legacy := []byte(segMagicV1)
	for i := range 3 {
		legacy = appendFrameV1(legacy, uint64(i+1), []byte(`{"eventID":"y","eventTime":"2025-01-01T00:00:00Z"}`))
	}
	f.Add(legacy)
	f.Add(legacy[:len(legacy)-3])
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := newFrameReader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrTornFrame) && !errors.Is(err, ErrBadSegment) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		for {
			fm, err := fr.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrTornFrame) && !errors.Is(err, ErrBadFrame) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			hs := int64(frameHeaderSizeV1)
			if fm.Chained {
				hs = frameHeaderSize
			}
			if frameCRC(data[fm.Offset+8:fm.Offset+hs], fm.Payload) != frameCRCAt(data, fm.Offset) {
				t.Fatal("returned a frame whose checksum does not match")
			}
			end := fm.Offset + hs + int64(len(fm.Payload))
			if !bytes.Equal(data[fm.Offset+hs:end], fm.Payload) {
				t.Fatal("payload is not the bytes at the frame's offset")
			}
		}
		if fr.Offset > int64(len(data)) {
			t.Fatalf("truncation point %d beyond %d bytes", fr.Offset, len(data))
		}
		// Re-encoding the good prefix reproduces it byte for byte.
		fr2, _ := newFrameReader(bytes.NewReader(data[:fr.Offset]))
		re := bytes.Clone(data[:len(segMagic)])
		for {
			fm, err := fr2.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("good prefix does not read cleanly: %v", err)
				}
				break
			}
			if fm.Chained {
				re = appendFrame(re, fm.Seq, &fm.Prev, fm.Payload)
			} else {
				re = appendFrameV1(re, fm.Seq, fm.Payload)
			}
		}
		if !bytes.Equal(re, data[:fr.Offset]) {
			t.Fatal("good prefix does not re-encode identically")
		}
	})
}

func frameCRCAt(data []byte, off int64) uint32 {
	h := data[off : off+8]
	return uint32(h[4]) | uint32(h[5])<<8 | uint32(h[6])<<16 | uint32(h[7])<<24
}

// FuzzParseDigest: the digest parser never panics; what it accepts has the
// required fields and re-encodes to something it accepts again.
func FuzzParseDigest(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "golden", "digest.txt"))
	if err == nil {
		if i := bytes.Index(golden, []byte("\nhead signature:")); i > 0 {
			f.Add(golden[:i])
		}
	}
	f.Add([]byte(`{"awsAccountId":"1","digestStartTime":"2015-08-17T14:01:31Z","digestEndTime":"2015-08-17T15:01:31Z","digestS3Bucket":"b","digestS3Object":"o","digestPublicKeyFingerprint":"f","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[]}`))
	f.Add([]byte(`{"logFiles":[{}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDigest(data)
		if err != nil {
			if !errors.Is(err, ErrBadDigest) {
				t.Fatalf("error not wrapping ErrBadDigest: %v", err)
			}
			return
		}
		if d.DigestEndTime == "" || d.DigestS3Object == "" || d.LogFiles == nil {
			t.Fatalf("accepted an incomplete digest: %+v", d)
		}
		s, _ := parseDigestTime(d.DigestStartTime)
		e, _ := parseDigestTime(d.DigestEndTime)
		if e.Before(s) {
			t.Fatal("accepted end before start")
		}
		re, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseDigest(re); err != nil {
			t.Fatalf("re-encoded digest rejected: %v", err)
		}
	})
}

// FuzzParseIndex: the event index parser never panics and round-trips.
func FuzzParseIndex(f *testing.F) {
	f.Add(encodeIndex([]indexEntry{{"a", "0123456789abcdef"}, {"b", "fedcba9876543210"}}))
	f.Add([]byte(indexHeader + "\nx y\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := parseIndex(data)
		if err != nil {
			return
		}
		back, err := parseIndex(encodeIndex(es))
		if err != nil || len(back) != len(es) {
			t.Fatalf("index does not round-trip: %v", err)
		}
	})
}

// FuzzParseTrailPath: path classification never panics, and what it accepts
// is rebuilt exactly by the path constructors.
func FuzzParseTrailPath(f *testing.F) {
	f.Add(LogFilePath(testAccount, testRegion, t0, "AbCdEfGh12345678"))
	f.Add(DigestFilePath(testAccount, testRegion, "my_trail", t0))
	f.Add("AWSLogs/123456789012/CloudTrail/us-east-1/2025/04/16/x.json.gz")
	f.Fuzz(func(t *testing.T, rel string) {
		p := parseTrailPath(rel)
		switch p.Kind {
		case kindLog:
			suffix := rel[len(rel)-len(logFileExt)-16 : len(rel)-len(logFileExt)]
			if LogFilePath(p.Account, p.Region, p.Time, suffix) != rel {
				t.Fatalf("accepted log path %q does not rebuild", rel)
			}
		case kindDigest:
			if p.Time.Second() != p.Time.Truncate(time.Second).Second() {
				t.Fatal("digest time has sub-seconds")
			}
		}
	})
}

// FuzzEventMeta: the structural scanner agrees with encoding/json whenever
// it answers.
func FuzzEventMeta(f *testing.F) {
	b := testBuilder(71, newClock(t0))
	for _, g := range goldenEvents(f) {
		p, _ := marshalEvent(g.ev)
		f.Add(p)
	}
	p, _ := marshalEvent(callEvent(f, b, "X"))
	f.Add(p)
	f.Add([]byte(`{"requestParameters":{"eventID":"inner","eventTime":"x"},"eventID":"outer","eventTime":"2025-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"eventID":"a\"b","eventTime":"2025-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"eventID":"y","EVENTID":"x","eventTime":"2025-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ok := scanEventMeta(data)
		if !ok {
			return
		}
		var want eventMeta
		if err := json.Unmarshal(data, &want); err != nil {
			// The scanner checks structure only; it may accept what the
			// decoder rejects, but never with a different answer for
			// valid JSON.
			return
		}
		if m.EventID != want.EventID || !m.EventTime.Equal(want.EventTime) {
			t.Fatalf("scanner %+v, encoding/json %+v", m, want)
		}
	})
}
