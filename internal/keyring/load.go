package keyring

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadMaster returns the master key: envValue (KEYLESS_MASTER_KEY) when
// set, else the base64 key in path. When the file does not exist and create
// is true, a new key is generated and written with mode 0600 — convenient
// for the embedded default, but the key then sits next to the data it
// protects; production deployments pass it through the environment or a
// file on another volume.
func LoadMaster(envValue, path string, create bool, rand io.Reader) (*Master, error) {
	if envValue != "" {
		m, err := ParseMaster(envValue)
		if err != nil {
			return nil, fmt.Errorf("KEYLESS_MASTER_KEY: %w", err)
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
