//! SMTP TLS Reporting policy records (RFC 8460 §3: `_smtp._tls` owner, `v=TLSRPTv1; rua=`).

/// `v=TLSRPTv1; rua=<uri>[,<uri>]` (RFC 8460 §3: several URIs are comma-separated).
pub fn value(rua: &[String]) -> String {
    format!("v=TLSRPTv1; rua={}", rua.join(","))
}

#[cfg(test)]
mod tests {
    #[test]
    fn value() {
        assert_eq!(
            super::value(&["mailto:postmaster@example.org".into()]),
            "v=TLSRPTv1; rua=mailto:postmaster@example.org"
        );
    }
}
