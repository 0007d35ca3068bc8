// Package sqlstore implements store.Store over database/sql once, for every
// SQL backend. Backends (sqlite, postgres) supply a Dialect for what differs:
// how to spot a unique-key violation and how to lock a row read for update.
// All SQL uses $N placeholders, which both modernc.org/sqlite and pgx bind by
// number.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keylessci/keyless/internal/store"
)

// Dialect is what differs between SQL backends.
type Dialect struct {
	Name string
	// IsUniqueViolation reports whether err is a primary/unique key
	// violation.
	IsUniqueViolation func(error) bool
	// ForUpdate is appended to SELECTs that precede an UPDATE in the same
	// transaction (" FOR UPDATE" on PostgreSQL; "" on SQLite, whose write
	// transactions are already exclusive).
	ForUpdate string
}

// Store is a store.Store over database/sql.
type Store struct {
	w  *sql.DB // writes (and reads inside write transactions)
	r  *sql.DB // reads
	d  Dialect
	cl func() error

	// Prepared read statements, by query text: preparing costs more than
	// running the hot lookups (role and provider by key) themselves.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt

	roleCache     *readCache[store.Role]
	providerCache *readCache[store.Provider]
}

// reader runs read-only queries on the read pool through cached prepared
// statements.
type reader struct{ s *Store }

func (r reader) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	r.s.stmtMu.Lock()
	defer r.s.stmtMu.Unlock()
	if st, ok := r.s.stmts[q]; ok {
		return st, nil
	}
	st, err := r.s.r.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if r.s.stmts == nil {
		r.s.stmts = map[string]*sql.Stmt{}
	}
	r.s.stmts[q] = st
	return st, nil
}

func (r reader) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := r.stmt(ctx, q)
	if err != nil {
		return r.s.r.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (r reader) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := r.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (r reader) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return nil, errors.New("sqlstore: write through the read pool")
}

// New wraps open databases. w and r may be the same pool. closeFn releases
// both.
func New(w, r *sql.DB, d Dialect, closeFn func() error) *Store {
	return &Store{w: w, r: r, d: d, cl: closeFn,
		roleCache: newReadCache(cloneRole), providerCache: newReadCache(cloneProvider)}
}

func (s *Store) Meta() store.MetaStore               { return metaStore{s} }
func (s *Store) Providers() store.ProviderStore      { return providerStore{s} }
func (s *Store) Roles() store.RoleStore              { return roleStore{s} }
func (s *Store) Policies() store.PolicyStore         { return policyStore{s} }
func (s *Store) AccessKeys() store.AccessKeyStore    { return accessKeyStore{s} }
func (s *Store) KeyMaterial() store.KeyMaterialStore { return keyStore{s} }

// Ping checks that both pools answer a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close releases the databases.
func (s *Store) Close() error {
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	return s.cl()
}

// tx runs fn in a write transaction and commits when fn returns nil. A
// commit hook in ctx (store.WithCommitHook) runs before the commit; its
// failure rolls the transaction back. Every write goes through here.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(t); err != nil {
		_ = t.Rollback()
		return err
	}
	if hook := store.CommitHookFrom(ctx); hook != nil {
		if err := hook(ctx); err != nil {
			_ = t.Rollback()
			return fmt.Errorf("store: commit refused: %w", err)
		}
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// exec runs one write statement in its own transaction (through tx, so a
// commit hook sees it).
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.tx(ctx, func(t *sql.Tx) error {
		var err error
		res, err = t.ExecContext(ctx, q, args...)
		return err
	})
	return res, err
}

func (s *Store) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if s.d.IsUniqueViolation != nil && s.d.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %w", store.ErrAlreadyExists, err)
	}
	return err
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func getDoc[T any](ctx context.Context, q querier, query string, args ...any) (*T, error) {
	var doc string
	if err := q.QueryRowContext(ctx, query, args...).Scan(&doc); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, fmt.Errorf("store: read: %w", err)
	}
	v := new(T)
	if err := json.Unmarshal([]byte(doc), v); err != nil {
		return nil, fmt.Errorf("store: decode: %w", err)
	}
	return v, nil
}

