package iam

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store"
)

// The IAM policy simulator: SimulateCustomPolicy and
// SimulatePrincipalPolicy, answered by the one evaluator in package policy.

type xmlPosition struct {
	Line   int `xml:"Line"`
	Column int `xml:"Column"`
}

type xmlStatement struct {
	SourcePolicyID   string      `xml:"SourcePolicyId"`
	SourcePolicyType string      `xml:"SourcePolicyType"`
	StartPosition    xmlPosition `xml:"StartPosition"`
	EndPosition      xmlPosition `xml:"EndPosition"`
}

type xmlBoundaryDetail struct {
	AllowedByPermissionsBoundary bool `xml:"AllowedByPermissionsBoundary"`
}

type xmlEvaluationResult struct {
	EvalActionName                    string             `xml:"EvalActionName"`
	EvalResourceName                  string             `xml:"EvalResourceName"`
	EvalDecision                      string             `xml:"EvalDecision"`
	MatchedStatements                 []xmlStatement     `xml:"MatchedStatements>member"`
	MissingContextValues              []string           `xml:"MissingContextValues>member"`
	PermissionsBoundaryDecisionDetail *xmlBoundaryDetail `xml:"PermissionsBoundaryDecisionDetail,omitempty"`
}

type simulateResult struct {
	EvaluationResults []xmlEvaluationResult `xml:"EvaluationResults>member"`
	IsTruncated       bool                  `xml:"IsTruncated"`
	Marker            string                `xml:"Marker,omitempty"`
}

// simParams are the parameters both simulate actions share.
type simParams struct {
	actions   []string
	resources []string
	context   []policy.ContextEntry
	caller    string
	max       int
	start     int
}

func parseSimParams(p awsquery.Params) (simParams, error) {
	var sp simParams
	var v awsquery.Validator
	actions, present, err := p.List("ActionNames")
	if err != nil {
		return sp, err
	}
	if !present || len(actions) == 0 {
		v.Add("ActionNames", "[]", "not be null or empty")
	}
	for _, a := range actions {
		v.Length("ActionNames", a, 3, 128)
	}
	resources, _, err := p.List("ResourceArns")
	if err != nil {
		return sp, err
	}
	for _, r := range resources {
		v.Length("ResourceArns", r, 1, 2048)
	}
	// AWS: "If you do not include this parameter, the number of items
	// defaults to 100."
	sp.max = v.Int(p, "MaxItems", 100, 1, 1000)
	if m, ok := p.Get("Marker"); ok {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || len(m) > 10 {
			return sp, invalid("Invalid Marker: pass the Marker returned by the previous call unchanged.")
		}
		sp.start = n
	}
	if c, ok := p.Get("CallerArn"); ok {
		v.Length("CallerArn", c, 1, 2048)
		sp.caller = c
	}
	if err := v.Err(); err != nil {
		return sp, err
	}
	ctxEntries, err := parseContextEntries(p)
	if err != nil {
		return sp, err
	}
	sp.actions, sp.resources, sp.context = actions, resources, ctxEntries
	return sp, nil
}

// parseContextEntries decodes ContextEntries.member.N.{ContextKeyName,
// ContextKeyType, ContextKeyValues.member.M}.
func parseContextEntries(p awsquery.Params) ([]policy.ContextEntry, error) {
	byIndex := map[int]*policy.ContextEntry{}
	values := map[int]map[int]string{}
	const prefix = "ContextEntries.member."
	for _, name := range p.Names() {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		num, field, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(num)
		if err != nil || i < 1 || i > 1000 {
			return nil, invalid("Invalid parameter %s.", name)
		}
		e := byIndex[i]
		if e == nil {
			e = &policy.ContextEntry{}
			byIndex[i] = e
		}
		val := p.String(name)
		switch {
		case field == "ContextKeyName":
			e.Key = val
		case field == "ContextKeyType":
			e.Type = policy.ContextKeyType(val)
		case strings.HasPrefix(field, "ContextKeyValues.member."):
			j, err := strconv.Atoi(strings.TrimPrefix(field, "ContextKeyValues.member."))
			if err != nil || j < 1 || j > 1000 {
				return nil, invalid("Invalid parameter %s.", name)
			}
			if values[i] == nil {
				values[i] = map[int]string{}
			}
			values[i][j] = val
		case field == "ContextKeyValues":
		default:
			return nil, invalid("Invalid parameter %s.", name)
		}
	}
	out := make([]policy.ContextEntry, 0, len(byIndex))
	for i := 1; i <= len(byIndex); i++ {
		e, ok := byIndex[i]
		if !ok {
			return nil, invalid("ContextEntries skips index %d: members must be numbered from 1 without gaps.", i)
		}
		for j := 1; j <= len(values[i]); j++ {
			v, ok := values[i][j]
			if !ok {
				return nil, invalid("ContextEntries.member.%d.ContextKeyValues skips index %d.", i, j)
			}
			e.Values = append(e.Values, v)
		}
		if e.Key == "" || e.Type == "" {
			return nil, invalid("ContextEntries.member.%d needs ContextKeyName and ContextKeyType.", i)
		}
		var v awsquery.Validator
		if v.Length("contextEntries."+strconv.Itoa(i)+".member.contextKeyName", e.Key, 5, 256); !v.OK() {
			return nil, v.Err()
		}
		out = append(out, *e)
	}
	return out, nil
}

