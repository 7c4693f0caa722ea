//! DKIM key records (RFC 6376 §3.6.1 key record tags; RFC 8463 §4.2 for Ed25519 keys).
//!
//! Keys are parsed from PEM (PKCS#8 for both algorithms, PKCS#1 for RSA), the public key
//! is derived from the private key so that the record can never disagree with the key
//! that signs, and new keys are generated from a caller-supplied random source.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use spki_compat::EncodePublicKey as _;
use zeroize::Zeroizing;

use crate::model::DkimAlgorithm;
use crate::name::Name;

// The `spki` traits come through `pkcs8`, which both key crates use.
mod spki_compat {
    pub use pkcs8::spki::EncodePublicKey;
}

/// RSA keys below this size are refused (RFC 8301 §3.2: verifiers must not accept < 1024).
pub const MIN_RSA_BITS: usize = 1024;
/// The default size of generated RSA keys (RFC 8301 §3.2 recommends at least 2048).
pub const GENERATED_RSA_BITS: usize = 2048;

/// The RSA key sizes mailzone makes (`rsaBits`). RFC 8301 §3.2: verifiers MUST accept
/// keys of 1024 to 4096 bits, so a larger key would not verify everywhere.
pub const RSA_BITS_ALLOWED: [usize; 3] = [2048, 3072, 4096];

/// A DKIM private key with the algorithm it signs with. Cloning shares the key material
/// (a hosting server names one key file for thousands of domains: one copy, zeroed when
/// the last clone goes).
#[derive(Clone)]
pub struct DkimPrivateKey {
    algorithm: DkimAlgorithm,
    /// PKCS#8 PEM, kept as the canonical form for storage and export.
    pem: std::sync::Arc<Zeroizing<String>>,
    /// The `p=` bytes: the raw 32-byte key for Ed25519 (RFC 8463 §4.2), the DER
    /// SubjectPublicKeyInfo for RSA (RFC 6376 §3.6.1).
    public_key: std::sync::Arc<[u8]>,
    /// Key size in bits (256 for Ed25519).
    bits: usize,
}

impl std::fmt::Debug for DkimPrivateKey {
    /// Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimPrivateKey")
            .field("algorithm", &self.algorithm)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

/// Why a key file cannot be used for DKIM. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkimKeyError {
    #[error("not a PEM file (expected a `-----BEGIN PRIVATE KEY-----` block)")]
    NotPem,
    #[error(
        "wrong key type: the PEM block is `{0}`; DKIM needs an Ed25519 or RSA private key (`PRIVATE KEY` or `RSA PRIVATE KEY`)"
    )]
    WrongBlock(String),
    #[error("wrong key type: {0}; DKIM supports only ed25519-sha256 and rsa-sha256 keys")]
    UnsupportedAlgorithm(String),
    #[error("the RSA key has {0} bits; DKIM needs at least 1024 (2048 recommended)")]
    RsaTooSmall(usize),
    #[error("the key could not be decoded: {0}")]
    Malformed(String),
}

const OID_ED25519: &str = "1.3.101.112";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

