package main

// The subcommands of bench/broker.sh (broker mode: keyless A brokers to a
// keyless B playing AWS):
//
//	upstream-setup  at B: an IAM OIDC provider for A's issuer and the upstream
//	                role, trusting the broker's subject (and a subject for
//	                direct exchanges at B, which A's token endpoint may mint:
//	                it refuses keyless:-subjects to clients)
//	broker-link     at A: tag a role keyless:upstream-role-arn, and copy it
//	                untagged (a plain keyless exchange, for comparison)
//	mint-bodies     AssumeRoleWithWebIdentity bodies with tokens of A's
//	                issuer, minted through A's token endpoint
//	latency         an open-loop constant-rate generator over several targets
//	                in alternating rounds, printing microseconds for awk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keylessci/keyless/internal/issuer"
)

// brokerAudience is the audience of every token AWS STS accepts.
const brokerAudience = "sts.amazonaws.com"

// runUpstreamSetup registers A's issuer at B (the "AWS" side) and creates
// the upstream role, trusting exactly the given subjects, with the trust
// policy keyless broker aws-setup prints.
func runUpstreamSetup(args []string) error {
	fs := flag.NewFlagSet("upstream-setup", flag.ExitOnError)
	endpoint := fs.String("endpoint-url", "", "the upstream (B)")
	issuerURL := fs.String("issuer-url", "", "A's issuer URL")
	account := fs.String("account-id", "", "B's account")
	role := fs.String("role", "bench", "upstream role name")
	subjects := fs.String("subjects", "", "comma-separated subjects the role trusts")
	fs.Parse(args)
	if *endpoint == "" || *issuerURL == "" || *account == "" || *subjects == "" {
		return errors.New("upstream-setup: -endpoint-url, -issuer-url, -account-id and -subjects are required")
	}
	ctx := context.Background()
	c := iam.NewFromConfig(adminConfig(), func(o *iam.Options) { o.BaseEndpoint = endpoint })
	if _, err := c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: issuerURL, ClientIDList: []string{brokerAudience}}); err != nil {
		return fmt.Errorf("create provider: %w", err)
	}
	prefix := strings.TrimPrefix(strings.TrimPrefix(*issuerURL, "https://"), "http://")
	subs := `"` + strings.Join(strings.Split(*subjects, ","), `","`) + `"`
	trust := `{"Version":"2012-10-17","Statement":[{"Sid":"KeylessBroker","Effect":"Allow",` +
		`"Principal":{"Federated":"arn:aws:iam::` + *account + `:oidc-provider/` + prefix + `"},` +
		`"Action":["sts:AssumeRoleWithWebIdentity","sts:TagSession","sts:SetSourceIdentity"],` +
		`"Condition":{"StringEquals":{"` + prefix + `:aud":"` + brokerAudience + `","` + prefix + `:sub":[` + subs + `]}}}]}`
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: role, AssumeRolePolicyDocument: &trust}); err != nil {
		return fmt.Errorf("create role: %w", err)
	}
	return nil
}

// runBrokerLink tags a keyless role with its upstream role and, with
// -plain-copy, creates an untagged role with the same trust policy.
func runBrokerLink(args []string) error {
	fs := flag.NewFlagSet("broker-link", flag.ExitOnError)
	endpoint := fs.String("endpoint-url", "", "the broker (A)")
	role := fs.String("role", "bench", "keyless role to link")
	upstream := fs.String("upstream-role-arn", "", "arn:aws:iam::<account>:role/<name>")
	plain := fs.String("plain-copy", "", "name of an untagged copy of the role (none if empty)")
	fs.Parse(args)
	ctx := context.Background()
	c := iam.NewFromConfig(adminConfig(), func(o *iam.Options) { o.BaseEndpoint = endpoint })
	if *plain != "" {
		out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: role})
		if err != nil {
			return fmt.Errorf("get role: %w", err)
		}
		doc, err := url.QueryUnescape(aws.ToString(out.Role.AssumeRolePolicyDocument))
		if err != nil {
			return fmt.Errorf("trust policy of %s: %w", *role, err)
		}
		if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: plain, AssumeRolePolicyDocument: &doc}); err != nil {
			return fmt.Errorf("create role %s: %w", *plain, err)
		}
	}
	if _, err := c.TagRole(ctx, &iam.TagRoleInput{RoleName: role, Tags: []types.Tag{{Key: aws.String("keyless:upstream-role-arn"), Value: upstream}}}); err != nil {
		return fmt.Errorf("tag role: %w", err)
	}
	return nil
}

