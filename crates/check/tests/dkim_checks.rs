//! The DKIM checks against zones served by the `ZoneLookup` test double: each code fires on
//! a zone with one defect, and the correct zone (and a CNAME-delegated selector) keeps
//! every one of them quiet.

mod dnssec_common;

use dnssec_common::{Fixture, RSA_512_SPKI, RSA_1024_PEM, assert_one, only, options};
use mailzone_check::Severity;
use mailzone_check::lookup::ZoneLookup;
use mailzone_records::dkim::DkimPrivateKey;

const ED: &str = "202611e._domainkey.example.test.";
const RSA: &str = "202611r._domainkey.example.test.";

async fn dkim(fixture: &Fixture, zone: &str) -> Vec<mailzone_check::Finding> {
    let lookup = ZoneLookup::new(zone);
    let options = options();
    mailzone_check::dkim::check(&fixture.ctx(&lookup, &options)).await
}

/// The zone with the TXT value of `owner` replaced by `value` (one quoted string).
fn with_value(fixture: &Fixture, owner: &str, value: &str) -> String {
    fixture.zone_text_with(|line| {
        if line.starts_with(owner) {
            Some(format!(
                "{owner} 300 IN TXT {}",
                mailzone_records::txt::presentation(value.as_bytes())
            ))
        } else {
            Some(line.to_string())
        }
    })
}

#[tokio::test]
async fn correct_zone_is_quiet() {
    let fixture = Fixture::new();
    let findings = dkim(&fixture, &fixture.zone_text()).await;
    assert!(findings.is_empty(), "{findings:#?}");
}

