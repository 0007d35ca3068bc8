// Package contract holds keyless's contract tests: they build the real
// keyless binary, start `keyless serve` as a child process on loopback and
// drive it with the clients users have — the real AWS CLI, boto3 and
// aws-sdk-go-v2 — and run the same scenarios against moto_server as an
// independent implementation of the same wire protocol.
package contract
