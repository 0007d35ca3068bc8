// Package storetest is the conformance suite every store.Store backend must
// pass: the same CRUD, atomicity, conflict, limit and paging tests run
// against SQLite and PostgreSQL.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/store"
)

// Run runs the whole suite. newStore must return an empty store; it is
// called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Meta", testMeta},
		{"Providers", testProviders},
		{"ProviderLimit", testProviderLimit},
		{"Roles", testRoles},
		{"RoleNamesCaseInsensitive", testRoleCase},
		{"RoleListPaging", testRoleListPaging},
		{"InlinePolicies", testInlinePolicies},
		{"Attachments", testAttachments},
		{"ManagedPolicies", testManagedPolicies},
		{"AccessKeys", testAccessKeys},
		{"KeyMaterial", testKeyMaterial},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"UpdateAbortWritesNothing", testUpdateAbort},
		{"CommitHookGatesEveryWrite", testCommitHook},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 11, 28, 1, 2, 3, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func testMeta(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.Meta().Get(ctx, "account-id")
	wantErr(t, err, store.ErrNotFound)
	v, err := s.Meta().PutIfAbsent(ctx, "account-id", "111122223333")
	must(t, err)
	if v != "111122223333" {
		t.Fatalf("PutIfAbsent = %q", v)
	}
	v, err = s.Meta().PutIfAbsent(ctx, "account-id", "999999999999")
	must(t, err)
	if v != "111122223333" {
		t.Fatalf("second PutIfAbsent overwrote: %q", v)
	}
	must(t, s.Meta().Put(ctx, "k", "1"))
	must(t, s.Meta().Put(ctx, "k", "2"))
	if v, _ := s.Meta().Get(ctx, "k"); v != "2" {
		t.Fatalf("Put did not overwrite: %q", v)
	}
	must(t, s.Ping(ctx))
}

func testProviders(t *testing.T, s store.Store) {
	ctx := context.Background()
	ps := s.Providers()
	p := &store.Provider{
		ARN: "arn:aws:iam::111122223333:oidc-provider/oidc.circleci.com/org/abc", URL: "https://oidc.circleci.com/org/abc",
		ClientIDs: []string{"abc"}, Thumbprints: []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"},
		Tags: []store.Tag{{Key: "team", Value: "ci"}}, CreateDate: t0,
	}
	must(t, ps.Create(ctx, p, 0))
	wantErr(t, ps.Create(ctx, p, 0), store.ErrAlreadyExists)
	got, err := ps.Get(ctx, p.ARN)
	must(t, err)
	if d := cmp.Diff(p, got); d != "" {
		t.Fatalf("Get (-want +got):\n%s", d)
	}
	must(t, ps.Update(ctx, p.ARN, func(p *store.Provider) error {
		p.ClientIDs = append(p.ClientIDs, "sts.amazonaws.com")
		return nil
	}))
	got, _ = ps.Get(ctx, p.ARN)
	if d := cmp.Diff([]string{"abc", "sts.amazonaws.com"}, got.ClientIDs); d != "" {
		t.Fatalf("after update: %s", d)
	}
	wantErr(t, ps.Update(ctx, "arn:nope", func(*store.Provider) error { return nil }), store.ErrNotFound)
	p2 := &store.Provider{ARN: "arn:aws:iam::111122223333:oidc-provider/a.example", URL: "https://a.example", CreateDate: t0}
	must(t, ps.Create(ctx, p2, 0))
	list, err := ps.List(ctx)
	must(t, err)
	if len(list) != 2 || list[0].ARN != p2.ARN {
		t.Fatalf("List order: %v", list)
	}
	must(t, ps.Delete(ctx, p.ARN))
	wantErr(t, ps.Delete(ctx, p.ARN), store.ErrNotFound)
	_, err = ps.Get(ctx, p.ARN)
	wantErr(t, err, store.ErrNotFound)
}

func testProviderLimit(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range 3 {
		must(t, s.Providers().Create(ctx, &store.Provider{ARN: fmt.Sprintf("arn:p%d", i), CreateDate: t0}, 3))
	}
	wantErr(t, s.Providers().Create(ctx, &store.Provider{ARN: "arn:p9", CreateDate: t0}, 3), store.ErrLimitExceeded)
	if _, err := s.Providers().Get(ctx, "arn:p9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("over-limit provider was stored")
	}
}