// simPolicies parses a list parameter of policy documents.
func simPolicies(p awsquery.Params, param string, kind policy.Kind, layer policy.Layer, typ policy.SourceType) ([]policy.SimPolicy, error) {
	docs, _, err := p.List(param)
	if err != nil {
		return nil, err
	}
	if layer == policy.LayerBoundary && len(docs) > 1 {
		return nil, invalid("%s has %d policies: you can input only one permissions boundary.", param, len(docs))
	}
	out := make([]policy.SimPolicy, 0, len(docs))
	for i, doc := range docs {
		pol, err := policy.ParseWithOptions(doc, kind, policy.Options{MaxSize: -1})
		if err != nil {
			return nil, simInputError(param+"."+strconv.Itoa(i+1), err)
		}
		out = append(out, policy.SimPolicy{ID: param + "." + strconv.Itoa(i+1), Type: typ, Layer: layer, Policy: pol})
	}
	return out, nil
}

// simInputError reports a bad simulator input as InvalidInput (the only
// client error the simulate actions declare), keeping the policy
// package's precise message.
func simInputError(what string, err error) error {
	if pe, ok := errors.AsType[*policy.Error](err); ok {
		if errors.Is(err, policy.ErrSimulationTooLarge) {
			return &awsquery.Error{Code: awsquery.CodeInvalidInput, Message: pe.Message, Err: err}
		}
		return &awsquery.Error{Code: awsquery.CodeInvalidInput, Message: what + ": " + strings.TrimPrefix(pe.Error(), pe.Code+": "), Err: err}
	}
	return awsquery.Internal(awsquery.CodeServiceFailure, err)
}

// runSimulation prices the simulation (refusing it above the simulator's
// limits), then evaluates only the page asked for: the work and the memory
// of one call are bounded by the page, not by actions × resources, and the
// evaluation stops when the caller goes away.
func (s *Service) runSimulation(ctx context.Context, in policy.SimulationInput, sp simParams) (any, error) {
	in.Actions, in.Resources = sp.actions, sp.resources
	in.Context = sp.context
	if sp.caller != "" {
		in.Caller = policy.Principal{Type: policy.PrincipalAWS, ID: sp.caller, Account: accountOfARN(sp.caller)}
	}
	sim, err := policy.NewSimulation(in, policy.SimLimits{})
	if err != nil {
		return nil, simInputError("simulation", err)
	}
	results, next, err := sim.Page(ctx, sp.start, sp.max)
	if err != nil {
		return nil, &awsquery.Error{Code: awsquery.CodeServiceUnavailable, Message: "The simulation was cancelled before it finished. Retry the request.", Err: err}
	}
	out := simulateResult{EvaluationResults: make([]xmlEvaluationResult, 0, len(results))}
	for _, r := range results {
		x := xmlEvaluationResult{
			EvalActionName: r.Action, EvalResourceName: r.Resource, EvalDecision: r.Decision.String(),
			MatchedStatements: make([]xmlStatement, 0, len(r.MatchedStatements)), MissingContextValues: nonNil(r.MissingContextValues),
		}
		for _, m := range r.MatchedStatements {
			x.MatchedStatements = append(x.MatchedStatements, xmlStatement{
				SourcePolicyID: m.SourcePolicyID, SourcePolicyType: string(m.SourcePolicyType),
				StartPosition: xmlPosition{m.StartPosition.Line, m.StartPosition.Column},
				EndPosition:   xmlPosition{m.EndPosition.Line, m.EndPosition.Column},
			})
		}
		if r.PermissionsBoundaryDecisionDetail != nil {
			x.PermissionsBoundaryDecisionDetail = &xmlBoundaryDetail{r.PermissionsBoundaryDecisionDetail.AllowedByPermissionsBoundary}
		}
		out.EvaluationResults = append(out.EvaluationResults, x)
	}
	if next < sim.Len() {
		out.IsTruncated, out.Marker = true, strconv.Itoa(next)
	}
	return out, nil
}

func accountOfARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 {
		return parts[4]
	}
	return ""
}

