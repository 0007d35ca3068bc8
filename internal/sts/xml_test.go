package sts

import (
	"bytes"
	"encoding/xml"
	"testing"

	"github.com/keylessci/keyless/internal/awsquery"
)

// The hand-written XML must equal encoding/xml's for the same values.
func TestAppendXMLMatchesEncodingXML(t *testing.T) {
	size := 7
	results := []awsquery.XMLAppender{
		assumeResult{SubjectFromWebIdentityToken: `repo:o/r:ref:refs/heads/<x>&"y"`, Audience: "sts.amazonaws.com",
			AssumedRoleUser: xmlAssumedRoleUser{Arn: "arn:aws:sts::1:assumed-role/r/s", AssumedRoleID: "AROA:s"},
			Credentials:     xmlCredentials{SessionToken: "KLS1abc", SecretAccessKey: "a/b+c", Expiration: "2026-01-01T00:00:00Z", AccessKeyID: "ASIA"},
			Provider:        "arn:aws:iam::1:oidc-provider/x"},
		assumeResult{SourceIdentity: "alice", PackedPolicySize: &size, Provider: "p"},
		callerIdentityResult{Arn: "arn:aws:sts::1:assumed-role/r/s", UserID: "AROA:s", Account: "123456789012"},
	}
	for _, r := range results {
		var want bytes.Buffer
		if err := xml.NewEncoder(&want).EncodeElement(r, xml.StartElement{Name: xml.Name{Local: "X"}}); err != nil {
			t.Fatal(err)
		}
		got := "<X>" + string(r.AppendXML(nil)) + "</X>"
		if got != want.String() {
			t.Errorf("AppendXML:\n got %s\nwant %s", got, want.String())
		}
	}
}
