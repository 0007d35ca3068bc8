package main

// querydata.go: `benchkit querydata`, the data of bench/query.sh
// (keyless audit query vs DuckDB vs jq). It replicates real CloudTrail
// events into three datasets of at least -size uncompressed bytes each:
//
//	OUT/ndjson/events.ndjson                    one event per line
//	OUT/delivery/AWSLogs/<acct>/CloudTrail/...  gzipped {"Records":[...]} files
//	                                            of 300±100 events, CloudTrail's
//	                                            S3 layout and file names
//	OUT/exports/export-NNN.json.gz              {"Records":[...]} documents of
//	                                            100,000 events each
//
// Every generated event is a pure function of (seed, its global index g):
// the source event (g mod n), a fresh UUID-shaped eventID, a shifted
// eventTime, and whether it is one of the ~5% rewritten into an OIDC
// exchange (AssumeRoleWithWebIdentity) or a call by the
// assumed-role/circleci-oidc-deploy session. So the output is
// deterministic although it is rendered in parallel, and the expected
// answers of the benchmark queries are known without reading it back:
// each dataset's OUT/<name>.manifest.json holds them, and is written
// last, so its presence means the dataset is complete (the cache).

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	qdIDHole   = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@" // 36 bytes, a UUID's length
	qdTimeHole = "###################Z"                 // 20 bytes, "2006-01-02T15:04:05Z"
	qdSpan     = 30 * 24 * time.Hour                    // the events' times spread over 30 days
	qdPerDoc   = 100_000                                // events per large export
)

// qdStart is the first event time of every dataset.
var qdStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// qdTemplate is one event rendered with holes for its eventID and eventTime.
type qdTemplate struct {
	b       []byte
	idAt    int
	timeAt  int
	source  string // eventSource
	assumes bool   // eventName contains "AssumeRole"
}

// qdManifest describes a generated dataset and the answers of the benchmark
// queries over it.
type qdManifest struct {
	Dataset    string         `json:"dataset"`
	Source     string         `json:"source"`
	Seed       uint64         `json:"seed"`
	Size       int64          `json:"size"`
	Events     int64          `json:"events"`
	Bytes      int64          `json:"bytes"` // uncompressed
	Files      int            `json:"files"`
	AssumeRole int64          `json:"assumeRole"` // events whose eventName contains "AssumeRole"
	BySource   map[string]int `json:"bySource"`
}

type qdGen struct {
	seed    uint64
	size    int64
	out     string
	account string
	t       [3][]qdTemplate // [variant][source index]
}

func runQueryData(args []string) error {
	fs := flag.NewFlagSet("querydata", flag.ContinueOnError)
	src := fs.String("src", "", "directory of real CloudTrail {\"Records\":[...]} .json files (default: internal/audit/testdata/real/invictus, else /work/shared/data/cloudtrail/invictus-aws-dataset/CloudTrail)")
	out := fs.String("out", "/var/tmp/keyless-querydata", "work dir (datasets are cached there)")
	sizeFlag := fs.String("size", "1GB", "uncompressed bytes per dataset (1GB = 1e9, 1GiB = 2^30)")
	seed := fs.Uint64("seed", 15, "seed")
	only := fs.String("only", "ndjson,delivery,exports", "datasets to generate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	size, err := qdParseSize(*sizeFlag)
	if err != nil {
		return err
	}
	if *src == "" {
		for _, d := range []string{"internal/audit/testdata/real/invictus", "/work/shared/data/cloudtrail/invictus-aws-dataset/CloudTrail"} {
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				*src = d
				break
			}
		}
		if *src == "" {
			return errors.New("no source events: pass -src DIR")
		}
	}
	events, err := qdLoad(*src)
	if err != nil {
		return err
	}
	g := &qdGen{seed: *seed, size: size, out: *out}
	if err := g.templates(events); err != nil {
		return err
	}
	for _, name := range strings.Split(*only, ",") {
		var gen func() (qdManifest, error)
		switch name {
		case "ndjson":
			gen = g.ndjson
		case "delivery":
			gen = g.delivery
		case "exports":
			gen = g.exports
		default:
			return fmt.Errorf("unknown dataset %q", name)
		}
		mpath := filepath.Join(*out, name+".manifest.json")
		if b, err := os.ReadFile(mpath); err == nil {
			var m qdManifest
			if json.Unmarshal(b, &m) == nil && m.Seed == g.seed && m.Size == g.size && m.Source == *src {
				fmt.Fprintf(os.Stderr, "querydata: %s cached (%d events, %d bytes)\n", name, m.Events, m.Bytes)
				continue
			}
		}
		os.Remove(mpath)
		if err := os.RemoveAll(filepath.Join(*out, name)); err != nil {
			return err
		}
		began := time.Now()
		m, err := gen()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		m.Dataset, m.Source, m.Seed, m.Size = name, *src, g.seed, g.size
		b, _ := json.MarshalIndent(m, "", "  ")
		if err := os.WriteFile(mpath, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "querydata: %s: %d events, %d bytes, %d files in %s\n", name, m.Events, m.Bytes, m.Files, time.Since(began).Round(time.Millisecond))
	}
	return nil
}

func qdParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || f <= 0 {
				return 0, fmt.Errorf("bad -size %q", s)
			}
			return int64(f * float64(u.mult)), nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad -size %q", s)
	}
	return n, nil
}

// qdLoad reads every record of the {"Records":[...]} files in dir, in file
// name order.
func qdLoad(dir string) ([]map[string]any, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var events []map[string]any
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var doc struct{ Records []map[string]any }
		if err := d.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		events = append(events, doc.Records...)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("no CloudTrail records in %s", dir)
	}
	return events, nil
}

// templates renders every source event in its three variants: as is, as an
// OIDC exchange of the circleci-oidc-deploy role, and as the same call made
// by a circleci-oidc-deploy session.
func (g *qdGen) templates(events []map[string]any) error {
	g.account = "123456789012"
	if a, ok := events[0]["recipientAccountId"].(string); ok && a != "" {
		g.account = a
	}
	role := "arn:aws:iam::" + g.account + ":role/circleci-oidc-deploy"
	provider := "arn:aws:iam::" + g.account + ":oidc-provider/oidc.circleci.com/org/5e2c6f2b-8f41-4d7b-9a6c-0c1d2e3f4a5b"
	for i, src := range events {
		session := fmt.Sprintf("circleci-build-%d", i%7)
		sessionArn := "arn:aws:sts::" + g.account + ":assumed-role/circleci-oidc-deploy/" + session
		sub := fmt.Sprintf("org/5e2c6f2b-8f41-4d7b-9a6c-0c1d2e3f4a5b/project/%d/user/0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f", 1000+i%5)
		for v := range 3 {
			m := make(map[string]any, len(src))
			for k, x := range src {
				m[k] = x
			}
			switch v {
			case 1:
				m["eventName"] = "AssumeRoleWithWebIdentity"
				m["eventSource"] = "sts.amazonaws.com"
				m["eventType"] = "AwsApiCall"
				m["readOnly"] = true
				m["userIdentity"] = map[string]any{
					"type": "WebIdentityUser", "principalId": provider + ":" + sub,
					"userName": sub, "identityProvider": provider,
				}
				m["requestParameters"] = map[string]any{"roleArn": role, "roleSessionName": session, "durationSeconds": 3600}
				m["responseElements"] = map[string]any{
					"assumedRoleUser":             map[string]any{"arn": sessionArn, "assumedRoleId": "AROAQDKEYLESSBENCH0001:" + session},
					"subjectFromWebIdentityToken": sub,
					"provider":                    provider,
					"audience":                    "5e2c6f2b-8f41-4d7b-9a6c-0c1d2e3f4a5b",
				}
				m["resources"] = []any{map[string]any{"ARN": role, "accountId": g.account, "type": "AWS::IAM::Role"}}
			case 2:
				m["userIdentity"] = map[string]any{
					"type": "AssumedRole", "principalId": "AROAQDKEYLESSBENCH0001:" + session,
					"arn": sessionArn, "accountId": g.account, "accessKeyId": "ASIAQDKEYLESSBENCH001",
					"sessionContext": map[string]any{
						"sessionIssuer": map[string]any{
							"type": "Role", "principalId": "AROAQDKEYLESSBENCH0001", "arn": role,
							"accountId": g.account, "userName": "circleci-oidc-deploy",
						},
						"webIdFederationData": map[string]any{"federatedProvider": provider, "attributes": map[string]any{}},
						"attributes":          map[string]any{"creationDate": "2026-11-01T00:00:00Z", "mfaAuthenticated": "false"},
					},
				}
			}
			m["eventID"] = qdIDHole
			m["eventTime"] = qdTimeHole
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(m); err != nil {
				return err
			}
			b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			t := qdTemplate{
				b:      b,
				idAt:   bytes.Index(b, []byte(`"eventID":"`+qdIDHole+`"`)) + len(`"eventID":"`),
				timeAt: bytes.Index(b, []byte(`"eventTime":"`+qdTimeHole+`"`)) + len(`"eventTime":"`),
			}
			if t.idAt < len(`"eventID":"`) || t.timeAt < len(`"eventTime":"`) {
				return fmt.Errorf("event %d: holes not found", i)
			}
			t.source, _ = m["eventSource"].(string)
			name, _ := m["eventName"].(string)
			t.assumes = strings.Contains(name, "AssumeRole")
			g.t[v] = append(g.t[v], t)
		}
	}
	return nil
}

