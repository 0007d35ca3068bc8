package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/store"
	"github.com/keylessci/keyless/internal/store/sqlite"
)

// ErrNoStore is matched (errors.Is) by a *NoStoreError.
var ErrNoStore = errors.New("no keyless store in the data dir")

// NoStoreError is a data dir that holds no keyless store (no keyless.db),
// with the data dirs nearby that do: a mistyped --data must not silently
// become a second, empty store with its own master key.
type NoStoreError struct {
	Dir string
	// Nearby are data dirs next to Dir (or inside it) that hold a store,
	// the closest name first.
	Nearby []string
	// CanInit says the command takes --init to create a new data dir.
	CanInit bool
}

func (e *NoStoreError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no keyless store in %s (it has no keyless.db): ", e.Dir)
	if len(e.Nearby) > 0 {
		b.WriteString("did you mean ")
		for i, d := range e.Nearby {
			if i > 0 {
				b.WriteString(" or ")
			}
			b.WriteString(d)
		}
		b.WriteString("?")
	} else {
		b.WriteString("did you mean another --data (the directory keyless serve uses)?")
	}
	if e.CanInit {
		b.WriteString(" pass --init to create a new data dir")
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNoStore) true.
func (e *NoStoreError) Is(target error) bool { return target == ErrNoStore }

// HasStore reports whether dir holds a keyless store.
func HasStore(dir string) (bool, error) {
	fi, err := os.Stat(DBPath(dir))
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("data dir: %w", err)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("data dir: %s is not a file", DBPath(dir))
	}
	return true, nil
}

// RequireStore returns a *NoStoreError (CanInit false) unless dir holds a
// keyless store: for commands that read a store and never create one.
func RequireStore(dir string) error {
	ok, err := HasStore(dir)
	if err != nil {
		return err
	}
	if !ok {
		return &NoStoreError{Dir: dir, Nearby: nearbyStores(dir)}
	}
	return nil
}

// maxScan bounds the directory entries looked at for suggestions.
const maxScan = 512

// nearbyStores lists up to three data dirs that hold a store: siblings of
// dir and its subdirectories, the closest name first.
func nearbyStores(dir string) []string {
	clean := filepath.Clean(dir)
	base := filepath.Base(clean)
	type cand struct {
		path string
		dist int
	}
	var cands []cand
	seen := map[string]bool{}
	scan := func(parent, ref string) {
		f, err := os.Open(parent)
		if err != nil {
			return
		}
		defer f.Close()
		entries, _ := f.ReadDir(maxScan)
		for _, e := range entries {
			p := filepath.Join(parent, e.Name())
			if !e.IsDir() || p == clean || seen[p] {
				continue
			}
			if ok, _ := HasStore(p); ok {
				seen[p] = true
				cands = append(cands, cand{path: p, dist: editDistance(ref, e.Name())})
			}
		}
	}
	parent := filepath.Dir(clean)
	if ok, _ := HasStore(parent); ok && parent != clean {
		// A path inside a data dir: the data dir itself.
		seen[parent] = true
		cands = append(cands, cand{path: parent, dist: -1})
	}
	scan(parent, base)
	// Inside the given directory, the default name comes first.
	scan(clean, filepath.Base(Defaults().Data))
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].dist != cands[j].dist {
			return cands[i].dist < cands[j].dist
		}
		return cands[i].path < cands[j].path
	})
	var out []string
	for i, c := range cands {
		if i == 3 {
			break
		}
		out = append(out, asWritten(dir, c.path))
	}
	return out
}

