package contract

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/audit/audittest"
	"github.com/keylessci/keyless/internal/testenv"
)

type issuedCreds struct {
	AccessKeyID, Secret, SessionToken string
}

// exchangeHTTP calls AssumeRoleWithWebIdentity with a plain HTTP POST, the
// way botocore sends it, and returns the credentials.
func exchangeHTTP(client *http.Client, base, roleARN, session, token string) (issuedCreds, int, error) {
	form := url.Values{
		"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
		"RoleArn": {roleARN}, "RoleSessionName": {session}, "WebIdentityToken": {token},
	}
	resp, err := client.Post(base+"/", "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(form.Encode()))
	if err != nil {
		return issuedCreds{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		// The response did not reach the client whole: the client did not
		// get these credentials.
		return issuedCreds{}, resp.StatusCode, err
	}
	if resp.StatusCode != 200 {
		return issuedCreds{}, resp.StatusCode, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var out struct {
		Result struct {
			Credentials struct {
				AccessKeyID     string `xml:"AccessKeyId"`
				SecretAccessKey string `xml:"SecretAccessKey"`
				SessionToken    string `xml:"SessionToken"`
			} `xml:"Credentials"`
		} `xml:"AssumeRoleWithWebIdentityResult"`
	}
	if err := xml.Unmarshal(body, &out); err != nil {
		return issuedCreds{}, resp.StatusCode, err
	}
	c := out.Result.Credentials
	return issuedCreds{c.AccessKeyID, c.SecretAccessKey, c.SessionToken}, 200, nil
}

// TestAuditSurvivesSIGKILL kills a real keyless serve with SIGKILL in the
// middle of a burst of exchanges, 20 times, restarting it on the same data
// dir each time. Every access key id that reached a client must be in the
// trail exactly once, the trail must verify, the exchange→use link must
// hold, and no issued secret, session token or ID token may appear under
// the data dir or in the logs.
func TestAuditSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	rounds := 20
	if testenv.Short() {
		rounds = 3
	}
	f := newFederation(t) // registers the provider and role on a first server
	data := f.srv.Data
	f.srv.stop(t)

	var (
		mu       sync.Mutex
		received = map[string]bool{}
		secrets  []string
		tokens   []string
		logs     strings.Builder
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for round := range rounds {
		s := startServer(t, data, "--allow-loopback-http-issuers")
		deadline := time.Now().Add(300 * time.Millisecond)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := 0; time.Now().Before(deadline) || i == 0; i++ {
					tok := f.token(t, "repo:octo-org/app:ref:refs/heads/main")
					c, _, err := exchangeHTTP(client, s.URL, f.roleARN, fmt.Sprintf("r%dw%di%d", round, w, i), tok)
					mu.Lock()
					tokens = append(tokens, tok)
					if err == nil {
						received[c.AccessKeyID] = true
						secrets = append(secrets, c.Secret, c.SessionToken)
					}
					mu.Unlock()
					if err != nil {
						return // the server is gone
					}
				}
			})
		}
		// Kill while the burst is in flight.
		time.Sleep(150 * time.Millisecond)
		if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-s.exited
		s.exited <- nil
		wg.Wait()
		logs.WriteString(s.logs.String())
	}
	if len(received) < rounds {
		t.Fatalf("only %d exchanges succeeded in %d rounds", len(received), rounds)
	}

	// A last clean run: recover, use one credential set, stop with SIGTERM
	// (which seals the journal).
	s := startServer(t, data, "--allow-loopback-http-issuers")
	c, _, err := exchangeHTTP(client, s.URL, f.roleARN, "final", f.token(t, "repo:octo-org/app:ref:refs/heads/main"))
	if err != nil {
		t.Fatal(err)
	}
	received[c.AccessKeyID] = true
	secrets = append(secrets, c.Secret, c.SessionToken)
	who := awsCLI(t, s.URL, awsEnv(t, c.AccessKeyID, c.Secret, c.SessionToken), "sts", "get-caller-identity")
	if who.Code != 0 {
		t.Fatalf("get-caller-identity: %s", who.Stderr)
	}
	s.stop(t)
	logs.WriteString(s.logs.String())

	// Every credential a client received is in the trail, once.
	seen := map[string]int{}
	eventIDs := map[string]bool{}
	useLinked := false
	ctx := context.Background()
	for e, err := range audit.Read(ctx, filepath.Join(data, "audit"), audit.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		ev := e.Event
		if eventIDs[ev.EventID] {
			t.Errorf("event %s appears twice", ev.EventID)
		}
		eventIDs[ev.EventID] = true
		if ev.EventName == "AssumeRoleWithWebIdentity" && ev.ErrorCode == "" {
			creds, _ := ev.ResponseElements["credentials"].(map[string]any)
			if id, _ := creds["accessKeyId"].(string); id != "" {
				seen[id]++
			}
		}
		if ev.EventName == "GetCallerIdentity" && ev.UserIdentity != nil && ev.UserIdentity.AccessKeyID == c.AccessKeyID &&
			ev.UserIdentity.Type == "AssumedRole" && ev.UserIdentity.SessionContext != nil &&
			ev.UserIdentity.SessionContext.WebIDFederationData != nil && ev.UserIdentity.SessionContext.WebIDFederationData.FederatedProvider == f.provider {
			useLinked = true
		}
	}
	for id := range received {
		if seen[id] != 1 {
			t.Errorf("access key %s reached a client but is in the trail %d times", id, seen[id])
		}
	}
	if !useLinked {
		t.Error("no GetCallerIdentity event carries the exchanged accessKeyId with the web identity provider")
	}
	t.Logf("%d rounds, %d credentials delivered, %d recorded exchanges", rounds, len(received), len(seen))

	// The trail verifies, through the CLI as a user would run it.
	out, err := exec.Command(binary, "audit", "verify", data).CombinedOutput()
	if err != nil {
		t.Fatalf("keyless audit verify: %v\n%s", err, out)
	}

	// No secret anywhere on disk or in the logs.
	all := append(append([]string{}, secrets...), tokens...)
	leaks, err := audittest.ScanSecrets(data, all)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaks {
		t.Errorf("secret #%d found in %s (gzip=%v, %s)", l.Secret, l.Path, l.InGzip, l.Form)
	}
	logFile := filepath.Join(t.TempDir(), "server.log")
	if err := os.WriteFile(logFile, []byte(logs.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	leaks, err = audittest.ScanSecrets(filepath.Dir(logFile), all)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaks {
		t.Errorf("secret #%d found in the server logs", l.Secret)
	}
}
