package policygen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Holes in the benchmark templates, replaced per event (fixed widths).
const (
	bhKey  = "@KEY@@@@@@@@@@@@@@@@" // 20: an access key id
	bhSess = "@SESSION@@"           // 10: the session name
	bhVar  = "@VV@"                 // 4: a resource variant
	bhTime = "@TIME@@@@@@@@@@@@@@Z" // 20: eventTime
)

// benchTemplates renders the real events as calls of a CI session: every
// AwsApiCall of an IAM user or a role session gets a role session identity
// (its invokedBy kept), and its resource names a variant suffix; other
// events are kept as they are.
func benchTemplates(b *testing.B) [][]byte {
	b.Helper()
	files, _ := filepath.Glob(filepath.Join(realPath(b), "*.json"))
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		var doc struct{ Records []map[string]any }
		if err := json.Unmarshal(data, &doc); err != nil {
			b.Fatal(err)
		}
		for _, r := range doc.Records {
			id, _ := r["userIdentity"].(map[string]any)
			if r["eventType"] == "AwsApiCall" && id != nil && (id["type"] == "IAMUser" || id["type"] == "AssumedRole") {
				nid := map[string]any{
					"type": "AssumedRole", "principalId": "AROABENCH:" + bhSess, "accountId": "218007301253",
					"arn": "arn:aws:sts::218007301253:assumed-role/ci-bench/" + bhSess, "accessKeyId": bhKey,
					"sessionContext": map[string]any{"sessionIssuer": map[string]any{
						"type": "Role", "arn": "arn:aws:iam::218007301253:role/ci-bench", "accountId": "218007301253", "userName": "ci-bench"}},
				}
				if v, ok := id["invokedBy"]; ok {
					nid["invokedBy"] = v
				}
				r["userIdentity"] = nid
				if p, ok := r["requestParameters"].(map[string]any); ok {
					for _, k := range []string{"bucketName", "key", "instanceId", "tableName", "functionName", "repositoryName", "secretId", "name", "roleName", "userName"} {
						if s, ok := p[k].(string); ok {
							p[k] = s + "-" + bhVar
						}
					}
				}
			}
			r["eventTime"] = bhTime
			j, err := json.Marshal(r)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, j)
		}
	}
	return out
}

// writeBenchTrail writes n events: the templates replicated as the calls of
// sessions CI sessions (distinct access keys and session names; resources
// in 1,000 variants), with each session's exchange.
func writeBenchTrail(b *testing.B, n, sessions int) string {
	b.Helper()
	tpls := benchTemplates(b)
	p := filepath.Join(b.TempDir(), "bench.ndjson")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	key := func(s int) string { return fmt.Sprintf("ASIABENCH%011d", s) }
	sess := func(s int) string { return fmt.Sprintf("s%09d", s) }
	for s := range sessions {
		sub := fmt.Sprintf("repo:bench/app-%03d:ref:refs/heads/main", s%200)
		e := webExchange(start.Add(-time.Minute), "arn:aws:iam::218007301253:role/ci-bench", sub, "bench/app-"+strconv.Itoa(s%200), key(s), sess(s))
		j, _ := json.Marshal(e)
		w.Write(j)
		w.WriteByte('\n')
	}
	buf := make([]byte, 0, 64<<10)
	calls := n - sessions
	for g := range calls {
		buf = append(buf[:0], tpls[g%len(tpls)]...)
		s := int(uint64(g) * 2654435761 % uint64(sessions))
		fill := func(hole, v string) {
			for i := 0; ; {
				j := bytes.Index(buf[i:], []byte(hole))
				if j < 0 {
					return
				}
				copy(buf[i+j:], v)
				i += j + len(hole)
			}
		}
		fill(bhKey, key(s))
		fill(bhSess, sess(s))
		fill(bhVar, fmt.Sprintf("%04d", g%1000))
		fill(bhTime, start.Add(time.Duration(int64(g)*int64(24*time.Hour)/int64(calls))).Format("2006-01-02T15:04:05Z"))
		buf = append(buf, '\n')
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkGenerate1M: 1,000,000 events (4,000 sessions) to per-subject
// policies; reports events/s.
func BenchmarkGenerate1M(b *testing.B) {
	const n = 1_000_000
	p := writeBenchTrail(b, n, 4000)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		rep, err := Generate(context.Background(), []string{p}, Options{By: "subject"})
		if err != nil || rep.Stats.Events != n {
			b.Fatalf("%v %+v", err, rep.Stats)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "events/s")
}
