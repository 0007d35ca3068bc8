package iam

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/store"
	"github.com/keylessci/keyless/internal/store/sqlite"
)

// The property behind issue 11 item 1: for any IAM request, whatever extra
// parameters it carries, the resource its authorization is checked against
// is the resource its handler acts on. The oracle is independent of the
// table: a store wrapper records every role, policy and provider the
// handler reads or writes by key, and each must be the authorized resource
// or one the action's condition keys name (iam:PolicyARN,
// iam:PermissionsBoundary), which AWS authorizes through those keys.

// touchLog records the resources a handler touches by key.
type touchLog struct {
	mu      sync.Mutex
	account string
	inner   store.Store
	touched []string
	listed  bool
}

func (l *touchLog) add(arn string) {
	l.mu.Lock()
	l.touched = append(l.touched, arn)
	l.mu.Unlock()
}

// role resolves a role name to its ARN (with its path) as the handler would
// see it.
func (l *touchLog) role(ctx context.Context, name string) {
	if r, err := l.inner.Roles().Get(ctx, name); err == nil {
		l.add(r.ARN)
		return
	}
	l.add(RoleARN(l.account, "/", name))
}

type touchStore struct {
	store.Store
	log *touchLog
}

func (s touchStore) Roles() store.RoleStore      { return touchRoles{s.Store.Roles(), s.log} }
func (s touchStore) Policies() store.PolicyStore { return touchPolicies{s.Store.Policies(), s.log} }
func (s touchStore) Providers() store.ProviderStore {
	return touchProviders{s.Store.Providers(), s.log}
}

type touchRoles struct {
	store.RoleStore
	log *touchLog
}

func (r touchRoles) Create(ctx context.Context, v *store.Role, limit int) error {
	r.log.add(v.ARN)
	return r.RoleStore.Create(ctx, v, limit)
}
func (r touchRoles) Get(ctx context.Context, name string) (*store.Role, error) {
	r.log.role(ctx, name)
	return r.RoleStore.Get(ctx, name)
}
func (r touchRoles) List(ctx context.Context, o store.ListOptions) ([]*store.Role, string, error) {
	r.log.listed = true
	return r.RoleStore.List(ctx, o)
}
func (r touchRoles) Update(ctx context.Context, name string, fn func(*store.Role) error) error {
	r.log.role(ctx, name)
	return r.RoleStore.Update(ctx, name, fn)
}
func (r touchRoles) Delete(ctx context.Context, name string) error {
	r.log.role(ctx, name)
	return r.RoleStore.Delete(ctx, name)
}
func (r touchRoles) PutInlinePolicy(ctx context.Context, role string, p store.InlinePolicy, check func([]store.InlinePolicy) error) error {
	r.log.role(ctx, role)
	return r.RoleStore.PutInlinePolicy(ctx, role, p, check)
}
func (r touchRoles) GetInlinePolicy(ctx context.Context, role, name string) (*store.InlinePolicy, error) {
	r.log.role(ctx, role)
	return r.RoleStore.GetInlinePolicy(ctx, role, name)
}
func (r touchRoles) ListInlinePolicies(ctx context.Context, role string) ([]store.InlinePolicy, error) {
	r.log.role(ctx, role)
	return r.RoleStore.ListInlinePolicies(ctx, role)
}
func (r touchRoles) DeleteInlinePolicy(ctx context.Context, role, name string) error {
	r.log.role(ctx, role)
	return r.RoleStore.DeleteInlinePolicy(ctx, role, name)
}
func (r touchRoles) AttachPolicy(ctx context.Context, role, arn string, limit int) error {
	r.log.role(ctx, role)
	r.log.add(arn)
	return r.RoleStore.AttachPolicy(ctx, role, arn, limit)
}
func (r touchRoles) DetachPolicy(ctx context.Context, role, arn string) error {
	r.log.role(ctx, role)
	r.log.add(arn)
	return r.RoleStore.DetachPolicy(ctx, role, arn)
}
func (r touchRoles) ListAttachedPolicies(ctx context.Context, role string) ([]string, error) {
	r.log.role(ctx, role)
	return r.RoleStore.ListAttachedPolicies(ctx, role)
}

type touchPolicies struct {
	store.PolicyStore
	log *touchLog
}

