// Command benchkit is the glue of keyless's benchmark scripts (bench/*.sh):
// a loopback test issuer that pre-mints many distinct tokens, IAM setup,
// presigned request URLs for wrk, request bodies for wrk's Lua script, and
// an open-loop constant-rate load generator that reports latency
// percentiles (wrk itself cannot hold a fixed rate).
package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchkit issuer|setup|presign|exchange|rate|upstream-setup|broker-link|mint-bodies|latency|querydata ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "issuer":
		err = runIssuer(os.Args[2:])
	case "setup":
		err = runSetup(os.Args[2:])
	case "presign":
		err = runPresign(os.Args[2:])
	case "exchange":
		err = runExchange(os.Args[2:])
	case "rate":
		err = runRate(os.Args[2:])
	// broker.go: bench/broker.sh
	case "upstream-setup":
		err = runUpstreamSetup(os.Args[2:])
	case "broker-link":
		err = runBrokerLink(os.Args[2:])
	case "mint-bodies":
		err = runMintBodies(os.Args[2:])
	case "latency":
		err = runLatency(os.Args[2:])
	// querydata.go: bench/query.sh
	case "querydata":
		err = runQueryData(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchkit:", err)
		os.Exit(1)
	}
}

// tb adapts oidctest's testing.TB needs for a long-running process.
type tb struct{ testing.TB }

func (tb) Helper()           {}
func (tb) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(1) }
func (tb) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
func (tb) Cleanup(func()) {}

// runIssuer serves a test issuer on loopback, writes its URL and n request
// bodies (AssumeRoleWithWebIdentity, one distinct RS256 token each) and
// serves until killed.
func runIssuer(args []string) error {
	fs := flag.NewFlagSet("issuer", flag.ExitOnError)
	n := fs.Int("n", 20000, "tokens to mint")
	role := fs.String("role-arn", "", "role ARN the bodies assume")
	out := fs.String("bodies", "bodies.txt", "file of form bodies, one per line")
	urlFile := fs.String("url-file", "issuer.url", "file to write the issuer URL to")
	alg := fs.String("key", "RSA2048", "RSA2048 or P256")
	fs.Parse(args)
	kt := oidctest.RSA2048
	if *alg == "P256" {
		kt = oidctest.ECP256
	}
	srv := oidctest.NewServer(tb{}, "/bench", oidctest.Options{Keys: []oidctest.KeyType{kt}})
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for i := range *n {
		tok := srv.NewToken("repo:bench/app:ref:refs/heads/main", "sts.amazonaws.com")
		tok.Claims["exp"] = time.Now().Add(time.Hour).Unix()
		s, err := tok.Serialize()
		if err != nil {
			return err
		}
		buf.WriteString(url.Values{
			"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {*role},
			"RoleSessionName": {fmt.Sprintf("bench-%d", i)}, "WebIdentityToken": {s},
		}.Encode())
		buf.WriteByte('\n')
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return err
	}
	f.Close()
	if err := os.WriteFile(*urlFile, []byte(srv.URL()+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "issuer %s: %d bodies in %s\n", srv.URL(), *n, *out)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

func adminConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))}
}

// runSetup registers the issuer and a role trusting its bench project.
func runSetup(args []string) error {
	fs := flag.NewFlagSet("setup", flag.ExitOnError)
	endpoint := fs.String("endpoint-url", "", "server")
	issuer := fs.String("issuer-url", "", "issuer URL")
	account := fs.String("account-id", "", "account")
	fs.Parse(args)
	ctx := context.Background()
	c := iam.NewFromConfig(adminConfig(), func(o *iam.Options) { o.BaseEndpoint = endpoint })
	if _, err := c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: issuer, ClientIDList: []string{"sts.amazonaws.com"}}); err != nil {
		return err
	}
	prefix := strings.TrimPrefix(*issuer, "http://")
	trust := `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"Main","Effect":"Allow","Principal":{"Federated":"arn:aws:iam::` + *account + `:oidc-provider/` + prefix + `"},"Action":"sts:AssumeRoleWithWebIdentity",` +
		`"Condition":{"StringEquals":{"` + prefix + `:aud":"sts.amazonaws.com"},"StringLike":{"` + prefix + `:sub":"repo:bench/app:ref:refs/heads/*"}}},` +
		`{"Sid":"Release","Effect":"Allow","Principal":{"Federated":"arn:aws:iam::` + *account + `:oidc-provider/` + prefix + `"},"Action":"sts:AssumeRoleWithWebIdentity",` +
		`"Condition":{"StringLike":{"` + prefix + `:sub":"repo:bench/app:ref:refs/tags/v*"}}},` +
		`{"Sid":"NoPR","Effect":"Deny","Principal":{"Federated":"arn:aws:iam::` + *account + `:oidc-provider/` + prefix + `"},"Action":"sts:AssumeRoleWithWebIdentity",` +
		`"Condition":{"StringLike":{"` + prefix + `:sub":"*:pull_request"}}}]}`
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("bench"), AssumeRolePolicyDocument: &trust}); err != nil {
		return err
	}
	return nil
}