func listDocs[T any](ctx context.Context, q querier, query string, args ...any) ([]*T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("store: list: %w", err)
		}
		v := new(T)
		if err := json.Unmarshal([]byte(doc), v); err != nil {
			return nil, fmt.Errorf("store: decode: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	return out, nil
}

func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("store: encode: %w", err)
	}
	return string(b), nil
}

func count(ctx context.Context, q querier, query string, args ...any) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count: %w", err)
	}
	return n, nil
}

// checkLimit fails with store.ErrLimitExceeded when limit is positive and
// the rows counted by query have reached it.
func checkLimit(ctx context.Context, q querier, limit int, query string, args ...any) error {
	if limit <= 0 {
		return nil
	}
	n, err := count(ctx, q, query, args...)
	if err != nil {
		return err
	}
	if n >= limit {
		return store.ErrLimitExceeded
	}
	return nil
}

func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Markers are opaque to clients: a version tag and the base64 of the last
// key returned. Anything else is refused rather than read as a key.
const markerPrefix = "m1."

func encodeMarker(key string) string {
	return markerPrefix + base64.RawURLEncoding.EncodeToString([]byte(key))
}

func decodeMarker(m string) (string, error) {
	if m == "" {
		return "", nil
	}
	body, ok := strings.CutPrefix(m, markerPrefix)
	if !ok {
		return "", store.ErrBadMarker
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(b) == 0 {
		return "", store.ErrBadMarker
	}
	return string(b), nil
}

func nameKey(name string) string { return strings.ToLower(name) }

// --- meta ---

type metaStore struct{ s *Store }

func (m metaStore) Get(ctx context.Context, key string) (string, error) {
	var v string
	err := m.s.r.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = $1", key).Scan(&v)
	if err != nil {
		return "", m.s.mapErr(err)
	}
	return v, nil
}

func (m metaStore) PutIfAbsent(ctx context.Context, key, value string) (string, error) {
	var out string
	err := m.s.tx(ctx, func(t *sql.Tx) error {
		if _, err := t.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT(key) DO NOTHING", key, value); err != nil {
			return fmt.Errorf("store: meta: %w", err)
		}
		return t.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = $1", key).Scan(&out)
	})
	return out, err
}

func (m metaStore) Put(ctx context.Context, key, value string) error {
	_, err := m.s.exec(ctx, "INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value)
	if err != nil {
		return fmt.Errorf("store: meta: %w", err)
	}
	return nil
}

// --- providers ---

type providerStore struct{ s *Store }

func (p providerStore) Create(ctx context.Context, v *store.Provider, limit int) error {
	defer p.s.providerCache.invalidate()
	doc, err := encode(v)
	if err != nil {
		return err
	}
	return p.s.tx(ctx, func(t *sql.Tx) error {
		if err := checkLimit(ctx, t, limit, "SELECT COUNT(*) FROM providers"); err != nil {
			return err
		}
		_, err := t.ExecContext(ctx, "INSERT INTO providers(arn, doc) VALUES($1, $2)", v.ARN, doc)
		return p.s.mapErr(err)
	})
}

func (p providerStore) Get(ctx context.Context, arn string) (*store.Provider, error) {
	if v, ok := p.s.providerCache.get(arn); ok {
		return v, nil
	}
	v, err := getDoc[store.Provider](ctx, reader(p), "SELECT doc FROM providers WHERE arn = $1", arn)
	if err == nil {
		p.s.providerCache.put(arn, v)
	}
	return v, err
}

func (p providerStore) List(ctx context.Context) ([]*store.Provider, error) {
	return listDocs[store.Provider](ctx, reader(p), "SELECT doc FROM providers ORDER BY arn")
}

func (p providerStore) Update(ctx context.Context, arn string, fn func(*store.Provider) error) error {
	defer p.s.providerCache.invalidate()
	return p.s.tx(ctx, func(t *sql.Tx) error {
		v, err := getDoc[store.Provider](ctx, t, "SELECT doc FROM providers WHERE arn = $1"+p.s.d.ForUpdate, arn)
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
		v.ARN = arn
		doc, err := encode(v)
		if err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, "UPDATE providers SET doc = $1 WHERE arn = $2", doc, arn)
		return err
	})
}

func (p providerStore) Delete(ctx context.Context, arn string) error {
	defer p.s.providerCache.invalidate()
	return mustAffect(p.s.exec(ctx, "DELETE FROM providers WHERE arn = $1", arn))
}

