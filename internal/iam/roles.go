package iam

import (
	"context"
	"errors"
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store"
)

// RoleARN is the ARN of a role (the path is part of it).
func RoleARN(account, path, name string) string {
	return "arn:aws:iam::" + account + ":role" + path + name
}

type xmlRole struct {
	Path                     string       `xml:"Path"`
	RoleName                 string       `xml:"RoleName"`
	RoleID                   string       `xml:"RoleId"`
	Arn                      string       `xml:"Arn"`
	CreateDate               string       `xml:"CreateDate"`
	AssumeRolePolicyDocument string       `xml:"AssumeRolePolicyDocument"`
	Description              string       `xml:"Description,omitempty"`
	MaxSessionDuration       int          `xml:"MaxSessionDuration"`
	PermissionsBoundary      *xmlBoundary `xml:"PermissionsBoundary,omitempty"`
	Tags                     *xmlTagList  `xml:"Tags,omitempty"`
	RoleLastUsed             *xmlLastUsed `xml:"RoleLastUsed,omitempty"`
}

type xmlBoundary struct {
	PermissionsBoundaryType string `xml:"PermissionsBoundaryType"`
	PermissionsBoundaryArn  string `xml:"PermissionsBoundaryArn"`
}

type xmlLastUsed struct {
	LastUsedDate string `xml:"LastUsedDate,omitempty"`
	Region       string `xml:"Region,omitempty"`
}

// roleXML renders a role. full adds what GetRole returns and ListRoles
// does not (tags, boundary, last use).
func roleXML(r *store.Role, full bool) xmlRole {
	x := xmlRole{
		Path: r.Path, RoleName: r.Name, RoleID: r.RoleID, Arn: r.ARN, CreateDate: awsTime(r.CreateDate),
		AssumeRolePolicyDocument: urlEncode(r.TrustPolicy), Description: r.Description, MaxSessionDuration: r.MaxSessionDuration,
	}
	if full {
		if r.PermissionsBoundary != "" {
			x.PermissionsBoundary = &xmlBoundary{"PermissionsBoundaryPolicy", r.PermissionsBoundary}
		}
		x.Tags = xmlTags(r.Tags)
		x.RoleLastUsed = &xmlLastUsed{}
		if !r.LastUsedDate.IsZero() {
			x.RoleLastUsed = &xmlLastUsed{LastUsedDate: awsTime(r.LastUsedDate), Region: r.LastUsedRegion}
		}
	}
	return x
}

type roleResult struct {
	Role xmlRole `xml:"Role"`
}

func (s *Service) roleNameParam(p awsquery.Params, v *awsquery.Validator) string {
	name, ok := v.Required(p, "RoleName")
	if ok {
		v.Length("RoleName", name, 1, 64)
		v.Pattern("RoleName", name, reName, shownName)
	}
	return name
}

func roleNotFound(name string) error {
	return noSuch("The role with name %s cannot be found.", name)
}

func (s *Service) loadRole(ctx context.Context, name string) (*store.Role, error) {
	r, err := s.st.Roles().Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, roleNotFound(name)
	}
	return r, storeErr(err)
}

func (s *Service) updateStoredRole(ctx context.Context, name string, fn func(*store.Role) error) error {
	err := s.st.Roles().Update(ctx, name, fn)
	if errors.Is(err, store.ErrNotFound) {
		return roleNotFound(name)
	}
	return storeErr(err)
}

// checkTrustPolicy validates a trust policy, applies the guardrail
// (guardrail_modes.go) and checks the size quota.
func (s *Service) checkTrustPolicy(v *awsquery.Validator, param, doc string) (trustCheck, error) {
	if err := s.validatePolicyDocument(v, param, doc, policy.KindTrust); err != nil {
		return trustCheck{}, err
	}
	tc, err := s.guardTrustPolicy(doc)
	if err != nil {
		return trustCheck{}, err
	}
	if policy.Size(doc) > s.limits.TrustPolicySize {
		return trustCheck{}, limit("Cannot exceed quota for ACLSizePerRole: %d", s.limits.TrustPolicySize)
	}
	return tc, nil
}

func (s *Service) checkBoundary(ctx context.Context, arn string) error {
	if _, err := s.st.Policies().Get(ctx, arn); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return noSuch("Scope ARN: %s does not exist or is not attachable.", arn)
		}
		return storeErr(err)
	}
	return nil
}

