// Package broker owns keyless's broker mode: keyless decides, AWS issues.
//
// A keyless role tagged keyless:upstream-role-arn is a front for an AWS
// role. When package sts has validated a CI token and the keyless role's
// trust policy allows the exchange, it hands the request to a [Broker],
// which:
//
//  1. resolves the upstream STS endpoint: the role's
//     keyless:upstream-sts-endpoint tag (only an AWS STS endpoint or one the
//     configuration allows), else the configured broker.sts_endpoint, else
//     the SDKs' standard endpoint settings in the server's environment
//     ([FromEnv]), else the server region's STS endpoint (FIPS when
//     AWS_USE_FIPS_ENDPOINT is true);
//  2. mints keyless's own ID token with the configured built-in issuer:
//     aud sts.amazonaws.com, sub keyless:<account>:role/<role name>, a
//     unique jti, a lifetime of at most five minutes, the CI token's
//     verified claims carried as ci_<name> (the registered and profile
//     claims of the CI token cannot collide with them), and the session
//     tags and source identity the CI token carried, in AWS's
//     https://aws.amazon.com/tags and source_identity claims;
//  3. records a durable MintBrokerToken event (eventSource broker.keyless)
//     before the token leaves keyless: the decision, the token's SHA-256
//     and jti, the upstream role and endpoint;
//  4. calls AssumeRoleWithWebIdentity at the upstream with the client's
//     RoleSessionName, DurationSeconds, Policy and PolicyArns, within a
//     bounded time, without following redirects, through the proxy the
//     standard HTTPS_PROXY/NO_PROXY variables name;
//  5. returns the upstream's answer unchanged, or maps its error to the
//     AWS error the client expects with keyless's explanation.
//
// The exchange event package sts records afterwards (durably, before the
// answer leaves) carries the upstream request id, the upstream
// AssumedRoleUser and access key id (the session token only hashed), and
// the same sharedEventID as the MintBrokerToken event.
package broker
