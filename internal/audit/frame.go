package audit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Journal segment format. A segment starts with segMagic, then frames:
//
//	uint32 LE  payload length
//	uint32 LE  CRC-32C of (seq bytes || payload)
//	uint64 LE  sequence number
//	payload    one event, compact JSON
//
// A crash can leave a partial frame at the end of the segment being written
// (a torn tail); the length and CRC make it detectable, and Open truncates it.
const (
	segMagic        = "KLJNL\x00\x01\n"
	frameHeaderSize = 16
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

func frameCRC(seq uint64, payload []byte) uint32 {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	tab := crc32.MakeTable(crc32.Castagnoli)
	return crc32.Update(crc32.Update(0, tab, s[:]), tab, payload)
}

// appendFrame appends the frame for (seq, payload) to dst.
func appendFrame(dst []byte, seq uint64, payload []byte) []byte {
	var h [frameHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], frameCRC(seq, payload))
	binary.LittleEndian.PutUint64(h[8:16], seq)
	return append(append(dst, h[:]...), payload...)
}

// frame is one decoded journal record.
type frame struct {
	Seq     uint64
	Payload []byte
	Offset  int64 // of the frame header within the segment
}

// frameReader decodes a segment. After an error, Offset is the end of the
// last good frame: the length to truncate a torn segment to.
type frameReader struct {
	r      *bufio.Reader
	Offset int64
	hdr    [frameHeaderSize]byte
}

// newFrameReader checks the segment magic and positions after it. A segment
// shorter than its magic is reported as torn (a crash right after creation).
func newFrameReader(r io.Reader) (*frameReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var m [len(segMagic)]byte
	n, err := io.ReadFull(br, m[:])
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if string(m[:n]) == segMagic[:n] {
				return &frameReader{r: br}, ErrTornFrame
			}
			return nil, ErrBadSegment
		}
		return nil, fmt.Errorf("audit: read journal segment: %w", err)
	}
	if string(m[:]) != segMagic {
		return nil, ErrBadSegment
	}
	return &frameReader{r: br, Offset: int64(len(segMagic))}, nil
}

// Next returns the next frame, io.EOF at a clean end, ErrTornFrame for a
// partial frame at the end, ErrBadFrame for a damaged one. The payload is a
// fresh slice.
func (fr *frameReader) Next() (frame, error) {
	n, err := io.ReadFull(fr.r, fr.hdr[:])
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return frame{}, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, ErrTornFrame
		}
		return frame{}, fmt.Errorf("audit: read journal frame: %w", err)
	}
	size := binary.LittleEndian.Uint32(fr.hdr[0:4])
	sum := binary.LittleEndian.Uint32(fr.hdr[4:8])
	seq := binary.LittleEndian.Uint64(fr.hdr[8:16])
	if size > maxFramePayload {
		return frame{}, fmt.Errorf("%w: length %d at offset %d", ErrBadFrame, size, fr.Offset)
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, ErrTornFrame
		}
		return frame{}, fmt.Errorf("audit: read journal frame: %w", err)
	}
	if frameCRC(seq, payload) != sum {
		return frame{}, fmt.Errorf("%w: checksum mismatch at offset %d", ErrBadFrame, fr.Offset)
	}
	f := frame{Seq: seq, Payload: payload, Offset: fr.Offset}
	fr.Offset += int64(frameHeaderSize) + int64(size)
	return f, nil
}