func (s *Service) createRole(ctx context.Context, r *awsquery.Request) (any, error) {
	p := r.Params
	var v awsquery.Validator
	name := s.roleNameParam(p, &v)
	path := "/"
	if pp, ok := p.Get("Path"); ok {
		path = pp
		v.Length("Path", path, 1, 512)
		v.Pattern("Path", path, rePath, shownPath)
	}
	desc := p.String("Description")
	v.Length("Description", desc, 0, 1000)
	v.Pattern("Description", desc, reDescription, shownDesc)
	maxDur := v.Int(p, "MaxSessionDuration", 3600, 3600, 43200)
	boundary, hasBoundary := p.Get("PermissionsBoundary")
	if hasBoundary {
		v.Length("PermissionsBoundary", boundary, 20, 2048)
	}
	doc, _ := v.Required(p, "AssumeRolePolicyDocument")
	if err := v.Err(); err != nil {
		return nil, err
	}
	trust, err := s.checkTrustPolicy(&v, "AssumeRolePolicyDocument", doc)
	if err != nil {
		return nil, err
	}
	tags, err := parseTags(p, "Tags", true, s.limits.TagsPerResource, "TagsPerRole")
	if err != nil {
		return nil, err
	}
	if err := s.checkBrokerTags(tags); err != nil {
		return nil, err
	}
	if hasBoundary {
		if err := s.checkBoundary(ctx, boundary); err != nil {
			return nil, err
		}
	}
	id, err := NewID(s.rand, PrefixRole, s.account, 17)
	if err != nil {
		return nil, awsquery.Internal(awsquery.CodeServiceFailure, err)
	}
	role := &store.Role{
		RoleID: id, Name: name, Path: path, ARN: RoleARN(s.account, path, name), TrustPolicy: doc,
		Description: desc, MaxSessionDuration: maxDur, PermissionsBoundary: boundary, Tags: tags,
		CreateDate: s.now().UTC().Truncate(1e9),
	}
	s.recordFindings(ctx, r, name, trust)
	switch err := s.st.Roles().Create(ctx, role, s.limits.Roles); {
	case errors.Is(err, store.ErrAlreadyExists):
		return nil, awsquery.Errorf(awsquery.CodeEntityAlreadyExists, "Role with name %s already exists.", name)
	case errors.Is(err, store.ErrLimitExceeded):
		return nil, limit("Cannot exceed quota for RolesPerAccount: %d", s.limits.Roles)
	case err != nil:
		return nil, storeErr(err)
	}
	s.trustStored(r, name, trust)
	r.Note.Resources = []awsquery.Resource{{ARN: role.ARN, AccountID: s.account, Type: "AWS::IAM::Role"}}
	x := roleXML(role, false)
	x.Tags = xmlTags(role.Tags)
	if role.PermissionsBoundary != "" {
		x.PermissionsBoundary = &xmlBoundary{"PermissionsBoundaryPolicy", role.PermissionsBoundary}
	}
	return roleResult{x}, nil
}

func (s *Service) getRole(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	name := s.roleNameParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	role, err := s.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	return roleResult{roleXML(role, true)}, nil
}

type listRolesResult struct {
	Roles       []xmlRole `xml:"Roles>member"`
	IsTruncated bool      `xml:"IsTruncated"`
	Marker      string    `xml:"Marker,omitempty"`
}

// listOptions reads PathPrefix/Marker/MaxItems with the model's limits.
func listOptions(p awsquery.Params, v *awsquery.Validator) store.ListOptions {
	o := store.ListOptions{MaxItems: v.Int(p, "MaxItems", 100, 1, 1000)}
	if pp, ok := p.Get("PathPrefix"); ok {
		v.Length("PathPrefix", pp, 1, 512)
		v.Pattern("PathPrefix", pp, rePathPrefix, shownPathPrefix)
		o.PathPrefix = pp
	}
	if m, ok := p.Get("Marker"); ok {
		v.Length("Marker", m, 1, 320)
		o.Marker = m
	}
	return o
}

func badMarker(err error) error {
	if errors.Is(err, store.ErrBadMarker) {
		return invalid("Invalid Marker: pass the Marker returned by the previous call unchanged.")
	}
	return storeErr(err)
}

