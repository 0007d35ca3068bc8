package query

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// handEvents are four events, in input order e1..e4; the default result
// order (newest first) is e4, e3, e2, e1.
var handEvents = []string{
	`{"eventTime":"2024-03-01T10:00:00Z","eventName":"AssumeRoleWithWebIdentity","eventSource":"sts.amazonaws.com","sourceIPAddress":"10.0.0.5","userIdentity":{"type":"WebIdentityUser","userName":"repo:acme/api"},"requestParameters":{"roleArn":"arn:aws:iam::111:role/deploy","durationSeconds":3600},"readOnly":false,"bytes":100,"msg":"user=alice id=7"}`,
	`{"eventTime":"2024-03-01T10:03:00Z","eventName":"GetObject","eventSource":"s3.amazonaws.com","sourceIPAddress":"2001:db8::1","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111:assumed-role/deploy/s1"},"resources":[{"ARN":"arn:aws:s3:::b1"}, {"ARN":"arn:aws:s3:::b2"}],"readOnly":true,"bytes":250,"errorCode":null,"msg":"user=bob id=12"}`,
	`{"eventTime":"2024-03-01T10:07:30Z","eventName":"AssumeRoleWithWebIdentity","eventSource":"sts.amazonaws.com","sourceIPAddress":"192.168.1.9","userIdentity":{"type":"WebIdentityUser","userName":"repo:acme/web"},"errorCode":"AccessDenied","errorMessage":"Not authorized","readOnly":false,"bytes":"40","msg":"  padded  "}`,
	`{"eventTime":"2024-03-01T10:12:00Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","sourceIPAddress":"10.0.0.7","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111:assumed-role/deploy/s2"},"readOnly":true,"bytes":10,"weird-key":"x\u0041y","msg":"user=carol id=3"}`,
}

