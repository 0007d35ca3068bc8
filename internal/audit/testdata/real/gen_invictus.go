//go:build ignore

// gen_invictus copies the Invictus AWS dataset's delivery files into
// invictus/, replacing every responseElements.credentials.sessionToken value
// (expired, but shaped like a secret) by the placeholder the sample uses.
// The files are otherwise byte-for-byte the originals: the replacement is a
// string substitution, not a JSON re-encode.
//
//	go run gen_invictus.go [dataset-dir]
//
// The dataset directory defaults to $KEYLESS_CLOUDTRAIL_DATASET, then
// /work/shared/data/cloudtrail/invictus-aws-dataset.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
)

const placeholder = "REDACTED-expired-session-token"

// token matches a credentials object's sessionToken member: the tokens are
// base64, so the value holds no quote or escape.
var token = regexp.MustCompile(`("credentials":\{[^{}]*"sessionToken":")([^"\\]*)(")`)

func main() {
	src := os.Getenv("KEYLESS_CLOUDTRAIL_DATASET")
	if len(os.Args) > 1 {
		src = os.Args[1]
	}
	if src == "" {
		src = "/work/shared/data/cloudtrail/invictus-aws-dataset"
	}
	files, err := filepath.Glob(filepath.Join(src, "CloudTrail", "*.json"))
	if err != nil || len(files) == 0 {
		log.Fatalf("no delivery files under %s/CloudTrail (%v)", src, err)
	}
	if err := os.MkdirAll("invictus", 0o755); err != nil {
		log.Fatal(err)
	}
	replaced := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			log.Fatal(err)
		}
		out := token.ReplaceAllFunc(data, func(m []byte) []byte {
			replaced++
			sub := token.FindSubmatch(m)
			return bytes.Join([][]byte{sub[1], []byte(placeholder), sub[3]}, nil)
		})
		if n := bytes.Count(out, []byte(`"sessionToken"`)); n != bytes.Count(out, []byte(`"sessionToken":"`+placeholder+`"`)) {
			log.Fatalf("%s: a sessionToken outside responseElements.credentials was left: review the pattern", f)
		}
		if err := os.WriteFile(filepath.Join("invictus", filepath.Base(f)), out, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("%d files, %d session tokens replaced\n", len(files), replaced)
}
