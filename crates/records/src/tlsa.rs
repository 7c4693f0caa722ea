//! TLSA records for DANE (RFC 6698 §2; RFC 7672 §3.1 for SMTP: DANE-EE `3 1 1` and DANE-TA
//! `2 1 1`; RFC 7671 §8.1 for publishing the next key before a rollover).
//!
//! The certificate chain is parsed with `x509-parser`; digests are SHA-256 over the DER
//! SubjectPublicKeyInfo (selector 1, matching type 1).

pub mod rollover;

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

/// RFC 6698 §2.1.1: certificate usage 3, DANE-EE (the server's own key).
pub const USAGE_DANE_EE: u8 = 3;
/// RFC 6698 §2.1.1: certificate usage 2, DANE-TA (the issuing CA's key).
pub const USAGE_DANE_TA: u8 = 2;
/// RFC 6698 §2.1.2: selector 1, SubjectPublicKeyInfo.
pub const SELECTOR_SPKI: u8 = 1;
/// RFC 6698 §2.1.3: matching type 1, SHA-256.
pub const MATCHING_SHA256: u8 = 1;

/// The digests a chain gives: the leaf's and, when the chain carries it, the issuer's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsaKeys {
    /// SHA-256 of the leaf SPKI (`3 1 1`).
    pub leaf: Vec<u8>,
    /// SHA-256 of the issuer SPKI (`2 1 1`), if the chain includes the issuer.
    pub issuer: Option<Vec<u8>>,
    /// SHA-256 of the next key's SPKI (`3 1 1`), published ahead of a key rollover.
    pub next: Option<Vec<u8>>,
    /// The subject of the leaf, for messages.
    pub leaf_subject: String,
    /// Digests that were current before a rollover and stay published until their
    /// `retireAfter` has passed (from [`rollover::advance`]), as (usage, digest).
    pub retiring: Vec<(u8, Vec<u8>)>,
}

/// Why a certificate chain or key file cannot be used for TLSA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsaError {
    #[error("no `-----BEGIN CERTIFICATE-----` block found")]
    NoCertificate,
    #[error("certificate {index} is not valid DER X.509: {reason}")]
    BadCertificate { index: usize, reason: String },
    #[error(
        "the chain has no leaf: its first certificate ({subject}) is a CA certificate; put the server's own certificate first, then its issuer(s)"
    )]
    NoLeaf { subject: String },
    #[error(
        "certificate 2 ({issuer}) did not issue certificate 1 ({subject}); the chain must be the leaf first, then its issuer"
    )]
    BrokenChain { subject: String, issuer: String },
    #[error(
        "no public key found: expected a `PUBLIC KEY` or `CERTIFICATE` PEM block (make one with `openssl pkey -in next.key -pubout`)"
    )]
    NoPublicKey,
    #[error("not a PEM file: {0}")]
    NotPem(String),
}

/// SHA-256 of a DER SubjectPublicKeyInfo: the association data of `3 1 1` and `2 1 1`.
pub fn spki_sha256(spki_der: &[u8]) -> Vec<u8> {
    Sha256::digest(spki_der).to_vec()
}

/// Parses a PEM chain (leaf first, then issuers) and computes its TLSA digests. Blocks
/// other than certificates (a private key in a combined file) are ignored.
pub fn parse_chain(pem_text: &[u8]) -> Result<TlsaKeys, TlsaError> {
    let blocks = pem::parse_many(pem_text).map_err(|e| TlsaError::NotPem(e.to_string()))?;
    let ders: Vec<&[u8]> = blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.contents())
        .collect();
    let Some(&leaf_der) = ders.first() else {
        return Err(TlsaError::NoCertificate);
    };
    let leaf = parse_certificate(leaf_der, 1)?;
    let leaf_subject = leaf.subject().to_string();
    if leaf.is_ca() {
        return Err(TlsaError::NoLeaf {
            subject: leaf_subject,
        });
    }
    let issuer = match ders.get(1) {
        Some(&der) => {
            let issuer = parse_certificate(der, 2)?;
            if issuer.subject().as_raw() != leaf.issuer().as_raw() {
                return Err(TlsaError::BrokenChain {
                    subject: leaf_subject,
                    issuer: issuer.subject().to_string(),
                });
            }
            Some(spki_sha256(issuer.public_key().raw))
        }
        None => None,
    };
    Ok(TlsaKeys {
        leaf: spki_sha256(leaf.public_key().raw),
        issuer,
        next: None,
        leaf_subject,
        retiring: Vec::new(),
    })
}

fn parse_certificate(der: &[u8], index: usize) -> Result<X509Certificate<'_>, TlsaError> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| TlsaError::BadCertificate {
            index,
            reason: e.to_string(),
        })
}

/// Reads the next key for a rollover from a `PUBLIC KEY` block or a certificate, and
/// returns the SHA-256 of its SPKI.
pub fn parse_next_key(pem_text: &[u8]) -> Result<Vec<u8>, TlsaError> {
    let blocks = pem::parse_many(pem_text).map_err(|e| TlsaError::NotPem(e.to_string()))?;
    for block in &blocks {
        match block.tag() {
            "PUBLIC KEY" => return Ok(spki_sha256(block.contents())),
            "CERTIFICATE" => {
                let cert = parse_certificate(block.contents(), 1)?;
                return Ok(spki_sha256(cert.public_key().raw));
            }
            _ => {}
        }
    }
    Err(TlsaError::NoPublicKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_chain() {
        assert_eq!(parse_chain(b"nothing here"), Err(TlsaError::NoCertificate));
        let junk = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            parse_chain(junk),
            Err(TlsaError::BadCertificate { index: 1, .. })
        ));
        assert_eq!(parse_next_key(b""), Err(TlsaError::NoPublicKey));
    }

    #[test]
    fn public_key_digest_is_sha256_of_the_block() {
        let pem = "-----BEGIN PUBLIC KEY-----\nAQID\n-----END PUBLIC KEY-----\n";
        assert_eq!(
            parse_next_key(pem.as_bytes()).unwrap(),
            spki_sha256(&[1, 2, 3])
        );
    }
}