func role(name, path string) *store.Role {
	return &store.Role{
		RoleID: "AROA" + fmt.Sprintf("%017d", len(name)*1000+len(path)) + name, Name: name, Path: path,
		ARN:         "arn:aws:iam::111122223333:role" + path + name,
		TrustPolicy: `{"Version":"2012-10-17","Statement":[]}`, MaxSessionDuration: 3600, CreateDate: t0,
	}
}

func testRoles(t *testing.T, s store.Store) {
	ctx := context.Background()
	rs := s.Roles()
	r := role("ci-deploy", "/ci/")
	r.Tags = []store.Tag{{Key: "a", Value: "1"}}
	r.Description = "deploys"
	must(t, rs.Create(ctx, r, 0))
	wantErr(t, rs.Create(ctx, role("ci-deploy", "/"), 0), store.ErrAlreadyExists)
	got, err := rs.Get(ctx, "ci-deploy")
	must(t, err)
	if d := cmp.Diff(r, got); d != "" {
		t.Fatalf("Get (-want +got):\n%s", d)
	}
	byID, err := rs.GetByID(ctx, r.RoleID)
	must(t, err)
	if byID.Name != r.Name {
		t.Fatalf("GetByID = %v", byID)
	}
	must(t, rs.Update(ctx, "ci-deploy", func(r *store.Role) error {
		r.MaxSessionDuration = 7200
		r.Name = "renamed" // immutable: must be ignored
		r.RoleID = "AROAX"
		return nil
	}))
	got, _ = rs.Get(ctx, "ci-deploy")
	if got.MaxSessionDuration != 7200 || got.Name != "ci-deploy" || got.RoleID != r.RoleID {
		t.Fatalf("after update: %+v", got)
	}
	wantErr(t, rs.Update(ctx, "nope", func(*store.Role) error { return nil }), store.ErrNotFound)
	must(t, rs.Delete(ctx, "CI-DEPLOY"))
	wantErr(t, rs.Delete(ctx, "ci-deploy"), store.ErrNotFound)
	_, err = rs.GetByID(ctx, r.RoleID)
	wantErr(t, err, store.ErrNotFound)
}

func testRoleCase(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.Roles().Create(ctx, role("Deploy", "/"), 0))
	wantErr(t, s.Roles().Create(ctx, role("deploy", "/"), 0), store.ErrAlreadyExists)
	got, err := s.Roles().Get(ctx, "DEPLOY")
	must(t, err)
	if got.Name != "Deploy" {
		t.Fatalf("name case not preserved: %q", got.Name)
	}
}

func testRoleListPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	names := []string{"e", "a", "d", "c", "b", "f", "g"}
	for i, n := range names {
		path := "/"
		if i%2 == 0 {
			path = "/ci/"
		}
		must(t, s.Roles().Create(ctx, role(n, path), 0))
	}
	var all []string
	marker := ""
	pages := 0
	for {
		rs, next, err := s.Roles().List(ctx, store.ListOptions{Marker: marker, MaxItems: 3})
		must(t, err)
		pages++
		for _, r := range rs {
			all = append(all, r.Name)
		}
		if next == "" {
			break
		}
		marker = next
	}
	if d := cmp.Diff([]string{"a", "b", "c", "d", "e", "f", "g"}, all); d != "" || pages != 3 {
		t.Fatalf("paging: pages=%d %s", pages, d)
	}
	rs, _, err := s.Roles().List(ctx, store.ListOptions{PathPrefix: "/ci/"})
	must(t, err)
	var ci []string
	for _, r := range rs {
		ci = append(ci, r.Name)
	}
	if d := cmp.Diff([]string{"b", "d", "e", "g"}, ci); d != "" {
		t.Fatalf("path prefix: %s", d)
	}
	// A prefix with LIKE wildcards must be matched literally.
	rs, _, err = s.Roles().List(ctx, store.ListOptions{PathPrefix: "/c%"})
	must(t, err)
	if len(rs) != 0 {
		t.Fatalf("wildcard prefix matched %d roles", len(rs))
	}
	_, _, err = s.Roles().List(ctx, store.ListOptions{Marker: "!!not-a-marker!!"})
	wantErr(t, err, store.ErrBadMarker)
}