func eventsOf(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

const null = "<null>"

// render shows a result as strings, null as <null>.
func render(r *Result) [][]string {
	out := [][]string{}
	for _, row := range r.Rows {
		var rs []string
		for _, v := range row {
			if v.IsNull() {
				rs = append(rs, null)
			} else {
				rs = append(rs, v.String())
			}
		}
		out = append(out, rs)
	}
	return out
}

type handCase struct {
	name    string
	query   string
	opts    Options
	cols    []string
	rows    [][]string
	matched int64 // -1: not checked
}

func handCases() []handCase {
	t := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	return []handCase{
		{"default columns", `filter eventName like "GetObject"`, Options{}, []string{"@timestamp", "@message"},
			[][]string{{"2024-03-01 10:03:00.000", handEvents[1]}}, 1},
		{"like substring", `filter eventName like "AssumeRole" | fields eventName, sourceIPAddress`, Options{},
			[]string{"eventName", "sourceIPAddress"},
			[][]string{{"AssumeRoleWithWebIdentity", "192.168.1.9"}, {"AssumeRoleWithWebIdentity", "10.0.0.5"}}, 2},
		{"like is case-sensitive", `filter eventName like "assumerole" | fields eventName`, Options{}, []string{"eventName"}, [][]string{}, 0},
		{"equals", `filter eventSource = "s3.amazonaws.com" | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"ListBuckets"}, {"GetObject"}}, 2},
		{"numeric compare, numeric string", `filter bytes > 50 | fields eventName, bytes`, Options{}, []string{"eventName", "bytes"},
			[][]string{{"GetObject", "250"}, {"AssumeRoleWithWebIdentity", "100"}}, 2},
		{"range", `filter bytes >= 40 and bytes <= 100 | fields bytes`, Options{}, []string{"bytes"}, [][]string{{"40"}, {"100"}}, 2},
		{"null != is true", `filter errorCode != "AccessDenied" | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"ListBuckets"}, {"GetObject"}, {"AssumeRoleWithWebIdentity"}}, 3},
		{"null = is false", `filter errorCode = errorCode | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"AssumeRoleWithWebIdentity"}}, 1},
		{"ispresent (JSON null is absent)", `filter ispresent(errorCode) | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"AssumeRoleWithWebIdentity"}}, 1},
		{"not", `filter not ispresent(errorCode) | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"ListBuckets"}, {"GetObject"}, {"AssumeRoleWithWebIdentity"}}, 3},
		{"or", `filter eventName = "GetObject" or bytes = 10 | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"ListBuckets"}, {"GetObject"}}, 2},
		{"not like", `filter eventName not like "Assume" | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"ListBuckets"}, {"GetObject"}}, 2},
		{"like regex (?i)", `filter eventName like /(?i)^assume/ | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"AssumeRoleWithWebIdentity"}, {"AssumeRoleWithWebIdentity"}}, 2},
		{"=~", `filter eventName =~ /Bucket/ | fields eventName`, Options{}, []string{"eventName"}, [][]string{{"ListBuckets"}}, 1},
		{"in", `filter eventName in ["GetObject", "ListBuckets"] | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"ListBuckets"}, {"GetObject"}}, 2},
		{"not in", `filter eventName not in ["GetObject", "ListBuckets"] | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"AssumeRoleWithWebIdentity"}, {"AssumeRoleWithWebIdentity"}}, 2},
		{"in numbers, mixed", `filter bytes in [10, 40, "x"] | fields bytes`, Options{}, []string{"bytes"}, [][]string{{"10"}, {"40"}}, 2},
		{"array index paths", `fields resources.0.ARN as a, resources.1.ARN as b, resources.2.ARN as c | filter ispresent(a)`, Options{},
			[]string{"a", "b", "c"}, [][]string{{"arn:aws:s3:::b1", "arn:aws:s3:::b2", null}}, 1},
		{"backquoted name, escapes decoded", "fields `weird-key` as w | filter ispresent(w)", Options{}, []string{"w"}, [][]string{{"xAy"}}, 1},
		{"nested field, bool", `fields userIdentity.type as t, readOnly | filter readOnly = true`, Options{}, []string{"t", "readOnly"},
			[][]string{{"AssumedRole", "true"}, {"AssumedRole", "true"}}, 2},
		{"object/array as compact JSON", `fields resources, userIdentity | filter ispresent(resources)`, Options{}, []string{"resources", "userIdentity"},
			[][]string{{`[{"ARN":"arn:aws:s3:::b1"},{"ARN":"arn:aws:s3:::b2"}]`, `{"type":"AssumedRole","arn":"arn:aws:sts::111:assumed-role/deploy/s1"}`}}, 1},
		{"a path and its parent both read", `filter eventName = "GetObject" | fields userIdentity.type as t, userIdentity, requestParameters.roleArn as r`, Options{}, []string{"t", "userIdentity", "r"},
			[][]string{{"AssumedRole", `{"type":"AssumedRole","arn":"arn:aws:sts::111:assumed-role/deploy/s1"}`, null}}, 1},
		{"arithmetic", `filter eventName = "GetObject" | fields bytes + 1 as a, bytes - 1 as b, bytes * 2 as c, bytes / 4 as d, bytes % 7 as e, 2 ^ 3 ^ 2 as f, bytes / 0 as g, -bytes as h, (1 + 2) * 3 as i, 7 % 0 as j`, Options{},
			[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, [][]string{{"251", "249", "500", "62.5", "5", "512", null, "-250", "9", null}}, 1},
		{"type mismatch gives null", `filter eventName = "GetObject" | fields eventName + 1 as x, nothing.here * 2 as y, eventName > 5 as z`, Options{},
			[]string{"x", "y", "z"}, [][]string{{null, null, "true"}}, 1},
		{"expression column name", `filter eventName = "GetObject" | fields bytes+1`, Options{}, []string{"bytes+1"}, [][]string{{"251"}}, 1},
		{"string functions", `filter eventName = "GetObject" | fields strlen(eventName) as a, tolower(eventName) as b, toupper(eventName) as c, concat(eventName, "-", bytes) as d, substr(eventName, 3) as e, substr(eventName, 0, 3) as f, replace(eventName, "Object", "Item") as g, strcontains(eventName, "Obj") as h, strlen("héllo") as i`, Options{},
			[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}, [][]string{{"9", "getobject", "GETOBJECT", "GetObject-250", "Object", "Get", "GetItem", "true", "5"}}, 1},
		{"trim, isempty, isblank", `filter msg like "padded" | fields concat("[", trim(msg), "]") as a, concat("[", ltrim(msg), "]") as b, concat("[", rtrim(msg), "]") as c, isempty(msg) as d, isblank("  ") as e, isempty(nothing) as f, isblank("x") as g`, Options{},
			[]string{"a", "b", "c", "d", "e", "f", "g"}, [][]string{{"[padded]", "[padded  ]", "[  padded]", "false", "true", "true", "false"}}, 1},
		{"numeric functions", `filter eventName = "GetObject" | fields abs(-3.5) as a, ceil(2.1) as b, floor(2.9) as c, greatest(1, bytes, 7) as d, least(3, bytes, 7) as e, log(1) as f, sqrt(16) as g, sqrt(-1) as h`, Options{},
			[]string{"a", "b", "c", "d", "e", "f", "g", "h"}, [][]string{{"3.5", "3", "2", "250", "3", "0", "4", null}}, 1},
		{"coalesce", `filter eventName = "GetObject" | fields coalesce(errorCode, userIdentity.userName, userIdentity.arn) as a`, Options{},
			[]string{"a"}, [][]string{{"arn:aws:sts::111:assumed-role/deploy/s1"}}, 1},
		{"time functions", `filter eventName = "GetObject" | fields datefloor(@timestamp, 5m) as a, dateceil(@timestamp, 5m) as b, toMillis(@timestamp) as c, fromMillis(0) as d, bin(1h) as e, datefloor(@timestamp, 1mo) as f, dateceil(@timestamp, 1d) as g`, Options{},
			[]string{"a", "b", "c", "d", "e", "f", "g"}, [][]string{{"2024-03-01 10:00:00.000", "2024-03-01 10:05:00.000", "1709287380000", "1970-01-01 00:00:00.000", "2024-03-01 10:00:00.000", "2024-03-01 00:00:00.000", "2024-03-02 00:00:00.000"}}, 1},
		{"ip functions", `fields sourceIPAddress as ip, isValidIp(sourceIPAddress) as a, isValidIpV4(sourceIPAddress) as b, isValidIpV6(sourceIPAddress) as c, isIpInSubnet(sourceIPAddress, "10.0.0.0/8") as d, isIpv4InSubnet(sourceIPAddress, "192.168.0.0/16") as e, isIpv6InSubnet(sourceIPAddress, "2001:db8::/32") as f, isValidIp(eventName) as g`, Options{},
			[]string{"ip", "a", "b", "c", "d", "e", "f", "g"}, [][]string{
				{"10.0.0.7", "true", "true", "false", "true", "false", "false", "false"},
				{"192.168.1.9", "true", "true", "false", "false", "true", "false", "false"},
				{"2001:db8::1", "true", "false", "true", "false", "false", "true", "false"},
				{"10.0.0.5", "true", "true", "false", "true", "false", "false", "false"},
			}, 4},
		{"stats aggregates by", `stats count(*) as n, count(errorCode) as ec, count_distinct(eventName) as dn, sum(bytes) as s, avg(bytes) as a, min(bytes) as mn, max(bytes) as mx by eventSource`, Options{},
			[]string{"eventSource", "n", "ec", "dn", "s", "a", "mn", "mx"}, [][]string{
				{"s3.amazonaws.com", "2", "0", "2", "260", "130", "10", "250"},
				{"sts.amazonaws.com", "2", "1", "1", "140", "70", "40", "100"},
			}, 4},
		{"stats without group", `stats count() as n, stddev(bytes) as sd, pct(bytes, 50) as p50, pct(bytes, 90) as p90, pct(bytes, 0) as p0, earliest(eventName) as e, latest(eventName) as l, sortsFirst(eventName) as sf, sortsLast(eventName) as sl, earliest(@timestamp) as et`, Options{},
			[]string{"n", "sd", "p50", "p90", "p0", "e", "l", "sf", "sl", "et"}, [][]string{
				{"4", formatNum(math.Sqrt(11400)), "40", "250", "10", "AssumeRoleWithWebIdentity", "ListBuckets", "AssumeRoleWithWebIdentity", "ListBuckets", "2024-03-01 10:00:00.000"},
			}, 4},
		{"stats over nothing", `filter eventName = "Nope" | stats count(*) as n, sum(bytes) as s`, Options{}, []string{"n", "s"}, [][]string{{"0", null}}, 0},
		{"stats by bin", `stats count(*) as n by bin(5m)`, Options{}, []string{"bin(5m)", "n"},
			[][]string{{"2024-03-01 10:00:00.000", "2"}, {"2024-03-01 10:05:00.000", "1"}, {"2024-03-01 10:10:00.000", "1"}}, 4},
		{"stats default name", `stats count(*) by eventSource`, Options{}, []string{"eventSource", "count(*)"},
			[][]string{{"s3.amazonaws.com", "2"}, {"sts.amazonaws.com", "2"}}, 4},
		{"stats null group sorts last", `stats count(*) as n by errorCode`, Options{}, []string{"errorCode", "n"},
			[][]string{{"AccessDenied", "1"}, {null, "3"}}, 4},
		{"stats, sort, limit", `stats count(*) as n by eventSource, userIdentity.type as t | sort n desc, t asc | limit 1`, Options{},
			[]string{"eventSource", "t", "n"}, [][]string{{"s3.amazonaws.com", "AssumedRole", "2"}}, 4},
		{"second stats", `stats count(*) as n by eventSource | stats sum(n) as total, count(*) as groups`, Options{}, []string{"total", "groups"},
			[][]string{{"4", "2"}}, 4},
		{"fields after stats", `stats count(*) as n by eventSource | fields n * 10 as tens`, Options{}, []string{"eventSource", "n", "tens"},
			[][]string{{"s3.amazonaws.com", "2", "20"}, {"sts.amazonaws.com", "2", "20"}}, 4},
		{"filter after stats", `stats count(*) as n by eventName | filter n > 1`, Options{}, []string{"eventName", "n"},
			[][]string{{"AssumeRoleWithWebIdentity", "2"}}, 4},
		{"sort desc, numeric strings are numbers", `fields eventName, bytes | sort bytes desc`, Options{}, []string{"eventName", "bytes"},
			[][]string{{"GetObject", "250"}, {"AssumeRoleWithWebIdentity", "100"}, {"AssumeRoleWithWebIdentity", "40"}, {"ListBuckets", "10"}}, 4},
		{"sort default ascending", `fields bytes | sort bytes`, Options{}, []string{"bytes"}, [][]string{{"10"}, {"40"}, {"100"}, {"250"}}, 4},
		{"sort: non-numbers before numbers", `fields coalesce(errorCode, bytes) as x | sort x`, Options{}, []string{"x"},
			[][]string{{"AccessDenied"}, {"10"}, {"100"}, {"250"}}, 4},
		{"sort nulls last", `fields errorCode | sort errorCode desc`, Options{}, []string{"errorCode"},
			[][]string{{"AccessDenied"}, {null}, {null}, {null}}, 4},
		{"sort ties keep default order", `fields eventSource, eventName | sort eventSource`, Options{}, []string{"eventSource", "eventName"},
			[][]string{{"s3.amazonaws.com", "ListBuckets"}, {"s3.amazonaws.com", "GetObject"}, {"sts.amazonaws.com", "AssumeRoleWithWebIdentity"}, {"sts.amazonaws.com", "AssumeRoleWithWebIdentity"}}, 4},
		{"sort limit (top N)", `fields eventName, bytes | sort bytes desc | limit 2`, Options{}, []string{"eventName", "bytes"},
			[][]string{{"GetObject", "250"}, {"AssumeRoleWithWebIdentity", "100"}}, 4},
		{"sort on @timestamp asc", `fields eventName | sort @timestamp asc | limit 1`, Options{}, []string{"eventName"},
			[][]string{{"AssumeRoleWithWebIdentity"}}, 4},
		{"dedup keeps first in order", `fields eventName | sort eventName asc | dedup eventName`, Options{}, []string{"eventName"},
			[][]string{{"AssumeRoleWithWebIdentity"}, {"GetObject"}, {"ListBuckets"}}, 4},
		{"dedup: nulls never duplicates", `fields errorCode | dedup errorCode`, Options{}, []string{"errorCode"},
			[][]string{{null}, {"AccessDenied"}, {null}, {null}}, 4},
		{"limit, newest first", `fields eventName | limit 2`, Options{}, []string{"eventName"}, [][]string{{"ListBuckets"}, {"AssumeRoleWithWebIdentity"}}, 4},
		{"filter after limit", `limit 2 | filter bytes > 20 | fields eventName`, Options{}, []string{"eventName"}, [][]string{{"AssumeRoleWithWebIdentity"}}, 4},
		{"matched counts before the first stats/limit", `filter readOnly = true | limit 1 | fields eventName`, Options{}, []string{"eventName"}, [][]string{{"ListBuckets"}}, 2},
		{"parse glob", `parse msg "user=* id=*" as user, id | filter ispresent(user) | fields user, id`, Options{}, []string{"user", "id"},
			[][]string{{"carol", "3"}, {"bob", "12"}, {"alice", "7"}}, 3},
		{"parse regex", `parse msg /user=(?<user>\w+) id=(?<id>\d+)/ | stats count(*) by user`, Options{}, []string{"user", "count(*)"},
			[][]string{{"alice", "1"}, {"bob", "1"}, {"carol", "1"}, {null, "1"}}, 4},
		{"display picks columns", `fields eventName, bytes | display bytes`, Options{}, []string{"bytes"}, [][]string{{"10"}, {"40"}, {"250"}, {"100"}}, 4},
		{"only the last display counts", `display eventName | fields bytes | display bytes, eventName`, Options{}, []string{"bytes", "eventName"},
			[][]string{{"10", "ListBuckets"}, {"40", "AssumeRoleWithWebIdentity"}, {"250", "GetObject"}, {"100", "AssumeRoleWithWebIdentity"}}, 4},
		{"@timestamp", `filter eventName like "GetObject" | fields @timestamp`, Options{}, []string{"@timestamp"}, [][]string{{"2024-03-01 10:03:00.000"}}, 1},
		{"keywords any case, comments, newlines", "FILTER eventName LIKE \"List\" # a comment | not a pipe\n  | Fields eventName", Options{}, []string{"eventName"}, [][]string{{"ListBuckets"}}, 1},
		{"time comparisons", `filter @timestamp >= "2024-03-01T10:05:00Z" and @timestamp < "2024-03-01 10:12:00" | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"AssumeRoleWithWebIdentity"}}, 1},
		{"string comparison", `filter eventName < "H" | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"AssumeRoleWithWebIdentity"}, {"GetObject"}, {"AssumeRoleWithWebIdentity"}}, 3},
		{"single-quoted string with escapes", `filter msg = 'user=bob id=12' or msg = "\u0020 padded  " | fields eventName`, Options{}, []string{"eventName"},
			[][]string{{"AssumeRoleWithWebIdentity"}, {"GetObject"}}, 2},
		{"--limit overrides the query's", `fields eventName | limit 3`, Options{Limit: 1}, []string{"eventName"}, [][]string{{"ListBuckets"}}, 4},
		{"--limit without a limit", `fields eventName`, Options{Limit: 2}, []string{"eventName"}, [][]string{{"ListBuckets"}, {"AssumeRoleWithWebIdentity"}}, 4},
		{"start/end on @timestamp", `fields eventName`, Options{Scan: scanRange(t("2024-03-01T10:03:00Z"), t("2024-03-01T10:12:00Z"))}, []string{"eventName"},
			[][]string{{"AssumeRoleWithWebIdentity"}, {"GetObject"}}, 2},
		{"start/end with stats", `stats count(*) as n`, Options{Scan: scanRange(t("2024-03-01T10:03:00Z"), time.Time{})}, []string{"n"}, [][]string{{"3"}}, 3},
	}
}

