// Package ciauth owns the CI side of keyless: it obtains a CI job's OIDC ID
// token (CircleCI, GitHub Actions, GitLab, Buildkite, a file, an environment
// variable or stdin), exchanges it for short-lived credentials with a plain
// STS AssumeRoleWithWebIdentity call (against a keyless server or real AWS),
// and hands the credentials to the tools that follow: a named profile in the
// AWS shared config files, shell exports, JSON, the credential_process
// protocol (with an on-disk cache that re-exchanges before expiry), and the
// CI vendors' own environment files ($GITHUB_ENV, $GITHUB_OUTPUT, $BASH_ENV).
//
// Everything that touches the outside world is injected through Runtime: the
// environment (Env), standard streams, the HTTP client, the clock, the random
// source and the sleep function. Secrets (the ID token, the secret access key
// and the session token) never appear in errors or log lines; they are only
// written where the chosen output asks for them.
package ciauth