func testInlinePolicies(t *testing.T, s store.Store) {
	ctx := context.Background()
	rs := s.Roles()
	wantErr(t, rs.PutInlinePolicy(ctx, "nope", store.InlinePolicy{Name: "p", Document: "{}"}, nil), store.ErrNotFound)
	must(t, rs.Create(ctx, role("r", "/"), 0))
	must(t, rs.PutInlinePolicy(ctx, "r", store.InlinePolicy{Name: "b", Document: "{1}"}, nil))
	must(t, rs.PutInlinePolicy(ctx, "R", store.InlinePolicy{Name: "a", Document: "{2}"}, nil))
	must(t, rs.PutInlinePolicy(ctx, "r", store.InlinePolicy{Name: "b", Document: "{3}"}, nil))
	list, err := rs.ListInlinePolicies(ctx, "r")
	must(t, err)
	if d := cmp.Diff([]store.InlinePolicy{{Name: "a", Document: "{2}"}, {Name: "b", Document: "{3}"}}, list); d != "" {
		t.Fatalf("list: %s", d)
	}
	veto := errors.New("too big")
	var seen []store.InlinePolicy
	err = rs.PutInlinePolicy(ctx, "r", store.InlinePolicy{Name: "c", Document: "{4}"}, func(all []store.InlinePolicy) error {
		seen = all
		return veto
	})
	wantErr(t, err, veto)
	if len(seen) != 3 {
		t.Fatalf("check saw %d policies, want 3", len(seen))
	}
	_, err = rs.GetInlinePolicy(ctx, "r", "c")
	wantErr(t, err, store.ErrNotFound)
	p, err := rs.GetInlinePolicy(ctx, "r", "a")
	must(t, err)
	if p.Document != "{2}" {
		t.Fatal(p.Document)
	}
	wantErr(t, rs.Delete(ctx, "r"), store.ErrConflict)
	must(t, rs.DeleteInlinePolicy(ctx, "r", "a"))
	must(t, rs.DeleteInlinePolicy(ctx, "r", "b"))
	wantErr(t, rs.DeleteInlinePolicy(ctx, "r", "b"), store.ErrNotFound)
	must(t, rs.Delete(ctx, "r"))
	_, err = rs.ListInlinePolicies(ctx, "r")
	wantErr(t, err, store.ErrNotFound)
}

func managed(name string) *store.ManagedPolicy {
	return &store.ManagedPolicy{
		ARN: "arn:aws:iam::111122223333:policy/" + name, PolicyID: "ANPA" + name, Name: name, Path: "/",
		DefaultVersionID: "v1", Versions: []store.PolicyVersion{{VersionID: "v1", Document: "{}", IsDefault: true, CreateDate: t0}},
		CreateDate: t0, UpdateDate: t0,
	}
}

func testAttachments(t *testing.T, s store.Store) {
	ctx := context.Background()
	rs, ps := s.Roles(), s.Policies()
	must(t, rs.Create(ctx, role("r", "/"), 0))
	wantErr(t, rs.AttachPolicy(ctx, "r", "arn:aws:iam::111122223333:policy/none", 0), store.ErrNotFound)
	for _, n := range []string{"p1", "p2", "p3"} {
		must(t, ps.Create(ctx, managed(n), 0))
	}
	must(t, rs.AttachPolicy(ctx, "r", managed("p2").ARN, 2))
	must(t, rs.AttachPolicy(ctx, "r", managed("p2").ARN, 2)) // idempotent
	must(t, rs.AttachPolicy(ctx, "r", managed("p1").ARN, 2))
	wantErr(t, rs.AttachPolicy(ctx, "r", managed("p3").ARN, 2), store.ErrLimitExceeded)
	list, err := rs.ListAttachedPolicies(ctx, "r")
	must(t, err)
	if d := cmp.Diff([]string{managed("p1").ARN, managed("p2").ARN}, list); d != "" {
		t.Fatal(d)
	}
	p2, _ := ps.Get(ctx, managed("p2").ARN)
	if p2.AttachmentCount != 1 {
		t.Fatalf("attachment count = %d", p2.AttachmentCount)
	}
	wantErr(t, ps.Delete(ctx, managed("p2").ARN), store.ErrConflict)
	wantErr(t, rs.Delete(ctx, "r"), store.ErrConflict)
	must(t, rs.DetachPolicy(ctx, "r", managed("p2").ARN))
	wantErr(t, rs.DetachPolicy(ctx, "r", managed("p2").ARN), store.ErrNotFound)
	p2, _ = ps.Get(ctx, managed("p2").ARN)
	if p2.AttachmentCount != 0 {
		t.Fatalf("attachment count after detach = %d", p2.AttachmentCount)
	}
	must(t, ps.Delete(ctx, managed("p2").ARN))
	must(t, rs.DetachPolicy(ctx, "r", managed("p1").ARN))
	must(t, rs.Delete(ctx, "r"))
}

