package server

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/keylessci/keyless/internal/oidc"
)

// OIDCConfig tunes how keyless reaches OIDC issuers for discovery and keys.
type OIDCConfig struct {
	// CAFiles are PEM files of extra root CAs trusted for issuers' TLS
	// certificates (private CAs of on-prem issuers), besides the system
	// roots and the providers' thumbprints.
	CAFiles []string `json:"ca_files"`
	// ConnectTo reroutes connections, like curl's --connect-to: each entry
	// "HOST:PORT=ADDR:PORT" makes connections for HOST:PORT go to ADDR:PORT
	// while TLS still verifies HOST. For split-horizon networks where an
	// issuer's public name must reach an internal mirror, and for offline
	// tests. ADDR must be an IP address; the destination policy (loopback,
	// private ranges) still applies to it.
	ConnectTo []string `json:"connect_to"`
}

type connectRule struct {
	host, port string
	to         netip.AddrPort
}

func parseConnectTo(entries []string) ([]connectRule, error) {
	var rules []connectRule
	for _, e := range entries {
		from, to, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("oidc.connect_to %q: want HOST:PORT=ADDR:PORT", e)
		}
		host, port, err := net.SplitHostPort(from)
		if err != nil || host == "" {
			return nil, fmt.Errorf("oidc.connect_to %q: %q is not HOST:PORT", e, from)
		}
		ap, err := netip.ParseAddrPort(to)
		if err != nil {
			return nil, fmt.Errorf("oidc.connect_to %q: %q is not IP:PORT", e, to)
		}
		rules = append(rules, connectRule{host: strings.ToLower(host), port: port, to: ap})
	}
	// The guarded dialler resolves names first and dials "ip:port": two
	// rules that resolve to the same address and port must agree on the
	// target, or the dialler could not tell them apart.
	seen := map[string]netip.AddrPort{}
	for _, r := range rules {
		k := net.JoinHostPort(r.to.Addr().String(), r.port)
		if prev, ok := seen[k]; ok && prev != r.to {
			return nil, fmt.Errorf("oidc.connect_to: rules for port %s sending to %s must share one target port", r.port, r.to.Addr())
		}
		seen[k] = r.to
	}
	return rules, nil
}

// connectResolver answers rerouted names with their target address.
type connectResolver struct {
	rules []connectRule
	next  oidc.Resolver
}

func (c connectResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	for _, r := range c.rules {
		if strings.EqualFold(r.host, host) {
			return []netip.Addr{r.to.Addr()}, nil
		}
	}
	return c.next.LookupNetIP(ctx, network, host)
}

// connectDial sends "targetIP:origPort" to "targetIP:targetPort".
func connectDial(rules []connectRule) oidc.DialFunc {
	m := map[string]string{}
	for _, r := range rules {
		m[net.JoinHostPort(r.to.Addr().String(), r.port)] = r.to.String()
	}
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := m[addr]; ok {
			addr = to
		}
		return d.DialContext(ctx, network, addr)
	}
}

func loadCAFiles(files []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("oidc.ca_files: %w", err)
		}
		n := 0
		for {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("oidc.ca_files %s: %w", f, err)
			}
			out = append(out, c)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("oidc.ca_files %s: no PEM certificate found", f)
		}
	}
	return out, nil
}

// oidcNetwork applies OIDCConfig to validator options.
func oidcNetwork(c OIDCConfig, o *oidc.Options) error {
	cas, err := loadCAFiles(c.CAFiles)
	if err != nil {
		return err
	}
	o.ExtraRootCAs = cas
	rules, err := parseConnectTo(c.ConnectTo)
	if err != nil {
		return err
	}
	if len(rules) > 0 {
		o.Resolver = connectResolver{rules: rules, next: net.DefaultResolver}
		o.DialContext = connectDial(rules)
	}
	return nil
}
