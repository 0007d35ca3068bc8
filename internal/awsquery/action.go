package awsquery

import (
	"context"
	"net/http"
	"time"
)

// CallerKind says what kind of credential signed a request.
type CallerKind int

const (
	// CallerAdmin is a long-term administrator key (bootstrap or created).
	CallerAdmin CallerKind = iota + 1
	// CallerSession is a short-lived session from STS.
	CallerSession
	// CallerIssuerClient is a long-term key that may only mint ID tokens
	// for one issuer.
	CallerIssuerClient
)

// Caller is the authenticated principal of a signed request.
type Caller struct {
	Kind        CallerKind
	AccessKeyID string
	Account     string
	ARN         string // arn:aws:iam::ACCT:user/NAME or arn:aws:sts::ACCT:assumed-role/ROLE/SESSION
	UserID      string // AIDA... or AROA...:SESSION
	UserName    string // the admin user name, or the session name
	// Session carries the verified session of a CallerSession (the sts
	// package's type); nil otherwise.
	Session any
	// Scope is the issuer id an issuer-client key may mint for.
	Scope string
}

// Request is one decoded Query API call, after authentication.
type Request struct {
	Action    string
	Version   string
	Params    Params
	RequestID string
	Caller    *Caller // nil for unsigned actions
	SourceIP  string
	UserAgent string
	Time      time.Time
	Region    string // from the signature's scope, else the server's region
	// SecureTransport is set when the request came over TLS (or through a
	// trusted proxy that says it did): aws:SecureTransport.
	SecureTransport bool
	// Note collects what the handler wants the audit trail to say beyond
	// what the dispatcher derives itself.
	Note Note
	// ResponseHeader holds headers the handler adds to the response
	// (keyless's own X-Keyless-* headers; nil: none). The dispatcher
	// copies them onto the response, success or error.
	ResponseHeader http.Header
}

// Note is the handler's contribution to the audit event of a call.
type Note struct {
	// Durable asks for the event to be on disk (fsynced) before the
	// response is written: credential exchanges set it.
	Durable bool
	// Identity overrides the userIdentity derived from the caller (for
	// unsigned calls such as AssumeRoleWithWebIdentity).
	Identity any
	// RequestParameters overrides the parameters derived from the form
	// (secrets removed by the handler).
	RequestParameters map[string]any
	// ResponseElements is recorded as responseElements (secrets removed).
	ResponseElements any
	// Additional is merged into additionalEventData.
	Additional map[string]any
	// Resources lists the resources the call touched.
	Resources []Resource
	// Exchange is a credential exchange's complete audit record (the sts
	// package puts an *audit.Exchange here); the server's recorder turns it
	// into the CloudTrail event.
	Exchange any
}

// Resource is one entry of an audit event's resources list.
type Resource struct {
	ARN       string
	AccountID string
	Type      string // e.g. AWS::IAM::Role
}

// Action describes one API operation.
type Action struct {
	Name     string
	Service  string // "iam" or "sts": namespace, version and signing scope
	Unsigned bool   // callable without a signature (AssumeRoleWithWebIdentity)
	ReadOnly bool   // recorded as readOnly in the audit trail
	// Handle returns the Result element's content (a struct encoded with
	// encoding/xml) or nil for actions without output.
	Handle func(ctx context.Context, r *Request) (any, error)
	// Input is the operation's input shape, from the AWS API model: a
	// parameter it does not define is refused before authorization.
	Input *Shape
	// Target returns what a call is authorized against. Nil means the
	// action itself on "*" (actions without a resource type).
	Target func(ctx context.Context, r *Request) (Target, error)
}

// Target is what a call is authorized against, as AWS's Service
// Authorization Reference defines it for the action.
type Target struct {
	// Action is service:Name (iam:CreateRole).
	Action string
	// Resource is the ARN of the resource the action acts on, "*" for an
	// action without a resource type.
	Resource string
	// ResourceType is CloudTrail's type of Resource (AWS::IAM::Role);
	// empty for "*".
	ResourceType string
	// Keys are the request's action-specific condition keys
	// (aws:RequestTag/K, aws:TagKeys, aws:ResourceTag/K,
	// iam:PermissionsBoundary, iam:PolicyARN); the authorizer adds the
	// global and principal keys.
	Keys map[string][]string
}

// Namespace returns the XML namespace of a service.
func Namespace(service string) string {
	if service == "sts" {
		return NamespaceSTS
	}
	return NamespaceIAM
}

// Version returns the API version of a service.
func Version(service string) string {
	if service == "sts" {
		return VersionSTS
	}
	return VersionIAM
}