func testManagedPolicies(t *testing.T, s store.Store) {
	ctx := context.Background()
	ps := s.Policies()
	p := managed("Deploy")
	must(t, ps.Create(ctx, p, 0))
	dup := managed("deploy") // same name, other case: IAM names are case-insensitive
	dup.ARN = "arn:aws:iam::111122223333:policy/x/deploy"
	wantErr(t, ps.Create(ctx, dup, 0), store.ErrAlreadyExists)
	got, err := ps.Get(ctx, p.ARN)
	must(t, err)
	if d := cmp.Diff(p, got); d != "" {
		t.Fatal(d)
	}
	must(t, ps.Update(ctx, p.ARN, func(m *store.ManagedPolicy) error {
		m.Versions = append(m.Versions, store.PolicyVersion{VersionID: "v2", Document: `{"v":2}`, CreateDate: t0.Add(time.Hour)})
		m.AttachmentCount = 99 // maintained by the store: ignored
		return nil
	}))
	got, _ = ps.Get(ctx, p.ARN)
	if len(got.Versions) != 2 || got.AttachmentCount != 0 {
		t.Fatalf("after update: %+v", got)
	}
	for _, n := range []string{"a", "b", "c"} {
		must(t, ps.Create(ctx, managed(n), 0))
	}
	page, next, err := ps.List(ctx, store.ListOptions{MaxItems: 2})
	must(t, err)
	if len(page) != 2 || next == "" || page[0].Name != "a" {
		t.Fatalf("page 1: %d %q", len(page), next)
	}
	page, next, err = ps.List(ctx, store.ListOptions{MaxItems: 2, Marker: next})
	must(t, err)
	if len(page) != 2 || next != "" || page[1].Name != "Deploy" {
		t.Fatalf("page 2: %d %q", len(page), next)
	}
	wantErr(t, ps.Create(ctx, managed("z"), 4), store.ErrLimitExceeded)
	must(t, ps.Delete(ctx, p.ARN))
	wantErr(t, ps.Delete(ctx, p.ARN), store.ErrNotFound)
}

func testAccessKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	ks := s.AccessKeys()
	k := &store.AccessKey{AccessKeyID: "AKIAEXAMPLE000000001", SealedSecret: []byte{1, 2, 3}, Kind: "admin", Description: "ops", CreateDate: t0}
	must(t, ks.Create(ctx, k))
	wantErr(t, ks.Create(ctx, k), store.ErrAlreadyExists)
	got, err := ks.Get(ctx, k.AccessKeyID)
	must(t, err)
	if d := cmp.Diff(k, got); d != "" {
		t.Fatal(d)
	}
	must(t, ks.Touch(ctx, k.AccessKeyID, t0.Add(2*time.Minute)))
	must(t, ks.Touch(ctx, k.AccessKeyID, t0.Add(2*time.Minute+time.Second))) // within a minute: skipped
	got, _ = ks.Get(ctx, k.AccessKeyID)
	if !got.LastUsedDate.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("LastUsedDate = %v", got.LastUsedDate)
	}
	list, err := ks.List(ctx)
	must(t, err)
	if len(list) != 1 {
		t.Fatal(len(list))
	}
	must(t, ks.Delete(ctx, k.AccessKeyID))
	wantErr(t, ks.Delete(ctx, k.AccessKeyID), store.ErrNotFound)
	wantErr(t, ks.Touch(ctx, k.AccessKeyID, t0), store.ErrNotFound)
}

