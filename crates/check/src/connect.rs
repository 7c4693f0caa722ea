//! Which addresses the checker may open a connection to (HTTPS for the MTA-STS policy, SMTP
//! and IMAP for live TLS). The addresses come from DNS, i.e. from whoever writes the zone:
//! a checker that connects wherever a record points could be steered at a private network,
//! and a test zone that leaks an address would send traffic off the machine. So one rule,
//! in one place: loopback and globally reachable unicast only. Everything RFC 6890's
//! special-purpose registries mark as not globally reachable (private, shared, link-local,
//! unique-local, documentation, benchmarking, reserved, multicast, broadcast, unspecified)
//! is refused, with the reason, and the caller reports the skip in its finding.
//!
//! The DNS servers themselves are not subject to this rule: they are given by the user
//! (`--nameserver`, `/etc/resolv.conf`), not by the zone under test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

/// Whether the checker may connect to `ip`: `Ok` for loopback and global unicast, otherwise
/// why not (a phrase such as "192.0.2.1 is a documentation address (RFC 5737)").
pub fn may_connect(ip: IpAddr) -> Result<(), String> {
    let refused = match ip {
        IpAddr::V4(v4) => v4_refusal(v4),
        IpAddr::V6(v6) => v6_refusal(v6),
    };
    match refused {
        None => Ok(()),
        Some(why) => Err(format!("{ip} is {why}, not a globally reachable address")),
    }
}

/// The addresses of `candidates` the checker may connect to, and the reasons the others
/// were refused (for the finding that reports the skip).
pub fn allowed(candidates: &[IpAddr]) -> (Vec<IpAddr>, Vec<String>) {
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for ip in candidates {
        match may_connect(*ip) {
            Ok(()) => ok.push(*ip),
            Err(why) => refused.push(why),
        }
    }
    (ok, refused)
}

/// The TLS client configuration of every connection the checker opens: the Mozilla roots
/// (webpki-roots) plus, when the `SSL_CERT_FILE` environment variable names a PEM file, the
/// certificates in it (the OpenSSL convention; tests trust their own CA this way). Built
/// once per process: the root store is the costly part.
pub fn tls_client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
                add_pem_roots(&mut roots, std::path::Path::new(&path));
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Adds the certificates of the PEM file at `path` to `roots`; an unreadable file or a bad
/// certificate is logged and skipped (the Mozilla roots still apply).
fn add_pem_roots(roots: &mut rustls::RootCertStore, path: &std::path::Path) {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let certs = match CertificateDer::pem_file_iter(path) {
        Ok(certs) => certs,
        Err(e) => {
            tracing::warn!("SSL_CERT_FILE {}: {e}", path.display());
            return;
        }
    };
    for cert in certs {
        match cert
            .map_err(|e| e.to_string())
            .and_then(|c| roots.add(c).map_err(|e| e.to_string()))
        {
            Ok(()) => {}
            Err(e) => tracing::warn!(
                "SSL_CERT_FILE {}: skipping a certificate: {e}",
                path.display()
            ),
        }
    }
}

/// `a.b.c.d/len` contains `ip`.
fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// `net/len` contains `ip`.
fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    u128::from(ip) & mask == u128::from(net) & mask
}

/// RFC 6890 §2.2.2 (IPv4 special-purpose registry) and its later entries: why `ip` is not
/// allowed, if it is not. Loopback (127.0.0.0/8) is allowed: tests run there.
fn v4_refusal(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([127, 0, 0, 0], 8, ""),
        ([0, 0, 0, 0], 8, "in \"this network\" 0.0.0.0/8 (RFC 1122)"),
        ([10, 0, 0, 0], 8, "a private address (RFC 1918)"),
        ([100, 64, 0, 0], 10, "a shared CGN address (RFC 6598)"),
        ([169, 254, 0, 0], 16, "a link-local address (RFC 3927)"),
        ([172, 16, 0, 0], 12, "a private address (RFC 1918)"),
        ([192, 0, 0, 0], 24, "an IETF protocol assignment (RFC 6890)"),
        ([192, 0, 2, 0], 24, "a documentation address (RFC 5737)"),
        (
            [192, 88, 99, 0],
            24,
            "a deprecated 6to4 relay address (RFC 7526)",
        ),
        ([192, 168, 0, 0], 16, "a private address (RFC 1918)"),
        ([198, 18, 0, 0], 15, "a benchmarking address (RFC 2544)"),
        ([198, 51, 100, 0], 24, "a documentation address (RFC 5737)"),
        ([203, 0, 113, 0], 24, "a documentation address (RFC 5737)"),
        ([224, 0, 0, 0], 4, "a multicast address (RFC 5771)"),
        ([255, 255, 255, 255], 32, "the broadcast address (RFC 919)"),
        ([240, 0, 0, 0], 4, "a reserved address (RFC 1112)"),
    ];
    RANGES
        .iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .and_then(|(_, _, why)| (!why.is_empty()).then_some(*why))
}