func (p touchPolicies) Create(ctx context.Context, v *store.ManagedPolicy, limit int) error {
	p.log.add(v.ARN)
	return p.PolicyStore.Create(ctx, v, limit)
}
func (p touchPolicies) Get(ctx context.Context, arn string) (*store.ManagedPolicy, error) {
	p.log.add(arn)
	return p.PolicyStore.Get(ctx, arn)
}
func (p touchPolicies) List(ctx context.Context, o store.ListOptions) ([]*store.ManagedPolicy, string, error) {
	p.log.listed = true
	return p.PolicyStore.List(ctx, o)
}
func (p touchPolicies) Update(ctx context.Context, arn string, fn func(*store.ManagedPolicy) error) error {
	p.log.add(arn)
	return p.PolicyStore.Update(ctx, arn, fn)
}
func (p touchPolicies) Delete(ctx context.Context, arn string) error {
	p.log.add(arn)
	return p.PolicyStore.Delete(ctx, arn)
}

type touchProviders struct {
	store.ProviderStore
	log *touchLog
}

func (p touchProviders) Create(ctx context.Context, v *store.Provider, limit int) error {
	p.log.add(v.ARN)
	return p.ProviderStore.Create(ctx, v, limit)
}
func (p touchProviders) Get(ctx context.Context, arn string) (*store.Provider, error) {
	p.log.add(arn)
	return p.ProviderStore.Get(ctx, arn)
}
func (p touchProviders) List(ctx context.Context) ([]*store.Provider, error) {
	p.log.listed = true
	return p.ProviderStore.List(ctx)
}
func (p touchProviders) Update(ctx context.Context, arn string, fn func(*store.Provider) error) error {
	p.log.add(arn)
	return p.ProviderStore.Update(ctx, arn, fn)
}
func (p touchProviders) Delete(ctx context.Context, arn string) error {
	p.log.add(arn)
	return p.ProviderStore.Delete(ctx, arn)
}

// authzWorld is a service over a recording store, seeded with roles at
// several paths, policies and providers.
type authzWorld struct {
	svc     *Service
	log     *touchLog
	actions map[string]awsquery.Action
	names   []string
	params  []string // every parameter name any action defines
}

const acct = "123456789012"

var (
	worldRoles     = []string{"app", "App", "ci-app", "admin", "other", "missing"}
	worldRolePaths = map[string]string{"app": "/", "ci-app": "/ci/", "admin": "/admin/", "other": "/x/y/"}
	worldPolicies  = []string{PolicyARN(acct, "/", "pol"), PolicyARN(acct, "/ci/", "cipol"), PolicyARN(acct, "/", "missing")}
	worldProviders = []string{ProviderARN(acct, "https://a.example.com"), ProviderARN(acct, "https://b.example.com/x"), ProviderARN(acct, "https://missing.example.com")}
)