func testKeyMaterial(t *testing.T, s store.Store) {
	ctx := context.Background()
	km := s.KeyMaterial()
	k1 := &store.KeyMaterial{Purpose: "issuer:a", ID: "k1", Algorithm: "RS256", Sealed: []byte("sealed"), Public: []byte("pub"), CreateDate: t0, ActivateAt: t0}
	must(t, km.Create(ctx, k1))
	wantErr(t, km.Create(ctx, k1), store.ErrAlreadyExists)
	list, err := km.List(ctx, "issuer:a")
	must(t, err)
	if d := cmp.Diff([]*store.KeyMaterial{k1}, list); d != "" {
		t.Fatal(d)
	}
	if l, _ := km.List(ctx, "issuer:b"); len(l) != 0 {
		t.Fatal("purposes leak")
	}
	got, err := km.Get(ctx, "issuer:a", "k1")
	must(t, err)
	if d := cmp.Diff(k1, got); d != "" {
		t.Fatal(d)
	}
	_, err = km.Get(ctx, "issuer:b", "k1")
	wantErr(t, err, store.ErrNotFound)
	_, err = km.Get(ctx, "issuer:a", "nope")
	wantErr(t, err, store.ErrNotFound)
	must(t, km.Update(ctx, "issuer:a", "k1", func(k *store.KeyMaterial) error { k.RetireAt = t0.Add(time.Hour); return nil }))
	err = km.Rotate(ctx, "issuer:a", func(existing []*store.KeyMaterial) ([]*store.KeyMaterial, []*store.KeyMaterial, error) {
		if len(existing) != 1 || !existing[0].RetireAt.Equal(t0.Add(time.Hour)) {
			return nil, nil, fmt.Errorf("rotate saw %v", existing)
		}
		existing[0].ExpireAt = t0.Add(2 * time.Hour)
		return []*store.KeyMaterial{{ID: "k2", Algorithm: "RS256", CreateDate: t0}}, existing, nil
	})
	must(t, err)
	list, _ = km.List(ctx, "issuer:a")
	if len(list) != 2 || !list[0].ExpireAt.Equal(t0.Add(2*time.Hour)) || list[1].Purpose != "issuer:a" {
		t.Fatalf("after rotate: %+v", list)
	}
	// A failed rotation writes nothing.
	boom := errors.New("boom")
	wantErr(t, km.Rotate(ctx, "issuer:a", func([]*store.KeyMaterial) ([]*store.KeyMaterial, []*store.KeyMaterial, error) {
		return []*store.KeyMaterial{{ID: "k3"}}, nil, boom
	}), boom)
	if l, _ := km.List(ctx, "issuer:a"); len(l) != 2 {
		t.Fatal("failed rotation wrote")
	}
	must(t, km.Delete(ctx, "issuer:a", "k1"))
	wantErr(t, km.Delete(ctx, "issuer:a", "k1"), store.ErrNotFound)
}

