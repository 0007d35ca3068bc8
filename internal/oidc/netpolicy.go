package oidc

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// Destination policy (V16). A provider URL is data an IAM administrator
// typed, and the jwks_uri is data the provider's discovery document chose,
// so both are checked where it matters: on the resolved address, at dial
// time (resolve, check, then dial that exact address), which also defeats DNS
// names that resolve to internal addresses.

// addrClass is what the policy knows about an address.
type addrClass int

const (
	classPublic   addrClass = iota
	classLoopback           // allowed only with AllowLoopbackHTTP
	classPrivate            // RFC 1918, ULA, CGNAT, …: only with AllowPrivateNetworks
	classBlocked            // never: link-local, metadata, multicast, unspecified, reserved
)

func (c addrClass) String() string {
	switch c {
	case classLoopback:
		return "loopback"
	case classPrivate:
		return "private-network"
	case classBlocked:
		return "link-local/metadata/reserved"
	}
	return "public"
}

// classify sorts an address into the policy's classes. The prefix tables
// are functions rather than package variables (no package-level mutable
// state); classification runs once per dial, so their cost does not matter.
func classify(a netip.Addr) addrClass {
	a = a.Unmap()
	if a.Is6() {
		// NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4
		// destination: judge that one.
		if nat64 := netip.MustParsePrefix("64:ff9b::/96"); nat64.Contains(a) {
			b := a.As16()
			return classify(netip.AddrFrom4([4]byte(b[12:16])))
		}
		if sixto4 := netip.MustParsePrefix("2002::/16"); sixto4.Contains(a) {
			b := a.As16()
			return classify(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return classBlocked
	case a.IsLoopback():
		return classLoopback
	}
	for _, p := range blockedPrefixes() {
		if p.Contains(a) {
			return classBlocked
		}
	}
	if a.IsPrivate() {
		return classPrivate
	}
	for _, p := range privatePrefixes() {
		if p.Contains(a) {
			return classPrivate
		}
	}
	return classPublic
}

// blockedPrefixes are never dialled: cloud metadata endpoints and ranges no
// legitimate IdP lives in.
func blockedPrefixes() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
		netip.MustParsePrefix("169.254.0.0/16"),     // link-local, AWS/GCP/Azure/OCI metadata 169.254.169.254
		netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
		netip.MustParsePrefix("168.63.129.16/32"),   // Azure WireServer
		netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),       // documentation
		netip.MustParsePrefix("198.51.100.0/24"),    // documentation
		netip.MustParsePrefix("203.0.113.0/24"),     // documentation
		netip.MustParsePrefix("240.0.0.0/4"),        // reserved, incl. broadcast
		netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS IMDS over IPv6
		netip.MustParsePrefix("2001:db8::/32"),      // documentation
		netip.MustParsePrefix("100::/64"),           // discard-only
	}
}

// privatePrefixes complement netip.Addr.IsPrivate (RFC 1918 and fc00::/7).
func privatePrefixes() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT, used inside some clouds
		netip.MustParsePrefix("198.18.0.0/15"), // benchmarking, used as internal space
	}
}

// destinationPolicy decides which resolved addresses may be dialled.
type destinationPolicy struct {
	allowLoopback bool
	allowPrivate  bool
}

func (p destinationPolicy) check(a netip.Addr, plainHTTP bool) error {
	c := classify(a)
	if plainHTTP && c != classLoopback {
		return fmt.Errorf("%w: plain http to %s (%s); only loopback issuers may use http", ErrDestinationRefused, a, c)
	}
	switch c {
	case classPublic:
		return nil
	case classLoopback:
		if p.allowLoopback {
			return nil
		}
	case classPrivate:
		if p.allowPrivate {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is a %s address", ErrDestinationRefused, a, c)
}

// checkFetchURL vets a discovery or JWKS URL before any request: https, or
// http to a loopback host when loopback issuers are allowed (CONTRACT §2).
// The dialler re-checks the resolved address.
func (p destinationPolicy) checkFetchURL(u *url.URL) error {
	if u.User != nil {
		return fmt.Errorf("%w: URL carries user information", ErrDestinationRefused)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: URL has no host", ErrDestinationRefused)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if p.allowLoopback && isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%w: plain http to %q; only https, or http to a loopback host with loopback issuers allowed", ErrDestinationRefused, u.Hostname())
	default:
		return fmt.Errorf("%w: scheme %q", ErrDestinationRefused, u.Scheme)
	}
}

// isLoopbackHost reports whether host names the loopback interface:
// 127.0.0.0/8, ::1 or localhost (CONTRACT §2).
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// Resolver is the part of *net.Resolver the dialler needs.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc dials an address that has already passed the destination policy
// ("ip:port").
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// guardedDial resolves host, refuses the whole name if any of its addresses
// is refused (a mixed answer is how DNS rebinding hides an internal
// address), then dials the checked addresses in order.
func (p destinationPolicy) guardedDial(ctx context.Context, res Resolver, dial DialFunc, network, addr string, plainHTTP bool) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDestinationRefused, err)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = res.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("no addresses for %q", host)
		}
	}
	for _, a := range addrs {
		if err := p.check(a, plainHTTP); err != nil {
			return nil, err
		}
	}
	var firstErr error
	for _, a := range addrs {
		conn, err := dial(ctx, network, net.JoinHostPort(a.Unmap().WithZone("").String(), port))
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}
