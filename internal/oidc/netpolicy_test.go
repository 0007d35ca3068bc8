package oidc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want addrClass
	}{
		{"93.184.216.34", classPublic},
		{"2606:2800:220:1::1", classPublic},
		{"8.8.8.8", classPublic},
		{"127.0.0.1", classLoopback},
		{"127.255.0.9", classLoopback},
		{"::1", classLoopback},
		{"::ffff:127.0.0.1", classLoopback},
		{"10.1.2.3", classPrivate},
		{"172.16.0.1", classPrivate},
		{"172.31.255.255", classPrivate},
		{"172.32.0.1", classPublic},
		{"192.168.0.1", classPrivate},
		{"100.64.0.1", classPrivate},
		{"198.18.0.1", classPrivate},
		{"fd12:3456::1", classPrivate},
		{"fc00::1", classPrivate},
		{"169.254.169.254", classBlocked},
		{"169.254.0.1", classBlocked},
		{"::ffff:169.254.169.254", classBlocked},
		{"fd00:ec2::254", classBlocked},
		{"fe80::1", classBlocked},
		{"100.100.100.200", classBlocked},
		{"168.63.129.16", classBlocked},
		{"0.0.0.0", classBlocked},
		{"0.1.2.3", classBlocked},
		{"::", classBlocked},
		{"224.0.0.1", classBlocked},
		{"ff02::1", classBlocked},
		{"255.255.255.255", classBlocked},
		{"240.0.0.1", classBlocked},
		{"192.0.2.1", classBlocked},
		{"2001:db8::1", classBlocked},
		{"64:ff9b::a9fe:a9fe", classBlocked}, // NAT64 of 169.254.169.254
		{"64:ff9b::a00:1", classPrivate},     // NAT64 of 10.0.0.1
		{"64:ff9b::5db8:d822", classPublic},  // NAT64 of 93.184.216.34
		{"2002:a9fe:a9fe::1", classBlocked},  // 6to4 of 169.254.169.254
		// A tunnelled or translated loopback address leaves the host:
		// never loopback, always refused.
		{"2002:7f00:1::1", classBlocked}, // 6to4 of 127.0.0.1

		// IPv6 spellings of private and metadata IPv4 addresses (issue 11
		// item 11): each is judged by the IPv4 address it carries.
		{"::7f00:1", classBlocked},                         // IPv4-compatible 127.0.0.1
		{"::a9fe:a9fe", classBlocked},                      // IPv4-compatible 169.254.169.254
		{"::a00:1", classBlocked},                          // IPv4-compatible 10.0.0.1 (deprecated form: never dialled)
		{"::808:808", classBlocked},                        // IPv4-compatible 8.8.8.8 (deprecated form: never dialled)
		{"::ffff:0:a9fe:a9fe", classBlocked},               // IPv4-translated 169.254.169.254
		{"::ffff:0:a00:1", classBlocked},                   // IPv4-translated 10.0.0.1
		{"::ffff:a9fe:a9fe", classBlocked},                 // IPv4-mapped 169.254.169.254
		{"::ffff:10.0.0.1", classPrivate},                  // IPv4-mapped 10.0.0.1
		{"64:ff9b::7f00:1", classBlocked},                  // NAT64 of 127.0.0.1
		{"64:ff9b::c0a8:101", classPrivate},                // NAT64 of 192.168.1.1
		{"64:ff9b:1::a9fe:a9fe", classBlocked},             // local-use NAT64 /96 of 169.254.169.254
		{"64:ff9b:1:a9fe:a9:fe00::", classBlocked},         // local-use NAT64 /48 of 169.254.169.254
		{"64:ff9b:1:7f:0:1::", classBlocked},               // local-use NAT64 /56 of 127.0.0.1
		{"64:ff9b:1:0:a:0:100::", classPrivate},            // local-use NAT64 /64 of 10.0.0.1
		{"64:ff9b:1::5db8:d822", classPrivate},             // local-use NAT64 of a public address: a private network's gateway
		{"2002:a00:1::1", classPrivate},                    // 6to4 of 10.0.0.1
		{"2002:5db8:d822::1", classPublic},                 // 6to4 of 93.184.216.34
		{"2001:0:a9fe:a9fe::1", classBlocked},              // Teredo server 169.254.169.254
		{"2001:0:5db8:d822::5601:5dfd", classBlocked},      // Teredo client ^5601:5dfd = 169.254.162.2
		{"2001:0:5db8:d822::f5ff:fffe", classPrivate},      // Teredo client ^f5ff:fffe = 10.0.0.1
		{"2001:0:5db8:d822::80ff:fffe", classBlocked},      // Teredo client 127.0.0.1
		{"2001:0:5db8:d822::a247:27dd", classPublic},       // Teredo: server 93.184.216.34, client 93.184.216.34
		{"fec0::1", classPrivate},                          // site-local
		{"feff::1", classPrivate},                          // site-local, top of fec0::/10
		{"2606:2800:220:1:0:5efe:a9fe:a9fe", classBlocked}, // ISATAP interface id of 169.254.169.254
		{"2606:2800:220:1:200:5efe:a00:1", classPrivate},   // ISATAP interface id of 10.0.0.1
		{"2606:2800:220:1:0:5efe:5db8:d822", classPublic},  // ISATAP of a public address on a public prefix
		{"::", classBlocked},
		{"::2", classBlocked},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if got := classify(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("classify(%s) = %s, want %s", tc.addr, got, tc.want)
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		loopback, private, http bool
		addr                    string
		ok                      bool
	}{
		{"public https", false, false, false, "93.184.216.34", true},
		{"public http", true, true, true, "93.184.216.34", false},
		{"loopback https refused", false, true, false, "127.0.0.1", false},
		{"loopback https allowed", true, false, false, "127.0.0.1", true},
		{"loopback http allowed", true, false, true, "::1", true},
		{"private refused", true, false, false, "10.0.0.1", false},
		{"private allowed", false, true, false, "10.0.0.1", true},
		{"private http refused even when allowed", true, true, true, "10.0.0.1", false},
		{"metadata refused with everything allowed", true, true, false, "169.254.169.254", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := destinationPolicy{allowLoopback: tc.loopback, allowPrivate: tc.private}
			err := p.check(netip.MustParseAddr(tc.addr), tc.http)
			if (err == nil) != tc.ok {
				t.Fatalf("check = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrDestinationRefused) {
				t.Errorf("error %v is not ErrDestinationRefused", err)
			}
		})
	}
}