func (s *Service) simulateCustomPolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	sp, err := parseSimParams(r.Params)
	if err != nil {
		return nil, err
	}
	if _, present, _ := r.Params.List("PolicyInputList"); !present {
		var v awsquery.Validator
		v.Required(r.Params, "PolicyInputList")
		return nil, v.Err()
	}
	ident, err := simPolicies(r.Params, "PolicyInputList", policy.KindIdentity, policy.LayerIdentity, policy.SourceNone)
	if err != nil {
		return nil, err
	}
	boundary, err := simPolicies(r.Params, "PermissionsBoundaryPolicyInputList", policy.KindBoundary, policy.LayerBoundary, policy.SourceNone)
	if err != nil {
		return nil, err
	}
	in := policy.SimulationInput{Policies: append(ident, boundary...)}
	if doc, ok := r.Params.Get("ResourcePolicy"); ok {
		rp, err := policy.ParseWithOptions(doc, policy.KindResource, policy.Options{MaxSize: -1})
		if err != nil {
			return nil, simInputError("ResourcePolicy", err)
		}
		in.Policies = append(in.Policies, policy.SimPolicy{ID: "ResourcePolicy", Type: policy.SourceResource, Layer: policy.LayerResource, Policy: rp})
	}
	return s.runSimulation(ctx, in, sp)
}

// simulatePrincipalPolicy simulates a role's policies: its inline and
// attached policies, its permissions boundary, plus any policies given.
func (s *Service) simulatePrincipalPolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	src, ok := v.Required(r.Params, "PolicySourceArn")
	if ok {
		v.Length("PolicySourceArn", src, 20, 2048)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	sp, err := parseSimParams(r.Params)
	if err != nil {
		return nil, err
	}
	acct, name, ok := ParseRoleARN(src)
	if !ok || acct != s.account {
		return nil, invalid("PolicySourceArn %s is not a role of this account: keyless simulates roles (arn:aws:iam::%s:role/NAME).", truncateDoc(src), s.account)
	}
	role, err := s.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if role.ARN != src {
		return nil, roleNotFound(name)
	}
	var in policy.SimulationInput
	inline, err := s.st.Roles().ListInlinePolicies(ctx, role.Name)
	if err != nil {
		return nil, storeErr(err)
	}
	for _, ip := range inline {
		pol, err := policy.ParseWithOptions(ip.Document, policy.KindIdentity, policy.Options{MaxSize: -1})
		if err != nil {
			return nil, awsquery.Internal(awsquery.CodePolicyEvaluation, err)
		}
		in.Policies = append(in.Policies, policy.SimPolicy{ID: ip.Name, Type: policy.SourceRole, Layer: policy.LayerIdentity, Policy: pol})
	}
	attached, err := s.st.Roles().ListAttachedPolicies(ctx, role.Name)
	if err != nil {
		return nil, storeErr(err)
	}
	for _, arn := range attached {
		mp, err := s.managedPolicy(ctx, arn, policy.KindIdentity)
		if err != nil {
			return nil, err
		}
		in.Policies = append(in.Policies, policy.SimPolicy{ID: mp.name, Type: policy.SourceUserManaged, Layer: policy.LayerIdentity, Policy: mp.policy})
	}
	extra, err := simPolicies(r.Params, "PolicyInputList", policy.KindIdentity, policy.LayerIdentity, policy.SourceNone)
	if err != nil {
		return nil, err
	}
	in.Policies = append(in.Policies, extra...)
	boundary, err := simPolicies(r.Params, "PermissionsBoundaryPolicyInputList", policy.KindBoundary, policy.LayerBoundary, policy.SourceNone)
	if err != nil {
		return nil, err
	}
	if len(boundary) > 0 {
		in.Policies = append(in.Policies, boundary...)
	} else if role.PermissionsBoundary != "" {
		mp, err := s.managedPolicy(ctx, role.PermissionsBoundary, policy.KindBoundary)
		if err != nil {
			return nil, err
		}
		in.Policies = append(in.Policies, policy.SimPolicy{ID: mp.name, Type: policy.SourceUserManaged, Layer: policy.LayerBoundary, Policy: mp.policy})
	}
	if sp.caller == "" {
		sp.caller = role.ARN
	}
	return s.runSimulation(ctx, in, sp)
}

type namedPolicy struct {
	name   string
	policy *policy.Policy
}

func (s *Service) managedPolicy(ctx context.Context, arn string, kind policy.Kind) (namedPolicy, error) {
	mp, err := s.st.Policies().Get(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		return namedPolicy{}, policyNotFound(arn)
	}
	if err != nil {
		return namedPolicy{}, storeErr(err)
	}
	pol, err := policy.ParseWithOptions(DefaultDocument(mp), kind, policy.Options{MaxSize: -1})
	if err != nil {
		return namedPolicy{}, awsquery.Internal(awsquery.CodePolicyEvaluation, err)
	}
	return namedPolicy{name: mp.Name, policy: pol}, nil
}
