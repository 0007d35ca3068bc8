package keyring

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrMasterKeyConflict is returned when KEYLESS_MASTER_KEY and the master
// key file both hold a key and the keys differ: keyless will not guess which
// one sealed the data.
var ErrMasterKeyConflict = errors.New("keyring: KEYLESS_MASTER_KEY and the master key file hold different keys")

// LoadMaster returns the master key: envValue (KEYLESS_MASTER_KEY) when
// set, else the base64 key in path.
//
// When envValue is set and path names an existing file too, both must hold
// the same key; if they differ the result is an error wrapping
// ErrMasterKeyConflict rather than one silently winning. With envValue set
// no file is ever written.
//
// When envValue is empty, the file does not exist and create is true, a new
// key is generated and written to path with mode 0600 — convenient for the
// embedded default, but the key then sits next to the data it protects;
// production deployments pass it through the environment or a file on
// another volume. A missing file without create is an error wrapping
// fs.ErrNotExist.
func LoadMaster(envValue, path string, create bool, rand io.Reader) (*Master, error) {
	if envValue != "" {
		m, err := ParseMaster(envValue)
		if err != nil {
			return nil, fmt.Errorf("KEYLESS_MASTER_KEY: %w", err)
		}
		if path == "" {
			return m, nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("keyring: KEYLESS_MASTER_KEY is set and %s exists but cannot be read to check that they agree: %w", path, err)
		}
		fm, err := ParseMaster(string(b))
		if err != nil {
			return nil, fmt.Errorf("keyring: KEYLESS_MASTER_KEY is set and %s exists but holds no valid key (%w): remove one of them", path, err)
		}
		if fm.ID() != m.ID() {
			return nil, fmt.Errorf("%w: KEYLESS_MASTER_KEY is key %s, %s holds key %s; "+
				"unset KEYLESS_MASTER_KEY to use the file, or move the file away (or point master_key_file elsewhere) to use the variable",
				ErrMasterKeyConflict, m.ID(), path, fm.ID())
		}
		return m, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		text, err := GenerateMasterKey(rand)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return LoadMaster("", path, false, rand) // another process won the race
		}
		if err != nil {
			return nil, fmt.Errorf("keyring: create master key: %w", err)
		}
		if _, err := f.WriteString(text + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("keyring: write master key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("keyring: write master key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("keyring: write master key: %w", err)
		}
		return ParseMaster(text)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: read master key: %w", err)
	}
	m, err := ParseMaster(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
