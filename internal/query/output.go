package query

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// TableOptions shape the aligned table.
type TableOptions struct {
	// MaxCell cuts a cell to this many characters (with "…"), so that an
	// @message does not push every other column off a terminal; 0 keeps
	// cells whole.
	MaxCell int
}

// WriteTable prints the result as an aligned table: a header, a rule, one
// line per row. Newlines and tabs inside values are shown as \n and \t so a
// row stays one line.
func WriteTable(w io.Writer, r *Result, opts TableOptions) error {
	cells := make([][]string, 0, len(r.Rows)+1)
	cells = append(cells, r.Columns)
	for _, row := range r.Rows {
		line := make([]string, len(r.Columns))
		for i := range line {
			if i < len(row) {
				line[i] = displayCell(row[i].String(), opts.MaxCell)
			}
		}
		cells = append(cells, line)
	}
	width := make([]int, len(r.Columns))
	for _, line := range cells {
		for i, c := range line {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	bw := bufio.NewWriter(w)
	writeLine := func(line []string) {
		for i, c := range line {
			if i > 0 {
				bw.WriteString("  ")
			}
			bw.WriteString(c)
			if i < len(line)-1 {
				bw.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
			}
		}
		bw.WriteByte('\n')
	}
	writeLine(cells[0])
	rule := make([]string, len(width))
	for i, n := range width {
		rule[i] = strings.Repeat("-", n)
	}
	writeLine(rule)
	for _, line := range cells[1:] {
		writeLine(line)
	}
	return bw.Flush()
}

func displayCell(s string, maxCell int) string {
	if strings.ContainsAny(s, "\n\t\r") {
		s = strings.NewReplacer("\n", `\n`, "\t", `\t`, "\r", `\r`).Replace(s)
	}
	if maxCell > 1 && utf8.RuneCountInString(s) > maxCell {
		n := 0
		for i := range s {
			if n == maxCell-1 {
				return s[:i] + "…"
			}
			n++
		}
	}
	return s
}

// WriteJSON prints one JSON object per row (JSON Lines), its keys the
// result columns in column order; a null value is JSON null.
func WriteJSON(w io.Writer, r *Result) error {
	bw := bufio.NewWriter(w)
	keys := make([][]byte, len(r.Columns))
	for i, c := range r.Columns {
		k, err := json.Marshal(c)
		if err != nil {
			return err
		}
		keys[i] = k
	}
	var line []byte
	for _, row := range r.Rows {
		line = append(line[:0], '{')
		for i := range r.Columns {
			if i > 0 {
				line = append(line, ',')
			}
			line = append(line, keys[i]...)
			line = append(line, ':')
			if i < len(row) {
				line = row[i].AppendJSON(line)
			} else {
				line = append(line, "null"...)
			}
		}
		line = append(line, "}\n"...)
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteCSV prints RFC 4180 CSV with a header line; a null value is an
// empty cell.
func WriteCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(r.Columns); err != nil {
		return err
	}
	line := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for i := range line {
			line[i] = ""
			if i < len(row) {
				line[i] = row[i].String()
			}
		}
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteChart draws the histogram of a `stats AGG by bin(P)` result: one
// bar per bin, empty bins between the first and the last included, scaled
// to width characters. It returns false when the result is not such a
// histogram.
func WriteChart(w io.Writer, q *Query, r *Result, width int) (bool, error) {
	col, period, ok := q.Histogram()
	if !ok || period <= 0 {
		return false, nil
	}
	binIdx, valIdx := -1, -1
	// col is the aggregate; the bin is the other column.
	for i, c := range r.Columns {
		if c == col {
			valIdx = i
		} else if binIdx < 0 {
			binIdx = i
		}
	}
	if binIdx < 0 || valIdx < 0 {
		return false, nil
	}
	type bar struct {
		at    time.Time
		label string
		v     float64
	}
	byTime := map[time.Time]*bar{}
	var first, last time.Time
	for _, row := range r.Rows {
		t, ok := valueTime(row[binIdx])
		if !ok {
			continue
		}
		b := byTime[t]
		if b == nil {
			b = &bar{at: t, label: row[binIdx].String()}
			byTime[t] = b
		}
		b.v += valueNumber(row[valIdx])
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if last.IsZero() || t.After(last) {
			last = t
		}
	}
	if len(byTime) == 0 {
		_, err := fmt.Fprintln(w, "(no data)")
		return true, err
	}
	var bars []*bar
	// Empty bins are drawn too, unless that would be absurdly many
	// (a 1 s bin over a year).
	if last.Sub(first)/period <= 10_000 {
		for t := first; !t.After(last); t = t.Add(period) {
			b := byTime[t]
			if b == nil {
				b = &bar{at: t, label: t.UTC().Format(displayTimeLayout)}
			}
			bars = append(bars, b)
		}
	} else {
		for _, b := range byTime {
			bars = append(bars, b)
		}
		slices.SortFunc(bars, func(a, b *bar) int { return a.at.Compare(b.at) })
	}
	peak := 0.0
	for _, b := range bars {
		peak = math.Max(peak, b.v)
	}
	width = max(width, 10)
	bw := bufio.NewWriter(w)
	for _, b := range bars {
		n := 0
		if peak > 0 {
			n = int(math.Round(b.v / peak * float64(width)))
		}
		if n == 0 && b.v > 0 {
			n = 1
		}
		fmt.Fprintf(bw, "%s  %s %s\n", b.label, strings.Repeat("█", n)+strings.Repeat(" ", width-n), strconv.FormatFloat(b.v, 'f', -1, 64))
	}
	return true, bw.Flush()
}

// displayTimeLayout is how Value.String shows a time (Logs Insights').
const displayTimeLayout = "2006-01-02 15:04:05.000"

// valueTime reads a time cell through its JSON form (RFC 3339).
func valueTime(v Value) (time.Time, bool) {
	s, ok := v.JSON().(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// valueNumber reads a numeric cell through its JSON form; 0 otherwise.
func valueNumber(v Value) float64 {
	switch n := v.JSON().(type) {
	case float64:
		return n
	case int64:
		return float64(n)
	case int:
		return float64(n)
	}
	return 0
}
