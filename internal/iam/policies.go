package iam

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store"
)

var reVersionID = regexp.MustCompile(`^v[1-9][0-9]*(\.[A-Za-z0-9-]*)?$`)

// PolicyARN is the ARN of a customer-managed policy.
func PolicyARN(account, path, name string) string {
	return "arn:aws:iam::" + account + ":policy" + path + name
}

type xmlPolicy struct {
	PolicyName                    string      `xml:"PolicyName"`
	PolicyID                      string      `xml:"PolicyId"`
	Arn                           string      `xml:"Arn"`
	Path                          string      `xml:"Path"`
	DefaultVersionID              string      `xml:"DefaultVersionId"`
	AttachmentCount               int         `xml:"AttachmentCount"`
	PermissionsBoundaryUsageCount int         `xml:"PermissionsBoundaryUsageCount"`
	IsAttachable                  bool        `xml:"IsAttachable"`
	Description                   string      `xml:"Description,omitempty"`
	CreateDate                    string      `xml:"CreateDate"`
	UpdateDate                    string      `xml:"UpdateDate"`
	Tags                          *xmlTagList `xml:"Tags,omitempty"`
}

func policyXML(p *store.ManagedPolicy, full bool) xmlPolicy {
	x := xmlPolicy{
		PolicyName: p.Name, PolicyID: p.PolicyID, Arn: p.ARN, Path: p.Path, DefaultVersionID: p.DefaultVersionID,
		AttachmentCount: p.AttachmentCount, IsAttachable: true, CreateDate: awsTime(p.CreateDate), UpdateDate: awsTime(p.UpdateDate),
	}
	if full {
		x.Description = p.Description
		x.Tags = xmlTags(p.Tags)
	}
	return x
}

type policyResult struct {
	Policy xmlPolicy `xml:"Policy"`
}

func (s *Service) policyARNParam(p awsquery.Params, v *awsquery.Validator) string {
	arn, ok := v.Required(p, "PolicyArn")
	if ok {
		v.Length("PolicyArn", arn, 20, 2048)
	}
	return arn
}

func policyNotFound(arn string) error { return noSuch("Policy %s was not found.", arn) }

func (s *Service) loadPolicy(ctx context.Context, arn string) (*store.ManagedPolicy, error) {
	p, err := s.st.Policies().Get(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		return nil, policyNotFound(arn)
	}
	return p, storeErr(err)
}

func (s *Service) checkManagedPolicy(v *awsquery.Validator, doc string) error {
	if err := s.validatePolicyDocument(v, "PolicyDocument", doc, policy.KindIdentity); err != nil {
		return err
	}
	if policy.Size(doc) > s.limits.ManagedPolicySize {
		return limit("Cannot exceed quota for PolicySize: %d", s.limits.ManagedPolicySize)
	}
	return nil
}

func (s *Service) createPolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	p := r.Params
	var v awsquery.Validator
	name := s.policyNameParam(p, &v)
	path := "/"
	if pp, ok := p.Get("Path"); ok {
		path = pp
		v.Length("Path", path, 1, 512)
		v.Pattern("Path", path, rePath, shownPath)
	}
	desc := p.String("Description")
	v.Length("Description", desc, 0, 1000)
	v.Pattern("Description", desc, reDescription, shownDesc)
	doc, _ := v.Required(p, "PolicyDocument")
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.checkManagedPolicy(&v, doc); err != nil {
		return nil, err
	}
	tags, err := parseTags(p, "Tags", true, s.limits.TagsPerResource, "TagsPerPolicy")
	if err != nil {
		return nil, err
	}
	id, err := NewID(s.rand, PrefixManagedPolicy, s.account, 17)
	if err != nil {
		return nil, awsquery.Internal(awsquery.CodeServiceFailure, err)
	}
	now := s.now().UTC().Truncate(1e9)
	mp := &store.ManagedPolicy{
		ARN: PolicyARN(s.account, path, name), PolicyID: id, Name: name, Path: path, Description: desc,
		DefaultVersionID: "v1", Versions: []store.PolicyVersion{{VersionID: "v1", Document: doc, IsDefault: true, CreateDate: now}},
		Tags: tags, CreateDate: now, UpdateDate: now,
	}
	switch err := s.st.Policies().Create(ctx, mp, s.limits.ManagedPolicies); {
	case errors.Is(err, store.ErrAlreadyExists):
		return nil, awsquery.Errorf(awsquery.CodeEntityAlreadyExists, "A policy called %s already exists. Duplicate names are not allowed.", name)
	case errors.Is(err, store.ErrLimitExceeded):
		return nil, limit("Cannot exceed quota for PoliciesPerAccount: %d", s.limits.ManagedPolicies)
	case err != nil:
		return nil, storeErr(err)
	}
	r.Note.Resources = []awsquery.Resource{{ARN: mp.ARN, AccountID: s.account, Type: "AWS::IAM::Policy"}}
	x := policyXML(mp, true)
	return policyResult{x}, nil
}