impl DkimPrivateKey {
    /// Parses a PEM private key and derives its public key.
    pub fn from_pem(text: &str) -> Result<DkimPrivateKey, DkimKeyError> {
        let block = pem::parse(text).map_err(|_| DkimKeyError::NotPem)?;
        match block.tag() {
            "PRIVATE KEY" => Self::from_pkcs8_der(block.contents()),
            "RSA PRIVATE KEY" => Self::from_rsa_pkcs1_der(block.contents()),
            "EC PRIVATE KEY" => Err(DkimKeyError::UnsupportedAlgorithm(
                "an elliptic-curve (ECDSA) key".into(),
            )),
            other => Err(DkimKeyError::WrongBlock(other.to_string())),
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<DkimPrivateKey, DkimKeyError> {
        let info = pkcs8::PrivateKeyInfoRef::try_from(der)
            .map_err(|e| DkimKeyError::Malformed(e.to_string()))?;
        let oid = info.algorithm.oid.to_string();
        match oid.as_str() {
            OID_ED25519 => {
                let key = ed25519_dalek::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| DkimKeyError::Malformed(e.to_string()))?;
                Ok(Self::from_ed25519(&key))
            }
            OID_RSA => Self::from_rsa_pkcs1_der(info.private_key.as_bytes()),
            "1.2.840.10045.2.1" => Err(DkimKeyError::UnsupportedAlgorithm(
                "an elliptic-curve (ECDSA) key".into(),
            )),
            other => Err(DkimKeyError::UnsupportedAlgorithm(format!(
                "a key with algorithm OID {other}"
            ))),
        }
    }

    fn from_ed25519(key: &ed25519_dalek::SigningKey) -> DkimPrivateKey {
        // PKCS#8 v1 (RFC 8410 §7: the seed only). ed25519-dalek writes v2 with the public key
        // (RFC 5958), which OpenSSL 3.0 and Python's `cryptography` refuse to load, and the
        // MTA that signs with this key is usually built on one of them.
        let v1 = ed25519_dalek::ed25519::pkcs8::KeypairBytes {
            secret_key: key.to_bytes(),
            public_key: None,
        };
        let pem = v1
            .to_pkcs8_pem(pkcs8::LineEnding::LF)
            .expect("an Ed25519 key always encodes as PKCS#8");
        DkimPrivateKey {
            algorithm: DkimAlgorithm::Ed25519Sha256,
            pem: std::sync::Arc::new(Zeroizing::new(pem.to_string())),
            public_key: key.verifying_key().to_bytes().to_vec().into(),
            bits: 256,
        }
    }

    /// Reads an RSA key from its PKCS#1 `RSAPrivateKey` structure (RFC 8017 A.1.2) without
    /// the big-number work of `rsa::PrivateKey` (validation and CRT precomputation cost
    /// about 1 ms per key): the record needs only `n` and `e`, copied as `openssl rsa
    /// -pubout` does. Whether the key really signs is proved by `mailzone check`, which
    /// signs a message with it and verifies it through DNS.
    fn from_rsa_pkcs1_der(pkcs1_der: &[u8]) -> Result<DkimPrivateKey, DkimKeyError> {
        use pkcs1::der::{Decode as _, Encode as _};
        let malformed = |e: pkcs1::der::Error| DkimKeyError::Malformed(e.to_string());
        let key =
            pkcs1::RsaPrivateKey::<pkcs1::UintRef<'_>>::from_der(pkcs1_der).map_err(malformed)?;
        let modulus = key.modulus.as_bytes();
        let bits = match modulus.first() {
            Some(top) => modulus.len() * 8 - top.leading_zeros() as usize,
            None => 0,
        };
        if bits < MIN_RSA_BITS {
            return Err(DkimKeyError::RsaTooSmall(bits));
        }
        let public_pkcs1 = key.public_key().to_der().map_err(malformed)?;
        let spki = pkcs8::spki::SubjectPublicKeyInfoRef {
            algorithm: pkcs1::ALGORITHM_ID,
            subject_public_key: pkcs8::der::asn1::BitStringRef::from_bytes(&public_pkcs1)
                .map_err(malformed)?,
        };
        let public_key = spki.to_der().map_err(malformed)?;
        let info = pkcs8::PrivateKeyInfoRef::new(
            pkcs1::ALGORITHM_ID,
            pkcs8::der::asn1::OctetStringRef::new(pkcs1_der).map_err(malformed)?,
        );
        let pkcs8_der = Zeroizing::new(info.to_der().map_err(malformed)?);
        let pem = pem::encode_config(
            &pem::Pem::new("PRIVATE KEY", pkcs8_der.as_slice()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        );
        Ok(DkimPrivateKey {
            algorithm: DkimAlgorithm::RsaSha256,
            pem: std::sync::Arc::new(Zeroizing::new(pem)),
            public_key: public_key.into(),
            bits,
        })
    }

    fn from_rsa(key: rsa::PrivateKey) -> Result<DkimPrivateKey, DkimKeyError> {
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(DkimKeyError::RsaTooSmall(bits));
        }
        let public_key = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| DkimKeyError::Malformed(e.to_string()))?
            .as_bytes()
            .to_vec();
        let pem = pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, pkcs8::LineEnding::LF)
            .map_err(|e| DkimKeyError::Malformed(e.to_string()))?;
        Ok(DkimPrivateKey {
            algorithm: DkimAlgorithm::RsaSha256,
            pem: std::sync::Arc::new(Zeroizing::new(pem.to_string())),
            public_key: public_key.into(),
            bits,
        })
    }

    /// Generates a new key: Ed25519, or RSA of [`GENERATED_RSA_BITS`].
    pub fn generate<R: rand::CryptoRng + ?Sized>(
        algorithm: DkimAlgorithm,
        rng: &mut R,
    ) -> DkimPrivateKey {
        Self::generate_sized(algorithm, GENERATED_RSA_BITS, rng)
    }

    /// Generates a new key: Ed25519, or RSA of `rsa_bits` (one of [`RSA_BITS_ALLOWED`]).
    pub fn generate_sized<R: rand::CryptoRng + ?Sized>(
        algorithm: DkimAlgorithm,
        rsa_bits: usize,
        rng: &mut R,
    ) -> DkimPrivateKey {
        match algorithm {
            DkimAlgorithm::Ed25519Sha256 => {
                Self::from_ed25519(&ed25519_dalek::SigningKey::generate(rng))
            }
            DkimAlgorithm::RsaSha256 => {
                let key = rsa::PrivateKey::new(rng, rsa_bits).expect(
                    "RSA key generation of an allowed size with a working RNG does not fail",
                );
                Self::from_rsa(key).expect("a generated key of 2048 bits or more is accepted")
            }
        }
    }

    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The private key as PKCS#8 PEM. A secret: store it 0600 and never log it.
    pub fn pkcs8_pem(&self) -> &str {
        &self.pem
    }

    /// An Ed25519 key as rspamd reads it (`rspamadm dkim_keygen -t ed25519` writes the same):
    /// base64 of the 64 bytes seed ‖ public key (libsodium's secret key). rspamd 3.4 loads
    /// Ed25519 keys only in this form, not from PEM. `None` for RSA. A secret, like
    /// [`Self::pkcs8_pem`].
    pub fn ed25519_base64_keypair(&self) -> Option<Zeroizing<String>> {
        if self.algorithm != DkimAlgorithm::Ed25519Sha256 {
            return None;
        }
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&self.pem)
            .expect("an Ed25519 DkimPrivateKey holds a valid PKCS#8 PEM");
        let bytes = Zeroizing::new(key.to_keypair_bytes());
        Some(Zeroizing::new(BASE64.encode(bytes.as_slice())))
    }

    pub fn public_key(&self) -> DkimPublicKey {
        DkimPublicKey {
            algorithm: self.algorithm,
            bytes: self.public_key.to_vec(),
        }
    }
}

