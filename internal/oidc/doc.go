// Package oidc owns the verifying side of OpenID Connect for keyless's STS
// AssumeRoleWithWebIdentity: provider discovery, a hardened per-issuer JWKS
// cache, web identity token (JWT) validation with AWS's rules and the
// stricter rules V01–V20 of trust-pitfalls §7.1, and the mapping of validated
// claims to IAM condition-key values. It knows nothing about HTTP servers,
// storage or the AWS wire format: the sts package turns an *Error into an
// awsquery error, and the iam package supplies the registered providers.
//
// # Order of checks
//
// [Validator.Validate] checks a token in this order, so that the cheapest
// and least trusting checks run first and no claim or time error is ever
// reported for a token whose signature has not been verified (V20):
//
//  1. length, 4–20000 characters (ValidationError);
//  2. structure: exactly two dots, counted before splitting; non-empty
//     segments; no JWE, no JSON serialization (V06, V07);
//  3. strict decoding: canonical unpadded base64url, UTF-8 JSON objects,
//     duplicate and case-variant member names rejected, depth ≤ 32 (V08);
//  4. header: alg in RS256/384/512 and ES256/384/512 compared exactly; no
//     jku, x5u, jwk, x5c, crit, b64, cty or JWE parameters (V01, V03, V05);
//  5. exact iss lookup among registered providers; an unknown issuer is
//     never contacted (V12);
//  6. key resolution by exact kid from the provider's JWKS only (V03, V04,
//     V15–V17), through the cache;
//  7. signature: key type and curve must fit alg, ECDSA signatures are R‖S
//     of the exact length (V02);
//  8. time: exp required, iat required, exp after iat, nbf and iat not in
//     the future, age limit, lifetime limit exp − iat (default 24 h, per
//     provider overridable) (V09–V11, V18);
//  9. aud/azp against the client IDs, then sub (V13, V14);
//  10. optional single use of (iss, jti) (V19).
//
// The roles claim (https://aws.amazon.com/roles) needs the requested role,
// so the caller applies it with [Token.AuthorizeRole] before evaluating the
// trust policy.
//
// # Key cache
//
// Keys are cached per issuer URL (and per thumbprint set) for the JWKS
// response's Cache-Control max-age, clamped to [5 min, 24 h] and shortened
// by up to 10 % of jitter. An unknown kid triggers at most one refresh per
// issuer per UnknownKIDRefreshInterval (30 s), shared by all concurrent
// callers; kids a refresh confirmed absent are rejected for 5 minutes
// without fetching. Keys past their TTL keep verifying while a background
// refresh runs and while the issuer is down (up to MaxStale, 24 h). A
// refresh reads <issuer>/.well-known/openid-configuration (whose issuer must
// equal the provider URL exactly) and then jwks_uri, within FetchTimeout
// (5 s) in total, at most 64 KiB and 1 MiB, following redirects only on the
// same origin, dialling only addresses the destination policy allows
// (public; loopback with AllowLoopbackHTTP; private networks with
// AllowPrivateNetworks; never link-local or metadata addresses). TLS is
// verified with the trust store, falling back to the provider's thumbprints
// as AWS does; the method is reported in [Token.VerificationMethod].
//
// # Error codes
//
// Token problems are InvalidIdentityToken (400), with AWS's message where it
// is known ("Incorrect token audience", "No OpenIDConnect provider found in
// your account for …", "Missing a required claim: aud") and a fixed generic
// message otherwise, so that nothing reveals which check failed; the precise
// explanation is in [Error.Reason]. Expiry and age are
// ExpiredTokenException. When the provider cannot be reached and no usable
// keys are cached, the code is IDPCommunicationError, which SDKs retry;
// when the provider answered but its JWKS has no usable key for the token,
// it is InvalidIdentityToken "Couldn't retrieve verification key …", as AWS
// answers (see missingKeyErrorLocked).
package oidc
