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
//
// An IPv6 address that carries an IPv4 address (IPv4-mapped,
// IPv4-compatible, IPv4-translated, NAT64, 6to4, Teredo, ISATAP) is judged
// by that IPv4 address, so every IPv6 spelling of a refused IPv4 destination
// is refused too: see embeddedIPv4.
func classify(a netip.Addr) addrClass {
	a = a.Unmap() // ::ffff:a.b.c.d is a.b.c.d on the wire
	if a.Is6() {
		if v4s, ok := embeddedIPv4(a); ok {
			c := tunnelClass(a)
			for _, v4 := range v4s {
				c = stricter(c, classifyEmbedded(v4))
			}
			return c
		}
	}
	return classifyPlain(a)
}

// classifyPlain classifies an address by its own prefixes only.
func classifyPlain(a netip.Addr) addrClass {
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

// classifyEmbedded classifies an IPv4 address carried inside an IPv6 one.
// Loopback becomes blocked: a packet to such an address leaves this host
// (through a NAT64 gateway, a 6to4 or Teredo relay, an ISATAP router) and
// never reaches its loopback interface, so --allow-loopback-http-issuers must
// not open it.
func classifyEmbedded(v4 netip.Addr) addrClass {
	if c := classifyPlain(v4); c != classLoopback {
		return c
	}
	return classBlocked
}

// stricter returns the more restrictive of two classes: blocked over
// anything; private over loopback and public; loopback over public.
func stricter(a, b addrClass) addrClass {
	rank := func(c addrClass) int {
		switch c {
		case classBlocked:
			return 3
		case classPrivate:
			return 2
		case classLoopback:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// tunnelClass is the least restrictive class an address of an
// IPv4-embedding prefix can have, whatever IPv4 address it carries:
// local-use NAT64 prefixes and ISATAP interface ids with a private-scope
// prefix only translate inside a private network; the deprecated
// IPv4-compatible and IPv4-translated forms are not routable at all.
func tunnelClass(a netip.Addr) addrClass {
	b := a.As16()
	switch {
	case isIPv4Compatible(b), isIPv4Translated(b):
		return classBlocked
	case netip.MustParsePrefix("64:ff9b:1::/48").Contains(a):
		return classPrivate
	case isISATAP(b):
		// The prefix is routed as any IPv6 prefix would be.
		return classifyPlain(a)
	}
	return classPublic
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries, when it
// belongs to a prefix that embeds one:
//
//	::a.b.c.d            IPv4-compatible (RFC 4291 §2.5.5.1, deprecated), not :: or ::1
//	::ffff:0:a.b.c.d     IPv4-translated (RFC 2765 §2.1)
//	64:ff9b::a.b.c.d     NAT64 well-known prefix (RFC 6052)
//	64:ff9b:1::/48       NAT64 local-use prefix (RFC 8215): the IPv4 address
//	                     sits where RFC 6052 puts it for a /48, /56, /64 or
//	                     /96 prefix; all four candidates are returned
//	2002:V4ADDR::/48     6to4 (RFC 3056)
//	2001:0:SERVER::      Teredo (RFC 4380): the server's IPv4 address in
//	                     bits 32-63 and the client's, XORed with
//	                     0xffffffff, in the last 32 bits
//	::0:5efe:a.b.c.d     ISATAP interface id (RFC 5214), any /64 prefix;
//	::200:5efe:a.b.c.d   also with the universal/local bit set
//
// IPv4-mapped addresses (::ffff:a.b.c.d) are unmapped before this is asked.
func embeddedIPv4(a netip.Addr) ([]netip.Addr, bool) {
	b := a.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte(b[i : i+4])) }
	switch {
	case isIPv4Compatible(b), isIPv4Translated(b):
		return []netip.Addr{v4(12)}, true
	case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
		return []netip.Addr{v4(12)}, true
	case netip.MustParsePrefix("64:ff9b:1::/48").Contains(a):
		// RFC 6052 §2.2: bits 64-71 (byte 8) are skipped. A candidate in
		// 0.0.0.0/8 is the zero padding of another layout, not a
		// destination (the prefix itself keeps the address private).
		var out []netip.Addr
		for _, c := range []netip.Addr{
			netip.AddrFrom4([4]byte{b[6], b[7], b[9], b[10]}),  // /48
			netip.AddrFrom4([4]byte{b[7], b[9], b[10], b[11]}), // /56
			v4(9),  // /64
			v4(12), // /96
		} {
			if c.As4()[0] != 0 {
				out = append(out, c)
			}
		}
		return out, true
	case netip.MustParsePrefix("2002::/16").Contains(a):
		return []netip.Addr{v4(2)}, true
	case netip.MustParsePrefix("2001::/32").Contains(a):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []netip.Addr{v4(4), netip.AddrFrom4(client)}, true
	case isISATAP(b):
		return []netip.Addr{v4(12)}, true
	}
	return nil, false
}

// isIPv4Compatible: ::a.b.c.d, except :: and ::1, which are IPv6's own
// unspecified and loopback addresses.
func isIPv4Compatible(b [16]byte) bool {
	for _, x := range b[:12] {
		if x != 0 {
			return false
		}
	}
	return !(b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] <= 1)
}

// isIPv4Translated: ::ffff:0:a.b.c.d.
func isIPv4Translated(b [16]byte) bool {
	for _, x := range b[:8] {
		if x != 0 {
			return false
		}
	}
	return b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0
}

// isISATAP: an interface id of 0000:5efe or 0200:5efe followed by an IPv4
// address.
func isISATAP(b [16]byte) bool {
	return (b[8] == 0 || b[8] == 2) && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe
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
		netip.MustParsePrefix("fec0::/10"),     // site-local (RFC 3879 deprecated it; ULA replaced it)
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
