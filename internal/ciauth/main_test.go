package ciauth

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// helperEnv selects a helper role when the test binary re-executes itself
// (to test cross-process locking, and to act as keyless for the real AWS
// CLI's credential_process).
const helperEnv = "CIAUTH_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "profile-writer":
		os.Exit(helperProfileWriter())
	case "assume":
		os.Exit(helperAssume())
	}
	os.Exit(m.Run())
}

// helperProfileWriter writes profiles w<ID>-0..N-1 to the files named in
// the environment, one WriteProfile call each.
func helperProfileWriter() int {
	files := ProfileFiles{Credentials: os.Getenv("HELPER_CREDENTIALS"), Config: os.Getenv("HELPER_CONFIG")}
	n, _ := strconv.Atoi(os.Getenv("HELPER_COUNT"))
	id := os.Getenv("HELPER_ID")
	for i := range n {
		name := fmt.Sprintf("w%s-%d", id, i)
		if err := WriteProfile(context.Background(), files, Profile{
			Name:        name,
			Credentials: Credentials{AccessKeyID: "ASIA" + name, SecretAccessKey: "s-" + name, SessionToken: "t-" + name, Expiration: time.Now()},
			Region:      "eu-west-1",
		}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}
