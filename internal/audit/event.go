package audit

import (
	"time"
)

// EventVersion is the CloudTrail record format version keyless writes.
const EventVersion = "1.11"

// Event is one CloudTrail record. Field names and JSON types are CloudTrail's,
// so the same type decodes real CloudTrail delivery files and keyless's own.
// Optional fields are omitted when empty; requestParameters and
// responseElements are always present (an object or null), as in CloudTrail.
type Event struct {
	EventVersion                 string         `json:"eventVersion"`
	UserIdentity                 *UserIdentity  `json:"userIdentity,omitzero"`
	EventTime                    time.Time      `json:"eventTime"`
	EventSource                  string         `json:"eventSource,omitempty"`
	EventName                    string         `json:"eventName,omitempty"`
	AWSRegion                    string         `json:"awsRegion,omitempty"`
	SourceIPAddress              string         `json:"sourceIPAddress,omitempty"`
	UserAgent                    string         `json:"userAgent,omitempty"`
	ErrorCode                    string         `json:"errorCode,omitempty"`
	ErrorMessage                 string         `json:"errorMessage,omitempty"`
	RequestParameters            map[string]any `json:"requestParameters"`
	ResponseElements             map[string]any `json:"responseElements"`
	AdditionalEventData          map[string]any `json:"additionalEventData,omitzero"`
	RequestID                    string         `json:"requestID,omitempty"`
	EventID                      string         `json:"eventID"`
	ReadOnly                     bool           `json:"readOnly"`
	Resources                    []Resource     `json:"resources,omitzero"`
	EventType                    string         `json:"eventType,omitempty"`
	APIVersion                   string         `json:"apiVersion,omitempty"`
	ManagementEvent              bool           `json:"managementEvent"`
	RecipientAccountID           string         `json:"recipientAccountId,omitempty"`
	SharedEventID                string         `json:"sharedEventID,omitempty"`
	VPCEndpointID                string         `json:"vpcEndpointId,omitempty"`
	VPCEndpointAccountID         string         `json:"vpcEndpointAccountId,omitempty"`
	ServiceEventDetails          map[string]any `json:"serviceEventDetails,omitzero"`
	EventCategory                string         `json:"eventCategory,omitempty"`
	Addendum                     *Addendum      `json:"addendum,omitzero"`
	SessionCredentialFromConsole string         `json:"sessionCredentialFromConsole,omitempty"`
	EdgeDeviceDetails            map[string]any `json:"edgeDeviceDetails,omitzero"`
	TLSDetails                   *TLSDetails    `json:"tlsDetails,omitzero"`
	EventContext                 map[string]any `json:"eventContext,omitzero"`
	InsightDetails               map[string]any `json:"insightDetails,omitzero"`
}

// UserIdentity is CloudTrail's userIdentity element.
type UserIdentity struct {
	Type             string          `json:"type,omitempty"`
	PrincipalID      string          `json:"principalId,omitempty"`
	ARN              string          `json:"arn,omitempty"`
	AccountID        string          `json:"accountId,omitempty"`
	AccessKeyID      string          `json:"accessKeyId,omitempty"`
	UserName         string          `json:"userName,omitempty"`
	InvokedBy        string          `json:"invokedBy,omitempty"`
	IdentityProvider string          `json:"identityProvider,omitempty"`
	CredentialID     string          `json:"credentialId,omitempty"`
	SessionContext   *SessionContext `json:"sessionContext,omitzero"`
	OnBehalfOf       *OnBehalfOf     `json:"onBehalfOf,omitzero"`
	InScopeOf        map[string]any  `json:"inScopeOf,omitzero"`
}

// SessionContext describes the temporary-credential session behind a call.
// CloudTrail writes empty objects ({}) for sessionIssuer and
// webIdFederationData of non-role sessions; pointers keep {} and absent apart.
type SessionContext struct {
	SessionIssuer       *SessionIssuer       `json:"sessionIssuer,omitzero"`
	WebIDFederationData *WebIDFederationData `json:"webIdFederationData,omitzero"`
	Attributes          *SessionAttributes   `json:"attributes,omitzero"`
	SourceIdentity      string               `json:"sourceIdentity,omitempty"`
	EC2RoleDelivery     string               `json:"ec2RoleDelivery,omitempty"`
	AssumedRoot         string               `json:"assumedRoot,omitempty"`
}

// SessionIssuer is the role (or user) that issued the session.
type SessionIssuer struct {
	Type        string `json:"type,omitempty"`
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	UserName    string `json:"userName,omitempty"`
}

// WebIDFederationData names the OIDC provider behind a web-identity session.
type WebIDFederationData struct {
	FederatedProvider string            `json:"federatedProvider,omitempty"`
	Attributes        map[string]string `json:"attributes,omitzero"`
}

// SessionAttributes holds CloudTrail's session attributes. Both are strings
// in CloudTrail ("true"/"false", ISO-8601 Z), not JSON booleans or times.
type SessionAttributes struct {
	CreationDate     string `json:"creationDate,omitempty"`
	MFAAuthenticated string `json:"mfaAuthenticated,omitempty"`
}

// OnBehalfOf is set for IAM Identity Center users.
type OnBehalfOf struct {
	UserID           string `json:"userId,omitempty"`
	IdentityStoreARN string `json:"identityStoreArn,omitempty"`
}

// Resource is an element of the resources list. CloudTrail spells the key
// "ARN".
type Resource struct {
	ARN       string `json:"ARN,omitempty"`
	AccountID string `json:"accountId,omitempty"`
	Type      string `json:"type,omitempty"`
}

// TLSDetails describes the client's TLS connection.
type TLSDetails struct {
	TLSVersion               string `json:"tlsVersion,omitempty"`
	CipherSuite              string `json:"cipherSuite,omitempty"`
	ClientProvidedHostHeader string `json:"clientProvidedHostHeader,omitempty"`
}

// Addendum marks a late or corrected record.
type Addendum struct {
	Reason            string `json:"reason,omitempty"`
	UpdatedFields     string `json:"updatedFields,omitempty"`
	OriginalRequestID string `json:"originalRequestID,omitempty"`
	OriginalEventID   string `json:"originalEventID,omitempty"`
}

// Values CloudTrail uses in the fields above.
const (
	EventTypeAPICall        = "AwsApiCall"
	EventCategoryManagement = "Management"

	IdentityWebIdentityUser = "WebIdentityUser"
	IdentityAssumedRole     = "AssumedRole"
	IdentityIAMUser         = "IAMUser"
	IdentityRole            = "Role"

	SourceSTS = "sts.amazonaws.com"
	SourceIAM = "iam.amazonaws.com"

	ResourceTypeRole = "AWS::IAM::Role"
)
