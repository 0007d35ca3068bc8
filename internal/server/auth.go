package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/sigv4"
)

// SessionResolver resolves short-lived session credentials (ASIA… keys with
// a session token) to their secret and caller; the sts package implements
// it by opening the sealed session token, without a store lookup.
type SessionResolver interface {
	ResolveSession(ctx context.Context, accessKeyID, sessionToken string) (secret string, caller *awsquery.Caller, err error)
}

// authenticator verifies SigV4 and resolves who signed.
type authenticator struct {
	verifier *sigv4.Verifier
	keys     *iam.KeyManager
	sessions SessionResolver
}

// authenticate verifies r (whose body is already read) for service and
// returns the caller. Errors are *awsquery.Error with AWS's codes.
func (a *authenticator) authenticate(ctx context.Context, r *http.Request, body []byte, service string) (*awsquery.Caller, *sigv4.Signature, error) {
	sig, err := a.verifier.Parse(r)
	if err != nil {
		return nil, nil, err
	}
	if err := sig.RequireService(service); err != nil {
		return nil, nil, err
	}
	var (
		secret string
		caller *awsquery.Caller
	)
	switch {
	case sig.SessionToken != "":
		if a.sessions == nil {
			return nil, nil, sigv4.InvalidClientTokenID(errors.New("no session resolver"))
		}
		secret, caller, err = a.sessions.ResolveSession(ctx, sig.AccessKeyID, sig.SessionToken)
		if err != nil {
			return nil, nil, err
		}
	case strings.HasPrefix(sig.AccessKeyID, iam.PrefixSessionKey):
		// A temporary key without its token can never verify.
		return nil, nil, sigv4.InvalidClientTokenID(errors.New("session key without session token"))
	default:
		secret, caller, err = a.keys.Resolve(ctx, sig.AccessKeyID)
		if errors.Is(err, iam.ErrUnknownKey) {
			return nil, nil, sigv4.InvalidClientTokenID(err)
		}
		if err != nil {
			return nil, nil, awsquery.Internal(awsquery.CodeInternalFailure, err)
		}
	}
	if err := sig.Verify(r, body, secret); err != nil {
		return nil, nil, err
	}
	return caller, sig, nil
}
