//! DMARC policy records (RFC 7489 §6.1 `_dmarc` owner, §6.3 tags, §6.4 formal syntax; the
//! tags emitted are also valid under RFC 9989, which drops `pct`, so it is never emitted).

use crate::model::{Alignment, DmarcPolicy};

/// `v=DMARC1; p=…[; sp=…][; adkim=…][; aspf=…][; rua=…][; ruf=…]` — `v` first and `p`
/// second, as RFC 7489 §6.4 requires.
pub fn value(policy: &DmarcPolicy) -> String {
    let mut tags = vec![
        "v=DMARC1".to_string(),
        format!("p={}", policy.policy.as_str()),
    ];
    if let Some(sp) = policy.subdomain_policy {
        tags.push(format!("sp={}", sp.as_str()));
    }
    if let Some(a) = policy.adkim {
        tags.push(format!("adkim={}", alignment(a)));
    }
    if let Some(a) = policy.aspf {
        tags.push(format!("aspf={}", alignment(a)));
    }
    if !policy.rua.is_empty() {
        tags.push(format!("rua={}", policy.rua.join(",")));
    }
    if !policy.ruf.is_empty() {
        tags.push(format!("ruf={}", policy.ruf.join(",")));
    }
    tags.join("; ")
}

fn alignment(a: Alignment) -> &'static str {
    match a {
        Alignment::Relaxed => "r",
        Alignment::Strict => "s",
    }
}

/// Completes a report address for a domain: `mailto:postmaster` → `mailto:postmaster@<domain>`,
/// `postmaster@x` → `mailto:postmaster@x`. Other URIs (https:) are returned unchanged.
pub fn complete_report_uri(address: &str, domain: &str) -> String {
    let address = address.trim();
    if let Some(local) = address.strip_prefix("mailto:") {
        if local.contains('@') {
            address.to_string()
        } else {
            format!("mailto:{local}@{domain}")
        }
    } else if address.contains("://") || address.starts_with("https:") {
        address.to_string()
    } else if address.contains('@') {
        format!("mailto:{address}")
    } else {
        format!("mailto:{address}@{domain}")
    }
}

/// RFC 7489 §6.4: `,` and `!` separate URIs and sizes, `;` separates tags, so none of them
/// (nor white space) may appear in a report URI.
pub fn validate_report_uri(uri: &str) -> Result<(), String> {
    if let Some(bad) = uri
        .chars()
        .find(|c| matches!(c, ',' | '!' | ';') || c.is_whitespace())
    {
        return Err(format!(
            "a report URI may not contain {bad:?}; percent-encode it"
        ));
    }
    if !(uri.starts_with("mailto:") || uri.starts_with("https:")) {
        return Err("a report URI must start with mailto: (or https: for TLS-RPT)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DmarcDisposition;

    #[test]
    fn default_shape() {
        let p = DmarcPolicy {
            policy: DmarcDisposition::Reject,
            subdomain_policy: None,
            rua: vec!["mailto:postmaster@example.org".into()],
            ruf: vec![],
            adkim: None,
            aspf: None,
        };
        assert_eq!(
            value(&p),
            "v=DMARC1; p=reject; rua=mailto:postmaster@example.org"
        );
    }

    #[test]
    fn all_tags_in_order() {
        let p = DmarcPolicy {
            policy: DmarcDisposition::Quarantine,
            subdomain_policy: Some(DmarcDisposition::Reject),
            rua: vec!["mailto:a@x.example".into(), "mailto:b@y.example".into()],
            ruf: vec!["mailto:f@x.example".into()],
            adkim: Some(Alignment::Strict),
            aspf: Some(Alignment::Relaxed),
        };
        assert_eq!(
            value(&p),
            "v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; rua=mailto:a@x.example,mailto:b@y.example; ruf=mailto:f@x.example"
        );
    }

    #[test]
    fn completes_addresses() {
        assert_eq!(
            complete_report_uri("mailto:postmaster", "example.net"),
            "mailto:postmaster@example.net"
        );
        assert_eq!(
            complete_report_uri("mailto:d@r.example", "example.net"),
            "mailto:d@r.example"
        );
        assert_eq!(
            complete_report_uri("d@r.example", "example.net"),
            "mailto:d@r.example"
        );
        assert_eq!(
            complete_report_uri("https://r.example/tls", "x"),
            "https://r.example/tls"
        );
        assert!(validate_report_uri("mailto:a,b@x").is_err());
        assert!(validate_report_uri("ftp://x").is_err());
        assert!(validate_report_uri("mailto:a@x.example").is_ok());
    }
}
