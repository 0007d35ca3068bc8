package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/query"
)

func newAuditQueryCmd() *cobra.Command {
	var (
		start, end string
		output     string
		skipBad    bool
		limit      int
		chart      bool
		workers    int
	)
	cmd := &cobra.Command{
		Use:   "query 'QUERY' PATH...",
		Short: "Run a CloudWatch Logs Insights query over keyless trails and CloudTrail files",
		Long: `Run a CloudWatch Logs Insights query over audit events, on this machine.

A PATH is a keyless data dir or its audit folder (sealed delivery files and
the live journal, each event once), a CloudTrail delivery or export file
({"Records":[...]}, .json or .json.gz), NDJSON (one event per line, .gz
too), a directory (read recursively, as CloudTrail's S3 layout), or - for
standard input. The format is read from the content, not from the name.

The language is Logs Insights': fields, display, filter, stats, sort, limit,
dedup and parse, chained with |. Fields are named as Logs Insights flattens
JSON (userIdentity.sessionContext.sessionIssuer.arn, resources.0.ARN,
backquotes for other names); @timestamp is eventTime, @message the raw event.
Without sort, rows come newest first; without limit, every row is returned.

--start and --end take RFC 3339 times (2026-03-04T05:06:07Z, 2026-03-04) or
times relative to now (-2h, -7d, -30m, -1w); files whose delivery time shows
they hold nothing in the range are not opened.

The summary (records matched, records and bytes scanned, time, records/s and
MB/s) goes to standard error; on a terminal, so does a progress line for
scans longer than a second.

Exit status: 0 done, 1 an input could not be read (the file and byte offset
are named; --skip-bad counts such files and records instead and goes on),
2 the query or a flag is wrong (the column is shown with a caret).

Examples:
  keyless audit query 'filter eventName = "AssumeRoleWithWebIdentity"
    | stats count(*) by requestParameters.roleArn, userIdentity.userName' /var/lib/keyless
  keyless audit query 'fields @timestamp, eventName, errorCode
    | filter ispresent(errorCode) | sort @timestamp desc | limit 20' trail/ --start -7d
  keyless audit query 'stats count(*) by bin(1h)' cloudtrail-export.json.gz --chart`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErrorf("give a query and at least one PATH (a data dir, a trail folder, a CloudTrail file, NDJSON, or - for standard input)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case "table", "json", "csv":
			default:
				return usageErrorf("--output must be table, json or csv")
			}
			if limit < 0 {
				return usageErrorf("--limit must be a positive number of rows")
			}
			now := time.Now()
			opts := query.Options{Limit: limit}
			var err error
			if opts.Scan.Start, err = parseWhen(start, now); err != nil {
				return usageErrorf("--start: %v", err)
			}
			if opts.Scan.End, err = parseWhen(end, now); err != nil {
				return usageErrorf("--end: %v", err)
			}
			if !opts.Scan.Start.IsZero() && !opts.Scan.End.IsZero() && !opts.Scan.End.After(opts.Scan.Start) {
				return usageErrorf("--end %s is not after --start %s", opts.Scan.End.Format(time.RFC3339), opts.Scan.Start.Format(time.RFC3339))
			}
			q, err := query.Parse(args[0])
			if err != nil {
				if se, ok := errors.AsType[*query.SyntaxError](err); ok {
					return &exitError{2, fmt.Errorf("%w\n%s", se, se.Caret(args[0]))}
				}
				return &exitError{2, err}
			}
			if chart {
				if _, _, ok := q.Histogram(); !ok {
					return usageErrorf("--chart draws `stats AGG by bin(PERIOD)`; this query is not one")
				}
			}
			stderr := cmd.ErrOrStderr()
			stdout := cmd.OutOrStdout()
			opts.Scan.SkipBad = skipBad
			opts.Scan.Workers = workers
			opts.Scan.Stdin = cmd.InOrStdin()
			prog := newProgress(stderr, now)
			if prog != nil {
				opts.Scan.Progress = prog.update
			}
			res, err := q.Run(cmd.Context(), args[1:], opts)
			prog.clear()
			if err != nil {
				if res != nil {
					fmt.Fprintln(stderr, summaryLine(res, time.Since(now)))
				}
				return &exitError{1, err}
			}
			switch {
			case chart:
				width := 50
				if c, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && c > 60 {
					width = c - 40
				}
				if _, err := query.WriteChart(stdout, q, res, width); err != nil {
					return err
				}
			case output == "json":
				err = query.WriteJSON(stdout, res)
			case output == "csv":
				err = query.WriteCSV(stdout, res)
			default:
				topts := query.TableOptions{}
				if isTerminal(stdout) {
					topts.MaxCell = 120
				}
				err = query.WriteTable(stdout, res, topts)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(stderr, summaryLine(res, time.Since(now)))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&start, "start", "", "first event time: RFC 3339 (2026-03-04T05:06:07Z, 2026-03-04) or relative (-2h, -7d)")
	f.StringVar(&end, "end", "", "end of the range (exclusive), same forms as --start")
	f.StringVar(&output, "output", "table", "table, json (one object per row) or csv")
	f.BoolVar(&skipBad, "skip-bad", false, "count unreadable files and malformed records in the summary and go on, instead of stopping")
	f.IntVar(&limit, "limit", 0, "return at most N rows (overrides the query's limit)")
	f.BoolVar(&chart, "chart", false, "draw `stats AGG by bin(PERIOD)` as a histogram")
	f.IntVar(&workers, "workers", 0, "goroutines scanning in parallel (default: one per core)")
	_ = f.MarkHidden("workers")
	return cmd
}

// parseWhen reads a --start/--end value: empty (open), RFC 3339, a date,
// or a duration before now (-2h, -7d, -1w).
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, nil
	case s == "now":
		return now.UTC(), nil
	case strings.HasPrefix(s, "-"):
		d, err := parseAgo(s[1:])
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-d).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-03-04T05:06:07Z), a date (2026-03-04) or a time before now (-2h, -7d, -30m, -1w)", s)
}

