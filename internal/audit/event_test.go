package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// realRecordFiles returns the real CloudTrail files the shape tests use: the
// sample shipped in testdata, plus the whole Invictus dataset when present.
func realRecordFiles(t *testing.T) []string {
	files := []string{filepath.Join("testdata", "real", "invictus-sample.json")}
	dir := os.Getenv("KEYLESS_CLOUDTRAIL_DATASET")
	if dir == "" {
		dir = "/work/shared/data/cloudtrail/invictus-aws-dataset"
	}
	more, _ := filepath.Glob(filepath.Join(dir, "CloudTrail", "*.json"))
	if len(more) == 0 {
		t.Logf("full dataset not found under %s; using the shipped sample only", dir)
	}
	return append(files, more...)
}

// dropEmptyStrings removes "" values outside the free-form objects: the
// Event type omits empty optional strings, the one documented loss of a
// round trip (a real record has "accessKeyId": "").
func dropEmptyStrings(v any, freeForm bool) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && s == "" && !freeForm {
				delete(x, k)
				continue
			}
			ff := freeForm || k == "requestParameters" || k == "responseElements" || k == "additionalEventData" ||
				k == "serviceEventDetails" || k == "edgeDeviceDetails" || k == "eventContext" || k == "insightDetails"
			x[k] = dropEmptyStrings(e, ff)
		}
	case []any:
		for i, e := range x {
			x[i] = dropEmptyStrings(e, freeForm)
		}
	}
	return v
}

// TestRealRecordsRoundTrip decodes real CloudTrail records with the same
// code that reads keyless's trail (Records into Event), re-encodes them with
// the journal's encoder, and requires the same JSON back.
func TestRealRecordsRoundTrip(t *testing.T) {
	total := 0
	for _, f := range realRecordFiles(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Records []json.RawMessage }
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		i := 0
		for ev, err := range Records(bytes.NewReader(raw)) {
			if err != nil {
				t.Fatalf("%s: record %d: %v", f, i, err)
			}
			out, err := marshalEvent(ev)
			if err != nil {
				t.Fatalf("%s: record %d: marshal: %v", f, i, err)
			}
			var want, got any
			if err := json.Unmarshal(doc.Records[i], &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(dropEmptyStrings(want, false), got); d != "" {
				t.Fatalf("%s: record %d (%s) does not round-trip (-real +ours):\n%s", filepath.Base(f), i, ev.EventID, d)
			}
			i++
		}
		if i != len(doc.Records) {
			t.Fatalf("%s: decoded %d records, file has %d", f, i, len(doc.Records))
		}
		total += i
	}
	if total < 41 {
		t.Fatalf("only %d real records checked", total)
	}
	t.Logf("%d real records round-tripped", total)
}

// jsonKinds records, for each field path, the JSON kinds seen there.
// Free-form objects are recorded as objects without descending.
func jsonKinds(v any, path string, out map[string]map[string]bool) {
	kind := "null"
	switch v.(type) {
	case map[string]any:
		kind = "object"
	case []any:
		kind = "array"
	case string:
		kind = "string"
	case float64:
		kind = "number"
	case bool:
		kind = "bool"
	}
	if out[path] == nil {
		out[path] = map[string]bool{}
	}
	out[path][kind] = true
	switch x := v.(type) {
	case map[string]any:
		if strings.HasSuffix(path, "requestParameters") || strings.HasSuffix(path, "responseElements") ||
			strings.HasSuffix(path, "additionalEventData") || strings.HasSuffix(path, "serviceEventDetails") {
			return
		}
		for k, e := range x {
			jsonKinds(e, path+"."+k, out)
		}
	case []any:
		for _, e := range x {
			jsonKinds(e, path+"[]", out)
		}
	}
}

