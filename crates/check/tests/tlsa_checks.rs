//! The TLSA (DANE) checks against zones served by the `ZoneLookup` test double (and, for
//! the DNSSEC status, zones signed in memory): each code fires on a zone with one defect,
//! and the correct, validated zone keeps every one quiet.

mod dnssec_common;

use dnssec_common::{Fixture, assert_one, options};
use mailzone_check::dnssec::source::RecordsSource;
use mailzone_check::lookup::ZoneLookup;
use mailzone_check::{Finding, Severity};
use mailzone_testkit::dnssec::{TestSigner, parse_zone, time};

const SMTP: &str = "_25._tcp.mail.example.test.";
const IMAPS: &str = "_993._tcp.mail.example.test.";
const OTHER_DIGEST: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

async fn tlsa(fixture: &Fixture, lookup: &ZoneLookup) -> Vec<Finding> {
    let options = options();
    mailzone_check::tlsa::check(&fixture.ctx(lookup, &options)).await
}

#[tokio::test]
async fn correct_validated_zone_is_quiet() {
    let fixture = Fixture::new();
    let findings = tlsa(&fixture, &ZoneLookup::signed(&fixture.zone_text())).await;
    assert!(findings.is_empty(), "{findings:#?}");
}

#[tokio::test]
async fn unvalidated_answers_are_an_error() {
    let fixture = Fixture::new();
    let findings = tlsa(&fixture, &ZoneLookup::new(&fixture.zone_text())).await;
    let f = assert_one(&findings, "tlsa-not-authenticated", Severity::Error, SMTP);
    assert!(
        f.message
            .contains("DANE without DNSSEC is ignored by senders"),
        "{f:#?}"
    );
    // One per TLSA name: 25, 465, 587 (STARTTLS) and 993.
    assert_eq!(findings.len(), 4, "{findings:#?}");
    assert!(findings.iter().all(|f| f.code == "tlsa-not-authenticated"));
}

