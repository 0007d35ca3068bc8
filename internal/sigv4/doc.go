// Package sigv4 owns server-side verification of AWS Signature Version 4
// (AWS4-HMAC-SHA256) for keyless's STS and IAM Query API: parsing the
// Authorization header or the presigned query string, checking the clock
// window and the credential scope, rebuilding the canonical request exactly as
// AWS defines it, and comparing the signature in constant time.
//
// Verification is two-phase so that the server can look up the secret key
// between the phases:
//
//	v := sigv4.Verifier{Now: time.Now}
//	sig, err := v.Parse(r)             // syntax, clock window, credential scope
//	if errors.Is(err, sigv4.ErrNoAuth) { /* unsigned request */ }
//	secret := lookup(sig.AccessKeyID, sig.SessionToken) // else InvalidClientTokenID
//	err = sig.RequireService("sts")    // the action's service
//	err = sig.Verify(r, body, secret)  // canonical request and signature
//
// Every error is an *awsquery.Error carrying AWS's code and, where AWS's text
// is known (observed STS/IAM answers and the AWS front end's messages), that
// text. The package knows nothing about routing, storage or which keys exist.
//
// Decisions where AWS is silent, or where clients disagree:
//
//   - The path is canonicalised from the wire bytes, encoded once more (all
//     services but S3), with dot segments and repeated slashes removed as the
//     spec and botocore do; aws-sdk-go-v2 does not normalise, so the path as
//     sent is accepted too when the two forms differ.
//   - Query components are percent-decoded ('+' is a space, a '%' without two
//     hex digits is a literal) and re-encoded; empty segments are skipped.
//     The decoder and the classification of names are awsquery's
//     (UnescapeComponent, ClassifyName), the same ones the API parameters
//     are read with, so an authentication parameter whose name arrives
//     percent-encoded (X%2DAmz%2DSecurity%2DToken) authenticates here, as at
//     AWS, and is never an API parameter there. Presigned parameter names are
//     case-sensitive; a case variant (x-amz-security-token) is refused, and
//     given twice in any encoding, a parameter is refused too.
//   - Header values are trimmed and runs of spaces collapsed as aws-sdk-go-v2
//     does (botocore also folds tabs; STS/IAM clients send none).
//   - Every signed header must be present; host must be signed; an
//     X-Amz-Security-Token header must be signed. Other unsigned x-amz-*
//     headers are tolerated (proxies add some, e.g. X-Amz-Cf-Id).
//   - X-Amz-Content-Sha256, when sent, must equal the body's hash:
//     UNSIGNED-PAYLOAD and streaming payloads are refused.
//   - Presigned STS requests live MaxSkew after X-Amz-Date whatever
//     X-Amz-Expires says, as AWS STS does; other services honour
//     X-Amz-Expires (1..604800) capped at MaxSkew.
//   - A signature mismatch message carries the expected canonical request and
//     string to sign, as AWS's Query services do, with session tokens
//     replaced by REDACTED.
package sigv4
