package ciauth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"
)

// CABundleEnv names the file of CA certificates the AWS CLI and SDKs trust
// instead of the system's for AWS endpoints; keyless's client commands
// honour it (and --ca-bundle, which wins) for the server they call.
const CABundleEnv = "AWS_CA_BUNDLE"

// CABundlePath is the CA bundle a client command uses: the flag's value,
// else $AWS_CA_BUNDLE; "" for the system's roots.
func CABundlePath(flag string, getenv func(string) string) string {
	if flag != "" {
		return flag
	}
	return getenv(CABundleEnv)
}

// CABundleClient returns an HTTP client that trusts exactly the
// certificates in the PEM file path, as the AWS CLI and SDKs do with
// AWS_CA_BUNDLE (the bundle replaces the system roots; it does not add to
// them). It returns nil for path "": callers then keep their default.
// timeout bounds a whole request (0: none, the SDK's own default).
func CABundleClient(path string, timeout time.Duration) (*http.Client, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s: no PEM certificate in it", path)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}