func (s *Service) listRoles(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	o := listOptions(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	roles, next, err := s.st.Roles().List(ctx, o)
	if err != nil {
		return nil, badMarker(err)
	}
	out := listRolesResult{Roles: []xmlRole{}, IsTruncated: next != "", Marker: next}
	for _, role := range roles {
		out.Roles = append(out.Roles, roleXML(role, false))
	}
	return out, nil
}

type emptyResult struct{}

func (s *Service) updateRole(ctx context.Context, r *awsquery.Request) (any, error) {
	p := r.Params
	var v awsquery.Validator
	name := s.roleNameParam(p, &v)
	desc, hasDesc := p.Get("Description")
	if hasDesc {
		v.Length("Description", desc, 0, 1000)
		v.Pattern("Description", desc, reDescription, shownDesc)
	}
	hasDur := p.Has("MaxSessionDuration")
	dur := v.Int(p, "MaxSessionDuration", 0, 3600, 43200)
	if err := v.Err(); err != nil {
		return nil, err
	}
	err := s.updateStoredRole(ctx, name, func(role *store.Role) error {
		if hasDesc {
			role.Description = desc
		}
		if hasDur {
			role.MaxSessionDuration = dur
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return emptyResult{}, nil
}

func (s *Service) updateRoleDescription(ctx context.Context, r *awsquery.Request) (any, error) {
	p := r.Params
	var v awsquery.Validator
	name := s.roleNameParam(p, &v)
	desc, _ := v.Required(p, "Description")
	v.Length("Description", desc, 0, 1000)
	v.Pattern("Description", desc, reDescription, shownDesc)
	if err := v.Err(); err != nil {
		return nil, err
	}
	var out *store.Role
	err := s.updateStoredRole(ctx, name, func(role *store.Role) error {
		role.Description = desc
		out = role
		return nil
	})
	if err != nil {
		return nil, err
	}
	return roleResult{roleXML(out, true)}, nil
}

func (s *Service) updateAssumeRolePolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	name := s.roleNameParam(r.Params, &v)
	doc, _ := v.Required(r.Params, "PolicyDocument")
	if err := v.Err(); err != nil {
		return nil, err
	}
	trust, err := s.checkTrustPolicy(&v, "PolicyDocument", doc)
	if err != nil {
		return nil, err
	}
	s.recordFindings(ctx, r, name, trust)
	if err := s.updateStoredRole(ctx, name, func(role *store.Role) error {
		role.TrustPolicy = doc
		return nil
	}); err != nil {
		return nil, err
	}
	s.trustStored(r, name, trust)
	return nil, nil
}

func (s *Service) deleteRole(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	name := s.roleNameParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	// Say which kind of policy blocks the deletion, as IAM does; the
	// store's own check inside the delete transaction is the guarantee.
	if inline, err := s.st.Roles().ListInlinePolicies(ctx, name); err == nil && len(inline) > 0 {
		return nil, awsquery.NewError(awsquery.CodeDeleteConflict, "Cannot delete entity, must delete policies first.")
	}
	if attached, err := s.st.Roles().ListAttachedPolicies(ctx, name); err == nil && len(attached) > 0 {
		return nil, awsquery.NewError(awsquery.CodeDeleteConflict, "Cannot delete entity, must detach all policies first.")
	}
	switch err := s.st.Roles().Delete(ctx, name); {
	case errors.Is(err, store.ErrNotFound):
		return nil, roleNotFound(name)
	case errors.Is(err, store.ErrConflict):
		return nil, awsquery.NewError(awsquery.CodeDeleteConflict, "Cannot delete entity, must detach all policies first.")
	case err != nil:
		return nil, storeErr(err)
	}
	if s.observer != nil {
		s.observer.RoleDeleted(name)
	}
	return nil, nil
}

func (s *Service) tagRole(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	name := s.roleNameParam(r.Params, &v)
	if !r.Params.Has("Tags") && !hasPrefixParam(r.Params, "Tags.member.") {
		v.Required(r.Params, "Tags")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	tags, err := parseTags(r.Params, "Tags", true, s.limits.TagsPerResource, "TagsPerRole")
	if err != nil {
		return nil, err
	}
	if err := s.checkBrokerTags(tags); err != nil {
		return nil, err
	}
	return nil, s.updateStoredRole(ctx, name, func(role *store.Role) error {
		merged, err := mergeTags(role.Tags, tags, true, s.limits.TagsPerResource, "TagsPerRole")
		if err != nil {
			return err
		}
		role.Tags = merged
		return nil
	})
}

func (s *Service) untagRole(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	name := s.roleNameParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	keys, err := parseTagKeys(r.Params)
	if err != nil {
		return nil, err
	}
	return nil, s.updateStoredRole(ctx, name, func(role *store.Role) error {
		role.Tags = removeTags(role.Tags, keys, true)
		return nil
	})
}

func (s *Service) listRoleTags(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	name := s.roleNameParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	role, err := s.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	return tagPage(role.Tags, r.Params)
}

func (s *Service) putRoleBoundary(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	name := s.roleNameParam(r.Params, &v)
	arn, ok := v.Required(r.Params, "PermissionsBoundary")
	if ok {
		v.Length("PermissionsBoundary", arn, 20, 2048)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.checkBoundary(ctx, arn); err != nil {
		return nil, err
	}
	return nil, s.updateStoredRole(ctx, name, func(role *store.Role) error {
		role.PermissionsBoundary = arn
		return nil
	})
}

func (s *Service) deleteRoleBoundary(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	name := s.roleNameParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return nil, s.updateStoredRole(ctx, name, func(role *store.Role) error {
		role.PermissionsBoundary = ""
		return nil
	})
}

type instanceProfilesResult struct {
	InstanceProfiles []struct{} `xml:"InstanceProfiles>member"`
	IsTruncated      bool       `xml:"IsTruncated"`
}

// listInstanceProfilesForRole answers an empty list: keyless has no
// instance profiles, and Terraform calls this before deleting a role.
func (s *Service) listInstanceProfilesForRole(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	name := s.roleNameParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, err := s.loadRole(ctx, name); err != nil {
		return nil, err
	}
	return instanceProfilesResult{InstanceProfiles: []struct{}{}}, nil
}

// --- inline policies ---

func (s *Service) policyNameParam(p awsquery.Params, v *awsquery.Validator) string {
	name, ok := v.Required(p, "PolicyName")
	if ok {
		v.Length("PolicyName", name, 1, 128)
		v.Pattern("PolicyName", name, reName, shownName)
	}
	return name
}

func (s *Service) putRolePolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	role := s.roleNameParam(r.Params, &v)
	name := s.policyNameParam(r.Params, &v)
	doc, _ := v.Required(r.Params, "PolicyDocument")
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.validatePolicyDocument(&v, "PolicyDocument", doc, policy.KindIdentity); err != nil {
		return nil, err
	}
	err := s.st.Roles().PutInlinePolicy(ctx, role, store.InlinePolicy{Name: name, Document: doc}, func(all []store.InlinePolicy) error {
		total := 0
		for _, p := range all {
			total += policy.Size(p.Document)
		}
		if total > s.limits.InlinePolicyAggregate {
			return limit("Maximum policy size of %d bytes exceeded for role %s", s.limits.InlinePolicyAggregate, role)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, roleNotFound(role)
	}
	return nil, storeErr(err)
}

type getRolePolicyResult struct {
	RoleName       string `xml:"RoleName"`
	PolicyName     string `xml:"PolicyName"`
	PolicyDocument string `xml:"PolicyDocument"`
}

func (s *Service) getRolePolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	role := s.roleNameParam(r.Params, &v)
	name := s.policyNameParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	stored, err := s.loadRole(ctx, role)
	if err != nil {
		return nil, err
	}
	p, err := s.st.Roles().GetInlinePolicy(ctx, role, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, noSuch("The role policy with name %s cannot be found.", name)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return getRolePolicyResult{RoleName: stored.Name, PolicyName: p.Name, PolicyDocument: urlEncode(p.Document)}, nil
}

type listRolePoliciesResult struct {
	PolicyNames []string `xml:"PolicyNames>member"`
	IsTruncated bool     `xml:"IsTruncated"`
	Marker      string   `xml:"Marker,omitempty"`
}

func (s *Service) listRolePolicies(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	role := s.roleNameParam(r.Params, &v)
	max := v.Int(r.Params, "MaxItems", 100, 1, 1000)
	marker := r.Params.String("Marker")
	if err := v.Err(); err != nil {
		return nil, err
	}
	ps, err := s.st.Roles().ListInlinePolicies(ctx, role)
	if errors.Is(err, store.ErrNotFound) {
		return nil, roleNotFound(role)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	out := listRolePoliciesResult{PolicyNames: []string{}}
	for _, p := range ps {
		if marker != "" && p.Name <= marker {
			continue
		}
		if len(out.PolicyNames) == max {
			out.IsTruncated = true
			out.Marker = out.PolicyNames[max-1]
			break
		}
		out.PolicyNames = append(out.PolicyNames, p.Name)
	}
	return out, nil
}

func (s *Service) deleteRolePolicy(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	role := s.roleNameParam(r.Params, &v)
	name := s.policyNameParam(r.Params, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, err := s.loadRole(ctx, role); err != nil {
		return nil, err
	}
	err := s.st.Roles().DeleteInlinePolicy(ctx, role, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, noSuch("The role policy with name %s cannot be found.", name)
	}
	return nil, storeErr(err)
}

// ParseRoleARN splits arn:aws:iam::ACCOUNT:role/PATH/NAME into the
// account and the role name (the path is not part of the name).
func ParseRoleARN(arn string) (account, name string, ok bool) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::")
	if !ok {
		return "", "", false
	}
	account, res, ok := strings.Cut(rest, ":")
	if !ok || !ValidAccountID(account) {
		return "", "", false
	}
	path, ok := strings.CutPrefix(res, "role/")
	if !ok || path == "" || strings.HasSuffix(path, "/") {
		return "", "", false
	}
	name = path[strings.LastIndexByte(path, '/')+1:]
	return account, name, name != ""
}
