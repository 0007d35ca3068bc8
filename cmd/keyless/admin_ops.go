package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/keylessci/keyless/internal/issuer"
	"github.com/keylessci/keyless/internal/server"
	"github.com/keylessci/keyless/internal/store"
)

// bootstrapRow is the list-keys row of the bootstrap administrator of this
// environment (KEYLESS_ADMIN_ACCESS_KEY_ID), "" when none is set. It lives
// only in the environment of the server that reads it, never in the store,
// so the row says where it comes from; its secret is never shown.
func bootstrapRow(getenv func(string) string) string {
	id := strings.TrimSpace(getenv("KEYLESS_ADMIN_ACCESS_KEY_ID"))
	if id == "" {
		return ""
	}
	return id + "\troot\tadmin\t-\tbootstrap (environment)\t-"
}

// checkIssuerScope refuses an issuer-client scope naming an issuer that
// does not exist: a key for a mistyped id would be created, handed to a CI
// system, and refused on every mint. An issuer exists when the
// configuration keyless serve uses names it (--config, --issuer-url,
// KEYLESS_ISSUER_URL, given to this command too) or when the data dir holds
// its signing keys (a server has run it).
func checkIssuerScope(ctx context.Context, cfg server.Config, keys store.KeyMaterialStore, scope string) error {
	var ids []string
	for _, is := range cfg.Issuers {
		if is.ID == scope {
			return nil
		}
		ids = append(ids, is.ID)
	}
	known, err := issuer.HasKeys(ctx, keys, scope)
	if err != nil {
		return err
	}
	if known {
		return nil
	}
	configured := "no issuer is configured here"
	if len(ids) > 0 {
		configured = "the configuration given names " + strings.Join(quoteAll(ids), ", ")
	}
	return fmt.Errorf("--scope %q: no such issuer: %s, and the data dir holds no signing keys for it (a server has never run it). "+
		"Use the id of an issuer keyless serve runs (the first --issuer-url is %q), and give this command the same --config or --issuer-url as keyless serve, or start the server with that issuer first",
		scope, configured, issuer.DefaultID)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