#[tokio::test]
async fn a_record_for_another_key_is_no_match() {
    let fixture = Fixture::new();
    let zone = fixture.zone_text_with(|l| {
        if l.starts_with(SMTP) {
            // Both the leaf's 3 1 1 and the issuer's 2 1 1 now name another key.
            let head = l.rsplit_once(' ').unwrap().0;
            Some(format!("{head} {OTHER_DIGEST}"))
        } else {
            Some(l.to_string())
        }
    });
    let findings = tlsa(&fixture, &ZoneLookup::signed(&zone)).await;
    let f = assert_one(&findings, "tlsa-no-match", Severity::Error, SMTP);
    assert!(
        f.message.contains("DANE-enabled senders will not deliver"),
        "{f:#?}"
    );
    assert!(
        f.fix.as_deref().unwrap().contains(" IN TLSA 3 1 1 "),
        "{f:#?}"
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn the_issuer_record_alone_is_a_match() {
    let fixture = Fixture::new();
    let zone = fixture.zone_text_with(|l| {
        (!(l.starts_with(SMTP) && l.contains(" 3 1 1 "))).then(|| l.to_string())
    });
    assert!(zone.contains(" 2 1 1 "));
    let findings = tlsa(&fixture, &ZoneLookup::signed(&zone)).await;
    assert!(findings.is_empty(), "{findings:#?}");
}

#[tokio::test]
async fn rollover_without_the_next_key() {
    let served = Fixture::new();
    let mut keys = served.tlsa.clone().unwrap();
    keys.next = Some(vec![0x42; 32]);
    let rolling = Fixture::build(served.keys.clone(), Some(keys));
    // The zone still serves the records of before the rollover.
    let findings = tlsa(&rolling, &ZoneLookup::signed(&served.zone_text())).await;
    let f = assert_one(&findings, "tlsa-next-key-missing", Severity::Warning, SMTP);
    assert!(
        f.fix.as_deref().unwrap().contains(&"42".repeat(32)),
        "{f:#?}"
    );
    assert_eq!(findings.len(), 4, "{findings:#?}");
    // Published: quiet.
    let findings = tlsa(&rolling, &ZoneLookup::signed(&rolling.zone_text())).await;
    assert!(findings.is_empty(), "{findings:#?}");
}

#[tokio::test]
async fn unusable_records_are_warnings() {
    let fixture = Fixture::new();
    let zone = format!(
        "{}{SMTP} 300 IN TLSA 1 1 1 {OTHER_DIGEST}\n{IMAPS} 300 IN TLSA 3 1 9 {OTHER_DIGEST}\n{IMAPS} 300 IN TLSA 1 1 1 {OTHER_DIGEST}\n",
        fixture.zone_text()
    );
    let findings = tlsa(&fixture, &ZoneLookup::signed(&zone)).await;
    let smtp = assert_one(&findings, "tlsa-unusable", Severity::Warning, SMTP);
    assert!(smtp.message.contains("PKIX-EE"), "{smtp:#?}");
    // On IMAP a PKIX-EE record is usable (RFC 7672 §3.1.3 is about SMTP); matching type 9
    // is not.
    let imaps = assert_one(&findings, "tlsa-unusable", Severity::Warning, IMAPS);
    assert!(imaps.message.contains("3 1 9"), "{imaps:#?}");
    assert_eq!(findings.len(), 2, "{findings:#?}");
}

#[tokio::test]
async fn exchanger_cname_target_records_are_what_senders_use() {
    let fixture = Fixture::new();
    let target = "_25._tcp.host.provider.test.";
    let zone = fixture.zone_text_with(|l| {
        if l.starts_with("mail.example.test. ") && l.contains(" A ") {
            Some(format!(
                "mail.example.test. 300 IN CNAME host.provider.test.\nhost.provider.test. 300 IN A 192.0.2.10\n{target} 300 IN TLSA 3 1 1 {OTHER_DIGEST}"
            ))
        } else if l.starts_with("mail.example.test. ") {
            None // nothing else may sit beside the CNAME
        } else {
            Some(l.to_string())
        }
    });
    let findings = tlsa(&fixture, &ZoneLookup::signed(&zone)).await;
    let f = assert_one(&findings, "tlsa-no-match", Severity::Error, target);
    assert!(f.message.contains("RFC 7672 §2.2.2"), "{f:#?}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

/// The fixture's zone signed in memory, with the parent `test.` holding its DS.
fn signed_world(fixture: &Fixture, tamper_tlsa: bool) -> (RecordsSource, String) {
    let child = TestSigner::new("example.test.");
    let parent = TestSigner::new("test.");
    let text = format!(
        "example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 604800 300\n\
         example.test. 3600 IN NS ns1.example.test.\n{}",
        fixture.zone_text()
    );
    let mut records = child.sign(
        &parse_zone(&text, "example.test."),
        time(-3600),
        time(86_400),
    );
    if tamper_tlsa {
        // The TLSA data altered after signing: the RRSIG no longer verifies.
        for r in &mut records {
            if let hickory_proto::rr::RData::TLSA(t) = &r.data
                && r.name.to_ascii() == SMTP
            {
                r.data = hickory_proto::rr::RData::TLSA(hickory_proto::rr::rdata::TLSA::new(
                    t.cert_usage,
                    t.selector,
                    t.matching,
                    vec![0; 32],
                ));
            }
        }
    }
    let parent_text = format!(
        "test. 3600 IN SOA ns1.test. hostmaster.test. 1 3600 600 604800 300\n{}\n",
        child.ds()
    );
    records.extend(parent.sign(
        &parse_zone(&parent_text, "test."),
        time(-3600),
        time(86_400),
    ));
    (RecordsSource { records }, parent.ds())
}

#[tokio::test]
async fn mailzone_validates_tlsa_itself() {
    let fixture = Fixture::new();
    let lookup = ZoneLookup::new(&fixture.zone_text()); // no AD bit
    let (source, anchor) = signed_world(&fixture, false);
    let opts = mailzone_check::CheckOptions {
        trust_anchors: vec![anchor],
        ..options()
    };
    let ctx = fixture.ctx(&lookup, &opts);
    let findings =
        mailzone_check::tlsa::check_with(&ctx, &source, mailzone_check::dnssec::now()).await;
    assert!(findings.is_empty(), "{findings:#?}");

    let (source, anchor) = signed_world(&fixture, true);
    let opts = mailzone_check::CheckOptions {
        trust_anchors: vec![anchor],
        ..options()
    };
    let ctx = fixture.ctx(&lookup, &opts);
    let findings =
        mailzone_check::tlsa::check_with(&ctx, &source, mailzone_check::dnssec::now()).await;
    let f = assert_one(&findings, "tlsa-not-authenticated", Severity::Error, SMTP);
    assert!(
        f.seen.as_deref().unwrap().contains("validation fails"),
        "{f:#?}"
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}