func (s *Service) getPolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	arn := s.policyARNParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := s.loadPolicy(ctx, arn)
	if err != nil {
		return nil, err
	}
	return policyResult{policyXML(p, true)}, nil
}

type listPoliciesResult struct {
	Policies    []xmlPolicy `xml:"Policies>member"`
	IsTruncated bool        `xml:"IsTruncated"`
	Marker      string      `xml:"Marker,omitempty"`
}

func (s *Service) listPolicies(ctx context.Context, r *awsquery.Request) (any, error) {
	p := r.Params
	var v awsquery.Validator
	o := listOptions(p, &v)
	scope := "All"
	if sc, ok := p.Get("Scope"); ok {
		scope = sc
		if sc != "All" && sc != "AWS" && sc != "Local" {
			v.Add("Scope", sc, "satisfy enum value set: [All, AWS, Local]")
		}
	}
	onlyAttached := false
	if oa, ok := p.Get("OnlyAttached"); ok {
		b, err := strconv.ParseBool(oa)
		if err != nil {
			v.Add("OnlyAttached", oa, "be a boolean")
		}
		onlyAttached = b
	}
	if uf, ok := p.Get("PolicyUsageFilter"); ok && uf != "PermissionsPolicy" && uf != "PermissionsBoundary" {
		v.Add("PolicyUsageFilter", uf, "satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	out := listPoliciesResult{Policies: []xmlPolicy{}}
	if scope == "AWS" {
		return out, nil // keyless ships no AWS-managed policies
	}
	o.OnlyAttached = onlyAttached
	ps, next, err := s.st.Policies().List(ctx, o)
	if err != nil {
		return nil, badMarker(err)
	}
	for _, mp := range ps {
		out.Policies = append(out.Policies, policyXML(mp, false))
	}
	out.IsTruncated, out.Marker = next != "", next
	return out, nil
}

func (s *Service) deletePolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	arn := s.policyARNParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := s.loadPolicy(ctx, arn)
	if err != nil {
		return nil, err
	}
	if len(p.Versions) > 1 {
		return nil, awsquery.NewError(awsquery.CodeDeleteConflict, "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.")
	}
	switch err := s.st.Policies().Delete(ctx, arn); {
	case errors.Is(err, store.ErrConflict):
		return nil, awsquery.NewError(awsquery.CodeDeleteConflict, "Cannot delete a policy attached to entities.")
	case errors.Is(err, store.ErrNotFound):
		return nil, policyNotFound(arn)
	case err != nil:
		return nil, storeErr(err)
	}
	return nil, nil
}

type xmlPolicyVersion struct {
	Document         string `xml:"Document,omitempty"`
	VersionID        string `xml:"VersionId"`
	IsDefaultVersion bool   `xml:"IsDefaultVersion"`
	CreateDate       string `xml:"CreateDate"`
}

type policyVersionResult struct {
	PolicyVersion xmlPolicyVersion `xml:"PolicyVersion"`
}

func versionXML(pv store.PolicyVersion, withDoc bool) xmlPolicyVersion {
	x := xmlPolicyVersion{VersionID: pv.VersionID, IsDefaultVersion: pv.IsDefault, CreateDate: awsTime(pv.CreateDate)}
	if withDoc {
		x.Document = urlEncode(pv.Document)
	}
	return x
}

func versionParam(p awsquery.Params, v *awsquery.Validator) string {
	id, ok := v.Required(p, "VersionId")
	if ok {
		v.Pattern("VersionId", id, reVersionID, `v[1-9][0-9]*(\.[A-Za-z0-9-]*)?`)
	}
	return id
}

func versionNotFound(arn, id string) error {
	return noSuch("Policy %s version %s does not exist or is not attachable.", arn, id)
}

func (s *Service) getPolicyVersion(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	arn := s.policyARNParam(r.Params, &v)
	id := versionParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := s.loadPolicy(ctx, arn)
	if err != nil {
		return nil, err
	}
	for _, pv := range p.Versions {
		if pv.VersionID == id {
			return policyVersionResult{versionXML(pv, true)}, nil
		}
	}
	return nil, versionNotFound(arn, id)
}

func (s *Service) createPolicyVersion(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	arn := s.policyARNParam(r.Params, &v)
	doc, _ := v.Required(r.Params, "PolicyDocument")
	setDefault := false
	if sd, ok := r.Params.Get("SetAsDefault"); ok {
		b, err := strconv.ParseBool(sd)
		if err != nil {
			v.Add("SetAsDefault", sd, "be a boolean")
		}
		setDefault = b
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.checkManagedPolicy(&v, doc); err != nil {
		return nil, err
	}
	var created store.PolicyVersion
	err := s.st.Policies().Update(ctx, arn, func(p *store.ManagedPolicy) error {
		if len(p.Versions) >= s.limits.PolicyVersions {
			return limit("A managed policy can have up to %d versions. Before you create a new version, you must delete an existing version.", s.limits.PolicyVersions)
		}
		next := 1
		for _, pv := range p.Versions {
			if n, err := strconv.Atoi(strings.TrimPrefix(strings.SplitN(pv.VersionID, ".", 2)[0], "v")); err == nil && n >= next {
				next = n + 1
			}
		}
		now := s.now().UTC().Truncate(1e9)
		created = store.PolicyVersion{VersionID: "v" + strconv.Itoa(next), Document: doc, IsDefault: setDefault, CreateDate: now}
		if setDefault {
			for i := range p.Versions {
				p.Versions[i].IsDefault = false
			}
			p.DefaultVersionID = created.VersionID
		}
		p.Versions = append(p.Versions, created)
		p.UpdateDate = now
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, policyNotFound(arn)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return policyVersionResult{versionXML(created, false)}, nil
}

type listVersionsResult struct {
	Versions    []xmlPolicyVersion `xml:"Versions>member"`
	IsTruncated bool               `xml:"IsTruncated"`
}

func (s *Service) listPolicyVersions(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	arn := s.policyARNParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := s.loadPolicy(ctx, arn)
	if err != nil {
		return nil, err
	}
	out := listVersionsResult{Versions: []xmlPolicyVersion{}}
	for _, pv := range slices.Backward(p.Versions) {
		out.Versions = append(out.Versions, versionXML(pv, false))
	}
	return out, nil
}

func (s *Service) deletePolicyVersion(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	arn := s.policyARNParam(r.Params, &v)
	id := versionParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	err := s.st.Policies().Update(ctx, arn, func(p *store.ManagedPolicy) error {
		for i, pv := range p.Versions {
			if pv.VersionID != id {
				continue
			}
			if pv.IsDefault {
				return awsquery.NewError(awsquery.CodeDeleteConflict, "Cannot delete the default version of a policy.")
			}
			p.Versions = append(p.Versions[:i], p.Versions[i+1:]...)
			return nil
		}
		return versionNotFound(arn, id)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, policyNotFound(arn)
	}
	return nil, storeErr(err)
}

func (s *Service) setDefaultPolicyVersion(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	arn := s.policyARNParam(r.Params, &v)
	id := versionParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	err := s.st.Policies().Update(ctx, arn, func(p *store.ManagedPolicy) error {
		found := false
		for i := range p.Versions {
			p.Versions[i].IsDefault = p.Versions[i].VersionID == id
			found = found || p.Versions[i].IsDefault
		}
		if !found {
			return versionNotFound(arn, id)
		}
		p.DefaultVersionID = id
		p.UpdateDate = s.now().UTC().Truncate(1e9)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, policyNotFound(arn)
	}
	return nil, storeErr(err)
}

// DefaultDocument returns the default version's document of a policy.
func DefaultDocument(p *store.ManagedPolicy) string {
	for _, pv := range p.Versions {
		if pv.VersionID == p.DefaultVersionID {
			return pv.Document
		}
	}
	return ""
}

// --- attachments ---

func (s *Service) attachRolePolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	role := s.roleNameParam(r.Params, &v)
	arn := s.policyARNParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, err := s.loadRole(ctx, role); err != nil {
		return nil, err
	}
	switch err := s.st.Roles().AttachPolicy(ctx, role, arn, s.limits.PoliciesPerRole); {
	case errors.Is(err, store.ErrNotFound):
		return nil, noSuch("Policy %s does not exist or is not attachable.", arn)
	case errors.Is(err, store.ErrLimitExceeded):
		return nil, limit("Cannot exceed quota for PoliciesPerRole: %d", s.limits.PoliciesPerRole)
	case err != nil:
		return nil, storeErr(err)
	}
	return nil, nil
}

func (s *Service) detachRolePolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	role := s.roleNameParam(r.Params, &v)
	arn := s.policyARNParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, err := s.loadRole(ctx, role); err != nil {
		return nil, err
	}
	err := s.st.Roles().DetachPolicy(ctx, role, arn)
	if errors.Is(err, store.ErrNotFound) {
		return nil, policyNotFound(arn)
	}
	return nil, storeErr(err)
}

type attachedPolicy struct {
	PolicyName string `xml:"PolicyName"`
	PolicyArn  string `xml:"PolicyArn"`
}

type listAttachedResult struct {
	AttachedPolicies []attachedPolicy `xml:"AttachedPolicies>member"`
	IsTruncated      bool             `xml:"IsTruncated"`
	Marker           string           `xml:"Marker,omitempty"`
}

func (s *Service) listAttachedRolePolicies(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	role := s.roleNameParam(r.Params, &v)
	o := listOptions(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	arns, err := s.st.Roles().ListAttachedPolicies(ctx, role)
	if errors.Is(err, store.ErrNotFound) {
		return nil, roleNotFound(role)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	out := listAttachedResult{AttachedPolicies: []attachedPolicy{}}
	after := ""
	if o.Marker != "" {
		after = o.Marker
	}
	for _, arn := range arns {
		if after != "" && arn <= after {
			continue
		}
		name := arn[strings.LastIndexByte(arn, '/')+1:]
		path := strings.TrimSuffix(strings.SplitN(arn, ":policy", 2)[1], name)
		if o.PathPrefix != "" && !strings.HasPrefix(path, o.PathPrefix) {
			continue
		}
		if len(out.AttachedPolicies) == o.MaxItems {
			out.IsTruncated = true
			out.Marker = out.AttachedPolicies[o.MaxItems-1].PolicyArn
			break
		}
		out.AttachedPolicies = append(out.AttachedPolicies, attachedPolicy{PolicyName: name, PolicyArn: arn})
	}
	return out, nil
}
