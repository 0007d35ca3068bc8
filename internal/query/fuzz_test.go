package query

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keylessci/keyless/internal/audit"
)

// docExamples are queries in the style of the Logs Insights documentation.
var docExamples = []string{
	`fields @timestamp, @message | sort @timestamp desc | limit 25`,
	`fields @timestamp, @message | filter @message like /Exception/ | stats count(*) as exceptionCount by bin(1h) | sort exceptionCount desc`,
	`stats count(*) by eventSource, eventName, awsRegion`,
	`filter eventSource="ec2.amazonaws.com" | stats count(*) as eventCount by eventName, awsRegion`,
	`filter eventName="CreateUser" | fields awsRegion, requestParameters.userName, responseElements.user.arn`,
	`filter (errorCode like /Unauthorized/ or errorCode like /AccessDenied/) | stats count(*) by eventName`,
	`stats sum(packets) as packetsTransferred by srcAddr, dstAddr | sort packetsTransferred desc | limit 15`,
	`parse @message "[*] *" as loggingType, loggingMessage | filter loggingType = "ERROR" | display loggingMessage`,
	`parse @message /(?<NetworkInterface>eni-.*?) / | display NetworkInterface, @message`,
	`fields @timestamp, @message | filter Type not in ["foo", "bar", 1]`,
	`fields ispresent(resolverIp) as isRes | stats count(*) as c by isRes`,
	`filter isIpv4InSubnet(srcAddr, "192.0.2.0/24") | stats pct(bytes, 90), avg(bytes), stddev(bytes)`,
	`fields concat(a, '-', b) as x, substr(x, 1, 3), strlen(x) | sort x asc | dedup x`,
	"# comment\nfields `requestParameters.x-y` as z\n| filter z =~ /(?i)abc/ and not isempty(z)",
	`stats latest(eventName), earliest(@timestamp), sortsFirst(x), sortsLast(x), count_distinct(u) by datefloor(@timestamp, 1d)`,
	`filter @timestamp > "2024-01-01" and bytes / 2 ^ 3 % 5 >= -1.5e3 | limit 10`,
	`filter a = 1 | stats count(*) as n by b | stats avg(n)`,
}

func FuzzParse(f *testing.F) {
	for _, s := range docExamples {
		f.Add(s)
	}
	f.Add("filter x like /")
	f.Add("fields `")
	f.Add("stats count(*) by bin(")
	f.Fuzz(func(t *testing.T, src string) {
		q, err := Parse(src)
		if err == nil {
			if q == nil || len(q.cmds) == 0 {
				t.Fatalf("Parse(%q): no error and no commands", src)
			}
			q.compile(Options{Limit: 3})
			q.Histogram()
			return
		}
		se, ok := errors.AsType[*SyntaxError](err)
		if !ok {
			t.Fatalf("Parse(%q) error %T is not a *SyntaxError", src, err)
		}
		lines := strings.Split(src, "\n")
		if se.Line < 1 || se.Line > len(lines) {
			t.Fatalf("Parse(%q): line %d out of 1..%d", src, se.Line, len(lines))
		}
		if n := utf8.RuneCountInString(lines[se.Line-1]); se.Col < 1 || se.Col > n+1 {
			t.Fatalf("Parse(%q): column %d out of 1..%d", src, se.Col, n+1)
		}
		if se.Offset < 0 || se.Offset > len(src) {
			t.Fatalf("Parse(%q): offset %d", src, se.Offset)
		}
		_ = se.Caret(src)
	})
}

func TestDocExamplesParse(t *testing.T) {
	for _, s := range docExamples {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
}

// FuzzEval runs a fixed set of queries over arbitrary records: no panic.
func FuzzEval(f *testing.F) {
	for _, s := range handEvents {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":[1,{"b":"\ud83d\ude00"}],"eventTime":"x","c":{"d":`))
	f.Add([]byte(`{"eventName":"\u00"}`))
	f.Add([]byte(`[1,2]`))
	queries := append([]string{
		`fields a.0, a.1.b, c.d, eventName, @message | sort a.0 desc | limit 2`,
		`filter eventName like "AssumeRole" or a.1.b =~ /x/ | stats count(*), sum(a.0), pct(a.0, 50), count_distinct(c) by bin(1m), eventName`,
		`parse @message /"(?<k>[a-z]+)":/ | fields strlen(k), tolower(k), substr(k, -1, 99), replace(k, "", "x") | dedup k`,
		`filter eventName in ["x", 1] | fields eventName * 2 / 0, datefloor(eventTime, 1mo), toMillis(eventTime), fromMillis(a.0)`,
	}, docExamples...)
	var qs []*Query
	for _, s := range queries {
		q, err := Parse(s)
		if err != nil {
			f.Fatalf("Parse(%q): %v", s, err)
		}
		qs = append(qs, q)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		for _, q := range qs {
			w := newWorker(q.compile(Options{}))
			for i := range 2 {
				w.record(&audit.RawRecord{Data: rec, Index: int64(i)})
			}
			if _, err := runEvents(q, [][]byte{rec, rec}, 2, 1, Options{}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
