package query

import (
	"time"

	"sync"

	"github.com/keylessci/keyless/internal/audit"
)

// runEvents evaluates q over in-memory events with the given number of
// workers: batches of `batch` records go to whichever worker is free, so
// the split differs from run to run.
func runEvents(q *Query, events [][]byte, workers, batch int, opts Options) (*Result, error) {
	if batch <= 0 {
		batch = 3
	}
	opts.Scan.Workers = workers
	return q.run(opts, func(fn func(int, []audit.RawRecord) error) (audit.ScanStats, error) {
		ch := make(chan []audit.RawRecord)
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range ch {
					if err := fn(w, b); err != nil && errs[w] == nil {
						errs[w] = err
					}
				}
			}()
		}
		var st audit.ScanStats
		for i := 0; i < len(events); i += batch {
			j := min(i+batch, len(events))
			b := make([]audit.RawRecord, 0, j-i)
			for k := i; k < j; k++ {
				b = append(b, audit.RawRecord{Data: events[k], File: 0, Index: int64(k)})
				st.Records++
				st.Bytes += int64(len(events[k]))
			}
			ch <- b
		}
		close(ch)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return st, err
			}
		}
		return st, nil
	})
}

func scanRange(start, end time.Time) audit.ScanOptions {
	return audit.ScanOptions{Start: start, End: end}
}