// runMintBodies mints n tokens at a keyless issuer's token endpoint
// (signed with the administrator key of the environment) and writes one
// AssumeRoleWithWebIdentity body per token. The tokens carry ci_* claims
// like a broker token's, so that a direct exchange parses a token of the
// same size.
func runMintBodies(args []string) error {
	fs := flag.NewFlagSet("mint-bodies", flag.ExitOnError)
	endpoint := fs.String("endpoint-url", "", "the server whose issuer mints (A)")
	n := fs.Int("n", 5000, "tokens to mint")
	subject := fs.String("subject", "", "sub of the tokens")
	role := fs.String("role-arn", "", "role ARN the bodies assume")
	out := fs.String("bodies", "bodies-direct.txt", "file of form bodies, one per line")
	workers := fs.Int("workers", 4, "concurrent mint requests")
	fs.Parse(args)
	if *endpoint == "" || *subject == "" || *role == "" {
		return errors.New("mint-bodies: -endpoint-url, -subject and -role-arn are required")
	}
	cfg := adminConfig()
	cl := &issuer.Client{
		Endpoint:   *endpoint,
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *workers}},
		Sign:       issuer.SigV4Signer(cfg.Credentials, cfg.Region, nil),
	}
	bodies := make([]string, *n)
	var (
		next     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range *workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= *n || ctx.Err() != nil {
					return
				}
				now := time.Now().Unix()
				tok, err := cl.Mint(ctx, "", issuer.MintRequest{
					Audience: brokerAudience, Subject: *subject, Lifetime: time.Hour,
					Claims: map[string]any{
						"ci_iss": "http://127.0.0.1:1/bench", "ci_sub": "repo:bench/app:ref:refs/heads/main", "ci_aud": brokerAudience,
						"ci_iat": now, "ci_nbf": now, "ci_exp": now + 3600, "ci_jti": fmt.Sprintf("bench-direct-%d", i),
					},
				})
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("mint token %d: %w", i, err); cancel() })
					return
				}
				bodies[i] = url.Values{
					"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {*role},
					"RoleSessionName": {fmt.Sprintf("bench-direct-%d", i)}, "WebIdentityToken": {tok.Token},
				}.Encode()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, b := range bodies {
		w.WriteString(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// latencyTarget is one server the latency subcommand measures.
type latencyTarget struct {
	name, url string
	bodies    [][]byte
	next      int // next body, across rounds
	all       []time.Duration
	errs      int64
}

// runLatency measures each target at the same fixed rate, open loop (a
// slow server does not slow the sender; latency counts from the scheduled
// send time), in alternating rounds so that drift on a shared machine hits
// every target alike. It prints one line per round and one per target over
// all its rounds, in microseconds:
//
//	latency-NAME round=R rate=.. requests=.. achieved=.. p50_us=.. p90_us=.. p99_us=.. max_us=.. errors=..
func runLatency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	var specs []string
	fs.Func("target", "NAME=URL=BODIES_FILE (repeatable)", func(s string) error { specs = append(specs, s); return nil })
	rate := fs.Int("rate", 200, "requests per second")
	dur := fs.Duration("duration", 5*time.Second, "length of one round")
	rounds := fs.Int("rounds", 2, "rounds per target")
	fs.Parse(args)
	if len(specs) == 0 || *rate <= 0 || *dur <= 0 || *rounds <= 0 {
		return errors.New("latency: want at least one -target, and a positive -rate, -duration and -rounds")
	}
	var targets []*latencyTarget
	for _, s := range specs {
		parts := strings.SplitN(s, "=", 3)
		if len(parts) != 3 {
			return fmt.Errorf("latency: target %q: want NAME=URL=BODIES_FILE", s)
		}
		b, err := os.ReadFile(parts[2])
		if err != nil {
			return err
		}
		targets = append(targets, &latencyTarget{name: parts[0], url: strings.TrimSuffix(parts[1], "/") + "/", bodies: bytes.Split(bytes.TrimSpace(b), []byte("\n"))})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}, Timeout: 10 * time.Second}
	for round := 1; round <= *rounds; round++ {
		// Alternate which target goes first.
		order := slices.Clone(targets)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, t := range order {
			lat, errs, elapsed := openLoop(client, t, *rate, *dur)
			t.all = append(t.all, lat...)
			t.errs += errs
			printLatency(t.name, fmt.Sprintf("round=%d", round), *rate, lat, errs, elapsed)
			time.Sleep(500 * time.Millisecond) // let queues drain
		}
	}
	for _, t := range targets {
		printLatency(t.name, "all", *rate, t.all, t.errs, 0)
	}
	return nil
}

// openLoop sends t's bodies at rate for dur and returns the latencies.
func openLoop(client *http.Client, t *latencyTarget, rate int, dur time.Duration) ([]time.Duration, int64, time.Duration) {
	var (
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, int(dur.Seconds()*float64(rate)))
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	interval := time.Second / time.Duration(rate)
	total := int(dur.Seconds() * float64(rate))
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		body := t.bodies[t.next%len(t.bodies)]
		t.next++
		wg.Go(func() {
			resp, err := client.Post(t.url, "application/x-www-form-urlencoded; charset=utf-8", bytes.NewReader(body))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = errors.New(resp.Status)
				}
			}
			l := time.Since(due)
			mu.Lock()
			lat = append(lat, l)
			mu.Unlock()
			if err != nil {
				errs.Add(1)
			}
		})
	}
	wg.Wait()
	return lat, errs.Load(), time.Since(start)
}

func printLatency(name, what string, rate int, lat []time.Duration, errs int64, elapsed time.Duration) {
	if len(lat) == 0 {
		fmt.Printf("latency-%s %s rate=%d requests=0 errors=%d\n", name, what, rate, errs)
		return
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	pct := func(p float64) int64 { return s[min(len(s)-1, int(p*float64(len(s))))].Microseconds() }
	achieved := ""
	if elapsed > 0 {
		achieved = fmt.Sprintf(" achieved=%.0f", float64(len(s))/elapsed.Seconds())
	}
	fmt.Printf("latency-%s %s rate=%d requests=%d%s p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d\n",
		name, what, rate, len(s), achieved, pct(0.50), pct(0.90), pct(0.99), s[len(s)-1].Microseconds(), errs)
}
