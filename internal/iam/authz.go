package iam

import (
	"context"
	"errors"
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/store"
)

// What an IAM call is authorized against, per action, as the Service
// Authorization Reference defines it ("Actions, resources, and condition
// keys for AWS Identity and Access Management"): the resource type the
// action acts on (role, policy, oidc-provider, or none: "*") and the
// action's request condition keys. The resource comes from the parameter
// that names it for THAT action — never from whichever parameter happens
// to be present — and a parameter the action does not define is refused
// before authorization (awsquery.Shape), so the handler acts on exactly
// the resource that was authorized.

// resKind is the resource type an action acts on.
type resKind uint8

const (
	resNone        resKind = iota // no resource type: "*"
	resRole                       // an existing role, by RoleName (ARN with its path)
	resNewRole                    // the role CreateRole creates (Path + RoleName)
	resPolicy                     // a managed policy, by PolicyArn
	resNewPolicy                  // the policy CreatePolicy creates (Path + PolicyName)
	resProvider                   // an OIDC provider, by OpenIDConnectProviderArn
	resNewProvider                // the provider CreateOpenIDConnectProvider creates (Url)
	resSimSource                  // SimulatePrincipalPolicy's PolicySourceArn
)

// keySet says which action-specific condition keys a request carries.
type keySet uint8

const (
	keyRequestTags     keySet = 1 << iota // aws:RequestTag/K and aws:TagKeys from Tags
	keyTagKeys                            // aws:TagKeys from TagKeys (Untag*)
	keyBoundaryRequest                    // iam:PermissionsBoundary from the PermissionsBoundary parameter
	keyBoundaryRole                       // iam:PermissionsBoundary: the role's current boundary
	keyPolicyARN                          // iam:PolicyARN from PolicyArn
)

// authSpec is one row of the per-action table.
type authSpec struct {
	res  resKind
	keys keySet
}

// Resource types, as CloudTrail names them in an event's resources.
const (
	typeRole     = "AWS::IAM::Role"
	typePolicy   = "AWS::IAM::Policy"
	typeProvider = "AWS::IAM::OIDCProvider"
)

// target builds the authorization target of an IAM call from its row of
// the table. It reads the store only to find what the request cannot say:
// an existing role's path, tags and boundary, a provider's or a policy's
// tags. A resource that does not exist is authorized under the ARN it
// would have (path "/" for a role), so a refusal does not reveal whether
// it exists.
func (s *Service) target(ctx context.Context, r *awsquery.Request, spec authSpec) (awsquery.Target, error) {
	p := r.Params
	t := awsquery.Target{Action: "iam:" + r.Action, Resource: "*"}
	keys := map[string][]string{}
	var (
		resourceTags []store.Tag
		roleBoundary string
	)
	switch spec.res {
	case resRole:
		name := p.String("RoleName")
		t.Resource, t.ResourceType = RoleARN(s.account, "/", name), typeRole
		role, err := s.st.Roles().Get(ctx, name)
		switch {
		case err == nil:
			t.Resource, resourceTags, roleBoundary = role.ARN, role.Tags, role.PermissionsBoundary
		case !errors.Is(err, store.ErrNotFound):
			return t, storeErr(err)
		}
	case resNewRole:
		path := "/"
		if pp, ok := p.Get("Path"); ok {
			path = pp
		}
		t.Resource, t.ResourceType = RoleARN(s.account, path, p.String("RoleName")), typeRole
	case resPolicy:
		t.Resource, t.ResourceType = p.String("PolicyArn"), typePolicy
		pol, err := s.st.Policies().Get(ctx, t.Resource)
		switch {
		case err == nil:
			resourceTags = pol.Tags
		case !errors.Is(err, store.ErrNotFound):
			return t, storeErr(err)
		}
	case resNewPolicy:
		path := "/"
		if pp, ok := p.Get("Path"); ok {
			path = pp
		}
		t.Resource, t.ResourceType = PolicyARN(s.account, path, p.String("PolicyName")), typePolicy
	case resProvider:
		t.Resource, t.ResourceType = p.String("OpenIDConnectProviderArn"), typeProvider
		prov, err := s.st.Providers().Get(ctx, t.Resource)
		switch {
		case err == nil:
			resourceTags = prov.Tags
		case !errors.Is(err, store.ErrNotFound):
			return t, storeErr(err)
		}
	case resNewProvider:
		t.Resource, t.ResourceType = ProviderARN(s.account, p.String("Url")), typeProvider
	case resSimSource:
		t.Resource = p.String("PolicySourceArn")
		if strings.Contains(t.Resource, ":role/") {
			t.ResourceType = typeRole
		}
	}
	if t.Resource == "" {
		// The naming parameter is missing: authorize against the type's
		// ARN with an empty name; the handler then reports the missing
		// parameter to a caller allowed to call the action at all.
		t.Resource = emptyARN(s.account, t.ResourceType)
	}
	for _, tag := range resourceTags {
		keys["aws:ResourceTag/"+tag.Key] = []string{tag.Value}
		if spec.res == resRole {
			keys["iam:ResourceTag/"+tag.Key] = []string{tag.Value}
		}
	}
	if spec.keys&keyRequestTags != 0 {
		// The same decoding the handler uses; a malformed list is the
		// handler's to refuse, after authorization.
		if tags, present, err := p.Tags("Tags"); err == nil && present {
			tagKeys := make([]string, 0, len(tags))
			for _, tag := range tags {
				keys["aws:RequestTag/"+tag.Key] = []string{tag.Value}
				tagKeys = append(tagKeys, tag.Key)
			}
			keys["aws:TagKeys"] = tagKeys
		}
	}
	if spec.keys&keyTagKeys != 0 {
		if tagKeys, present, err := p.List("TagKeys"); err == nil && present {
			keys["aws:TagKeys"] = tagKeys
		}
	}
	if spec.keys&keyBoundaryRequest != 0 {
		if b, ok := p.Get("PermissionsBoundary"); ok {
			keys["iam:PermissionsBoundary"] = []string{b}
		}
	}
	if spec.keys&keyBoundaryRole != 0 && roleBoundary != "" {
		keys["iam:PermissionsBoundary"] = []string{roleBoundary}
	}
	if spec.keys&keyPolicyARN != 0 {
		if a, ok := p.Get("PolicyArn"); ok {
			keys["iam:PolicyARN"] = []string{a}
		}
	}
	if len(keys) > 0 {
		t.Keys = keys
	}
	return t, nil
}

// emptyARN is the ARN of a resource type with an empty name.
func emptyARN(account, typ string) string {
	switch typ {
	case typePolicy:
		return PolicyARN(account, "/", "")
	case typeProvider:
		return ProviderARN(account, "")
	default:
		return RoleARN(account, "/", "")
	}
}