func TestCheckFetchURL(t *testing.T) {
	for _, tc := range []struct {
		url      string
		loopback bool
		ok       bool
	}{
		{"https://token.actions.githubusercontent.com/.well-known/jwks", false, true},
		{"https://idp.example:8443/jwks", false, true},
		{"http://idp.example/jwks", true, false},
		{"http://127.0.0.1:8400/oidc/jwks", true, true},
		{"http://127.0.0.1:8400/oidc/jwks", false, false},
		{"http://127.9.9.9/jwks", true, true},
		{"http://[::1]:8400/jwks", true, true},
		{"http://localhost:8400/jwks", true, true},
		{"http://LOCALHOST/jwks", true, true},
		{"http://localhost.evil.example/jwks", true, false},
		{"http://10.0.0.1/jwks", true, false},
		{"ftp://idp.example/jwks", true, false},
		{"file:///etc/passwd", true, false},
		{"https://user:pass@idp.example/jwks", false, false},
		{"https:///jwks", false, false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			err = destinationPolicy{allowLoopback: tc.loopback}.checkFetchURL(u)
			if (err == nil) != tc.ok {
				t.Errorf("checkFetchURL = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// embedForms write an IPv4 address into an IPv6 address in every form
// that carries one; fill supplies the bytes the form leaves free.
var embedForms = []struct {
	name  string
	embed func(v4 [4]byte, fill [16]byte) [16]byte
}{
	{"IPv4-mapped", func(v4 [4]byte, _ [16]byte) [16]byte { return netip.AddrFrom4(v4).As16() }},
	{"IPv4-compatible", func(v4 [4]byte, _ [16]byte) (b [16]byte) { copy(b[12:], v4[:]); return b }},
	{"IPv4-translated", func(v4 [4]byte, _ [16]byte) (b [16]byte) {
		b[8], b[9] = 0xff, 0xff
		copy(b[12:], v4[:])
		return b
	}},
	{"NAT64 well-known", func(v4 [4]byte, _ [16]byte) (b [16]byte) {
		b[1], b[2], b[3] = 0x64, 0xff, 0x9b
		copy(b[12:], v4[:])
		return b
	}},
	{"NAT64 local-use /48", func(v4 [4]byte, f [16]byte) [16]byte {
		b := nat64Local(f)
		b[6], b[7], b[9], b[10] = v4[0], v4[1], v4[2], v4[3]
		return b
	}},
	{"NAT64 local-use /56", func(v4 [4]byte, f [16]byte) [16]byte {
		b := nat64Local(f)
		b[7], b[9], b[10], b[11] = v4[0], v4[1], v4[2], v4[3]
		return b
	}},
	{"NAT64 local-use /64", func(v4 [4]byte, f [16]byte) [16]byte { b := nat64Local(f); copy(b[9:], v4[:]); return b }},
	{"NAT64 local-use /96", func(v4 [4]byte, f [16]byte) [16]byte { b := nat64Local(f); copy(b[12:], v4[:]); return b }},
	{"6to4", func(v4 [4]byte, f [16]byte) [16]byte {
		b := f
		b[0], b[1] = 0x20, 0x02
		copy(b[2:], v4[:])
		return b
	}},
	{"Teredo server", func(v4 [4]byte, f [16]byte) [16]byte {
		b := f
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0, 0
		copy(b[4:], v4[:])
		return b
	}},
	{"Teredo client", func(v4 [4]byte, f [16]byte) [16]byte {
		b := f
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0, 0
		for i, x := range v4 {
			b[12+i] = ^x
		}
		return b
	}},
	{"ISATAP", func(v4 [4]byte, f [16]byte) [16]byte {
		b := f
		b[8], b[9], b[10], b[11] = f[8]&2, 0, 0x5e, 0xfe
		copy(b[12:], v4[:])
		return b
	}},
}

func nat64Local(f [16]byte) [16]byte {
	b := f
	b[0], b[1], b[2], b[3], b[4], b[5] = 0, 0x64, 0xff, 0x9b, 0, 1
	return b
}

// FuzzEmbeddedIPv4: whatever IPv6 form carries an IPv4 address, and
// whatever the other bits, the destination policy refuses it whenever it
// refuses the IPv4 address: a private one without allow_private_network
// issuers, a loopback, link-local, metadata or reserved one always (a
// tunnel never reaches this host's loopback), and plain http through any
// of them always.
func FuzzEmbeddedIPv4(f *testing.F) {
	for _, seed := range []struct {
		v4   [4]byte
		fill string
	}{
		{[4]byte{169, 254, 169, 254}, ""}, {[4]byte{127, 0, 0, 1}, "x"}, {[4]byte{10, 1, 2, 3}, "0123456789abcdef"},
		{[4]byte{192, 168, 0, 1}, "\xff\xff"}, {[4]byte{100, 100, 100, 200}, ""}, {[4]byte{93, 184, 216, 34}, ""},
		{[4]byte{172, 16, 0, 1}, "\x20\x01"}, {[4]byte{0, 0, 0, 1}, ""},
	} {
		f.Add(seed.v4[0], seed.v4[1], seed.v4[2], seed.v4[3], []byte(seed.fill))
	}
	strict := destinationPolicy{}
	loopbackOK := destinationPolicy{allowLoopback: true}
	everythingOK := destinationPolicy{allowLoopback: true, allowPrivate: true}
	f.Fuzz(func(t *testing.T, a, b, c, d byte, fillBytes []byte) {
		v4 := [4]byte{a, b, c, d}
		var fill [16]byte
		copy(fill[:], fillBytes)
		c4 := classify(netip.AddrFrom4(v4))
		for _, form := range embedForms {
			if form.name == "IPv4-compatible" && (v4 == [4]byte{0, 0, 0, 0} || v4 == [4]byte{0, 0, 0, 1}) {
				continue // :: and ::1 are IPv6's own addresses
			}
			if strings.HasPrefix(form.name, "NAT64 local-use") && a == 0 {
				continue // 0.0.0.0/8 reads as another layout's zero padding
			}
			v6 := netip.AddrFrom16(form.embed(v4, fill))
			refused := func(p destinationPolicy, plainHTTP bool) bool { return p.check(v6, plainHTTP) != nil }
			if refused(everythingOK, false) && !refused(strict, false) {
				t.Fatalf("%s %s: refused with everything allowed but accepted by the strict policy", form.name, v6)
			}
			if c4 != classPublic && !refused(strict, false) {
				t.Errorf("%s %s of %s (%s): accepted by the default policy", form.name, v6, netip.AddrFrom4(v4), c4)
			}
			if c4 == classPrivate && !refused(loopbackOK, false) {
				t.Errorf("%s %s of private %s: accepted without allow_private_network_issuers", form.name, v6, netip.AddrFrom4(v4))
			}
			if (c4 == classBlocked || c4 == classLoopback) && form.name != "IPv4-mapped" && !refused(everythingOK, false) {
				t.Errorf("%s %s of %s (%s): accepted with everything allowed", form.name, v6, netip.AddrFrom4(v4), c4)
			}
			if form.name != "IPv4-mapped" && !refused(everythingOK, true) {
				t.Errorf("%s %s: plain http allowed through a tunnel or translation", form.name, v6)
			}
		}
	})
}

// rebindingResolver answers its first lookup of each name with first, and
// every later one with then: DNS rebinding.
type rebindingResolver struct {
	mu          sync.Mutex
	first, then netip.Addr
	lookups     int
}

func (r *rebindingResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	if r.lookups == 1 {
		return []netip.Addr{r.first}, nil
	}
	return []netip.Addr{r.then}, nil
}

// TestDialUsesCheckedAddress: every connection resolves the name once,
// checks every answer, and dials the checked address literally, so a name
// that rebinds between the discovery and the JWKS fetch (or between a
// redirect's hops) to an IPv6 spelling of an internal address is refused at
// the second connection, which never reaches the dialler.
func TestDialUsesCheckedAddress(t *testing.T) {
	kr := keys(t)
	for _, then := range []string{"::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "::7f00:1", "2001:0:a9fe:a9fe::1"} {
		t.Run(then, func(t *testing.T) {
			s := oidctest.NewServer(t, "", oidctest.Options{PublishKeys: []*oidctest.Key{kr.rsa}, Host: "localhost"})
			res := &rebindingResolver{first: netip.MustParseAddr("127.0.0.1"), then: netip.MustParseAddr(then)}
			d := &recordingDialer{}
			v, _ := newServerValidator(t, Options{AllowLoopbackHTTP: true, AllowPrivateNetworks: true, Resolver: res, DialContext: d.dial})
			p := &Provider{URL: s.URL(), ClientIDs: []string{clientID}}
			_, err := v.Validate(context.Background(), serverToken(t, s), lookupOf(p))
			if !errors.Is(err, ErrDestinationRefused) {
				t.Fatalf("err = %v, want ErrDestinationRefused", err)
			}
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL(), "http://"))
			if got, want := d.dialled(), []string{"127.0.0.1:" + port}; !slices.Equal(got, want) {
				t.Errorf("dialled %q, want only the first, checked address %q", got, want)
			}
			if res.lookups != 2 {
				t.Errorf("%d lookups, want one per connection (2)", res.lookups)
			}
		})
	}
}
