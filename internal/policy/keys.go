package policy

import "sort"

// ConditionKeys returns the context keys the policy reads, as
// GetContextKeysForCustomPolicy reports them: every condition key and every
// key used as a ${...} variable (in Resource, NotResource and condition
// values; only with Version 2012-10-17). Keys that differ only in case are
// reported once, with their first spelling; the result is sorted ignoring
// case.
func (p *Policy) ConditionKeys() []string {
	seen := map[string]bool{}
	var keys []string
	for i := range p.c.stmts {
		for _, k := range p.c.stmts[i].keys {
			if fk := foldKey(k); !seen[fk] {
				seen[fk] = true
				keys = append(keys, k)
			}
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return foldKey(keys[i]) < foldKey(keys[j]) })
	return keys
}