/// RFC 6890 §2.2.3 (IPv6 special-purpose registry) and its later entries: why `ip` is not
/// allowed, if it is not. Loopback (::1) is allowed; an IPv4-mapped address is judged by
/// its IPv4 address; only global unicast (2000::/3) is allowed otherwise.
fn v6_refusal(ip: Ipv6Addr) -> Option<&'static str> {
    if ip == Ipv6Addr::LOCALHOST {
        return None;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_refusal(v4);
    }
    let n = |s: &str| s.parse::<Ipv6Addr>().expect("a valid prefix");
    let ranges: [(&str, u32, &'static str); 14] = [
        ("::", 128, "the unspecified address (RFC 4291)"),
        ("::", 96, "a deprecated IPv4-compatible address (RFC 4291)"),
        ("64:ff9b:1::", 48, "a local-use NAT64 address (RFC 8215)"),
        ("100::", 64, "a discard-only address (RFC 6666)"),
        ("2001:db8::", 32, "a documentation address (RFC 3849)"),
        ("3fff::", 20, "a documentation address (RFC 9637)"),
        ("2001:2::", 48, "a benchmarking address (RFC 5180)"),
        ("2001::", 23, "an IETF protocol assignment (RFC 2928)"),
        ("5f00::", 16, "an SRv6 SID (RFC 9602)"),
        ("fc00::", 7, "a unique local address (RFC 4193)"),
        ("fe80::", 10, "a link-local address (RFC 4291)"),
        ("fec0::", 10, "a deprecated site-local address (RFC 3879)"),
        ("ff00::", 8, "a multicast address (RFC 4291)"),
        ("64:ff9b::", 96, ""),
    ];
    if let Some((_, _, why)) = ranges.iter().find(|(net, len, _)| in_v6(ip, n(net), *len)) {
        return (!why.is_empty()).then_some(*why);
    }
    if !in_v6(ip, n("2000::"), 3) {
        return Some("outside global unicast 2000::/3 (RFC 4291)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        may_connect(s.parse().unwrap()).is_ok()
    }

    #[test]
    fn loopback_and_global_unicast_are_allowed() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "1.1.1.1",
            "8.8.8.8",
            "192.0.3.1",
            "198.20.0.1",
            "2a00:1450:4001:80e::200e",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
        ] {
            assert!(ok(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn documentation_and_special_use_ranges_are_refused() {
        for ip in [
            // RFC 5737 and RFC 3849 / 9637 documentation.
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.255",
            "2001:db8::1",
            "3fff::1",
            // Private, shared, link-local, this-network, reserved, broadcast, multicast.
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "0.1.2.3",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.251",
            "198.18.0.1",
            "192.0.0.8",
            // IPv6 unspecified, ULA, link-local, multicast, mapped private, others.
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::fb",
            "::ffff:10.0.0.1",
            "::ffff:192.0.2.1",
            "100::1",
            "2001:2::1",
            "2001::1",
            "::1.2.3.4",
            "4000::1",
        ] {
            assert!(!ok(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn the_reason_names_the_range() {
        let why = may_connect("192.0.2.1".parse().unwrap()).unwrap_err();
        assert_eq!(
            why,
            "192.0.2.1 is a documentation address (RFC 5737), not a globally reachable address"
        );
        let why = may_connect("2001:db8::25".parse().unwrap()).unwrap_err();
        assert!(why.contains("RFC 3849"), "{why}");
        let why = may_connect("10.0.0.25".parse().unwrap()).unwrap_err();
        assert!(why.contains("private"), "{why}");
    }
}
