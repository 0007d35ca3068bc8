package oidc

// TrimToken removes the ASCII whitespace (space, tab, CR, LF) around a web
// identity token and nothing else: a token written to a file by `echo` or
// an editor ends in a newline, and AWS STS accepts it. Whitespace inside
// the token is left in place, where the structural checks refuse it, and
// other Unicode spaces are not trimmed (no encoder produces them, and a
// token is ASCII).
func TrimToken(raw string) string {
	start, end := 0, len(raw)
	for start < end && isTokenSpace(raw[start]) {
		start++
	}
	for end > start && isTokenSpace(raw[end-1]) {
		end--
	}
	return raw[start:end]
}

func isTokenSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}