/// The public half of a DKIM key, as published in `p=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DkimPublicKey {
    pub algorithm: DkimAlgorithm,
    pub bytes: Vec<u8>,
}

impl DkimPublicKey {
    /// The key record (RFC 6376 §3.6.1): `v=DKIM1; k=ed25519; h=sha256; p=…`.
    /// `h=sha256` restricts the hash to the one both algorithms use (RFC 8301 §3.1 forbids
    /// rsa-sha1 for signing).
    pub fn txt_value(&self) -> String {
        let k = match self.algorithm {
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
            DkimAlgorithm::RsaSha256 => "rsa",
        };
        format!("v=DKIM1; k={k}; h=sha256; p={}", BASE64.encode(&self.bytes))
    }
}

/// A key ready to publish: its selector and public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DkimSelectorKey {
    pub selector: String,
    pub key: DkimPublicKey,
}

/// The owner name of a selector's key record (RFC 6376 §3.6.2.1).
pub fn record_name(selector: &str, domain: &Name) -> Result<Name, crate::name::NameError> {
    domain.prefixed(&format!("{selector}._domainkey"))
}

/// Expands a selector template for a key made on `(year, month, day)`:
/// `{year}`, `{month}`, `{day}` (zero-padded) and `{algorithm}` (`e` or `r`).
pub fn expand_selector(template: &str, date: (i32, u32, u32), algorithm: DkimAlgorithm) -> String {
    template
        .replace("{year}", &format!("{:04}", date.0))
        .replace("{month}", &format!("{:02}", date.1))
        .replace("{day}", &format!("{:02}", date.2))
        .replace("{algorithm}", &algorithm.letter().to_string())
        .to_ascii_lowercase()
}

