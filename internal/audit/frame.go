package audit

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
)

// Journal segment formats. A segment starts with its magic, then frames.
// Version 2, written since journal frames are chained:
//
//	uint32 LE  payload length
//	uint32 LE  CRC-32C of (seq bytes || prev || payload)
//	uint64 LE  sequence number
//	[32]byte   prev: the journal chain hash after the previous frame (chain.go)
//	payload    one event, compact JSON
//
// Version 1 (written before, still read) has no prev field, and its CRC
// covers (seq bytes || payload).
//
// A crash can leave a partial frame at the end of the segment being written
// (a torn tail); the length and CRC make it detectable, and Open truncates it.
// The CRC only detects accidents: the chain hash and the authenticated
// checkpoint (auth.go) detect deliberate edits.
const (
	segMagic          = "KLJNL\x00\x02\n"
	segMagicV1        = "KLJNL\x00\x01\n"
	frameHeaderSize   = 48
	frameHeaderSizeV1 = 16
	// maxFramePayload bounds what a reader will allocate for one frame, so a
	// corrupt length cannot make it allocate gigabytes.
	maxFramePayload = 4 << 20
)

// Frame-level errors.
var (
	// ErrTornFrame is a frame cut short by the end of the data.
	ErrTornFrame = errors.New("audit: torn journal frame")
	// ErrBadFrame is a complete frame whose length or checksum is wrong.
	ErrBadFrame = errors.New("audit: corrupt journal frame")
	// ErrBadSegment is a segment without the journal magic.
	ErrBadSegment = errors.New("audit: not a journal segment")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameCRC is the CRC-32C of a frame: seqPrev is its header from the
// sequence number on (seq, then prev in version 2), as stored. It takes the
// stored bytes rather than values because crc32 keeps its argument: a
// stack array passed to it would be allocated per frame.
func frameCRC(seqPrev, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, seqPrev), castagnoli, payload)
}

// appendFrame appends the version-2 frame for (seq, prev, payload) to dst.
func appendFrame(dst []byte, seq uint64, prev *[32]byte, payload []byte) []byte {
	start := len(dst)
	dst = slices.Grow(dst, frameHeaderSize+len(payload))[:start+frameHeaderSize]
	h := dst[start:]
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(h[8:16], seq)
	copy(h[16:48], prev[:])
	binary.LittleEndian.PutUint32(h[4:8], frameCRC(h[8:48], payload))
	return append(dst, payload...)
}

// frame is one decoded journal record.
type frame struct {
	Seq     uint64
	Payload []byte
	Offset  int64 // of the frame header within the segment
	// Chained is true for version-2 frames, which carry Prev.
	Chained bool
	Prev    [32]byte
}

// frameReader decodes a segment. After an error, Offset is the end of the
// last good frame: the length to truncate a torn segment to.
type frameReader struct {
	r      *bufio.Reader
	Offset int64
	v1     bool
	hdr    [frameHeaderSize]byte
}

// segmentVersion returns 1 or 2 for a complete magic, 0 for anything else.
func segmentVersion(m []byte) int {
	switch string(m) {
	case segMagic:
		return 2
	case segMagicV1:
		return 1
	}
	return 0
}

// newFrameReader checks the segment magic and positions after it. A segment
// shorter than its magic is reported as torn (a crash right after creation).
func newFrameReader(r io.Reader) (*frameReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var m [len(segMagic)]byte
	n, err := io.ReadFull(br, m[:])
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if bytes.HasPrefix([]byte(segMagic), m[:n]) || bytes.HasPrefix([]byte(segMagicV1), m[:n]) {
				return &frameReader{r: br}, ErrTornFrame
			}
			return nil, ErrBadSegment
		}
		return nil, fmt.Errorf("audit: read journal segment: %w", err)
	}
	v := segmentVersion(m[:])
	if v == 0 {
		return nil, ErrBadSegment
	}
	return &frameReader{r: br, Offset: int64(len(segMagic)), v1: v == 1}, nil
}

// newFrameReaderAt reads f's magic, then positions at off (the start of a
// frame found by an earlier read).
func newFrameReaderAt(f *os.File, off int64) (*frameReader, error) {
	var m [len(segMagic)]byte
	if _, err := io.ReadFull(f, m[:]); err != nil {
		return nil, fmt.Errorf("audit: read journal segment: %w", err)
	}
	v := segmentVersion(m[:])
	if v == 0 {
		return nil, ErrBadSegment
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("audit: seek journal segment: %w", err)
	}
	return &frameReader{r: bufio.NewReaderSize(f, 64<<10), Offset: off, v1: v == 1}, nil
}

func (fr *frameReader) headerSize() int {
	if fr.v1 {
		return frameHeaderSizeV1
	}
	return frameHeaderSize
}

// Next returns the next frame, io.EOF at a clean end, ErrTornFrame for a
// partial frame at the end, ErrBadFrame for a damaged one. The payload is a
// fresh slice.
func (fr *frameReader) Next() (frame, error) {
	hdr := fr.hdr[:fr.headerSize()]
	n, err := io.ReadFull(fr.r, hdr)
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return frame{}, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, ErrTornFrame
		}
		return frame{}, fmt.Errorf("audit: read journal frame: %w", err)
	}
	size := binary.LittleEndian.Uint32(hdr[0:4])
	sum := binary.LittleEndian.Uint32(hdr[4:8])
	f := frame{Seq: binary.LittleEndian.Uint64(hdr[8:16]), Offset: fr.Offset, Chained: !fr.v1}
	if size > maxFramePayload {
		return frame{}, fmt.Errorf("%w: length %d at offset %d", ErrBadFrame, size, fr.Offset)
	}
	if f.Chained {
		copy(f.Prev[:], hdr[16:48])
	}
	f.Payload = make([]byte, size)
	if _, err := io.ReadFull(fr.r, f.Payload); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, ErrTornFrame
		}
		return frame{}, fmt.Errorf("audit: read journal frame: %w", err)
	}
	if frameCRC(hdr[8:], f.Payload) != sum {
		return frame{}, fmt.Errorf("%w: checksum mismatch at offset %d", ErrBadFrame, fr.Offset)
	}
	fr.Offset += int64(len(hdr)) + int64(size)
	return f, nil
}

// validFrameAfter looks in a segment's bytes past damage at offset from for
// any well-formed frame with a later sequence number.
func validFrameAfter(data []byte, from int64, afterSeq uint64) bool {
	if len(data) < len(segMagic) {
		return false
	}
	v1 := segmentVersion(data[:len(segMagic)]) == 1
	hs := int64(frameHeaderSize)
	if v1 {
		hs = frameHeaderSizeV1
	}
	for off := from + 1; off+hs <= int64(len(data)); off++ {
		h := data[off : off+hs]
		seq := binary.LittleEndian.Uint64(h[8:16])
		size := int64(binary.LittleEndian.Uint32(h[0:4]))
		if seq <= afterSeq || seq-afterSeq > 1<<32 || off+hs+size > int64(len(data)) {
			continue
		}
		if frameCRC(h[8:], data[off+hs:off+hs+size]) == binary.LittleEndian.Uint32(h[4:8]) {
			return true
		}
	}
	return false
}
