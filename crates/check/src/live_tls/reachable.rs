//! Which addresses the checker may open a connection to: globally reachable unicast
//! addresses, and loopback (a server checked on the machine itself, and the tests). Every
//! other special-purpose range (RFC 6890 and its registries: private, shared, link-local,
//! documentation RFC 5737/3849, benchmarking, multicast, reserved) is skipped, so a zone
//! that names such an address never makes the checker talk to a neighbour's network.
//!
//! A minimal version kept in this module; the checker-wide `connect::may_connect` replaces
//! it (same signature and contract: `Ok` means "may connect", `Err` says why not).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether a connection to `ip` may be opened; `Err` says why not.
pub fn may_connect(ip: IpAddr) -> Result<(), String> {
    if allowed(ip) {
        Ok(())
    } else {
        Err(format!("{ip} is not a globally reachable address"))
    }
}

fn allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4),
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                return true;
            }
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_allowed(v4);
            }
            v6_global(v6)
        }
    }
}

fn v4_allowed(ip: Ipv4Addr) -> bool {
    if ip.is_loopback() {
        return true;
    }
    let [a, b, c, _] = ip.octets();
    let special = ip.is_unspecified()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, RFC 6890
        || (a == 198 && (b == 18 || b == 19)); // benchmarking, RFC 2544
    !special
}

fn v6_global(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let special = ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, RFC 4193
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation, RFC 3849
        || (s[0] == 0x3fff && s[1] < 0x1000) // documentation, RFC 9637
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard, RFC 6666
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID…)
        || (s[0] & 0xe000) != 0x2000; // outside global unicast 2000::/3
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_global_only() {
        for ok in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "9.9.9.9",
            "2a00:1450::1",
            "::ffff:9.9.9.9",
        ] {
            assert!(may_connect(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for no in [
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.5",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "240.0.0.1",
            "2001:db8::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::",
            "::ffff:192.168.0.1",
            "3fff::1",
            "100::1",
        ] {
            assert!(may_connect(no.parse().unwrap()).is_err(), "{no}");
        }
    }
}
