package policygen

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// merged is the workers' states put together. The aggregates stay in the
// workers: the same (session, action, resource) met by two workers is two
// aggregates, which resolve sums.
type merged struct {
	excluded  map[string]int64
	used      int64
	failed    int64
	denied    int64
	exchanges int64
	events    int64
	unknown   map[string]int64
	workers   []*workerState
	xs        []exchange
}

func mergeStates(ss []*workerState) *merged {
	m := &merged{excluded: map[string]int64{}, unknown: map[string]int64{}, workers: ss}
	for _, s := range ss {
		for k, v := range s.excluded {
			m.excluded[k] += v
		}
		for k, v := range s.unknown {
			m.unknown[k] += v
		}
		m.used += s.used
		m.failed += s.failed
		m.denied += s.denied
		m.exchanges += s.exchanges
		m.events += s.events
		m.xs = append(m.xs, s.xs...)
	}
	return m
}

// eachAgg calls fn with every aggregate of every worker.
func (m *merged) eachAgg(fn func(a *agg)) {
	for _, s := range m.workers {
		s.eachAgg(fn)
	}
}

// linker finds the exchange of a session.
type linker struct {
	byKey map[string]*exchange
	byARN map[string][]*exchange // by time
}

func newLinker(xs []exchange) *linker {
	l := &linker{byKey: map[string]*exchange{}, byARN: map[string][]*exchange{}}
	// A deterministic order whatever the workers did.
	slices.SortFunc(xs, func(a, b exchange) int {
		return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(a.key, b.key), strings.Compare(a.sessARN, b.sessARN))
	})
	for i := range xs {
		x := &xs[i]
		if x.key != "" {
			l.byKey[x.key] = x
		}
		if x.sessARN != "" {
			l.byARN[x.sessARN] = append(l.byARN[x.sessARN], x)
		}
	}
	return l
}

// latest returns the latest exchange that created session ARN arn at or
// before at.
func (l *linker) latest(arn string, at int64) *exchange {
	xs := l.byARN[arn]
	i, _ := slices.BinarySearchFunc(xs, at, func(x *exchange, t int64) int {
		if x.at <= t {
			return -1
		}
		return 1
	})
	if i == 0 {
		return nil
	}
	return xs[i-1]
}

func (l *linker) link(a *agg) *exchange {
	if a.refKind == 'k' {
		return l.byKey[a.ref]
	}
	return l.latest(a.ref, a.first)
}

// binding follows an exchange back to the web identity exchange at the
// start of its chain: web is false when there is none.
func (l *linker) binding(x *exchange) (b string, has, web bool) {
	for range 16 {
		if x == nil {
			return "", false, false
		}
		if x.web {
			return x.binding, x.hasBinding, true
		}
		p := l.byKey[x.parentKey]
		if p == nil && x.parentARN != "" {
			p = l.latest(x.parentARN, x.at)
		}
		x = p
	}
	return "", false, false
}

// polKey identifies a RolePolicy.
type polKey struct {
	role    string
	binding string
	bound   bool
}

type actKey struct{ action, via string }

type actBuilder struct {
	use                 ActionUse
	res                 map[string]struct{}
	events              map[string]struct{}
	notes               map[string]struct{}
	conds               map[string]struct{} // kms:ViaService values
	readOnly, readKnown int64
	calls               int64
	first, last         int64
}

type polBuilder struct {
	key      polKey
	acts     map[actKey]*actBuilder
	unlinkS  map[string]struct{} // sessions not linked to an exchange
	unlinkN  int64
	unboundS map[string]struct{} // sessions whose exchange lacks the binding
	unboundN int64
	calls    []call
}

