package oidc

import (
	"errors"
	"net/netip"
	"net/url"
	"testing"
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
		{"2002:7f00:1::1", classLoopback},    // 6to4 of 127.0.0.1
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
