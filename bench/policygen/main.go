// Command policygen writes the data of bench/policygen.sh (`keyless policy
// generate` on 1,000,000 events): real CloudTrail events (the Invictus
// dataset) replicated as calls of CI sessions, plus the
// AssumeRoleWithWebIdentity exchanges that created those sessions, as
// keyless records them. One NDJSON file.
//
// Every AwsApiCall of an IAM user or an assumed role in the source becomes
// a call of one of -sessions CI sessions (its own access key id, session ARN
// and role, one of -roles; invokedBy kept, so forward access sessions stay
// such); service events, services' own calls and console sign-ins are kept
// as they are (the generator excludes them). The sessions, roles and
// subjects are a fixed set whatever -events is, so the generator's state
// (distinct sessions, actions, resources) is the same for 250,000 and
// 1,000,000 events: what grows is the events per session, which is what
// "memory flat in the number of events" measures.
//
// Each source event is made by -variants sessions (replica r of source
// event i is made by session ((i·variants + r mod variants)·2654435761 mod
// sessions)): as in CI, where each pipeline repeats the same few calls, the
// distinct (session, call) pairs are the same at every size from
// n·variants events up, and only their repetitions grow.
//
// The output is a pure function of the flags: event g is source event
// i = g mod n, replica r = g / n, at a time spread over one day, with a
// UUID-shaped eventID made from g.
//
//	go run ./bench/policygen -events 1000000 -out /var/tmp/pg-1000000.ndjson
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	holeKey  = "@KEY@@@@@@@@@@@@@@@@"                 // 20 bytes: an ASIA access key id
	holeSess = "@SES@@@@@@"                           // 10 bytes: session name s000000001
	holeRole = "@ROL@@@@@@"                           // 10 bytes: role name ci-role-01
	holeID   = "@EVID@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@" // 36 bytes: a UUID
	holeTime = "@TIME@@@@@@@@@@@@@@Z"                 // 20 bytes: 2006-01-02T15:04:05Z
)

var start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

type template struct {
	b     []byte
	holes []hole
}

type hole struct {
	at   int
	kind byte // k s r i t
}

func main() {
	events := flag.Int("events", 1_000_000, "events to write, exchanges included")
	sessions := flag.Int("sessions", 4000, "distinct CI sessions (each one exchange)")
	roles := flag.Int("roles", 20, "distinct roles")
	repos := flag.Int("repos", 200, "distinct CI projects (subjects)")
	variants := flag.Int("variants", 8, "sessions making each source event")
	src := flag.String("src", "", "directory of CloudTrail files to replicate (default: the Invictus dataset in internal/audit/testdata/real/invictus)")
	out := flag.String("out", "", "output NDJSON file")
	flag.Parse()
	if *out == "" || *events <= *sessions || *sessions < 1 || *roles < 1 || *roles > 99 || *repos < 1 || *variants < 1 {
		fmt.Fprintln(os.Stderr, "usage: policygen -events N -out FILE [-sessions S < N] [-roles 1..99] [-repos R] [-variants V]")
		os.Exit(2)
	}
	if err := run(*src, *out, *events, *sessions, *roles, *repos, *variants); err != nil {
		fmt.Fprintln(os.Stderr, "policygen:", err)
		os.Exit(1)
	}
}

