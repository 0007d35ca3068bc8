// Package policygen generates least-privilege IAM policies from audit
// events: keyless trails and real CloudTrail files, read with audit.Scan.
//
// It owns three things: the action map (eventSource + eventName to the IAM
// actions a call needs, a generated table plus hand-written overrides, with
// the IAM action list's resource types: actionmap*.go, gen/); the engine
// (Generate: per role, or per binding — the OIDC subject or any claim keyless
// recorded at the exchange — the actions each session used, on real
// resource ARNs, with exclusions, denied and unknown calls reported apart);
// and the renderings of its result (JSON policy documents, Terraform, diff).
//
// The engine reads each event once, in parallel, extracting the fields it
// needs in one pass and aggregating calls per (session, action, resource)
// in per-worker state, so memory grows with the distinct sessions, actions
// and resources, not with the events. Sessions are linked to the exchange
// that created them (AssumeRoleWithWebIdentity, and AssumeRole for role
// chaining) after the scan, since events arrive in any order.
package policygen