/// A selector must be one or more valid labels (RFC 6376 §3.1: `sub-domain *("." sub-domain)`).
pub fn validate_selector(selector: &str) -> Result<(), String> {
    if selector.is_empty() {
        return Err("the selector is empty".into());
    }
    Name::host(selector)
        .map(|_| ())
        .map_err(|e| format!("`{selector}` is not a valid selector: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_record_has_raw_32_byte_key() {
        let key = DkimPrivateKey::generate(DkimAlgorithm::Ed25519Sha256, &mut rand::rng());
        let public = key.public_key();
        assert_eq!(public.bytes.len(), 32);
        let txt = public.txt_value();
        assert!(txt.starts_with("v=DKIM1; k=ed25519; h=sha256; p="), "{txt}");
        // The stored PEM is PKCS#8 v1 (version 0, no public key) and parses back to the
        // same public key.
        let der = pem::parse(key.pkcs8_pem()).unwrap().into_contents();
        assert_eq!(der.len(), 48, "v1: 16-byte header + 32-byte seed");
        assert_eq!(&der[..5], &[0x30, 0x2e, 0x02, 0x01, 0x00]);
        let again = DkimPrivateKey::from_pem(key.pkcs8_pem()).unwrap();
        assert_eq!(again.public_key(), public);
    }

    #[test]
    fn rspamd_keypair_is_seed_then_public_key() {
        let key = DkimPrivateKey::generate(DkimAlgorithm::Ed25519Sha256, &mut rand::rng());
        let raw = BASE64
            .decode(key.ed25519_base64_keypair().unwrap().as_bytes())
            .unwrap();
        assert_eq!(raw.len(), 64);
        let seed = pem::parse(key.pkcs8_pem()).unwrap().into_contents()[16..].to_vec();
        assert_eq!(raw[..32], seed[..]);
        assert_eq!(raw[32..], key.public_key().bytes[..]);
        let rsa = DkimPrivateKey::generate(DkimAlgorithm::RsaSha256, &mut rand::rng());
        assert!(rsa.ed25519_base64_keypair().is_none());
    }

    #[test]
    fn rsa_record_has_spki_der() {
        let key = DkimPrivateKey::generate(DkimAlgorithm::RsaSha256, &mut rand::rng());
        assert_eq!(key.bits(), 2048);
        let public = key.public_key();
        // DER SEQUENCE of an RSA-2048 SubjectPublicKeyInfo is 294 bytes.
        assert_eq!(public.bytes.len(), 294);
        assert!(public.txt_value().contains("k=rsa; h=sha256; p=MIIBIjAN"));
    }

    /// The fast ASN.1 path must agree with the `rsa` crate's full decoding, for PKCS#8 and
    /// PKCS#1 input alike, and produce a PKCS#8 the `rsa` crate reads back.
    #[test]
    fn rsa_public_key_agrees_with_the_rsa_crate() {
        use pkcs1::EncodeRsaPrivateKey as _;
        use pkcs8::DecodePrivateKey as _;
        let key = rsa::PrivateKey::new(&mut rand::rng(), 2048).unwrap();
        let expected = key.to_public_key().to_public_key_der().unwrap();
        let pkcs8 = pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, pkcs8::LineEnding::LF).unwrap();
        let pkcs1 = key.to_pkcs1_pem(pkcs8::LineEnding::LF).unwrap();
        for pem in [pkcs8.as_str(), pkcs1.as_str()] {
            let parsed = DkimPrivateKey::from_pem(pem).unwrap();
            assert_eq!(parsed.bits(), 2048);
            assert_eq!(parsed.public_key().bytes, expected.as_bytes());
            assert_eq!(parsed.pkcs8_pem(), pkcs8.as_str());
            let back = rsa::PrivateKey::from_pkcs8_pem(parsed.pkcs8_pem()).unwrap();
            assert_eq!(back, key);
        }
    }

    #[test]
    fn rsa_keys_too_small_or_truncated_are_refused() {
        use pkcs1::der::Encode as _;
        // The `rsa` crate will not make a key this small; the size check needs only the
        // structure, so a 768-bit modulus with placeholder fields stands in for one.
        let modulus = [0xc1u8; 96];
        let field = pkcs1::UintRef::new(&[0x03]).unwrap();
        let small = pkcs1::RsaPrivateKey {
            modulus: pkcs1::UintRef::new(&modulus).unwrap(),
            public_exponent: field,
            private_exponent: field,
            prime1: field,
            prime2: field,
            exponent1: field,
            exponent2: field,
            coefficient: field,
            other_prime_infos: None,
        };
        let pem = pem::encode(&pem::Pem::new("RSA PRIVATE KEY", small.to_der().unwrap()));
        assert_eq!(
            DkimPrivateKey::from_pem(&pem).unwrap_err(),
            DkimKeyError::RsaTooSmall(768)
        );
        let key = DkimPrivateKey::generate(DkimAlgorithm::RsaSha256, &mut rand::rng());
        let der = pem::parse(key.pkcs8_pem()).unwrap().into_contents();
        let truncated = pem::encode(&pem::Pem::new("PRIVATE KEY", &der[..der.len() / 2]));
        assert!(matches!(
            DkimPrivateKey::from_pem(&truncated),
            Err(DkimKeyError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_other_pem_blocks() {
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            DkimPrivateKey::from_pem(cert),
            Err(DkimKeyError::WrongBlock(tag)) if tag == "CERTIFICATE"
        ));
        assert_eq!(
            DkimPrivateKey::from_pem("hello").unwrap_err(),
            DkimKeyError::NotPem
        );
    }

    #[test]
    fn selector_template() {
        assert_eq!(
            expand_selector(
                crate::model::DEFAULT_SELECTOR_TEMPLATE,
                (2026, 11, 5),
                DkimAlgorithm::Ed25519Sha256
            ),
            "202611e"
        );
        assert_eq!(
            expand_selector(
                "mz-{year}{month}{day}-{algorithm}",
                (2026, 1, 5),
                DkimAlgorithm::RsaSha256
            ),
            "mz-20260105-r"
        );
        assert!(validate_selector("202611e").is_ok());
        assert!(validate_selector("bad selector").is_err());
        assert!(validate_selector("").is_err());
    }
}