func run(src, out string, events, sessions, roles, repos, variants int) error {
	if len(holeKey) != 20 || len(holeSess) != 10 || len(holeRole) != 10 || len(holeID) != 36 || len(holeTime) != 20 {
		return errors.New("a hole's width is not its value's")
	}
	if src == "" {
		src = "internal/audit/testdata/real/invictus"
		if _, err := os.Stat(src); err != nil {
			src = "/work/shared/data/cloudtrail/invictus-aws-dataset/CloudTrail"
		}
	}
	tpls, err := loadTemplates(src)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	// The exchanges first, one minute before the first call.
	for s := range sessions {
		role := s % roles
		repo := s % repos
		sub := fmt.Sprintf("repo:bench-org/app-%03d:ref:refs/heads/main", repo)
		fmt.Fprintf(w, `{"eventVersion":"1.11","eventTime":"%s","eventSource":"sts.amazonaws.com","eventName":"AssumeRoleWithWebIdentity","awsRegion":"us-east-1","eventType":"AwsApiCall","readOnly":true,"recipientAccountId":"218007301253","eventID":"%s",`+
			`"userIdentity":{"type":"WebIdentityUser","principalId":"arn:aws:iam::218007301253:oidc-provider/ci.example.com:sts.amazonaws.com:%s","userName":"%s","identityProvider":"arn:aws:iam::218007301253:oidc-provider/ci.example.com"},`+
			`"requestParameters":{"roleArn":"arn:aws:iam::218007301253:role/%s","roleSessionName":"%s"},`+
			`"responseElements":{"credentials":{"accessKeyId":"%s","expiration":"Nov 1, 2026, 1:00:00 AM"},"assumedRoleUser":{"assumedRoleId":"AROABENCH0000000000%02d:%s","arn":"arn:aws:sts::218007301253:assumed-role/%s/%s"},"subjectFromWebIdentityToken":"%s","provider":"arn:aws:iam::218007301253:oidc-provider/ci.example.com","audience":"sts.amazonaws.com"},`+
			`"additionalEventData":{"webIdentityTokenClaims":{"sub":"%s","repository":"bench-org/app-%03d","aud":"sts.amazonaws.com"}}}`+"\n",
			start.Add(-time.Minute).Format(time.RFC3339), eventID(uint64(events+s)), sub, sub, roleName(role), sessName(s),
			accessKey(s), role, sessName(s), roleName(role), sessName(s), sub, sub, repo)
	}
	buf := make([]byte, 0, 64<<10)
	calls := events - sessions
	for g := range calls {
		ti, rep := g%len(tpls), g/len(tpls)
		t := &tpls[ti]
		s := int(uint64(ti*variants+rep%variants) * 2654435761 % uint64(sessions))
		buf = append(buf[:0], t.b...)
		for _, h := range t.holes {
			var v string
			switch h.kind {
			case 'k':
				v = accessKey(s)
			case 's':
				v = sessName(s)
			case 'r':
				v = roleName(s % roles)
			case 'i':
				v = eventID(uint64(g))
			case 't':
				v = start.Add(time.Duration(int64(g) * int64(24*time.Hour) / int64(calls))).Format("2006-01-02T15:04:05Z")
			}
			copy(buf[h.at:], v)
		}
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func accessKey(s int) string { return fmt.Sprintf("ASIABENCH%011d", s) }
func sessName(s int) string  { return fmt.Sprintf("s%09d", s) }
func roleName(r int) string  { return fmt.Sprintf("ci-role-%02d", r) }
func eventID(g uint64) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", g>>32, (g>>16)&0xffff, g&0xfff, (g>>12)&0xfff, g)
}

// loadTemplates reads the source events and renders each with holes.
func loadTemplates(dir string) ([]template, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var tpls []template
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var doc struct{ Records []map[string]any }
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, r := range doc.Records {
			t, err := makeTemplate(r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			tpls = append(tpls, t)
		}
	}
	if len(tpls) == 0 {
		return nil, errors.New("no events in " + dir)
	}
	return tpls, nil
}

func makeTemplate(r map[string]any) (template, error) {
	r["eventID"] = holeID
	r["eventTime"] = holeTime
	ui, _ := r["userIdentity"].(map[string]any)
	typ, _ := ui["type"].(string)
	if r["eventType"] == "AwsApiCall" && (typ == "IAMUser" || typ == "AssumedRole") {
		acct, _ := r["recipientAccountId"].(string)
		if acct == "" {
			acct = "218007301253"
		}
		nu := map[string]any{
			"type":        "AssumedRole",
			"principalId": "AROABENCHROLE:" + holeSess,
			"arn":         "arn:aws:sts::" + acct + ":assumed-role/" + holeRole + "/" + holeSess,
			"accountId":   acct,
			"accessKeyId": holeKey,
			"sessionContext": map[string]any{
				"sessionIssuer": map[string]any{"type": "Role", "principalId": "AROABENCHROLE", "arn": "arn:aws:iam::" + acct + ":role/" + holeRole, "accountId": acct, "userName": holeRole},
				"attributes":    map[string]any{"creationDate": "2026-11-01T00:00:00Z", "mfaAuthenticated": "false"},
			},
		}
		if inv, ok := ui["invokedBy"]; ok {
			nu["invokedBy"] = inv
		}
		r["userIdentity"] = nu
	}
	b, err := json.Marshal(r)
	if err != nil {
		return template{}, err
	}
	t := template{b: b}
	for _, h := range []struct {
		s    string
		kind byte
	}{{holeKey, 'k'}, {holeSess, 's'}, {holeRole, 'r'}, {holeID, 'i'}, {holeTime, 't'}} {
		for off := 0; ; {
			i := bytes.Index(b[off:], []byte(h.s))
			if i < 0 {
				break
			}
			t.holes = append(t.holes, hole{at: off + i, kind: h.kind})
			off += i + len(h.s)
		}
	}
	return t, nil
}
