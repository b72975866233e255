package egress

import "net/netip"

// addrRange names one block of non-public addresses.
type addrRange struct {
	prefix netip.Prefix
	class  string
}

// nonPublic4 lists the IPv4 blocks that are not public unicast (RFC 6890 and
// successors). The first match names the class, so narrower blocks come first.
var nonPublic4 = []addrRange{
	{netip.MustParsePrefix("0.0.0.0/32"), "unspecified"},
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// nonPublic6 lists the IPv6 blocks inside 2000::/3 (the only global unicast
// space) and the special blocks outside it that are not public unicast.
// Blocks that embed an IPv4 address are handled in addrClass.
var nonPublic6 = []addrRange{
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("fc00::/7"), "unique local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	// Teredo, benchmarking, ORCHID and other protocol assignments.
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment"},
}

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// IsPublicUnicast reports whether a is a public unicast address that the
// egress proxy may dial. It is false for the invalid address, loopback,
// RFC 1918 private, link-local (including 169.254.169.254), CGNAT 100.64/10,
// unique local fc00::/7, multicast, broadcast, unspecified, 0.0.0.0/8,
// 192.0.0.0/24, documentation and benchmarking blocks, 240/4, IPv6 outside
// 2000::/3, and the IPv4-mapped, 6to4 (2002::/16) and NAT64 (64:ff9b::/96)
// forms of a non-public IPv4 address. The deprecated IPv4-compatible form
// (::a.b.c.d) is never public. A zone is ignored.
func IsPublicUnicast(a netip.Addr) bool {
	return a.IsValid() && addrClass(a) == ""
}

// addrClass returns the class of a non-public address ("loopback",
// "private", "IPv4-mapped loopback", …), or "" for a public unicast one.
func addrClass(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.WithZone("")
	if a.Is4() {
		return class4(a)
	}
	if a.Is4In6() {
		return embedded("IPv4-mapped", a.Unmap())
	}
	b := a.As16()
	if nat64.Contains(a) {
		return embedded("NAT64", netip.AddrFrom4([4]byte(b[12:16])))
	}
	if sixToFour.Contains(a) {
		return embedded("6to4", netip.AddrFrom4([4]byte(b[2:6])))
	}
	for _, r := range nonPublic6 {
		if r.prefix.Contains(a) {
			return r.class
		}
	}
	if !globalUnicast6.Contains(a) {
		return "reserved"
	}
	return ""
}

// class4 classifies an IPv4 address.
func class4(a netip.Addr) string {
	for _, r := range nonPublic4 {
		if r.prefix.Contains(a) {
			return r.class
		}
	}
	return ""
}

// embedded classifies an IPv6 form by the IPv4 address it carries.
func embedded(form string, v4 netip.Addr) string {
	if c := class4(v4); c != "" {
		return form + " " + c
	}
	return ""
}