// testConcurrentUpdates checks that Update is an atomic read-modify-write:
// concurrent appends are all kept.
func testConcurrentUpdates(t *testing.T, s store.Store) {
	ctx := context.Background()
	arn := "arn:aws:iam::111122223333:oidc-provider/c.example"
	must(t, s.Providers().Create(ctx, &store.Provider{ARN: arn, CreateDate: t0}, 0))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.Providers().Update(ctx, arn, func(p *store.Provider) error {
				p.ClientIDs = append(p.ClientIDs, fmt.Sprint(i))
				return nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	p, err := s.Providers().Get(ctx, arn)
	must(t, err)
	if len(p.ClientIDs) != n {
		t.Fatalf("lost updates: %d of %d", len(p.ClientIDs), n)
	}
}

func testUpdateAbort(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.Roles().Create(ctx, role("r", "/"), 0))
	boom := errors.New("boom")
	wantErr(t, s.Roles().Update(ctx, "r", func(r *store.Role) error {
		r.Description = "changed"
		return boom
	}), boom)
	r, _ := s.Roles().Get(ctx, "r")
	if r.Description != "" {
		t.Fatal("aborted update was written")
	}
}

// testCommitHook: every write method calls the context's commit hook once
// before committing, and a failing hook leaves nothing written.
func testCommitHook(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.Roles().Create(ctx, role("base", "/"), 0))
	must(t, s.Roles().Create(ctx, role("lonely", "/"), 0))
	must(t, s.Policies().Create(ctx, managed("base-pol"), 0))
	must(t, s.Providers().Create(ctx, &store.Provider{ARN: "arn:aws:iam::111122223333:oidc-provider/base", URL: "https://base"}, 0))
	must(t, s.Roles().PutInlinePolicy(ctx, "base", store.InlinePolicy{Name: "p", Document: "{}"}, nil))
	writes := []struct {
		name string
		fn   func(ctx context.Context) error
		// gone reports whether the write took effect.
		took func() bool
	}{
		{"Meta.Put", func(ctx context.Context) error { return s.Meta().Put(ctx, "hk", "v") },
			func() bool { _, err := s.Meta().Get(ctx, "hk"); return err == nil }},
		{"Roles.Create", func(ctx context.Context) error { return s.Roles().Create(ctx, role("hooked", "/"), 0) },
			func() bool { _, err := s.Roles().Get(ctx, "hooked"); return err == nil }},
		{"Roles.Update", func(ctx context.Context) error {
			return s.Roles().Update(ctx, "base", func(r *store.Role) error { r.Description = "changed"; return nil })
		}, func() bool { r, _ := s.Roles().Get(ctx, "base"); return r != nil && r.Description == "changed" }},
		{"Roles.PutInlinePolicy", func(ctx context.Context) error {
			return s.Roles().PutInlinePolicy(ctx, "base", store.InlinePolicy{Name: "q", Document: "{}"}, nil)
		}, func() bool { _, err := s.Roles().GetInlinePolicy(ctx, "base", "q"); return err == nil }},
		{"Roles.DeleteInlinePolicy", func(ctx context.Context) error { return s.Roles().DeleteInlinePolicy(ctx, "base", "p") },
			func() bool { _, err := s.Roles().GetInlinePolicy(ctx, "base", "p"); return err != nil }},
		{"Roles.AttachPolicy", func(ctx context.Context) error {
			return s.Roles().AttachPolicy(ctx, "base", managed("base-pol").ARN, 0)
		},
			func() bool { l, _ := s.Roles().ListAttachedPolicies(ctx, "base"); return len(l) == 1 }},
		{"Policies.Create", func(ctx context.Context) error { return s.Policies().Create(ctx, managed("hooked-pol"), 0) },
			func() bool { _, err := s.Policies().Get(ctx, managed("hooked-pol").ARN); return err == nil }},
		{"Providers.Delete", func(ctx context.Context) error {
			return s.Providers().Delete(ctx, "arn:aws:iam::111122223333:oidc-provider/base")
		}, func() bool {
			_, err := s.Providers().Get(ctx, "arn:aws:iam::111122223333:oidc-provider/base")
			return err != nil
		}},
		{"Roles.Delete", func(ctx context.Context) error {
			return s.Roles().Delete(ctx, "lonely")
		}, func() bool { _, err := s.Roles().Get(ctx, "lonely"); return err != nil }},
	}
	refuse := errors.New("cannot record")
	for _, w := range writes {
		calls := 0
		hctx := store.WithCommitHook(ctx, func(context.Context) error { calls++; return refuse })
		err := w.fn(hctx)
		if !errors.Is(err, refuse) {
			t.Errorf("%s with a failing hook: err = %v, want the hook's error", w.name, err)
		}
		if calls != 1 {
			t.Errorf("%s called the hook %d times, want 1", w.name, calls)
		}
		if w.took() {
			t.Errorf("%s took effect although its commit hook failed", w.name)
		}
	}
	for _, w := range writes {
		calls := 0
		hctx := store.WithCommitHook(ctx, func(context.Context) error { calls++; return nil })
		if err := w.fn(hctx); err != nil {
			t.Errorf("%s with a passing hook: %v", w.name, err)
		}
		if calls != 1 || !w.took() {
			t.Errorf("%s with a passing hook: calls %d, took effect %v", w.name, calls, w.took())
		}
	}
}
