// Package policy owns keyless's IAM policy language: the strict parser and
// validator (duplicate keys rejected at every level, AWS's element rules and
// MalformedPolicyDocument wording), the canonical printer, the evaluator that
// every other package uses (STS trust decisions, session permission checks,
// the IAM simulator, the linter and the console), its explanation trace, and
// the simulator core behind SimulateCustomPolicy/SimulatePrincipalPolicy.
//
// There is one evaluator. A parsed *Policy is already compiled: Parse does
// the work once and PolicySet.Evaluate runs allocation-free on the hot path,
// while PolicySet.Explain runs the same logic and records a Trace.
//
// Semantics follow the AWS IAM User Guide ("Policy evaluation logic",
// "IAM JSON policy elements: Condition operators", "Variables and tags",
// "Single-valued vs. multivalued context keys"). Where AWS does not document
// a behaviour, the choice is written next to the code and in the tests'
// conformance table.
//
// The package knows nothing about HTTP, storage or AWS wire formats; callers
// convert *Error into their own AWS error type.
package policy