func TestHandWritten(t *testing.T) {
	events := eventsOf(handEvents)
	for _, tc := range handCases() {
		t.Run(tc.name, func(t *testing.T) {
			q, err := Parse(tc.query)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, workers := range []int{1, 3} {
				r, err := runEvents(q, events, workers, 1, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.cols, r.Columns); diff != "" {
					t.Errorf("columns (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.rows, render(r)); diff != "" {
					t.Errorf("workers=%d rows (-want +got):\n%s", workers, diff)
				}
				if tc.matched >= 0 && r.Matched != tc.matched {
					t.Errorf("matched = %d, want %d", r.Matched, tc.matched)
				}
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	for _, tc := range []struct {
		q   string
		col string
		p   time.Duration
		ok  bool
	}{
		{`stats count(*) by bin(5m)`, "count(*)", 5 * time.Minute, true},
		{`filter x = 1 | stats sum(b) as s by bin(1h) | sort s`, "s", time.Hour, true},
		{`stats count(*) by bin(5m), eventName`, "", 0, false},
		{`stats count(*), sum(x) by bin(5m)`, "", 0, false},
		{`stats count(*) by eventName`, "", 0, false},
		{`fields a`, "", 0, false},
	} {
		q, err := Parse(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		col, p, ok := q.Histogram()
		if col != tc.col || p != tc.p || ok != tc.ok {
			t.Errorf("%s: Histogram() = %q, %v, %v; want %q, %v, %v", tc.q, col, p, ok, tc.col, tc.p, tc.ok)
		}
	}
}

func TestValueDisplayAndJSON(t *testing.T) {
	ts := time.Date(2024, 3, 1, 10, 3, 0, 5e6, time.UTC).UnixNano()
	for _, tc := range []struct {
		v    Value
		str  string
		json any
	}{
		{Value{}, "", nil},
		{numVal(3), "3", int64(3)},
		{numVal(-0.25), "-0.25", -0.25},
		{numVal(1e21), "1e+21", 1e21},
		{numVal(1.0 / 3), "0.3333333333333333", 1.0 / 3},
		{strVal("x"), "x", "x"},
		{boolVal(true), "true", true},
		{timeVal(ts), "2024-03-01 10:03:00.005", "2024-03-01T10:03:00.005Z"},
	} {
		if got := tc.v.String(); got != tc.str {
			t.Errorf("String() = %q, want %q", got, tc.str)
		}
		if got := tc.v.JSON(); got != tc.json {
			t.Errorf("JSON() = %#v, want %#v", got, tc.json)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		q         string
		line, col int
		msg       string
	}{
		{``, 1, 1, "expected a command"},
		{`filter eventName like /[/`, 1, 23, "bad regular expression"},
		{`parse msg /(?<a>[)/`, 1, 11, "bad regular expression"},
		{`fields foo(bar)`, 1, 8, `unknown function "foo"`},
		{`fields sum(x)`, 1, 8, "only allowed in stats"},
		{`stats strlen(x)`, 1, 7, "not a stats function"},
		{`stats count(*) by`, 1, 18, "expected an expression"},
		{`filter a = `, 1, 12, "expected an expression"},
		{`sort x | limit 0`, 1, 16, "limit wants"},
		{"fields a\n| bogus x", 2, 3, `unknown command "bogus"`},
		{`filter x = "abc`, 1, 12, "unterminated string"},
		{"fields `a", 1, 8, "unterminated"},
		{`fields 5m`, 1, 8, "time period"},
		{`stats count(*) by bin(5)`, 1, 23, "bin wants a time period"},
		{`stats count(*) by bin(5x)`, 1, 23, "bad time period"},
		{`parse msg "abc" as x`, 1, 11, "no *"},
		{`parse msg "a*b*" as x`, 1, 18, "2 * but 1 field"},
		{`fields a |`, 1, 11, "expected a command"},
		{`filter x = 1 y`, 1, 14, "expected | or the end"},
		{`filter x in "a"`, 1, 13, "expected [ after in"},
		{`stats pct(x, 120)`, 1, 14, "pct wants"},
		{`stats pct(x, y)`, 1, 14, "pct wants"},
		{`fields strlen(a, b)`, 1, 8, "strlen takes 1 argument"},
		{`stats count(*) * 2`, 1, 16, "arithmetic on stats results"},
		{`fields é ~`, 1, 10, "unexpected character"},
		{`filter x =~ "a"`, 1, 13, "=~ wants"},
		{`filter (a = 1`, 1, 14, "expected )"},
		{`stats sum(count(x))`, 1, 11, "only allowed in stats"},
		{`filter x like`, 1, 14, "expected a \"string\""},
		{`fields a as`, 1, 12, "expected a field name"},
		{`sort`, 1, 5, "expected an expression"},
		{`filter "\q"`, 1, 9, "unknown escape"},
		{`fields /re/`, 1, 8, "regular expression is only allowed"},
		{"filter " + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300), 1, -1, "nested too deeply"},
		{"filter " + strings.Repeat("not ", 1000) + "x", 1, -1, "nested too deeply"},
		{"filter " + strings.Repeat("-", 1000) + "x", 1, -1, "nested too deeply"},
		{"filter 2" + strings.Repeat("^2", 1000), 1, -1, "nested too deeply"},
	} {
		_, err := Parse(tc.q)
		se, ok := errors.AsType[*SyntaxError](err)
		if !ok {
			t.Errorf("Parse(%q) = %v, want a *SyntaxError", tc.q, err)
			continue
		}
		if tc.col < 0 { // deep nesting: any column on the line
			tc.col = se.Col
		}
		if se.Line != tc.line || se.Col != tc.col || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("Parse(%q) = line %d col %d %q; want line %d col %d containing %q", tc.q, se.Line, se.Col, se.Msg, tc.line, tc.col, tc.msg)
		}
	}
}

func TestSyntaxErrorRendering(t *testing.T) {
	src := "fields a\n| filter é = foo(1)"
	_, err := Parse(src)
	se, ok := errors.AsType[*SyntaxError](err)
	if !ok {
		t.Fatalf("err = %v", err)
	}
	if got, want := se.Error(), `query: line 2, column 14: unknown function "foo"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := se.Caret(src), "| filter é = foo(1)\n             ^"; got != want {
		t.Errorf("Caret() =\n%s\nwant\n%s", got, want)
	}
}
