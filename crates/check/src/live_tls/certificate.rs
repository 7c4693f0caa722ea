//! What the checks read from the certificates a server presents: the leaf's names
//! (RFC 6125 §6.4: DNS-ID from subjectAltName, the CN only when there is none), its
//! validity, and the DANE association data (RFC 6698 §2.1: selector 0 the whole
//! certificate, 1 the SubjectPublicKeyInfo; matching type 0 exact, 1 SHA-256, 2 SHA-512).

use mailzone_records::tlsa::{SELECTOR_SPKI, USAGE_DANE_EE, USAGE_DANE_TA, spki_sha256};
use sha2::{Digest as _, Sha512};
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

/// The leaf certificate as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub subject: String,
    pub issuer: String,
    /// DNS names the certificate is valid for (lowercase, no trailing dot).
    pub names: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
}

/// Parses the leaf; `None` when it is not X.509 DER.
pub fn leaf(der: &[u8]) -> Option<Leaf> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                GeneralName::DNSName(n) => Some(n.trim_end_matches('.').to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(|cn| cn.trim_end_matches('.').to_ascii_lowercase())
            .collect();
    }
    Some(Leaf {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Whether `host` (absolute or not) is among `names`; a wildcard `*.example.org` covers
/// exactly one leftmost label (RFC 6125 §6.4.3).
pub fn covers(names: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    names.iter().any(|name| match name.strip_prefix("*.") {
        Some(base) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == base),
        None => *name == host,
    })
}

/// Whether the TLSA record (`usage selector matching data`) matches the presented chain
/// (leaf first): DANE-EE against the leaf, DANE-TA against any certificate of the chain
/// (RFC 7672 §3.1.1, §3.1.2). Other usages never match here (PKIX usages are unusable
/// for SMTP, RFC 7672 §3.1.3).
pub fn tlsa_matches(usage: u8, selector: u8, matching: u8, data: &[u8], chain: &[Vec<u8>]) -> bool {
    let candidates: &[Vec<u8>] = match usage {
        USAGE_DANE_EE => chain.get(..1).unwrap_or(&[]),
        USAGE_DANE_TA => chain,
        _ => &[],
    };
    candidates
        .iter()
        .any(|der| association(der, selector, matching).is_some_and(|a| a == data))
}

/// The association data of one certificate for `selector` and `matching`.
fn association(der: &[u8], selector: u8, matching: u8) -> Option<Vec<u8>> {
    let selected: Vec<u8> = match selector {
        0 => der.to_vec(),
        SELECTOR_SPKI => X509Certificate::from_der(der)
            .ok()?
            .1
            .public_key()
            .raw
            .to_vec(),
        _ => return None,
    };
    match matching {
        0 => Some(selected),
        1 => Some(spki_sha256(&selected)),
        2 => Some(Sha512::digest(&selected).to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        let names = vec!["*.example.org".to_string(), "mx.example.net".to_string()];
        assert!(covers(&names, "mail.example.org."));
        assert!(covers(&names, "MX.example.NET"));
        assert!(!covers(&names, "example.org"));
        assert!(!covers(&names, "a.b.example.org"));
        assert!(!covers(&names, "mail.example.com"));
    }

    #[test]
    fn example_chain_names_and_dane() {
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/certs/mail.example.org.pem"
        ))
        .unwrap();
        let chain: Vec<Vec<u8>> = pem::parse_many(&pem)
            .unwrap()
            .into_iter()
            .map(|b| b.into_contents())
            .collect();
        let leaf = leaf(&chain[0]).unwrap();
        assert!(covers(&leaf.names, "mail.example.org"), "{leaf:?}");
        let keys = mailzone_records::tlsa::parse_chain(&pem).unwrap();
        assert!(tlsa_matches(3, 1, 1, &keys.leaf, &chain));
        assert!(!tlsa_matches(2, 1, 1, &keys.leaf, &chain[1..]));
        assert!(tlsa_matches(2, 1, 1, keys.issuer.as_ref().unwrap(), &chain));
        assert!(!tlsa_matches(
            3,
            1,
            1,
            keys.issuer.as_ref().unwrap(),
            &chain
        ));
        assert!(tlsa_matches(3, 0, 0, &chain[0], &chain));
        let full512 = Sha512::digest(&chain[0]).to_vec();
        assert!(tlsa_matches(3, 0, 2, &full512, &chain));
        assert!(!tlsa_matches(1, 1, 1, &keys.leaf, &chain));
    }
}
