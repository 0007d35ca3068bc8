// Package issuer owns keyless's built-in OIDC issuer: the issuing side of
// OIDC for CI systems that have no issuer of their own (Jenkins, Woodpecker,
// Drone, Buildbot, GoCD, self-hosted runners, air-gapped CI).
//
// It owns, for each configured issuer (one per CI organisation, the way
// CircleCI has one issuer per org):
//
//   - the discovery document and the JWKS, served under the issuer URL's
//     path ([Service.Mount]) or written as static files ([Service.Publish]);
//   - the signing keys: RS256 (2048-bit) or ES256 (P-256), stored only
//     sealed with the master key (store purpose "issuer:<id>"), and their
//     automatic rotation ([Service.Start], [Service.Rotate]);
//   - minting ID tokens shaped like CircleCI's, GitHub Actions', GitLab's or
//     free-form ("generic") ones ([Service.Mint]), and the authenticated
//     token endpoint CI systems call (POST /keyless/v1/issuers/<id>/token).
//
// # Rotation without a verification gap
//
// A verifier (AWS STS, keyless's own STS) caches the JWKS for up to its
// max-age. A token is verifiable only if every JWKS a verifier may hold when
// it sees the token contains the token's kid. Two rules make that hold:
//
//   - a new key is published at least PrePublish before it signs, where
//     PrePublish = JWKS max-age + the time a node may serve an old view of
//     the store + clock skew; so every cached JWKS fetched after the
//     activation minus max-age already lists it;
//   - a retired key stays published until RetireAt + MaxTokenLifetime + the
//     same leeway, so every token it signed has expired first.
//
// "Rotate now" ([Service.Rotate]) therefore means: start the rotation now.
// The next key is published immediately and signs from now + PrePublish (or
// earlier if it was already pre-published long enough); it never signs
// before verifiers can know it. A compromised key needs revocation, which is
// a different operation (see docs/issuer.md).
//
// Several nodes may share the store: every decision runs inside
// store.KeyMaterialStore.Rotate, so concurrent rotations see each other's
// keys and agree; nodes reload the keys every ReloadInterval and refuse to
// sign or serve the JWKS from a view older than twice that.
package issuer