// --- roles ---

type roleStore struct{ s *Store }

func (r roleStore) Create(ctx context.Context, v *store.Role, limit int) error {
	defer r.s.roleCache.invalidate()
	doc, err := encode(v)
	if err != nil {
		return err
	}
	return r.s.tx(ctx, func(t *sql.Tx) error {
		if err := checkLimit(ctx, t, limit, "SELECT COUNT(*) FROM roles"); err != nil {
			return err
		}
		_, err := t.ExecContext(ctx, "INSERT INTO roles(name_key, role_id, path, doc) VALUES($1, $2, $3, $4)", nameKey(v.Name), v.RoleID, v.Path, doc)
		return r.s.mapErr(err)
	})
}

func (r roleStore) Get(ctx context.Context, name string) (*store.Role, error) {
	key := nameKey(name)
	if v, ok := r.s.roleCache.get(key); ok {
		return v, nil
	}
	v, err := getDoc[store.Role](ctx, reader(r), "SELECT doc FROM roles WHERE name_key = $1", key)
	if err == nil {
		r.s.roleCache.put(key, v)
	}
	return v, err
}

func (r roleStore) GetByID(ctx context.Context, id string) (*store.Role, error) {
	return getDoc[store.Role](ctx, reader(r), "SELECT doc FROM roles WHERE role_id = $1", id)
}

func (r roleStore) List(ctx context.Context, o store.ListOptions) ([]*store.Role, string, error) {
	after, err := decodeMarker(o.Marker)
	if err != nil {
		return nil, "", err
	}
	max := o.MaxItems
	if max <= 0 {
		max = 100
	}
	prefix := o.PathPrefix
	if prefix == "" {
		prefix = "/"
	}
	roles, err := listDocs[store.Role](ctx, reader(r),
		"SELECT doc FROM roles WHERE name_key > $1 AND substr(path, 1, $2) = $3 ORDER BY name_key LIMIT $4",
		after, len(prefix), prefix, max+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(roles) > max {
		roles = roles[:max]
		next = encodeMarker(nameKey(roles[max-1].Name))
	}
	return roles, next, nil
}

func (r roleStore) Update(ctx context.Context, name string, fn func(*store.Role) error) error {
	defer r.s.roleCache.invalidate()
	key := nameKey(name)
	return r.s.tx(ctx, func(t *sql.Tx) error {
		v, err := getDoc[store.Role](ctx, t, "SELECT doc FROM roles WHERE name_key = $1"+r.s.d.ForUpdate, key)
		if err != nil {
			return err
		}
		id, rname := v.RoleID, v.Name
		if err := fn(v); err != nil {
			return err
		}
		v.RoleID, v.Name = id, rname // identity is immutable
		doc, err := encode(v)
		if err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, "UPDATE roles SET doc = $1, path = $2 WHERE name_key = $3", doc, v.Path, key)
		return err
	})
}

func (r roleStore) Delete(ctx context.Context, name string) error {
	defer r.s.roleCache.invalidate()
	key := nameKey(name)
	return r.s.tx(ctx, func(t *sql.Tx) error {
		if _, err := getDoc[store.Role](ctx, t, "SELECT doc FROM roles WHERE name_key = $1"+r.s.d.ForUpdate, key); err != nil {
			return err
		}
		n, err := count(ctx, t, "SELECT (SELECT COUNT(*) FROM role_policies WHERE role_key = $1) + (SELECT COUNT(*) FROM role_attachments WHERE role_key = $1)", key)
		if err != nil {
			return err
		}
		if n > 0 {
			return store.ErrConflict
		}
		_, err = t.ExecContext(ctx, "DELETE FROM roles WHERE name_key = $1", key)
		return err
	})
}