// asWritten keeps the "./" the user wrote, which filepath.Join drops.
func asWritten(orig, p string) string {
	if !filepath.IsAbs(p) && p != "." && strings.HasPrefix(orig, "."+string(filepath.Separator)) && !strings.HasPrefix(p, "..") {
		return "." + string(filepath.Separator) + p
	}
	return p
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Data is an opened data dir.
type Data struct {
	Store  store.Store
	Master *keyring.Master
	// Created is true when this call made a new store (a new data dir).
	Created bool
	// MasterKeySource says where the master key came from:
	// "KEYLESS_MASTER_KEY" or the key file's path.
	MasterKeySource string
}

// Meta keys of the data dir's identity.
const (
	metaMasterKeyID     = "master-key-id"
	metaMasterKeySource = "master-key-source"
	masterKeyEnv        = "KEYLESS_MASTER_KEY"
)

// openData is OpenData's work; see there.
func openData(ctx context.Context, cfg Config, getenv func(string) string, rnd io.Reader, initDir bool) (*Data, error) {
	exists, err := HasStore(cfg.Data)
	if err != nil {
		return nil, err
	}
	if !exists {
		if !initDir {
			return nil, &NoStoreError{Dir: cfg.Data, Nearby: nearbyStores(cfg.Data), CanInit: true}
		}
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	keyFile := cfg.MasterKeyFile
	if keyFile == "" {
		keyFile = MasterKeyPath(cfg.Data)
	}
	envKey := getenv(masterKeyEnv)
	st, err := sqlite.Open(ctx, DBPath(cfg.Data))
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Data, error) {
		st.Close()
		return nil, err
	}
	recorded, err := st.Meta().Get(ctx, metaMasterKeyID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fail(fmt.Errorf("store: %w", err))
	}
	// A master key file is only ever created with a new store, and never
	// when the key comes from the environment: a store sealed with
	// KEYLESS_MASTER_KEY must not acquire a second, different key file
	// that a later run would pick up.
	fresh := recorded == ""
	master, err := keyring.LoadMaster(envKey, keyFile, fresh && envKey == "", rnd)
	if errors.Is(err, fs.ErrNotExist) && !fresh {
		return fail(missingMasterKey(ctx, st, cfg.Data, keyFile))
	}
	if err != nil {
		return fail(err)
	}
	source := keyFile
	if envKey != "" {
		source = masterKeyEnv
	}
	// A data dir sealed with another master key is refused up front
	// rather than failing later on the first sealed record.
	id, err := st.Meta().PutIfAbsent(ctx, metaMasterKeyID, master.ID())
	if err != nil {
		return fail(fmt.Errorf("store: %w", err))
	}
	if id != master.ID() {
		return fail(fmt.Errorf("the master key (id %s, from %s) is not the one this data dir was created with (id %s): set KEYLESS_MASTER_KEY or master_key_file to the original key", master.ID(), source, id))
	}
	if _, err := st.Meta().PutIfAbsent(ctx, metaMasterKeySource, recordedSource(source)); err != nil {
		return fail(fmt.Errorf("store: %w", err))
	}
	return &Data{Store: st, Master: master, Created: fresh, MasterKeySource: source}, nil
}

// recordedSource is what the store keeps of where its master key came
// from: the variable's name, or the file's absolute path (never the key).
func recordedSource(source string) string {
	if source == masterKeyEnv {
		return source
	}
	if abs, err := filepath.Abs(source); err == nil {
		return "file:" + abs
	}
	return "file:" + source
}

// missingMasterKey explains a store whose master key is nowhere to be
// found, with what the store recorded of where it came from.
func missingMasterKey(ctx context.Context, st store.Store, dir, keyFile string) error {
	rec, _ := st.Meta().Get(ctx, metaMasterKeySource)
	switch {
	case rec == masterKeyEnv:
		return fmt.Errorf("%s was created with its master key in KEYLESS_MASTER_KEY, which is not set: set it to that key (keyless never writes that key to a file)", dir)
	case strings.HasPrefix(rec, "file:"):
		return fmt.Errorf("the master key file %s does not exist; %s was created with the key in %s: set master_key_file (or KEYLESS_MASTER_KEY_FILE) to it, or KEYLESS_MASTER_KEY to the key", keyFile, dir, strings.TrimPrefix(rec, "file:"))
	}
	return fmt.Errorf("the master key file %s does not exist and KEYLESS_MASTER_KEY is not set: give the key %s was created with (KEYLESS_MASTER_KEY, or master_key_file / KEYLESS_MASTER_KEY_FILE)", keyFile, dir)
}

// logCreatedDataDir says clearly that keyless serve started on a new,
// empty data dir (a mistyped --data shows here).
func logCreatedDataDir(log *slog.Logger, cfg Config, d *Data) {
	dir := cfg.Data
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	masterKey := d.MasterKeySource
	if masterKey != masterKeyEnv {
		masterKey = "written to " + masterKey
	}
	log.Warn("created a new data dir (a new, empty store): if this server should have existing roles and keys, stop it and check --data",
		"data", dir, "store", DBPath(dir), "master_key", masterKey)
}