#[tokio::test]
async fn missing_selector_is_an_error_with_the_record_as_fix() {
    let fixture = Fixture::new();
    let zone = fixture.zone_text_with(|l| (!l.starts_with(RSA)).then(|| l.to_string()));
    let findings = dkim(&fixture, &zone).await;
    let f = assert_one(&findings, "dkim-missing", Severity::Error, RSA);
    let fix = f.fix.as_deref().unwrap();
    assert!(fix.contains("v=DKIM1; k=rsa; h=sha256; p=MIIB"), "{fix}");
    assert!(
        fix.starts_with("publish 202611r._domainkey.example.test. "),
        "{fix}"
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn cname_delegated_selector_is_followed() {
    let fixture = Fixture::new();
    let value = fixture.dkim_value("202611e");
    let provider = "202611e.dkim.provider.test.";
    let good = fixture.zone_text_with(|l| {
        if l.starts_with(ED) {
            Some(format!(
                "{ED} 300 IN CNAME {provider}\n{provider} 300 IN TXT \"{value}\""
            ))
        } else {
            Some(l.to_string())
        }
    });
    let findings = dkim(&fixture, &good).await;
    assert!(findings.is_empty(), "{findings:#?}");

    // The provider serves another key: the fix names the record at the CNAME target.
    let wrong_key = flip_ed25519(&value);
    let bad = fixture.zone_text_with(|l| {
        if l.starts_with(ED) {
            Some(format!(
                "{ED} 300 IN CNAME {provider}\n{provider} 300 IN TXT \"{wrong_key}\""
            ))
        } else {
            Some(l.to_string())
        }
    });
    let findings = dkim(&fixture, &bad).await;
    let f = assert_one(&findings, "dkim-key-mismatch", Severity::Error, ED);
    assert!(f.fix.as_deref().unwrap().contains(provider), "{f:#?}");
    assert_eq!(findings.len(), 1, "{findings:#?}");

    // Two key records behind the CNAME: dkim-multiple (zone-multiple-records cannot see it).
    let two = fixture.zone_text_with(|l| {
        if l.starts_with(ED) {
            Some(format!(
                "{ED} 300 IN CNAME {provider}\n{provider} 300 IN TXT \"{value}\"\n{provider} 300 IN TXT \"{wrong_key}\""
            ))
        } else {
            Some(l.to_string())
        }
    });
    let findings = dkim(&fixture, &two).await;
    assert_one(&findings, "dkim-multiple", Severity::Error, ED);
}

/// Another Ed25519 public key (made with `openssl genpkey -algorithm ED25519`).
const OTHER_ED25519: &str = "QSWyi/P8dRxpzAUsF7N+P8CFMSpx7gEeN/tNSCQvhvU=";

/// The Ed25519 record with another (valid) key in p=.
fn flip_ed25519(value: &str) -> String {
    let (head, _) = value.rsplit_once("p=").unwrap();
    format!("{head}p={OTHER_ED25519}")
}

#[tokio::test]
async fn a_different_key_is_a_mismatch() {
    let fixture = Fixture::new();
    let zone = with_value(&fixture, ED, &flip_ed25519(&fixture.dkim_value("202611e")));
    let findings = dkim(&fixture, &zone).await;
    let f = assert_one(&findings, "dkim-key-mismatch", Severity::Error, ED);
    assert!(
        f.message
            .contains("the published key does not match the private key the MTA signs with"),
        "{f:#?}"
    );
    assert_eq!(
        findings.len(),
        1,
        "the e2e failure is explained: {findings:#?}"
    );
}

#[tokio::test]
async fn syntax_errors() {
    let fixture = Fixture::new();
    let value = fixture.dkim_value("202611e");
    let p = value.rsplit_once("p=").unwrap().1.to_string();
    for bad in [
        format!("v=DKIM1; k=ed25519; p={p}; k=ed25519"), // duplicate tag
        format!("k=ed25519; v=DKIM1; p={p}"),            // v= not first
        format!("v=DKIM2; k=ed25519; p={p}"),            // wrong version
        "v=DKIM1; k=ed25519; p=!!notbase64".to_string(), // bad base64
        format!("v=DKIM1; k=dsa; p={p}"),                // unknown key type
        format!("v=DKIM1;; k=ed25519; p={p}"),           // empty tag-spec
        "v=DKIM1; k=ed25519; p=AAAA".to_string(),        // Ed25519 key of 3 bytes
    ] {
        let findings = dkim(&fixture, &with_value(&fixture, ED, &bad)).await;
        assert_one(&findings, "dkim-syntax", Severity::Error, ED);
        assert_eq!(only(&findings, "dkim-").len(), 1, "{bad}: {findings:#?}");
    }
    // A record with no p= at all is not a key record: missing.
    let findings = dkim(&fixture, &with_value(&fixture, ED, "v=DKIM1; k=ed25519")).await;
    assert_one(&findings, "dkim-syntax", Severity::Error, ED);
}

#[tokio::test]
async fn revoked_key() {
    let fixture = Fixture::new();
    let findings = dkim(
        &fixture,
        &with_value(&fixture, ED, "v=DKIM1; k=ed25519; p="),
    )
    .await;
    assert_one(&findings, "dkim-revoked", Severity::Error, ED);
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn testing_flag_is_a_warning() {
    let fixture = Fixture::new();
    let value = fixture
        .dkim_value("202611e")
        .replace("h=sha256;", "h=sha256; t=y;");
    let findings = dkim(&fixture, &with_value(&fixture, ED, &value)).await;
    assert_one(&findings, "dkim-testing", Severity::Warning, ED);
    assert_eq!(findings.len(), 1, "still verifies: {findings:#?}");
    // t=s (strict) alone is fine.
    let value = fixture
        .dkim_value("202611e")
        .replace("h=sha256;", "h=sha256; t=s;");
    assert!(
        dkim(&fixture, &with_value(&fixture, ED, &value))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn service_type_without_email() {
    let fixture = Fixture::new();
    let value = fixture
        .dkim_value("202611e")
        .replace("h=sha256;", "h=sha256; s=other;");
    let findings = dkim(&fixture, &with_value(&fixture, ED, &value)).await;
    assert_one(&findings, "dkim-not-for-email", Severity::Error, ED);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    for ok in ["s=email;", "s=*;", "s=other:email;"] {
        let value = fixture
            .dkim_value("202611e")
            .replace("h=sha256;", &format!("h=sha256; {ok}"));
        assert!(
            dkim(&fixture, &with_value(&fixture, ED, &value))
                .await
                .is_empty(),
            "{ok}"
        );
    }
}

#[tokio::test]
async fn hash_list_without_sha256() {
    let fixture = Fixture::new();
    let value = fixture.dkim_value("202611r").replace("h=sha256", "h=sha1");
    let findings = dkim(&fixture, &with_value(&fixture, RSA, &value)).await;
    assert_one(&findings, "dkim-hash-excluded", Severity::Error, RSA);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    // Without h= every hash is allowed.
    let value = fixture.dkim_value("202611r").replace("h=sha256; ", "");
    assert!(
        dkim(&fixture, &with_value(&fixture, RSA, &value))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn key_type_mismatch() {
    let fixture = Fixture::new();
    let value = fixture.dkim_value("202611e").replace("k=ed25519", "k=rsa");
    let findings = dkim(&fixture, &with_value(&fixture, ED, &value)).await;
    assert_one(&findings, "dkim-key-type-mismatch", Severity::Error, ED);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    // No k= means rsa (RFC 6376 §3.6.1): wrong for the Ed25519 key, right for the RSA one.
    let value = fixture.dkim_value("202611e").replace("k=ed25519; ", "");
    let findings = dkim(&fixture, &with_value(&fixture, ED, &value)).await;
    assert_one(&findings, "dkim-key-type-mismatch", Severity::Error, ED);
    let value = fixture.dkim_value("202611r").replace("k=rsa; ", "");
    assert!(
        dkim(&fixture, &with_value(&fixture, RSA, &value))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn rsa_key_sizes() {
    // A 1024-bit key mailzone holds and publishes: verifies, but weak.
    let weak = DkimPrivateKey::from_pem(RSA_1024_PEM).unwrap();
    let fixture = Fixture::with_keys(vec![("202611r".to_string(), weak)]);
    let findings = dkim(&fixture, &fixture.zone_text()).await;
    assert_one(&findings, "dkim-key-weak", Severity::Warning, RSA);
    assert_eq!(findings.len(), 1, "{findings:#?}");

    // A 512-bit key published for the 2048-bit key: too short, and not the key.
    let fixture = Fixture::new();
    let value = format!("v=DKIM1; k=rsa; h=sha256; p={RSA_512_SPKI}");
    let findings = dkim(&fixture, &with_value(&fixture, RSA, &value)).await;
    assert_one(&findings, "dkim-key-too-short", Severity::Error, RSA);
    assert_one(&findings, "dkim-key-mismatch", Severity::Error, RSA);
    assert!(findings.iter().all(|f| f.code != "dkim-key-weak"));
}

#[tokio::test]
async fn rsa_key_as_bare_pkcs1_is_the_same_key() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let fixture = Fixture::new();
    let value = fixture.dkim_value("202611r");
    let spki = b64.decode(value.rsplit_once("p=").unwrap().1).unwrap();
    // An RSA-2048 SPKI is a 24-byte header followed by the PKCS#1 RSAPublicKey.
    let pkcs1 = &spki[24..];
    let value = format!("v=DKIM1; k=rsa; h=sha256; p={}", b64.encode(pkcs1));
    let findings = dkim(&fixture, &with_value(&fixture, RSA, &value)).await;
    assert!(
        findings.iter().all(|f| f.code != "dkim-key-mismatch"),
        "{findings:#?}"
    );
}

#[tokio::test]
async fn verification_fails_when_receivers_pick_another_record() {
    // Two key records at the selector (zone-multiple-records reports the duplicate): the
    // one mailzone's key is in comes second, and mail-auth, like many verifiers, uses the
    // first that parses. Only the end-to-end proof sees that signatures fail.
    let fixture = Fixture::new();
    let value = fixture.dkim_value("202611e");
    let other = flip_ed25519(&value);
    let zone = fixture.zone_text_with(|l| {
        if l.starts_with(ED) {
            Some(format!(
                "{ED} 300 IN TXT \"{other}\"\n{ED} 300 IN TXT \"{value}\""
            ))
        } else {
            Some(l.to_string())
        }
    });
    let findings = dkim(&fixture, &zone).await;
    let f = assert_one(&findings, "dkim-verify-failed", Severity::Error, ED);
    assert!(f.message.contains("mail-auth says"), "{f:#?}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn end_to_end_proof_direct() {
    let key = dnssec_common::ed25519_key();
    let domain = dnssec_common::name("example.test");
    let good = key.public_key().txt_value().into_bytes();
    mailzone_check::dkim::sign_and_verify(&key, "s1", &domain, &[good])
        .await
        .unwrap();
    let bad = flip_ed25519(&key.public_key().txt_value()).into_bytes();
    let err = mailzone_check::dkim::sign_and_verify(&key, "s1", &domain, &[bad])
        .await
        .unwrap_err();
    assert!(err.contains("mail-auth says"), "{err}");
    let rsa = dnssec_common::rsa_key();
    mailzone_check::dkim::sign_and_verify(
        &rsa,
        "s2",
        &domain,
        &[rsa.public_key().txt_value().into_bytes()],
    )
    .await
    .unwrap();
}