func newAuthzWorld(t testing.TB) *authzWorld {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := &touchLog{account: acct, inner: st}
	clock := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	svc := New(Options{Store: touchStore{st, log}, Account: acct, Now: func() time.Time { return clock }, Rand: seededReader{rand.NewChaCha8([32]byte{2})}})
	w := &authzWorld{svc: svc, log: log, actions: map[string]awsquery.Action{}}
	seen := map[string]bool{}
	for _, a := range svc.Actions() {
		w.actions[a.Name] = a
		w.names = append(w.names, a.Name)
		for f := range a.Input.Fields {
			if !seen[f] {
				seen[f] = true
				w.params = append(w.params, f)
			}
		}
	}
	sort.Strings(w.names)
	sort.Strings(w.params)
	for _, name := range worldRoles {
		path, ok := worldRolePaths[name]
		if !ok {
			continue
		}
		if _, err := w.run("CreateRole", url.Values{"RoleName": {name}, "Path": {path}, "AssumeRolePolicyDocument": {trust},
			"Tags.member.1.Key": {"team"}, "Tags.member.1.Value": {name}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range [][2]string{{"/", "pol"}, {"/ci/", "cipol"}} {
		if _, err := w.run("CreatePolicy", url.Values{"Path": {p[0]}, "PolicyName": {p[1]}, "PolicyDocument": {perm}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"https://a.example.com", "https://b.example.com/x"} {
		if _, err := w.run("CreateOpenIDConnectProvider", url.Values{"Url": {u}, "ClientIDList.member.1": {"sts.amazonaws.com"}, "ThumbprintList.member.1": {strings.Repeat("a", 40)}}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// run calls an action's handler (no authorization) and returns the error.
func (w *authzWorld) run(action string, params url.Values) (any, error) {
	r := &awsquery.Request{Action: action, Params: awsquery.ParamsFromValues(params)}
	return w.actions[action].Handle(context.Background(), r)
}

// value is a plausible value for a parameter, drawn from the world's
// resources so that steering parameters name real things.
func value(rnd *rand.Rand, param string) string {
	pick := func(xs []string) string { return xs[rnd.IntN(len(xs))] }
	switch param {
	case "RoleName":
		return pick(worldRoles)
	case "PolicyArn", "PermissionsBoundary":
		return pick(worldPolicies)
	case "OpenIDConnectProviderArn":
		return pick(worldProviders)
	case "PolicySourceArn", "CallerArn":
		r := pick(worldRoles)
		path := worldRolePaths[r]
		if path == "" {
			path = "/"
		}
		return RoleARN(acct, path, r)
	case "Path", "PathPrefix":
		return pick([]string{"/", "/ci/", "/admin/", "/x/y/"})
	case "Url":
		return pick([]string{"https://a.example.com", "https://c.example.com", "https://b.example.com/x"})
	case "AssumeRolePolicyDocument":
		return trust
	case "PolicyDocument":
		return pick([]string{perm, trust})
	case "PolicyName":
		return pick([]string{"pol", "cipol", "inline", "new" + strconv.Itoa(rnd.IntN(100))})
	case "VersionId":
		return pick([]string{"v1", "v2", "v3"})
	case "ThumbprintList", "ClientIDList", "TagKeys", "ActionNames", "ResourceArns", "PolicyInputList":
		return ""
	default:
		return pick([]string{"x", "team", "3600", "true", "s3:GetObject"})
	}
}

// request builds a random request for action: each defined parameter with
// some probability, lists with a member or two, plus sometimes a parameter
// from another action.
func (w *authzWorld) request(rnd *rand.Rand, action string) url.Values {
	shape := w.actions[action].Input
	v := url.Values{}
	fields := make([]string, 0, len(shape.Fields))
	for f := range shape.Fields {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		if rnd.IntN(10) < 3 {
			continue
		}
		fs := shape.Fields[f]
		switch {
		case fs.List != nil && fs.List.Fields != nil: // Tags
			v.Set(f+".member.1.Key", value(rnd, "TagKey"))
			v.Set(f+".member.1.Value", value(rnd, "TagValue"))
		case fs.List != nil:
			item := map[string]string{"ThumbprintList": strings.Repeat("b", 40), "ClientIDList": "aud", "TagKeys": "team",
				"ActionNames": "iam:GetRole", "ResourceArns": "*", "PolicyInputList": perm}[f]
			if item == "" {
				item = "x"
			}
			v.Set(f+".member.1", item)
		default:
			v.Set(f, value(rnd, f))
		}
	}
	for range rnd.IntN(3) {
		p := w.params[rnd.IntN(len(w.params))]
		if !v.Has(p) {
			v.Set(p, value(rnd, p))
		}
	}
	return v
}

// checkOne runs one request and checks the property; it returns whether
// the request reached the handler.
func (w *authzWorld) checkOne(t testing.TB, action string, params url.Values) bool {
	t.Helper()
	a := w.actions[action]
	p := awsquery.ParamsFromValues(params)
	if err := a.Input.CheckParams(action, p); err != nil {
		if _, ok := errors.AsType[*awsquery.Error](err); !ok {
			t.Fatalf("%s: CheckParams error %v is not an AWS error", action, err)
		}
		return false
	}
	ctx := context.Background()
	r := &awsquery.Request{Action: action, Params: p}
	tgt, err := a.Target(ctx, r)
	if err != nil {
		t.Fatalf("%s %v: target: %v", action, params, err)
	}
	if tgt.Action != "iam:"+action {
		t.Fatalf("%s: target action %s", action, tgt.Action)
	}
	// What the handler may touch: the authorized resource and the
	// resources the condition keys name.
	allowed := map[string]bool{tgt.Resource: true}
	for _, k := range []string{"iam:PolicyARN", "iam:PermissionsBoundary"} {
		for _, v := range tgt.Keys[k] {
			allowed[v] = true
		}
	}
	if action == "SimulatePrincipalPolicy" {
		// Simulating a role reads its attached policies and boundary:
		// what the role is, not what the caller names.
		name := tgt.Resource[strings.LastIndexByte(tgt.Resource, '/')+1:]
		if role, err := w.log.inner.Roles().Get(ctx, name); err == nil && role.ARN == tgt.Resource {
			attached, _ := w.log.inner.Roles().ListAttachedPolicies(ctx, role.Name)
			for _, arn := range attached {
				allowed[arn] = true
			}
			allowed[role.PermissionsBoundary] = true
		}
	}
	w.log.touched, w.log.listed = nil, false
	_, herr := a.Handle(ctx, r)
	if w.log.listed && tgt.Resource != "*" {
		t.Errorf("%s %v: handler listed a whole collection, but authorization checked %s", action, params, tgt.Resource)
	}
	for _, got := range w.log.touched {
		if !allowed[got] {
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range allowed {
					if !yield(k) {
						return
					}
				}
			})
			t.Errorf("%s %v (handler err %v): handler touched %s; authorization checked %s (and %v)", action, params, herr, got, tgt.Resource, keys)
		}
	}
	return true
}

// TestAuthzTargetIsActedOnResource runs the property over random requests
// for every action (a fixed seed: failures reproduce).
func TestAuthzTargetIsActedOnResource(t *testing.T) {
	w := newAuthzWorld(t)
	rnd := rand.New(rand.NewPCG(11, 12))
	reached := map[string]int{}
	for range 3000 {
		action := w.names[rnd.IntN(len(w.names))]
		if w.checkOne(t, action, w.request(rnd, action)) {
			reached[action]++
		}
		if t.Failed() {
			return
		}
	}
	for _, name := range w.names {
		if reached[name] == 0 {
			t.Errorf("no random request for %s reached its handler", name)
		}
	}
}

// FuzzAuthzTarget is the same property driven by the fuzzer: the input
// picks the action, the parameters and their values.
func FuzzAuthzTarget(f *testing.F) {
	for i := range 16 {
		f.Add(uint64(i), uint64(i*7+1))
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		w := newAuthzWorld(t)
		rnd := rand.New(rand.NewPCG(a, b))
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], a)
		action := w.names[int(buf[0])%len(w.names)]
		w.checkOne(t, action, w.request(rnd, action))
	})
}

// TestUndefinedParameterRefused: a parameter an action does not define is a
// ValidationError, for every action, wherever the name sits (top level,
// inside a list member, as a list of a scalar).
func TestUndefinedParameterRefused(t *testing.T) {
	w := newAuthzWorld(t)
	for _, name := range w.names {
		a := w.actions[name]
		for _, extra := range []string{"Bogus", "RoleName.member.1", "Tags.member.1.Extra", "Action.x"} {
			p := awsquery.ParamsFromValues(url.Values{extra: {"v"}})
			err := a.Input.CheckParams(name, p)
			if ae, ok := errors.AsType[*awsquery.Error](err); !ok || ae.Code != awsquery.CodeValidationError || ae.HTTPStatus() != 400 {
				t.Errorf("%s + %s: %v, want ValidationError 400", name, extra, err)
			}
		}
	}
	// Lists: members, empty lists and their structure.
	tag := w.actions["TagRole"].Input
	for name, ok := range map[string]bool{
		"Tags.member.1.Key": true, "Tags.member.50.Value": true, "Tags": false, "Tags.member.0.Key": false,
		"Tags.member.01.Key": false, "Tags.member.1": false, "Tags.member.x.Key": false, "Tags.1.Key": false,
		"Tags.member.1.Key.x": false, "RoleName": true, "RoleName.x": false,
	} {
		err := tag.CheckParams("TagRole", awsquery.ParamsFromValues(url.Values{name: {"v"}}))
		if (err == nil) != ok {
			t.Errorf("TagRole %s: err %v, want ok=%v", name, err, ok)
		}
	}
	if err := w.actions["CreateOpenIDConnectProvider"].Input.CheckParams("CreateOpenIDConnectProvider",
		awsquery.ParamsFromValues(url.Values{"ClientIDList": {""}})); err != nil {
		t.Errorf("an empty list (botocore's encoding) was refused: %v", err)
	}
}