// parseAgo reads 90s, 30m, 2h, 7d, 1w, and Go durations (1h30m).
func parseAgo(s string) (time.Duration, error) {
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if n := len(s); n > 1 {
		if u, ok := unit[s[n-1]]; ok {
			v, err := strconv.ParseFloat(s[:n-1], 64)
			if err == nil && v >= 0 && v < 100_000 {
				return time.Duration(v * float64(u)), nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a time before now such as -2h, -7d, -30m or -1w", "-"+s)
	}
	return d, nil
}

// summaryLine is Logs Insights' status line, plus what it does not have:
// files left unopened by the time range, bad input skipped, duplicates.
func summaryLine(r *query.Result, took time.Duration) string {
	st := r.Stats
	secs := max(took.Seconds(), 1e-6)
	mb := float64(st.Bytes) / 1e6
	var b strings.Builder
	prec := 1
	if took < time.Second {
		prec = 3 // a 30 ms scan is not "0.0s"
	}
	fmt.Fprintf(&b, "%s records matched | %s records (%s MB) scanned in %ss @ %s records/s (%.1f MB/s)",
		grouped(r.Matched), grouped(st.Records), strconv.FormatFloat(mb, 'f', 1, 64), strconv.FormatFloat(took.Seconds(), 'f', prec, 64),
		grouped(int64(float64(st.Records)/secs)), mb/secs)
	var extra []string
	if st.Files > 0 {
		extra = append(extra, fmt.Sprintf("%s files read", grouped(int64(st.Files))))
	}
	if st.FilesSkipped > 0 {
		extra = append(extra, fmt.Sprintf("%s files outside --start/--end not opened", grouped(int64(st.FilesSkipped))))
	}
	if st.BadFiles > 0 {
		extra = append(extra, fmt.Sprintf("%s unreadable files skipped", grouped(int64(st.BadFiles))))
	}
	if st.BadRecords > 0 {
		extra = append(extra, fmt.Sprintf("%s malformed records skipped", grouped(st.BadRecords)))
	}
	if st.Duplicates > 0 {
		extra = append(extra, fmt.Sprintf("%s duplicate events (same eventID) counted once", grouped(st.Duplicates)))
	}
	if len(extra) > 0 {
		b.WriteString(" | ")
		b.WriteString(strings.Join(extra, ", "))
	}
	return b.String()
}

// grouped prints n with thousands separators, as the Logs Insights console.
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// progress draws one self-erasing line on a terminal's stderr, once a scan
// has run for a second; nil (and silent) when stderr is not a terminal.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	drawn bool
	done  bool
}

func newProgress(w io.Writer, start time.Time) *progress {
	if !isTerminal(w) {
		return nil
	}
	return &progress{w: w, start: start}
}

func (p *progress) update(st audit.ScanStats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	took := time.Since(p.start)
	if p.done || took < time.Second {
		return
	}
	mb := float64(st.Bytes) / 1e6
	fmt.Fprintf(p.w, "\r\033[Kscanning: %s records (%.1f MB) in %.0fs @ %.1f MB/s, %d files", grouped(st.Records), mb, took.Seconds(), mb/took.Seconds(), st.Files)
	p.drawn = true
}

func (p *progress) clear() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
