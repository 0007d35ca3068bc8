package sigv4_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/sigv4"
)

// awsSuite is AWS's published Signature Version 4 test suite (see the source
// field of testdata/aws-suite.json), in wire form.
type awsSuite struct {
	Source          string `json:"source"`
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	Region          string `json:"region"`
	Service         string `json:"service"`
	Now             string `json:"now"`
	Vectors         []struct {
		Name          string      `json:"name"`
		Method        string      `json:"method"`
		Target        string      `json:"target"`
		Headers       [][2]string `json:"headers"`
		Body          string      `json:"body"`
		Authorization string      `json:"authorization"`
	} `json:"vectors"`
}

func loadSuite(t *testing.T) awsSuite {
	t.Helper()
	b, err := os.ReadFile("testdata/aws-suite.json")
	if err != nil {
		t.Fatal(err)
	}
	var s awsSuite
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Vectors) < 20 {
		t.Fatalf("suite has %d vectors", len(s.Vectors))
	}
	return s
}

func (s awsSuite) wire(i int) wire {
	v := s.Vectors[i]
	p := wireParts{method: v.Method, target: v.Target, proto: "HTTP/1.1", body: v.Body}
	p.headers = append(p.headers, v.Headers...)
	p.headers = append(p.headers, [2]string{"Authorization", v.Authorization})
	if v.Body != "" {
		p.headers = append(p.headers, [2]string{"Content-Length", itoa(len(v.Body))})
	}
	return p.join()
}

func TestAWSTestSuite(t *testing.T) {
	s := loadSuite(t)
	now, err := time.Parse(time.RFC3339, s.Now)
	if err != nil {
		t.Fatal(err)
	}
	v := &sigv4.Verifier{Now: fixedClock(now), Services: []string{s.Service}}
	for i, vec := range s.Vectors {
		t.Run(vec.Name, func(t *testing.T) {
			w := s.wire(i)
			sig, err := check(v, w, s.SecretAccessKey)
			if err != nil {
				t.Fatalf("published vector refused: %v", err)
			}
			if sig.AccessKeyID != s.AccessKeyID || sig.Region != s.Region || sig.Service != s.Service {
				t.Errorf("parsed %s/%s/%s", sig.AccessKeyID, sig.Region, sig.Service)
			}
			if _, err := check(v, w, strings.ToUpper(s.SecretAccessKey)); awsCode(err) != "SignatureDoesNotMatch" {
				t.Errorf("wrong secret: got %v", err)
			}
			requireAllFail(t, v, w, s.SecretAccessKey)
		})
	}
}