// qdMix is splitmix64's finaliser over (seed, g, salt).
func qdMix(seed, g, salt uint64) uint64 {
	z := seed ^ (g+1)*0x9e3779b97f4a7c15 ^ (salt+1)*0xbf58476d1ce4e5b9
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// template returns the template of global event g: ~2.5% OIDC exchanges,
// ~2.5% calls by the circleci session, the rest as recorded.
func (g *qdGen) template(ev uint64) *qdTemplate {
	v := 0
	switch r := qdMix(g.seed, ev, 0) % 1000; {
	case r < 25:
		v = 1
	case r < 50:
		v = 2
	}
	return &g.t[v][ev%uint64(len(g.t[0]))]
}

// render appends event ev with eventTime at.
func (g *qdGen) render(dst []byte, ev uint64, at time.Time) []byte {
	t := g.template(ev)
	n := len(dst)
	dst = append(dst, t.b...)
	a, b := qdMix(g.seed, ev, 1), qdMix(g.seed, ev, 2)
	var u [16]byte
	for i := range 8 {
		u[i], u[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	id := dst[n+t.idAt : n+t.idAt+36]
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			id[j] = '-'
			j++
		}
		id[j], id[j+1] = hex[c>>4], hex[c&15]
		j += 2
	}
	var ts [20]byte
	at.UTC().AppendFormat(ts[:0], "2006-01-02T15:04:05Z")
	copy(dst[n+t.timeAt:], ts[:])
	return dst
}

// count adds event ev to m's answers.
func (g *qdGen) count(m *qdManifest, ev uint64) {
	t := g.template(ev)
	if m.BySource == nil {
		m.BySource = map[string]int{}
	}
	m.BySource[t.source]++
	if t.assumes {
		m.AssumeRole++
	}
	m.Events++
}

// parallel runs job(i) for i in [0, n) on all cores.
func qdParallel(n int, job func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				if err := job(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func (g *qdGen) ndjson() (qdManifest, error) {
	var m qdManifest
	for ev := uint64(0); m.Bytes < g.size; ev++ {
		g.count(&m, ev)
		m.Bytes += int64(len(g.template(ev).b)) + 1
	}
	m.Files = 1
	n := uint64(m.Events)
	step := qdSpan / time.Duration(n)
	dir := filepath.Join(g.out, "ndjson")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return m, err
	}
	f, err := os.Create(filepath.Join(dir, "events.ndjson"))
	if err != nil {
		return m, err
	}
	defer f.Close()
	const chunk = 8192
	chunks := int((n + chunk - 1) / chunk)
	// Chunks are rendered in parallel and written in order: each worker
	// hands its buffer to the writer through a slot per chunk.
	slots := make([]chan []byte, chunks)
	for i := range slots {
		slots[i] = make(chan []byte, 1)
	}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0)+1) // chunks rendered ahead of the writer
	go func() {
		for c := range chunks {
			sem <- struct{}{}
			go func() {
				lo, hi := uint64(c)*chunk, min(uint64(c+1)*chunk, n)
				buf := make([]byte, 0, (hi-lo)*1400)
				for ev := lo; ev < hi; ev++ {
					buf = g.render(buf, ev, qdStart.Add(time.Duration(ev)*step))
					buf = append(buf, '\n')
				}
				slots[c] <- buf
			}()
		}
	}()
	for c := range chunks {
		buf := <-slots[c]
		_, werr := f.Write(buf)
		<-sem
		if werr != nil {
			// Drain the rest so no goroutine stays blocked.
			for c++; c < chunks; c++ {
				<-slots[c]
				<-sem
			}
			return m, werr
		}
	}
	return m, f.Close()
}