func resolve(m *merged, opts Options, by byMode) *Report {
	rep := &Report{Excluded: m.excluded, Denied: []DeniedCall{}, Policies: []RolePolicy{}}
	l := newLinker(m.xs)
	pols := map[polKey]*polBuilder{}
	sessions := map[string]bool{}
	type denKey struct{ role, binding, action, resource, event, code string }
	denied := map[denKey]*DeniedCall{}
	bound := map[string]*string{} // one *string per binding value

	// The order does not matter: everything below is summed, min/maxed
	// or sorted before output.
	m.eachAgg(func(a *agg) {
		x := l.link(a)
		sess := string(a.refKind) + a.ref
		sessions[sess] = sessions[sess] || x != nil
		if x == nil {
			rep.Stats.CallsUnlinked += a.count
		}
		pk := polKey{role: a.role}
		var b string
		has, web := false, false
		if by.kind != 'r' && x != nil {
			b, has, web = l.binding(x)
		}
		if has {
			pk.binding, pk.bound = b, true
		}
		if a.outcome == outDenied {
			var bp *string
			if pk.bound {
				bp = internBinding(bound, b)
			}
			ev := a.event
			dk := denKey{a.role, b, a.action, a.resource, ev, a.errCode}
			d := denied[dk]
			if d == nil {
				d = &DeniedCall{Role: a.role, Binding: bp, Action: a.action, Resource: a.resource, Event: ev,
					ErrorCode: a.errCode, FirstSeen: utc(a.first), LastSeen: utc(a.last)}
				denied[dk] = d
			}
			d.Count += a.count
			d.FirstSeen = minTime(d.FirstSeen, utc(a.first))
			d.LastSeen = maxTime(d.LastSeen, utc(a.last))
			if !opts.IncludeDenied {
				return
			}
		}
		pb := pols[pk]
		if pb == nil {
			pb = &polBuilder{key: pk, acts: map[actKey]*actBuilder{}, unlinkS: map[string]struct{}{}, unboundS: map[string]struct{}{}}
			pols[pk] = pb
		}
		switch {
		case x == nil || (by.kind != 'r' && !web):
			pb.unlinkS[sess] = struct{}{}
			pb.unlinkN += a.count
		case by.kind != 'r' && !has:
			pb.unboundS[sess] = struct{}{}
			pb.unboundN += a.count
		}
		pb.add(a)
		if opts.keepCalls {
			pb.calls = append(pb.calls, call{a.action, a.resource, a.cond})
		}
	})
	for _, linked := range sessions {
		rep.Stats.Sessions++
		if linked {
			rep.Stats.SessionsLinked++
		} else {
			rep.Stats.SessionsUnlinked++
		}
	}

	pks := make([]polKey, 0, len(pols))
	for pk := range pols {
		pks = append(pks, pk)
	}
	slices.SortFunc(pks, func(a, b polKey) int {
		return cmp.Or(strings.Compare(a.role, b.role), cmpBool(a.bound, b.bound), strings.Compare(a.binding, b.binding))
	})
	for _, pk := range pks {
		rp := assemble(pols[pk], opts, by)
		rp.calls = pols[pk].calls
		if pk.bound {
			rp.Binding = internBinding(bound, pk.binding)
		}
		rep.Policies = append(rep.Policies, rp)
	}

	for _, d := range denied {
		rep.Denied = append(rep.Denied, *d)
	}
	slices.SortFunc(rep.Denied, func(a, b DeniedCall) int {
		return cmp.Or(strings.Compare(a.Role, b.Role), cmpBool(a.Binding != nil, b.Binding != nil),
			strings.Compare(deref(a.Binding), deref(b.Binding)), strings.Compare(a.Action, b.Action),
			strings.Compare(a.Resource, b.Resource), strings.Compare(a.Event, b.Event), strings.Compare(a.ErrorCode, b.ErrorCode))
	})
	for k, n := range m.unknown {
		src, name, _ := strings.Cut(k, "\x00")
		rep.Unknown = append(rep.Unknown, UnknownCall{EventSource: src, EventName: name, Count: n})
	}
	slices.SortFunc(rep.Unknown, func(a, b UnknownCall) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.EventSource, b.EventSource), strings.Compare(a.EventName, b.EventName))
	})
	rep.Stats.Events = m.events
	rep.Stats.Used = m.used
	rep.Stats.Failed = m.failed
	rep.Stats.Denied = m.denied
	rep.Stats.Exchanges = m.exchanges
	return rep
}

func (pb *polBuilder) add(a *agg) {
	k := actKey{a.action, a.via}
	ab := pb.acts[k]
	if ab == nil {
		ab = &actBuilder{
			use: ActionUse{Action: a.action, ViaService: a.via},
			res: map[string]struct{}{}, events: map[string]struct{}{}, notes: map[string]struct{}{},
			conds: map[string]struct{}{}, first: a.first, last: a.last,
		}
		pb.acts[k] = ab
	}
	ab.res[a.resource] = struct{}{}
	if a.cond != "" {
		ab.conds[a.cond] = struct{}{}
	}
	ab.events[a.event] = struct{}{}
	if a.note != "" {
		ab.notes[a.note] = struct{}{}
	}
	switch a.outcome {
	case outOK:
		ab.use.Count += a.count
	case outFailed:
		ab.use.Failed += a.count
	case outDenied:
		ab.use.Denied += a.count
	}
	ab.calls += a.count
	ab.readOnly += a.readOnly
	ab.readKnown += a.readKnown
	ab.first = min(ab.first, a.first)
	ab.last = max(ab.last, a.last)
}

// unlinkedNotes says how many calls were attributed to the role only.
func (pb *polBuilder) unlinkedNotes(by byMode) []string {
	var out []string
	if pb.unlinkN > 0 {
		out = append(out, fmt.Sprintf("%d calls by %d session(s) not linked to a web identity exchange in the window (or in the input): attributed to the role only",
			pb.unlinkN, len(pb.unlinkS)))
	}
	if pb.unboundN > 0 {
		what := "subject"
		if by.kind == 'c' {
			what = "claim " + by.claim
		}
		out = append(out, fmt.Sprintf("%d calls by %d session(s) whose exchange records no %s: attributed to the role only",
			pb.unboundN, len(pb.unboundS), what))
	}
	return out
}

func internBinding(m map[string]*string, b string) *string {
	if p := m[b]; p != nil {
		return p
	}
	p := &b
	m[b] = p
	return p
}

func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
