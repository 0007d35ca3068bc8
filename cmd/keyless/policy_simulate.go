package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/sts"
)

// errSimulateDenied is the exit-1 error of a denied simulation.
var errSimulateDenied = errors.New("the trust policy does not allow this token")

func newPolicySimulateCmd() *cobra.Command {
	var trustFile, claimsFile, providerARN, roleARN, sessionName, region, at, output string
	cmd := &cobra.Command{
		Use:   "simulate --trust-policy FILE --claims FILE",
		Short: "Decide offline whether a trust policy admits a token's claims, explained as the STS explains it",
		Long: `Decide, offline, what keyless's AssumeRoleWithWebIdentity would decide for a
token with these claims against a role with this trust policy, by the same
code path the STS takes once a token validated: the condition keys AWS exposes
for the issuer, the session tags and source identity the token carries, the
trust policy evaluated for every action the exchange needs. A refusal is
explained with exactly the JSON that 'aws sts decode-authorization-message'
returns for it (the reason sentence, the trace with expected and actual
values, the token's condition keys); only tokenSha256, the hash of the token
as sent, is the server's alone.

Inputs:
  --trust-policy FILE  a trust policy document, or a role as 'aws iam get-role'
                       prints it ({"Role":{"AssumeRolePolicyDocument":...}};
                       the document may be URL-encoded as IAM's API returns
                       it); the role's Arn and Tags are used too
  --claims FILE        a JSON object of claims (a JWT payload), or a JWT
                       (header.payload.signature) whose payload is decoded
                       WITHOUT verifying its signature
  FILE may be - for stdin (for one of the two).

The simulation decides the trust policy, not the token's validity: no
signature, audience registration, lifetime or replay check. An expired exp or
a future nbf (against --time) is reported as a note.

The provider is --provider-arn, or derived as the STS derives it from the
token's iss: arn:aws:iam::ACCOUNT:oidc-provider/ISS-WITHOUT-https://, ACCOUNT
being the role's (--role-arn, or the get-role Arn), else the account of the
policy's Federated principal, else 123456789012. The output says which.

Output: --output text (default) prints the decision, the reason, the provider
and the explanation; --output json prints
  {"decision":"allow"|"deny","reason":..,"provider":..,"providerSource":..,
   "role":..,"claimsFromUnverifiedJWT":bool,"notes":[..],"explanation":{..}}

Exit status: 0 allow, 1 deny, 2 bad input (an unreadable file, a policy that
does not parse — with the line and column the parser gives —, claims that are
not a JSON object or a JWT, or lack iss, aud or sub).

Example:
  keyless policy simulate --trust-policy trust.json --claims claims.json
  aws iam get-role --role-name deploy | keyless policy simulate --trust-policy - --claims job.jwt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageErrorf("--output must be text or json")
			}
			if trustFile == "" || claimsFile == "" {
				return usageErrorf("--trust-policy and --claims are required")
			}
			if trustFile == "-" && claimsFile == "-" {
				return usageErrorf("only one of --trust-policy and --claims can be - (stdin)")
			}
			now := time.Now()
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return usageErrorf("--time: %v", err)
				}
				now = t
			}
			in := cmd.InOrStdin()
			badInput := func(err error) error { return exitCode(exitUsage, err) }
			tb, err := readInput(in, trustFile)
			if err != nil {
				return badInput(err)
			}
			role, err := sts.ReadSimulationTrustPolicy(tb)
			if err != nil {
				return badInput(fmt.Errorf("%s: %w", trustFile, err))
			}
			cb, err := readInput(in, claimsFile)
			if err != nil {
				return badInput(err)
			}
			claims, fromJWT, err := sts.ReadSimulationClaims(cb)
			if err != nil {
				return badInput(fmt.Errorf("%s: %w", claimsFile, err))
			}
			if roleARN == "" {
				roleARN = role.ARN
			}
			res, err := sts.Simulate(sts.SimulateInput{
				TrustPolicy: role.Document, Claims: claims, ProviderARN: providerARN, RoleARN: roleARN,
				RoleTags: role.Tags, RoleSessionName: sessionName, Region: region, Now: now,
			})
			if err != nil {
				if _, ok := errors.AsType[*policy.Error](err); ok {
					err = fmt.Errorf("%s: %w", trustFile, err)
				}
				return badInput(err)
			}
			if err := writeSimulation(cmd.OutOrStdout(), output, res, fromJWT); err != nil {
				return err
			}
			if !res.Allowed {
				return exitCode(exitFailure, errSimulateDenied)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&trustFile, "trust-policy", "", "trust policy document or `aws iam get-role` output (FILE or -)")
	f.StringVar(&claimsFile, "claims", "", "token claims: a JSON object or a JWT, signature NOT verified (FILE or -)")
	f.StringVar(&providerARN, "provider-arn", "", "OIDC provider ARN the token comes from (default: derived from iss)")
	f.StringVar(&roleARN, "role-arn", "", "ARN of the role assumed (default: the get-role Arn, else arn:aws:iam::ACCOUNT:role/keyless-simulate)")
	f.StringVar(&sessionName, "role-session-name", "", "sts:RoleSessionName (default keyless-simulate)")
	f.StringVar(&region, "region", "", "aws:RequestedRegion (default us-east-1)")
	f.StringVar(&at, "time", "", "aws:CurrentTime, RFC 3339 (default now)")
	f.StringVar(&output, "output", "text", "text or json")
	return cmd
}

// readInput reads a file, or in for "-".
func readInput(in io.Reader, name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(in)
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		return b, nil
	}
	return os.ReadFile(name)
}

// simulationJSON is `--output json`.
type simulationJSON struct {
	Decision       string          `json:"decision"`
	Reason         string          `json:"reason"`
	Provider       string          `json:"provider"`
	ProviderSource string          `json:"providerSource"`
	Role           string          `json:"role"`
	UnverifiedJWT  bool            `json:"claimsFromUnverifiedJWT"`
	Notes          []string        `json:"notes"`
	Explanation    sts.Explanation `json:"explanation"`
}

func writeSimulation(w io.Writer, output string, res *sts.SimulateResult, fromJWT bool) error {
	decision := "deny"
	if res.Allowed {
		decision = "allow"
	}
	notes := res.Notes
	if fromJWT {
		notes = append([]string{"the claims are a JWT's payload, decoded WITHOUT verifying its signature"}, notes...)
	}
	if output == "json" {
		v := simulationJSON{
			Decision: decision, Reason: res.Explanation.Keyless.Reason, Provider: res.ProviderARN,
			ProviderSource: res.ProviderSource, Role: res.RoleARN, UnverifiedJWT: fromJWT,
			Notes: append([]string{}, notes...), Explanation: res.Explanation,
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "decision: %s\n", decision)
	fmt.Fprintf(&b, "reason:   %s\n", res.Explanation.Keyless.Reason)
	fmt.Fprintf(&b, "provider: %s (%s)\n", res.ProviderARN, res.ProviderSource)
	fmt.Fprintf(&b, "role:     %s\n", res.RoleARN)
	for _, n := range notes {
		fmt.Fprintf(&b, "note:     %s\n", n)
	}
	ex, err := json.MarshalIndent(res.Explanation, "", "  ")
	if err != nil {
		return err
	}
	b.WriteString("explanation (the JSON sts decode-authorization-message returns):\n")
	b.Write(ex)
	b.WriteString("\n")
	_, err = io.WriteString(w, b.String())
	return err
}
