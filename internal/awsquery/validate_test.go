package awsquery

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestValidatorListsAtMostTen: a request with a thousand bad list members
// gets an exact count and ten listed violations, not a message (recorded
// in the audit trail) the size of the request.
func TestValidatorListsAtMostTen(t *testing.T) {
	var v Validator
	for i := range 1000 {
		v.Length("ActionNames", strings.Repeat("x", 200)+strconv.Itoa(i), 3, 128)
	}
	var e *Error
	if !errors.As(v.Err(), &e) || e.Code != CodeValidationError {
		t.Fatalf("err = %v", v.Err())
	}
	if !strings.HasPrefix(e.Message, "1000 validation errors detected: Value 'xxx") || !strings.HasSuffix(e.Message, "; and 990 more") {
		t.Errorf("message = %.120q…%q", e.Message, e.Message[max(0, len(e.Message)-40):])
	}
	if n := strings.Count(e.Message, "failed to satisfy constraint"); n != MaxListedViolations {
		t.Errorf("%d violations listed", n)
	}
	if len(e.Message) > 4096 {
		t.Errorf("message is %d bytes", len(e.Message))
	}
	if v.OK() {
		t.Error("OK after violations")
	}
	// Up to ten, the message is unchanged.
	var ten Validator
	for range 10 {
		ten.Length("RoleName", "", 1, 64)
	}
	if err := ten.Err(); err == nil || strings.Contains(err.Error(), "more") || strings.Count(err.Error(), "failed to") != 10 {
		t.Errorf("ten violations: %v", err)
	}
}