func (r roleStore) roleExists(ctx context.Context, q querier, key string) error {
	n, err := count(ctx, q, "SELECT COUNT(*) FROM roles WHERE name_key = $1", key)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (r roleStore) PutInlinePolicy(ctx context.Context, role string, p store.InlinePolicy, check func([]store.InlinePolicy) error) error {
	key := nameKey(role)
	return r.s.tx(ctx, func(t *sql.Tx) error {
		if err := r.roleExists(ctx, t, key); err != nil {
			return err
		}
		if check != nil {
			all, err := inlinePolicies(ctx, t, key)
			if err != nil {
				return err
			}
			replaced := false
			for i := range all {
				if all[i].Name == p.Name {
					all[i] = p
					replaced = true
				}
			}
			if !replaced {
				all = append(all, p)
			}
			if err := check(all); err != nil {
				return err
			}
		}
		_, err := t.ExecContext(ctx, "INSERT INTO role_policies(role_key, name, document) VALUES($1, $2, $3) ON CONFLICT(role_key, name) DO UPDATE SET document = excluded.document", key, p.Name, p.Document)
		return err
	})
}

func inlinePolicies(ctx context.Context, q querier, key string) ([]store.InlinePolicy, error) {
	rows, err := q.QueryContext(ctx, "SELECT name, document FROM role_policies WHERE role_key = $1 ORDER BY name", key)
	if err != nil {
		return nil, fmt.Errorf("store: list inline: %w", err)
	}
	defer rows.Close()
	var out []store.InlinePolicy
	for rows.Next() {
		var p store.InlinePolicy
		if err := rows.Scan(&p.Name, &p.Document); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (r roleStore) GetInlinePolicy(ctx context.Context, role, name string) (*store.InlinePolicy, error) {
	p := store.InlinePolicy{Name: name}
	err := reader(r).QueryRowContext(ctx, "SELECT document FROM role_policies WHERE role_key = $1 AND name = $2", nameKey(role), name).Scan(&p.Document)
	if err != nil {
		return nil, r.s.mapErr(err)
	}
	return &p, nil
}

func (r roleStore) ListInlinePolicies(ctx context.Context, role string) ([]store.InlinePolicy, error) {
	key := nameKey(role)
	if err := r.roleExists(ctx, reader(r), key); err != nil {
		return nil, err
	}
	return inlinePolicies(ctx, reader(r), key)
}

func (r roleStore) DeleteInlinePolicy(ctx context.Context, role, name string) error {
	return mustAffect(r.s.exec(ctx, "DELETE FROM role_policies WHERE role_key = $1 AND name = $2", nameKey(role), name))
}

func (r roleStore) AttachPolicy(ctx context.Context, role, arn string, limit int) error {
	key := nameKey(role)
	return r.s.tx(ctx, func(t *sql.Tx) error {
		if err := r.roleExists(ctx, t, key); err != nil {
			return err
		}
		pol, err := getDoc[store.ManagedPolicy](ctx, t, "SELECT doc FROM policies WHERE arn = $1"+r.s.d.ForUpdate, arn)
		if err != nil {
			return err
		}
		already, err := count(ctx, t, "SELECT COUNT(*) FROM role_attachments WHERE role_key = $1 AND policy_arn = $2", key, arn)
		if err != nil || already > 0 {
			return err
		}
		if err := checkLimit(ctx, t, limit, "SELECT COUNT(*) FROM role_attachments WHERE role_key = $1", key); err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, "INSERT INTO role_attachments(role_key, policy_arn) VALUES($1, $2)", key, arn); err != nil {
			return err
		}
		return setAttachmentCount(ctx, t, pol, +1)
	})
}

func setAttachmentCount(ctx context.Context, t *sql.Tx, pol *store.ManagedPolicy, delta int) error {
	pol.AttachmentCount += delta
	doc, err := encode(pol)
	if err != nil {
		return err
	}
	_, err = t.ExecContext(ctx, "UPDATE policies SET doc = $1 WHERE arn = $2", doc, pol.ARN)
	return err
}

func (r roleStore) DetachPolicy(ctx context.Context, role, arn string) error {
	key := nameKey(role)
	return r.s.tx(ctx, func(t *sql.Tx) error {
		if err := mustAffect(t.ExecContext(ctx, "DELETE FROM role_attachments WHERE role_key = $1 AND policy_arn = $2", key, arn)); err != nil {
			return err
		}
		pol, err := getDoc[store.ManagedPolicy](ctx, t, "SELECT doc FROM policies WHERE arn = $1"+r.s.d.ForUpdate, arn)
		if err != nil {
			return err
		}
		return setAttachmentCount(ctx, t, pol, -1)
	})
}

func (r roleStore) ListAttachedPolicies(ctx context.Context, role string) ([]string, error) {
	key := nameKey(role)
	if err := r.roleExists(ctx, reader(r), key); err != nil {
		return nil, err
	}
	rows, err := reader(r).QueryContext(ctx, "SELECT policy_arn FROM role_attachments WHERE role_key = $1 ORDER BY policy_arn", key)
	if err != nil {
		return nil, fmt.Errorf("store: list attached: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// --- managed policies ---

type policyStore struct{ s *Store }

func (p policyStore) Create(ctx context.Context, v *store.ManagedPolicy, limit int) error {
	v.AttachmentCount = 0
	doc, err := encode(v)
	if err != nil {
		return err
	}
	return p.s.tx(ctx, func(t *sql.Tx) error {
		if err := checkLimit(ctx, t, limit, "SELECT COUNT(*) FROM policies"); err != nil {
			return err
		}
		_, err := t.ExecContext(ctx, "INSERT INTO policies(arn, name_key, path, doc) VALUES($1, $2, $3, $4)", v.ARN, nameKey(v.Name), v.Path, doc)
		return p.s.mapErr(err)
	})
}

func (p policyStore) Get(ctx context.Context, arn string) (*store.ManagedPolicy, error) {
	return getDoc[store.ManagedPolicy](ctx, reader(p), "SELECT doc FROM policies WHERE arn = $1", arn)
}

func (p policyStore) List(ctx context.Context, o store.ListOptions) ([]*store.ManagedPolicy, string, error) {
	after, err := decodeMarker(o.Marker)
	if err != nil {
		return nil, "", err
	}
	max := o.MaxItems
	if max <= 0 {
		max = 100
	}
	prefix := o.PathPrefix
	if prefix == "" {
		prefix = "/"
	}
	q := "SELECT doc FROM policies WHERE name_key > $1 AND substr(path, 1, $2) = $3"
	if o.OnlyAttached {
		q += " AND arn IN (SELECT policy_arn FROM role_attachments)"
	}
	pols, err := listDocs[store.ManagedPolicy](ctx, p.s.r, q+" ORDER BY name_key LIMIT $4", after, len(prefix), prefix, max+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(pols) > max {
		pols = pols[:max]
		next = encodeMarker(nameKey(pols[max-1].Name))
	}
	return pols, next, nil
}

func (p policyStore) Update(ctx context.Context, arn string, fn func(*store.ManagedPolicy) error) error {
	return p.s.tx(ctx, func(t *sql.Tx) error {
		v, err := getDoc[store.ManagedPolicy](ctx, t, "SELECT doc FROM policies WHERE arn = $1"+p.s.d.ForUpdate, arn)
		if err != nil {
			return err
		}
		keep := *v
		if err := fn(v); err != nil {
			return err
		}
		v.ARN, v.PolicyID, v.Name, v.Path, v.AttachmentCount = keep.ARN, keep.PolicyID, keep.Name, keep.Path, keep.AttachmentCount
		sort.SliceStable(v.Versions, func(i, j int) bool { return v.Versions[i].CreateDate.Before(v.Versions[j].CreateDate) })
		doc, err := encode(v)
		if err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, "UPDATE policies SET doc = $1 WHERE arn = $2", doc, arn)
		return err
	})
}

func (p policyStore) Delete(ctx context.Context, arn string) error {
	return p.s.tx(ctx, func(t *sql.Tx) error {
		n, err := count(ctx, t, "SELECT COUNT(*) FROM role_attachments WHERE policy_arn = $1", arn)
		if err != nil {
			return err
		}
		if n > 0 {
			return store.ErrConflict
		}
		return mustAffect(t.ExecContext(ctx, "DELETE FROM policies WHERE arn = $1", arn))
	})
}

// --- access keys ---

type accessKeyStore struct{ s *Store }

func (a accessKeyStore) Create(ctx context.Context, k *store.AccessKey) error {
	doc, err := encode(k)
	if err != nil {
		return err
	}
	_, err = a.s.exec(ctx, "INSERT INTO access_keys(id, doc) VALUES($1, $2)", k.AccessKeyID, doc)
	return a.s.mapErr(err)
}

func (a accessKeyStore) Get(ctx context.Context, id string) (*store.AccessKey, error) {
	return getDoc[store.AccessKey](ctx, reader(a), "SELECT doc FROM access_keys WHERE id = $1", id)
}

func (a accessKeyStore) List(ctx context.Context) ([]*store.AccessKey, error) {
	return listDocs[store.AccessKey](ctx, a.s.r, "SELECT doc FROM access_keys ORDER BY id")
}

func (a accessKeyStore) Delete(ctx context.Context, id string) error {
	return mustAffect(a.s.exec(ctx, "DELETE FROM access_keys WHERE id = $1", id))
}

func (a accessKeyStore) Touch(ctx context.Context, id string, at time.Time) error {
	return a.s.tx(ctx, func(t *sql.Tx) error {
		k, err := getDoc[store.AccessKey](ctx, t, "SELECT doc FROM access_keys WHERE id = $1"+a.s.d.ForUpdate, id)
		if err != nil {
			return err
		}
		if at.Sub(k.LastUsedDate) < time.Minute {
			return nil
		}
		k.LastUsedDate = at.UTC()
		doc, err := encode(k)
		if err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, "UPDATE access_keys SET doc = $1 WHERE id = $2", doc, id)
		return err
	})
}

// --- key material ---

type keyStore struct{ s *Store }

func (k keyStore) Create(ctx context.Context, m *store.KeyMaterial) error {
	doc, err := encode(m)
	if err != nil {
		return err
	}
	_, err = k.s.exec(ctx, "INSERT INTO key_material(purpose, id, doc) VALUES($1, $2, $3)", m.Purpose, m.ID, doc)
	return k.s.mapErr(err)
}

func (k keyStore) Get(ctx context.Context, purpose, id string) (*store.KeyMaterial, error) {
	return getDoc[store.KeyMaterial](ctx, reader(k), "SELECT doc FROM key_material WHERE purpose = $1 AND id = $2", purpose, id)
}

func (k keyStore) List(ctx context.Context, purpose string) ([]*store.KeyMaterial, error) {
	return listDocs[store.KeyMaterial](ctx, reader(k), "SELECT doc FROM key_material WHERE purpose = $1 ORDER BY id", purpose)
}

func (k keyStore) Update(ctx context.Context, purpose, id string, fn func(*store.KeyMaterial) error) error {
	return k.s.tx(ctx, func(t *sql.Tx) error {
		m, err := getDoc[store.KeyMaterial](ctx, t, "SELECT doc FROM key_material WHERE purpose = $1 AND id = $2"+k.s.d.ForUpdate, purpose, id)
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		m.Purpose, m.ID = purpose, id
		doc, err := encode(m)
		if err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, "UPDATE key_material SET doc = $1 WHERE purpose = $2 AND id = $3", doc, purpose, id)
		return err
	})
}

func (k keyStore) Delete(ctx context.Context, purpose, id string) error {
	return mustAffect(k.s.exec(ctx, "DELETE FROM key_material WHERE purpose = $1 AND id = $2", purpose, id))
}

func (k keyStore) Rotate(ctx context.Context, purpose string, fn func([]*store.KeyMaterial) ([]*store.KeyMaterial, []*store.KeyMaterial, error)) error {
	return k.s.tx(ctx, func(t *sql.Tx) error {
		// Lock the purpose: on PostgreSQL a row lock on every key; a
		// rotation with no key yet is serialised by the unique insert.
		existing, err := listDocs[store.KeyMaterial](ctx, t, "SELECT doc FROM key_material WHERE purpose = $1 ORDER BY id"+k.s.d.ForUpdate, purpose)
		if err != nil {
			return err
		}
		create, update, err := fn(existing)
		if err != nil {
			return err
		}
		for _, m := range create {
			m.Purpose = purpose
			doc, err := encode(m)
			if err != nil {
				return err
			}
			if _, err := t.ExecContext(ctx, "INSERT INTO key_material(purpose, id, doc) VALUES($1, $2, $3)", purpose, m.ID, doc); err != nil {
				return k.s.mapErr(err)
			}
		}
		for _, m := range update {
			m.Purpose = purpose
			doc, err := encode(m)
			if err != nil {
				return err
			}
			if err := mustAffect(t.ExecContext(ctx, "UPDATE key_material SET doc = $1 WHERE purpose = $2 AND id = $3", doc, purpose, m.ID)); err != nil {
				return err
			}
		}
		return nil
	})
}