// TestEventShapeMatchesRealRecords checks that every field keyless writes
// that also occurs in real records has the JSON type the real records use
// (readOnly a bool, requestParameters an object, mfaAuthenticated a string…).
func TestEventShapeMatchesRealRecords(t *testing.T) {
	real := map[string]map[string]bool{}
	for _, f := range realRecordFiles(t) {
		raw, _ := os.ReadFile(f)
		var doc struct{ Records []any }
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		for _, r := range doc.Records {
			jsonKinds(r, "", real)
		}
	}
	ours := map[string]map[string]bool{}
	for _, g := range goldenEvents(t) {
		b, err := marshalEvent(g.ev)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		jsonKinds(v, "", ours)
	}
	shared := 0
	for path, kinds := range ours {
		rk, ok := real[path]
		if !ok {
			continue
		}
		shared++
		for k := range kinds {
			if !rk[k] {
				t.Errorf("%s: keyless writes a %s, real records have %v", path, k, keys(rk))
			}
		}
	}
	for _, must := range []string{".readOnly", ".requestParameters", ".responseElements", ".eventTime", ".userIdentity.sessionContext.attributes.mfaAuthenticated", ".resources[].ARN", ".managementEvent"} {
		if ours[must] == nil || real[must] == nil {
			t.Errorf("path %s not covered by both keyless and real records", must)
		}
	}
	t.Logf("%d field paths compared", shared)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type goldenEvent struct {
	name string
	ev   *Event
}

// Secrets used by the event builders in tests; they must never appear in
// what is recorded.
const (
	testIDToken      = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJyZXBvOm9jdG8vYXBwIn0.c2lnbmF0dXJlLW5vdC1yZWFs"
	testSessionToken = "KLS1.sealed-session-token-blob-for-tests-0123456789abcdef"
	testSecretKey    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

func githubClaims() map[string]any {
	return map[string]any{
		"iss": "https://token.actions.githubusercontent.com", "aud": "sts.amazonaws.com",
		"sub": "repo:octo/app:ref:refs/heads/main", "jti": "b6a1c9e0-jti", "repository": "octo/app",
		"repository_owner": "octo", "workflow": "deploy", "job_workflow_ref": "octo/app/.github/workflows/deploy.yml@refs/heads/main",
		"run_id": "9876543210", "run_attempt": "2", "ref": "refs/heads/main", "sha": "0123abcd", "actor": "mona",
		"email": "mona@example.com", "iat": float64(1744771616), "exp": float64(1744771916),
	}
}

// goldenEvents builds one event of each kind with fixed inputs.
func goldenEvents(t testing.TB) []goldenEvent {
	t.Helper()
	c := newClock(t0)
	b := testBuilder(1, c)
	b.RedactClaims = []string{"email", "actor"}
	provider := "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
	role := "arn:aws:iam::123456789012:role/ci/ci-deploy"
	call := Call{SourceIP: "52.154.133.36", UserAgent: "aws-sdk-go-v2/1.36.0 os/linux", RequestID: "6936cb5f-948b-4139-8939-06118942c0cc",
		TLS: &TLSDetails{TLSVersion: "TLSv1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", ClientProvidedHostHeader: "keyless.example.com"}}
	exch := Exchange{
		RoleARN: role, RoleSessionName: "GitHubActions", DurationSeconds: 3600,
		ProviderARN: provider, Issuer: "https://token.actions.githubusercontent.com", Audience: "sts.amazonaws.com",
		Subject: "repo:octo/app:ref:refs/heads/main", IDToken: testIDToken, Claims: githubClaims(),
		Decision: "Allow", Trace: json.RawMessage(`{"statements":[{"sid":"GitHubMain","effect":"Allow","matched":true}]}`),
		Credentials:   &IssuedCredentials{AccessKeyID: "ASIAEXAMPLEKEYID0001", SessionToken: testSessionToken, Expiration: t0.Add(time.Hour)},
		AssumedRoleID: "AROAEXAMPLEROLEID0001:GitHubActions", AssumedRoleARN: "arn:aws:sts::123456789012:assumed-role/ci-deploy/GitHubActions",
	}
	ok, err := b.WebIdentityExchange(call, exch)
	if err != nil {
		t.Fatal(err)
	}
	denied := exch
	denied.Credentials = nil
	denied.Decision = "Deny"
	denyCall := call
	denyCall.ErrorCode, denyCall.ErrorMessage = "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"
	deny, err := b.WebIdentityExchange(denyCall, denied)
	if err != nil {
		t.Fatal(err)
	}
	later, err := b.APICall(Call{
		Source: SourceSTS, Name: "GetCallerIdentity", SourceIP: "52.154.133.36", UserAgent: "aws-cli/2.15.0", RequestID: "req-gci", ReadOnly: true,
		Identity: AssumedRole(Session{AccountID: testAccount, RoleName: "ci-deploy", RoleARN: role, RoleID: "AROAEXAMPLEROLEID0001",
			SessionName: "GitHubActions", AccessKeyID: "ASIAEXAMPLEKEYID0001", ProviderARN: provider, CreationDate: t0}),
	})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := b.APICall(Call{
		Source: SourceIAM, Name: "CreateAccessKey", SourceIP: "10.0.0.5", UserAgent: "aws-cli/2.15.0", RequestID: "req-cak",
		Identity:          IAMUser(testAccount, "AIDAEXAMPLEADMIN0001", "", "admin", "AKIAEXAMPLEADMIN0001"),
		RequestParameters: map[string]any{"userName": "deployer"},
		ResponseElements: map[string]any{"accessKey": map[string]any{
			"accessKeyId": "AKIAEXAMPLEDEPLOY001", "secretAccessKey": testSecretKey, "status": "Active", "userName": "deployer",
		}},
		Resources: []Resource{{ARN: "arn:aws:iam::123456789012:user/deployer", AccountID: testAccount, Type: "AWS::IAM::User"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return []goldenEvent{{"exchange-allowed", ok}, {"exchange-denied", deny}, {"assumed-role-call", later}, {"iam-admin-call", admin}}
}

// TestGoldenEvents pins the exact JSON of each event kind.
func TestGoldenEvents(t *testing.T) {
	for _, g := range goldenEvents(t) {
		t.Run(g.name, func(t *testing.T) {
			b, err := marshalEvent(g.ev)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", "golden", g.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if d := cmp.Diff(string(want), pretty.String()); d != "" {
				t.Errorf("golden mismatch (-want +got):\n%s", d)
			}
			// The golden file decodes with the reader and re-encodes identically.
			var n int
			for ev, err := range Records(strings.NewReader(`{"Records":[` + string(want) + `]}`)) {
				if err != nil {
					t.Fatal(err)
				}
				again, err := marshalEvent(ev)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, b) {
					t.Errorf("decode+encode changed the event:\n%s\n%s", again, b)
				}
				n++
			}
			if n != 1 {
				t.Fatalf("decoded %d events", n)
			}
			for name, secret := range map[string]string{"ID token": testIDToken, "session token": testSessionToken, "secret key": testSecretKey} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s recorded in clear", name)
				}
			}
		})
	}
}

// TestExchangeEvent checks the exchange event field by field against the
// shape AWS records (aws-sts-iam.md §5.1) and keyless's documented keys.
func TestExchangeEvent(t *testing.T) {
	ev := goldenEvents(t)[0].ev
	b, _ := marshalEvent(ev)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	get := func(path string) any {
		var v any = m
		for _, p := range strings.Split(path, ".") {
			v = v.(map[string]any)[p]
		}
		return v
	}
	want := map[string]any{
		"eventVersion":                             "1.11",
		"eventTime":                                "2025-04-16T02:46:56Z",
		"eventSource":                              "sts.amazonaws.com",
		"eventName":                                "AssumeRoleWithWebIdentity",
		"eventType":                                "AwsApiCall",
		"eventCategory":                            "Management",
		"readOnly":                                 true,
		"managementEvent":                          true,
		"recipientAccountId":                       testAccount,
		"userIdentity.type":                        "WebIdentityUser",
		"userIdentity.principalId":                 "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:repo:octo/app:ref:refs/heads/main",
		"userIdentity.userName":                    "repo:octo/app:ref:refs/heads/main",
		"userIdentity.identityProvider":            "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
		"requestParameters.roleSessionName":        "GitHubActions",
		"requestParameters.durationSeconds":        float64(3600),
		"responseElements.credentials.accessKeyId": "ASIAEXAMPLEKEYID0001",
		"responseElements.credentials.expiration":  "Apr 16, 2025, 3:46:56 AM",
		"responseElements.credentials.sessionTokenSHA256":                  SHA256Hex(testSessionToken),
		"responseElements.subjectFromWebIdentityToken":                     "repo:octo/app:ref:refs/heads/main",
		"responseElements.audience":                                        "sts.amazonaws.com",
		"additionalEventData.webIdentityTokenSHA256":                       SHA256Hex(testIDToken),
		"additionalEventData.webIdentityTokenJti":                          "b6a1c9e0-jti",
		"additionalEventData.trustDecision":                                "Allow",
		"additionalEventData.identityProviderConnectionVerificationMethod": "IAMTrustStore",
		"additionalEventData.RequestDetails.endpointType":                  "regional",
		"additionalEventData.webIdentityTokenClaims.email":                 RedactedMarker,
		"additionalEventData.webIdentityTokenClaims.actor":                 RedactedMarker,
		"additionalEventData.webIdentityTokenClaims.repository":            "octo/app",
		"additionalEventData.ciRun.provider":                               "github-actions",
		"additionalEventData.ciRun.buildUrl":                               "https://github.com/octo/app/actions/runs/9876543210/attempts/2",
		"additionalEventData.trustTrace.statements":                        []any{map[string]any{"sid": "GitHubMain", "effect": "Allow", "matched": true}},
	}
	for path, w := range want {
		if d := cmp.Diff(w, get(path)); d != "" {
			t.Errorf("%s (-want +got):\n%s", path, d)
		}
	}
	if _, ok := get("responseElements.credentials").(map[string]any)["sessionToken"]; ok {
		t.Error("responseElements.credentials.sessionToken must not be recorded")
	}
	if got := ev.Resources; len(got) != 1 || got[0].Type != ResourceTypeRole || got[0].AccountID != testAccount {
		t.Errorf("resources = %+v", got)
	}
	deny := goldenEvents(t)[1].ev
	if deny.ResponseElements != nil || deny.ErrorCode != "AccessDenied" || deny.AdditionalEventData[KeyTrustDecision] != "Deny" {
		t.Errorf("denied exchange: responseElements=%v errorCode=%q decision=%v", deny.ResponseElements, deny.ErrorCode, deny.AdditionalEventData[KeyTrustDecision])
	}
}

func TestWebIdentityExchangeRejectsBadTrace(t *testing.T) {
	b := testBuilder(1, newClock(t0))
	_, err := b.WebIdentityExchange(Call{}, Exchange{Trace: json.RawMessage(`{"unterminated"`)})
	if err == nil || !strings.Contains(err.Error(), "trace") {
		t.Fatalf("err = %v, want invalid trace", err)
	}
}

func TestFormatExpiration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2025, 4, 16, 3, 46, 56, 0, time.UTC), "Apr 16, 2025, 3:46:56 AM"},
		{time.Date(2024, 11, 30, 20, 43, 17, 0, time.UTC), "Nov 30, 2024, 8:43:17 PM"},
		{time.Date(2016, 3, 23, 0, 0, 5, 0, time.UTC), "Mar 23, 2016, 12:00:05 AM"},
		{time.Date(2016, 3, 23, 12, 0, 0, 0, time.UTC), "Mar 23, 2016, 12:00:00 PM"},
		{time.Date(2025, 4, 16, 5, 46, 56, 0, time.FixedZone("CEST", 2*3600)), "Apr 16, 2025, 3:46:56 AM"},
	} {
		if got := FormatExpiration(tc.in); got != tc.want {
			t.Errorf("FormatExpiration(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	ev := &Event{
		RequestParameters: map[string]any{
			"password": "hunter2", "userName": "bob",
			"nested": map[string]any{"SessionToken": "tok-1", "list": []any{map[string]any{"secretAccessKey": "s3cr3t", "keep": 1.0}}},
		},
		ResponseElements: map[string]any{"credentials": map[string]any{"sessionToken": "tok-2", "accessKeyId": "ASIA"}},
	}
	Scrub(ev)
	want := &Event{
		RequestParameters: map[string]any{
			"userName": "bob",
			"nested":   map[string]any{"SessionTokenSHA256": SHA256Hex("tok-1"), "list": []any{map[string]any{"keep": 1.0}}},
		},
		ResponseElements: map[string]any{"credentials": map[string]any{"sessionTokenSHA256": SHA256Hex("tok-2"), "accessKeyId": "ASIA"}},
	}
	if d := cmp.Diff(want, ev); d != "" {
		t.Errorf("Scrub (-want +got):\n%s", d)
	}
}

func TestCIRunFromClaims(t *testing.T) {
	for _, tc := range []struct {
		name   string
		issuer string
		claims map[string]any
		want   *CIRun
	}{
		{"github", "https://token.actions.githubusercontent.com", githubClaims(), &CIRun{
			Provider: "github-actions", Project: "octo/app", Workflow: "deploy", Job: "octo/app/.github/workflows/deploy.yml@refs/heads/main",
			RunID: "9876543210", RunAttempt: "2", Ref: "refs/heads/main", SHA: "0123abcd",
			BuildURL: "https://github.com/octo/app/actions/runs/9876543210/attempts/2"}},
		{"github enterprise server", "https://ghe.example.com/_services/token", map[string]any{"repository": "a/b", "run_id": "7"},
			&CIRun{Provider: "github-actions", Project: "a/b", RunID: "7", BuildURL: "https://ghe.example.com/a/b/actions/runs/7"}},
		{"gitlab job", "https://gitlab.example.com", map[string]any{"project_path": "grp/proj", "pipeline_id": "120", "job_id": "3456", "pipeline_source": "push", "ref": "main", "sha": "ff00"},
			&CIRun{Provider: "gitlab-ci", Project: "grp/proj", Workflow: "push", Job: "3456", RunID: "120", Ref: "main", SHA: "ff00",
				BuildURL: "https://gitlab.example.com/grp/proj/-/jobs/3456"}},
		{"gitlab without job", "https://gitlab.com/", map[string]any{"project_path": "grp/proj", "pipeline_id": "120"},
			&CIRun{Provider: "gitlab-ci", Project: "grp/proj", RunID: "120", BuildURL: "https://gitlab.com/grp/proj/-/pipelines/120"}},
		{"circleci", "https://oidc.circleci.com/org/0000", map[string]any{"oidc.circleci.com/project-id": "p-uuid", "oidc.circleci.com/vcs-ref": "refs/heads/main"},
			&CIRun{Provider: "circleci", Project: "p-uuid", Ref: "refs/heads/main"}},
		{"buildkite numeric build", "https://agent.buildkite.com", map[string]any{"organization_slug": "acme", "pipeline_slug": "deploy", "build_number": float64(1514), "job_id": "j-1", "build_branch": "main"},
			&CIRun{Provider: "buildkite", Project: "acme/deploy", Job: "j-1", RunID: "1514", Ref: "main", BuildURL: "https://buildkite.com/acme/deploy/builds/1514#j-1"}},
		{"redacted key claim", "https://token.actions.githubusercontent.com", map[string]any{"repository": RedactedMarker, "run_id": "1"}, nil},
		{"unknown provider", "https://issuer.example.com", map[string]any{"sub": "x"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CIRunFromClaims(tc.issuer, tc.claims)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if got != nil {
				// The run's JSON is the struct's fields with sorted keys: what
				// the event becomes when read back and written again.
				type plain CIRun
				var fields map[string]any
				b, _ := json.Marshal((*plain)(got))
				if err := json.Unmarshal(b, &fields); err != nil {
					t.Fatal(err)
				}
				sorted, _ := json.Marshal(fields)
				if own, _ := got.MarshalJSON(); string(own) != string(sorted) {
					t.Errorf("MarshalJSON = %s, want %s", own, sorted)
				}
			}
		})
	}
}

func TestNewEventID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	r := newRand(3)
	seen := map[string]bool{}
	for range 1000 {
		id, err := NewEventID(r)
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(id) {
			t.Fatalf("%q is not a v4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
	if _, err := NewEventID(bytes.NewReader(nil)); err == nil {
		t.Error("NewEventID with an empty reader succeeded")
	}
}

func TestIdentityHelpers(t *testing.T) {
	u := AssumedRole(Session{AccountID: testAccount, RoleName: "ci-deploy", RoleARN: "arn:aws:iam::123456789012:role/ci/ci-deploy",
		RoleID: "AROAX", SessionName: "s1", AccessKeyID: "ASIAX", CreationDate: t0})
	want := &UserIdentity{
		Type: "AssumedRole", PrincipalID: "AROAX:s1", ARN: "arn:aws:sts::123456789012:assumed-role/ci-deploy/s1",
		AccountID: testAccount, AccessKeyID: "ASIAX",
		SessionContext: &SessionContext{
			SessionIssuer:       &SessionIssuer{Type: "Role", PrincipalID: "AROAX", ARN: "arn:aws:iam::123456789012:role/ci/ci-deploy", AccountID: testAccount, UserName: "ci-deploy"},
			WebIDFederationData: &WebIDFederationData{},
			Attributes:          &SessionAttributes{CreationDate: "2025-04-16T02:46:56Z", MFAAuthenticated: "false"},
		},
	}
	if d := cmp.Diff(want, u); d != "" {
		t.Errorf("AssumedRole (-want +got):\n%s", d)
	}
	b, _ := json.Marshal(u)
	if !strings.Contains(string(b), `"webIdFederationData":{}`) {
		t.Errorf("non-web-identity session must have webIdFederationData {} as CloudTrail: %s", b)
	}
	a := IAMUser(testAccount, "AIDAX", "/admins/", "root-admin", "AKIAX")
	if a.ARN != "arn:aws:iam::123456789012:user/admins/root-admin" || a.Type != "IAMUser" {
		t.Errorf("IAMUser = %+v", a)
	}
}

func TestTruncateUTF8(t *testing.T) {
	s := strings.Repeat("a", 1022) + "é€" // é = 2 bytes, € = 3 bytes
	got := truncateUTF8(s, maxTextField)
	if len(got) > maxTextField || !strings.HasSuffix(got, "é") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("truncate: len %d suffix %q", len(got), got[len(got)-4:])
	}
	ev, err := testBuilder(1, newClock(t0)).APICall(Call{Source: SourceSTS, Name: "X", UserAgent: strings.Repeat("u", 5000)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.UserAgent) != maxTextField {
		t.Errorf("userAgent not capped at 1 KB: %d", len(ev.UserAgent))
	}
}

func TestRecordsShapes(t *testing.T) {
	one := `{"eventVersion":"1.08","eventTime":"2024-01-02T03:04:05Z","eventID":"e1","eventName":"ListBuckets","readOnly":true,"requestParameters":null,"responseElements":null}`
	inner, _ := json.Marshal(one)
	for _, tc := range []struct {
		name, doc string
		ids       []string
		wantErr   bool
	}{
		{"delivery file", `{"Records":[` + one + `]}`, []string{"e1"}, false},
		{"extra keys skipped", `{"x":[1,{"y":2}],"Records":[` + one + `],"z":null}`, []string{"e1"}, false},
		{"array", `[` + one + `,` + one + `]`, []string{"e1", "e1"}, false},
		{"lookup-events", `{"Events":[{"EventId":"e1","CloudTrailEvent":` + string(inner) + `}]}`, []string{"e1"}, false},
		{"empty", `{"Records":[]}`, nil, false},
		{"scalar", `"x"`, nil, true},
		{"wrong type", `{"Records":[{"readOnly":"true"}]}`, nil, true},
		{"trailing data", `{"Records":[]} {}`, nil, true},
		{"truncated", `{"Records":[` + one, []string{"e1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ids []string
			var gotErr error
			for ev, err := range Records(strings.NewReader(tc.doc)) {
				if err != nil {
					gotErr = err
					continue
				}
				ids = append(ids, ev.EventID)
			}
			if (gotErr != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", gotErr, tc.wantErr)
			}
			if !slices.Equal(ids, tc.ids) {
				t.Errorf("ids = %v, want %v", ids, tc.ids)
			}
		})
	}
}

func FuzzRecords(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join("testdata", "real", "invictus-sample.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw[:2000])
	f.Add([]byte(`{"Records":[{"eventID":"a","eventTime":"2024-01-02T03:04:05Z"}]}`))
	f.Add([]byte(`[{"userIdentity":{"sessionContext":{"attributes":{}}}}]`))
	f.Add([]byte(`{"Events":[{"CloudTrailEvent":"{\"eventID\":\"x\"}"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		for ev, err := range Records(bytes.NewReader(data)) {
			if err != nil {
				break
			}
			if ev == nil {
				t.Fatal("nil event without error")
			}
			// Anything decoded must encode again (when it has the required fields).
			if ev.EventID != "" && !ev.EventTime.IsZero() {
				if _, err := marshalEvent(ev); err != nil {
					t.Fatalf("decoded event does not encode: %v", err)
				}
			}
			n++
			if n > 10000 {
				t.Fatal(fmt.Sprint("too many events from ", len(data), " bytes"))
			}
		}
	})
}

// TestExchangeDoesNotMutateClaims: claims are shared with the event when
// nothing in them needs redacting or scrubbing, copied otherwise; the
// caller's map is never changed either way.
func TestExchangeDoesNotMutateClaims(t *testing.T) {
	b := testBuilder(7, newClock(t0))
	b.RedactClaims = []string{"email"}
	for _, tc := range []struct {
		name   string
		claims func() map[string]any
		check  func(t *testing.T, got map[string]any)
	}{
		{"clean", func() map[string]any { return map[string]any{"sub": "s", "n": []any{map[string]any{"a": 1}}} }, nil},
		{"redacted", func() map[string]any { return map[string]any{"sub": "s", "email": "a@b.c"} }, func(t *testing.T, got map[string]any) {
			if got["email"] != RedactedMarker {
				t.Errorf("email = %v, want redacted", got["email"])
			}
		}},
		{"nested secret", func() map[string]any {
			return map[string]any{"sub": "s", "extra": map[string]any{"id_token": "secret-value"}}
		}, func(t *testing.T, got map[string]any) {
			if strings.Contains(fmt.Sprint(got), "secret-value") {
				t.Errorf("nested id_token recorded in clear: %v", got)
			}
		}},
		{"top-level token", func() map[string]any { return map[string]any{"sub": "s", "token": "secret-value"} }, func(t *testing.T, got map[string]any) {
			if _, ok := got["token"]; ok || got["tokenSHA256"] != SHA256Hex("secret-value") {
				t.Errorf("token claim not hashed: %v", got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := tc.claims()
			ev, err := b.WebIdentityExchange(Call{}, Exchange{RoleARN: "arn:aws:iam::123456789012:role/r", Subject: "s", Claims: claims})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.claims(), claims); d != "" {
				t.Errorf("caller's claims changed (-before +after):\n%s", d)
			}
			got := ev.AdditionalEventData[KeyTokenClaims].(map[string]any)
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

func TestSecretKind(t *testing.T) {
	hashed := []string{"sessionToken", "SessionToken", "webIdentityToken", "SAMLAssertion", "idToken", "id_token", "token", "TOKEN"}
	dropped := []string{"secretAccessKey", "password", "newPassword", "oldPassword", "privateKey", "secretKey", "PASSWORD"}
	plain := []string{"", "tokens", "tokenSHA256", "accessKeyId", "passwd", "id-token", "session_token", "roleArn", "sub", "secretkeys"}
	for _, k := range hashed {
		if h, d := secretKind(k); !h || d {
			t.Errorf("secretKind(%q) = %v, %v; want hashed", k, h, d)
		}
	}
	for _, k := range dropped {
		if h, d := secretKind(k); h || !d {
			t.Errorf("secretKind(%q) = %v, %v; want dropped", k, h, d)
		}
	}
	for _, k := range plain {
		if h, d := secretKind(k); h || d {
			t.Errorf("secretKind(%q) = %v, %v; want neither", k, h, d)
		}
	}
}

func TestARNAccount(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:iam::123456789012:role/x":            "123456789012",
		"arn:aws:iam::123456789012:role/a:b":          "123456789012",
		"arn:aws:s3:::bucket":                         "",
		"arn:aws:iam::123456789012":                   "",
		"not-an-arn":                                  "",
		"arn:aws-cn:sts::000000000000:assumed-role/r": "000000000000",
	} {
		if got := arnAccount(arn); got != want {
			t.Errorf("arnAccount(%q) = %q, want %q", arn, got, want)
		}
	}
}

// TestExchangeScrubsCallerAdditions: entries the caller adds to an exchange
// event are scrubbed like any event's, on copies.
func TestExchangeScrubsCallerAdditions(t *testing.T) {
	b := testBuilder(8, newClock(t0))
	extra := func() map[string]any {
		return map[string]any{
			"refusalReason": "no",
			"sessionToken":  "tok-top",
			"password":      "pw",
			"nested":        map[string]any{"list": []any{map[string]any{"idToken": "tok-deep"}}},
		}
	}
	add := extra()
	ev, err := b.WebIdentityExchange(Call{AdditionalEventData: add}, Exchange{RoleARN: "arn:aws:iam::123456789012:role/r", Subject: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(extra(), add); d != "" {
		t.Errorf("caller's map changed (-before +after):\n%s", d)
	}
	got := ev.AdditionalEventData
	if got["refusalReason"] != "no" || got["sessionTokenSHA256"] != SHA256Hex("tok-top") {
		t.Errorf("additions = %v", got)
	}
	b2, _ := marshalEvent(ev)
	for _, secret := range []string{"tok-top", "tok-deep", `"pw"`, "password"} {
		if strings.Contains(string(b2), secret) {
			t.Errorf("event holds %q: %s", secret, b2)
		}
	}
	if !strings.Contains(string(b2), SHA256Hex("tok-deep")) {
		t.Errorf("nested idToken not hashed: %s", b2)
	}
}
