package iam

import (
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Unique-id prefixes AWS uses (IAM User Guide, "Understanding unique ID
// prefixes").
const (
	PrefixRole          = "AROA"
	PrefixManagedPolicy = "ANPA"
	PrefixUser          = "AIDA"
	PrefixAccessKey     = "AKIA"
	PrefixSessionKey    = "ASIA"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns an AWS-shaped unique id: a 4-character prefix then
// base32 (A-Z2-7) characters whose first 48 bits carry the account id the
// way AWS's do ((account << 7) | 7 random bits), so tools that decode the
// account from a key id (sts:GetAccessKeyInfo, security scanners) get the
// right answer. n is the number of characters after the prefix: 16 for
// access keys (20 in all), 17 for role and policy ids (21 in all).
func NewID(rand io.Reader, prefix, account string, n int) (string, error) {
	acct, err := strconv.ParseUint(account, 10, 64)
	if err != nil || len(account) != 12 {
		return "", fmt.Errorf("iam: bad account id %q", account)
	}
	raw := make([]byte, 16)
	if _, err := io.ReadFull(rand, raw); err != nil {
		return "", fmt.Errorf("iam: random id: %w", err)
	}
	v := acct<<7 | uint64(raw[0]&0x7f)
	var head [8]byte
	binary.BigEndian.PutUint64(head[:], v)
	copy(raw[0:6], head[2:8])
	enc := idEncoding.EncodeToString(raw)
	return prefix + enc[:n], nil
}

// AccountFromID decodes the account id carried by an id made by NewID (and
// by AWS's own ids).
func AccountFromID(id string) (string, bool) {
	if len(id) < 14 {
		return "", false
	}
	body := id[4:]
	if len(body) < 10 {
		return "", false
	}
	// Decode a multiple of 8 characters that covers the first 6 bytes.
	chunk := body[:min(len(body), 16)]
	chunk = chunk[:len(chunk)/8*8]
	b, err := idEncoding.DecodeString(chunk)
	if err != nil || len(b) < 6 {
		return "", false
	}
	var head [8]byte
	copy(head[2:], b[:6])
	v := binary.BigEndian.Uint64(head[:])
	acct := (v & 0x7fffffffff80) >> 7
	return fmt.Sprintf("%012d", acct), true
}

// ValidAccountID reports whether s is a 12-digit account id.
func ValidAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}