func (g *qdGen) delivery() (qdManifest, error) {
	type file struct {
		first, n uint64
		at       time.Time // the name's time; events are in the 5 minutes before
		path     string
	}
	var m qdManifest
	mean := 0
	for _, t := range g.t[0] {
		mean += len(t.b)
	}
	mean /= len(g.t[0])
	estFiles := max(1, int(g.size/int64(300*(mean+1))))
	stride := max(1, int(qdSpan/(5*time.Minute))/estFiles) // in 5-minute slots
	var files []file
	var ev uint64
	for k := 0; m.Bytes < g.size; k++ {
		n := 200 + qdMix(g.seed, uint64(k), 3)%201
		at := qdStart.Add(time.Duration(k*stride+1) * 5 * time.Minute)
		fid := qdMix(g.seed, uint64(k), 4)
		var name [16]byte
		const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		for i := range name {
			name[i] = alnum[fid%62]
			fid = fid/62 ^ qdMix(g.seed, uint64(k), uint64(5+i))
		}
		m.Bytes += int64(len(`{"Records":[]}`)) + int64(n) - 1
		for i := range n {
			g.count(&m, ev+i)
			m.Bytes += int64(len(g.template(ev + i).b))
		}
		files = append(files, file{ev, n, at, filepath.Join(g.out, "delivery", "AWSLogs", g.account, "CloudTrail", "us-east-1",
			at.Format("2006/01/02"), fmt.Sprintf("%s_CloudTrail_us-east-1_%s_%s.json.gz", g.account, at.Format("20060102T1504Z"), name[:]))})
		ev += n
	}
	m.Files = len(files)
	return m, qdParallel(len(files), func(i int) error {
		f := files[i]
		buf := append(make([]byte, 0, f.n*1400), `{"Records":[`...)
		for j := range f.n {
			if j > 0 {
				buf = append(buf, ',')
			}
			at := f.at.Add(-5*time.Minute + time.Second + time.Duration(j)*298*time.Second/time.Duration(f.n))
			buf = g.render(buf, f.first+j, at)
		}
		buf = append(buf, "]}"...)
		return qdWriteGzip(f.path, func(w io.Writer) error {
			_, err := w.Write(buf)
			return err
		})
	})
}

func (g *qdGen) exports() (qdManifest, error) {
	var m qdManifest
	docs := 0
	for m.Bytes < g.size {
		m.Bytes += int64(len(`{"Records":[]}`)) + qdPerDoc - 1
		for i := range uint64(qdPerDoc) {
			ev := uint64(docs)*qdPerDoc + i
			g.count(&m, ev)
			m.Bytes += int64(len(g.template(ev).b))
		}
		docs++
	}
	m.Files = docs
	step := qdSpan / time.Duration(m.Events)
	return m, qdParallel(docs, func(d int) error {
		path := filepath.Join(g.out, "exports", fmt.Sprintf("export-%03d.json.gz", d))
		return qdWriteGzip(path, func(w io.Writer) error {
			bw := bufio.NewWriterSize(w, 1<<20)
			bw.WriteString(`{"Records":[`)
			var buf []byte
			for i := range uint64(qdPerDoc) {
				ev := uint64(d)*qdPerDoc + i
				buf = buf[:0]
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = g.render(buf, ev, qdStart.Add(time.Duration(ev)*step))
				if _, err := bw.Write(buf); err != nil {
					return err
				}
			}
			bw.WriteString("]}")
			return bw.Flush()
		})
	})
}

// qdWriteGzip writes path (via a temporary name) gzipped at the fastest
// level with what fill writes.
func qdWriteGzip(path string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err := fill(zw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