// runPresign prints a presigned GET URL for an action (query string
// signing; STS and IAM accept it for 15 minutes).
func runPresign(args []string) error {
	fs := flag.NewFlagSet("presign", flag.ExitOnError)
	endpoint := fs.String("endpoint-url", "", "server")
	service := fs.String("service", "iam", "iam or sts")
	query := fs.String("query", "", "API query string, e.g. Action=GetRole&Version=2010-05-08&RoleName=bench")
	fs.Parse(args)
	cfg := adminConfig()
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodGet, *endpoint+"/?"+*query, nil)
	if err != nil {
		return err
	}
	const emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, emptySHA, *service, "us-east-1", time.Now())
	if err != nil {
		return err
	}
	fmt.Println(u)
	return nil
}

// runExchange does one exchange with the first body and prints the
// credentials as shell exports.
func runExchange(args []string) error {
	fs := flag.NewFlagSet("exchange", flag.ExitOnError)
	endpoint := fs.String("endpoint-url", "", "server")
	bodies := fs.String("bodies", "bodies.txt", "bodies file")
	fs.Parse(args)
	b, err := os.ReadFile(*bodies)
	if err != nil {
		return err
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	resp, err := http.Post(*endpoint+"/", "application/x-www-form-urlencoded", bytes.NewReader(first))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		C struct {
			ID     string `xml:"AccessKeyId"`
			Secret string `xml:"SecretAccessKey"`
			Token  string `xml:"SessionToken"`
		} `xml:"AssumeRoleWithWebIdentityResult>Credentials"`
	}
	if err := xml.Unmarshal(body, &out); err != nil || out.C.ID == "" {
		return fmt.Errorf("exchange failed: %s", body)
	}
	fmt.Printf("export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_SESSION_TOKEN=%s\n", out.C.ID, out.C.Secret, out.C.Token)
	return nil
}

// runRate sends bodies at a fixed rate (open loop: a slow server does not
// slow the sender) and reports achieved rate and latency percentiles.
func runRate(args []string) error {
	fs := flag.NewFlagSet("rate", flag.ExitOnError)
	endpoint := fs.String("endpoint-url", "", "server")
	bodies := fs.String("bodies", "bodies.txt", "bodies file")
	rate := fs.Int("rate", 2000, "requests per second")
	dur := fs.Duration("duration", 10*time.Second, "duration")
	fs.Parse(args)
	b, err := os.ReadFile(*bodies)
	if err != nil {
		return err
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	tr := &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      atomic.Int64
		wg        sync.WaitGroup
	)
	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	total := int(dur.Seconds() * float64(*rate))
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		body := lines[i%len(lines)]
		wg.Go(func() {
			t0 := time.Now()
			resp, err := client.Post(*endpoint+"/", "application/x-www-form-urlencoded", bytes.NewReader(body))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = errors.New(resp.Status)
				}
			}
			// Latency counts from the scheduled send time, so queueing in
			// the sender is not hidden (no coordinated omission).
			l := time.Since(due)
			_ = t0
			mu.Lock()
			latencies = append(latencies, l)
			mu.Unlock()
			if err != nil {
				errs.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	fmt.Printf("rate %d/s for %s: %d requests in %.1fs (%.0f/s), %d errors, p50 %s, p90 %s, p99 %s, max %s\n",
		*rate, *dur, len(latencies), elapsed.Seconds(), float64(len(latencies))/elapsed.Seconds(), errs.Load(),
		pct(0.50).Round(10*time.Microsecond), pct(0.90).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), latencies[len(latencies)-1].Round(10*time.Microsecond))
	return nil
}
