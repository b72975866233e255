package egress

import (
	"net/netip"
	"testing"
)

func TestIsPublicUnicast(t *testing.T) {
	tests := []struct {
		addr      string
		want      bool
		wantClass string // for non-public addresses
	}{
		{addr: "8.8.8.8", want: true},
		{addr: "1.1.1.1", want: true},
		{addr: "133.11.0.1", want: true},
		{addr: "2001:4860:4860::8888", want: true},
		{addr: "2404:6800:4004:80a::200e", want: true},
		{addr: "::ffff:8.8.8.8", want: true},
		{addr: "64:ff9b::808:808", want: true},
		{addr: "2002:808:808::1", want: true},
		{addr: "100.63.255.255", want: true},
		{addr: "100.128.0.0", want: true},
		{addr: "172.32.0.1", want: true},
		{addr: "192.0.1.1", want: true},
		{addr: "223.255.255.255", want: true},

		{addr: "0.0.0.0", wantClass: "unspecified"},
		{addr: "0.1.2.3", wantClass: "this-network"},
		{addr: "10.0.0.5", wantClass: "private"},
		{addr: "10.255.255.255", wantClass: "private"},
		{addr: "100.64.0.1", wantClass: "shared (CGNAT)"},
		{addr: "100.127.255.255", wantClass: "shared (CGNAT)"},
		{addr: "127.0.0.1", wantClass: "loopback"},
		{addr: "127.255.0.9", wantClass: "loopback"},
		{addr: "169.254.169.254", wantClass: "cloud metadata"},
		{addr: "169.254.0.1", wantClass: "link-local"},
		{addr: "172.16.0.1", wantClass: "private"},
		{addr: "172.31.255.255", wantClass: "private"},
		{addr: "192.0.0.8", wantClass: "IETF protocol assignment"},
		{addr: "192.0.2.1", wantClass: "documentation"},
		{addr: "192.88.99.1", wantClass: "6to4 relay anycast"},
		{addr: "192.168.1.1", wantClass: "private"},
		{addr: "198.18.0.1", wantClass: "benchmarking"},
		{addr: "198.19.255.255", wantClass: "benchmarking"},
		{addr: "198.51.100.7", wantClass: "documentation"},
		{addr: "203.0.113.9", wantClass: "documentation"},
		{addr: "224.0.0.1", wantClass: "multicast"},
		{addr: "239.255.255.250", wantClass: "multicast"},
		{addr: "240.0.0.1", wantClass: "reserved"},
		{addr: "255.255.255.255", wantClass: "broadcast"},

		{addr: "::", wantClass: "unspecified"},
		{addr: "::1", wantClass: "loopback"},
		{addr: "fe80::1", wantClass: "link-local"},
		{addr: "fe80::1%eth0", wantClass: "link-local"},
		{addr: "fc00::1", wantClass: "unique local"},
		{addr: "fd12:3456::1", wantClass: "unique local"},
		{addr: "fec0::1", wantClass: "site-local (deprecated)"},
		{addr: "ff02::1", wantClass: "multicast"},
		{addr: "2001:db8::1", wantClass: "documentation"},
		{addr: "3fff::1", wantClass: "documentation"},
		{addr: "2001::1", wantClass: "IETF protocol assignment"}, // Teredo
		{addr: "2001:2::1", wantClass: "IETF protocol assignment"},
		{addr: "4000::1", wantClass: "reserved"},
		{addr: "100::1", wantClass: "reserved"}, // discard-only
		{addr: "::ffff:127.0.0.1", wantClass: "IPv4-mapped loopback"},
		{addr: "::ffff:10.0.0.1", wantClass: "IPv4-mapped private"},
		{addr: "::ffff:169.254.169.254", wantClass: "IPv4-mapped cloud metadata"},
		{addr: "::ffff:0.0.0.0", wantClass: "IPv4-mapped unspecified"},
		{addr: "::127.0.0.1", wantClass: "IPv4-compatible (deprecated)"},
		{addr: "::8.8.8.8", wantClass: "IPv4-compatible (deprecated)"},
		{addr: "2002:7f00:1::", wantClass: "6to4 loopback"},
		{addr: "2002:a9fe:a9fe::1", wantClass: "6to4 cloud metadata"},
		{addr: "2002:c0a8:101::", wantClass: "6to4 private"},
		{addr: "64:ff9b::7f00:1", wantClass: "NAT64 loopback"},
		{addr: "64:ff9b::a00:5", wantClass: "NAT64 private"},
		{addr: "64:ff9b:1::808:808", wantClass: "local-use NAT64"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			if got := IsPublicUnicast(a); got != tt.want {
				t.Errorf("IsPublicUnicast(%s) = %v, want %v", a, got, tt.want)
			}
			if got := addrClass(a); got != tt.wantClass {
				t.Errorf("addrClass(%s) = %q, want %q", a, got, tt.wantClass)
			}
		})
	}
	if IsPublicUnicast(netip.Addr{}) {
		t.Error("IsPublicUnicast(invalid) = true")
	}
}
