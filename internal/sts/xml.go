package sts

import (
	"strconv"

	"github.com/keylessci/keyless/internal/awsquery"
)

// Hand-written XML for the two hot responses; xml_test.go checks it is
// byte-for-byte what encoding/xml writes for the same structs.

func appendElem(b []byte, name, value string) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = awsquery.AppendEscaped(b, value)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

// AppendXML implements awsquery.XMLAppender.
func (r assumeResult) AppendXML(b []byte) []byte {
	b = appendElem(b, "SubjectFromWebIdentityToken", r.SubjectFromWebIdentityToken)
	b = appendElem(b, "Audience", r.Audience)
	b = append(b, "<AssumedRoleUser>"...)
	b = appendElem(b, "Arn", r.AssumedRoleUser.Arn)
	b = appendElem(b, "AssumedRoleId", r.AssumedRoleUser.AssumedRoleID)
	b = append(b, "</AssumedRoleUser><Credentials>"...)
	b = appendElem(b, "SessionToken", r.Credentials.SessionToken)
	b = appendElem(b, "SecretAccessKey", r.Credentials.SecretAccessKey)
	b = appendElem(b, "Expiration", r.Credentials.Expiration)
	b = appendElem(b, "AccessKeyId", r.Credentials.AccessKeyID)
	b = append(b, "</Credentials>"...)
	if r.SourceIdentity != "" {
		b = appendElem(b, "SourceIdentity", r.SourceIdentity)
	}
	if r.PackedPolicySize != nil {
		b = appendElem(b, "PackedPolicySize", strconv.Itoa(*r.PackedPolicySize))
	}
	return appendElem(b, "Provider", r.Provider)
}

// AppendXML implements awsquery.XMLAppender.
func (r callerIdentityResult) AppendXML(b []byte) []byte {
	b = appendElem(b, "Arn", r.Arn)
	b = appendElem(b, "UserId", r.UserID)
	return appendElem(b, "Account", r.Account)
}
