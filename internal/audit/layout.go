package audit

import (
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Names of the directories under the trail directory.
const (
	awsLogsDir   = "AWSLogs"
	journalDir   = "journal"
	indexDir     = "index"
	tmpDir       = "journal/tmp"
	stateFile    = "journal/seal-state.json"
	lockFile     = "journal/LOCK"
	segmentExt   = ".wal"
	indexExt     = ".idx"
	logFileExt   = ".json.gz"
	logTimeFmt   = "20060102T1504Z"
	digestTimeFm = "20060102T150405Z"
)

// LogFilePath is the path, relative to the trail directory and with forward
// slashes (it is also the S3 object key), of a delivery file delivered at t.
func LogFilePath(account, region string, t time.Time, suffix string) string {
	t = t.UTC()
	return path.Join(awsLogsDir, account, "CloudTrail", region, t.Format("2006/01/02"),
		account+"_CloudTrail_"+region+"_"+t.Format(logTimeFmt)+"_"+suffix+logFileExt)
}

// DigestFilePath is the relative path of the digest file whose digestEndTime
// is end.
func DigestFilePath(account, region, trail string, end time.Time) string {
	end = end.UTC()
	return path.Join(awsLogsDir, account, "CloudTrail-Digest", region, end.Format("2006/01/02"),
		account+"_CloudTrail-Digest_"+region+"_"+trail+"_"+region+"_"+end.Format(digestTimeFm)+logFileExt)
}

// fileKind classifies a path under AWSLogs.
type fileKind int

const (
	kindOther fileKind = iota
	kindLog
	kindDigest
)

// parsedName is what a delivery or digest file path says about itself.
type parsedName struct {
	Kind    fileKind
	Account string
	Region  string
	Time    time.Time // delivery time (log) or digest end time (digest)
}

// parseTrailPath checks that rel (slash-separated, relative to the trail
// directory) is a well-formed delivery or digest file path whose folder
// (account, region, date) agrees with its name.
func parseTrailPath(rel string) parsedName {
	parts := strings.Split(rel, "/")
	if len(parts) != 8 || parts[0] != awsLogsDir {
		return parsedName{}
	}
	account, folder, region := parts[1], parts[2], parts[3]
	base := parts[7]
	if !isAccountID(account) || !isRegion(region) || !strings.HasSuffix(base, logFileExt) {
		return parsedName{}
	}
	stem := strings.TrimSuffix(base, logFileExt)
	var p parsedName
	switch folder {
	case "CloudTrail":
		prefix := account + "_CloudTrail_" + region + "_"
		rest, ok := strings.CutPrefix(stem, prefix)
		if !ok || len(rest) != len(logTimeFmt)+1+16 || rest[len(logTimeFmt)] != '_' || !isAlnum(rest[len(logTimeFmt)+1:]) {
			return parsedName{}
		}
		t, err := time.Parse(logTimeFmt, rest[:len(logTimeFmt)])
		if err != nil {
			return parsedName{}
		}
		p = parsedName{Kind: kindLog, Account: account, Region: region, Time: t}
	case "CloudTrail-Digest":
		prefix := account + "_CloudTrail-Digest_" + region + "_"
		rest, ok := strings.CutPrefix(stem, prefix)
		if !ok || len(rest) < len(digestTimeFm)+2 {
			return parsedName{}
		}
		ts := rest[len(rest)-len(digestTimeFm):]
		if rest[len(rest)-len(digestTimeFm)-1] != '_' {
			return parsedName{}
		}
		t, err := time.Parse(digestTimeFm, ts)
		if err != nil {
			return parsedName{}
		}
		p = parsedName{Kind: kindDigest, Account: account, Region: region, Time: t}
	default:
		return parsedName{}
	}
	if parts[4]+"/"+parts[5]+"/"+parts[6] != p.Time.Format("2006/01/02") {
		return parsedName{}
	}
	return p
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isRegion(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// randomSuffix returns n characters from [A-Za-z0-9] read from r, without
// modulo bias.
func randomSuffix(r io.Reader, n int) (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("audit: read file name randomness: %w", err)
		}
		for _, b := range buf {
			// 248 = 4*62: bytes above it would favour the first letters.
			if b < 248 && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// segmentName is the journal segment file name for a segment whose first
// frame has sequence number seq.
func segmentName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, segmentExt) }

// parseSegmentName returns the first sequence number a segment name encodes.
func parseSegmentName(name string) (uint64, bool) {
	stem, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(stem); i++ {
		c := stem[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
