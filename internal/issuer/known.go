package issuer

import (
	"context"
	"fmt"

	"github.com/keylessci/keyless/internal/store"
)

// HasKeys reports whether keys holds signing keys of the issuer with this
// id: a server (or a `keyless issuer` command) has run that issuer on this
// store. Commands that name an issuer outside a server (an issuer-client
// key's scope) use it to refuse ids no server knows.
func HasKeys(ctx context.Context, keys store.KeyMaterialStore, id string) (bool, error) {
	ks, err := keys.List(ctx, purposeOf(id))
	if err != nil {
		return false, fmt.Errorf("issuer: list keys of %q: %w", id, err)
	}
	return len(ks) > 0, nil
}
