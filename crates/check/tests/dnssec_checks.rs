//! The DNSSEC checks against zones signed in memory (`mailzone_testkit::dnssec`) and served by
//! `RecordsSource` (answers like an authoritative server for the zones given): each code
//! fires on a zone with one defect, and a correctly signed and delegated zone is quiet.

mod dnssec_common;

use dnssec_common::{Fixture, assert_one, name, options};
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{RData, Record, RecordType};
use mailzone_check::dnssec::source::RecordsSource;
use mailzone_check::lookup::ZoneLookup;
use mailzone_check::{CheckOptions, Finding, Severity};
use mailzone_testkit::dnssec::{TestSigner, parse_zone, time, wire_name};

const DAY: i64 = 86_400;

/// The child zone `example.test.`: SOA, NS and every record the fixture plans.
fn child_records(fixture: &Fixture) -> Vec<Record> {
    let text = format!(
        "example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 604800 300\n\
         example.test. 3600 IN NS ns1.example.test.\n\
         ns1.example.test. 3600 IN A 127.0.0.1\n{}",
        fixture.zone_text()
    );
    parse_zone(&text, "example.test.")
}

/// The parent zone `test.`, with `ds` lines (DS records of the child) if any.
fn parent_records(ds: &[String]) -> Vec<Record> {
    let text = format!(
        "test. 3600 IN SOA ns1.test. hostmaster.test. 1 3600 600 604800 300\n\
         test. 3600 IN NS ns1.test.\n{}\n",
        ds.join("\n")
    );
    parse_zone(&text, "test.")
}

struct World {
    parent: TestSigner,
    child: TestSigner,
}

impl World {
    fn new() -> World {
        World {
            parent: TestSigner::new("test."),
            child: TestSigner::new("example.test."),
        }
    }

    /// Both zones signed, valid from a day ago for a week, the parent holding the child's DS.
    fn signed(&self, fixture: &Fixture) -> Vec<Record> {
        let mut records = self
            .child
            .sign(&child_records(fixture), time(-DAY), time(7 * DAY));
        records.extend(self.parent.sign(
            &parent_records(&[self.child.ds()]),
            time(-DAY),
            time(7 * DAY),
        ));
        records
    }
}

async fn run(fixture: &Fixture, records: Vec<Record>, anchors: &[String]) -> Vec<Finding> {
    let lookup = ZoneLookup::new("");
    let options = CheckOptions {
        trust_anchors: anchors.to_vec(),
        ..options()
    };
    let source = RecordsSource { records };
    mailzone_check::dnssec::check_with(
        &fixture.ctx(&lookup, &options),
        &source,
        mailzone_check::dnssec::now(),
    )
    .await
}

/// `records` with the RRSIG covering `owner`/`rtype` replaced by `rrsig` (or removed).
fn replace_rrsig(
    records: Vec<Record>,
    owner: &str,
    rtype: RecordType,
    rrsig: Option<Record>,
) -> Vec<Record> {
    let owner = wire_name(owner);
    let mut out: Vec<Record> = records
        .into_iter()
        .filter(|r| {
            !(r.name == owner
                && matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == rtype))
        })
        .collect();
    out.extend(rrsig);
    out
}

fn rrset_of(records: &[Record], owner: &str, rtype: RecordType) -> Vec<Record> {
    let owner = wire_name(owner);
    records
        .iter()
        .filter(|r| r.name == owner && r.record_type() == rtype)
        .cloned()
        .collect()
}

#[tokio::test]
async fn signed_and_delegated_zone_validates_from_the_parent_anchor() {
    let fixture = Fixture::new();
    let world = World::new();
    let findings = run(&fixture, world.signed(&fixture), &[world.parent.ds()]).await;
    assert!(findings.is_empty(), "{findings:#?}");
    // The zone's own DS as anchor works too, and so does its KSK in DNSKEY form.
    let findings = run(&fixture, world.signed(&fixture), &[world.child.ds()]).await;
    assert!(findings.is_empty(), "{findings:#?}");
}

#[tokio::test]
async fn anchor_in_dnskey_form() {
    use base64::Engine as _;
    let fixture = Fixture::new();
    let world = World::new();
    let key = &world.child.ksk_dnskey;
    let anchor = format!(
        "example.test. IN DNSKEY 257 3 15 {}",
        base64::engine::general_purpose::STANDARD.encode(
            hickory_proto::dnssec::PublicKey::public_bytes(key.public_key())
        )
    );
    let findings = run(&fixture, world.signed(&fixture), &[anchor]).await;
    assert!(findings.is_empty(), "{findings:#?}");
}

#[tokio::test]
async fn wrong_anchor_is_an_anchor_mismatch() {
    let fixture = Fixture::new();
    let world = World::new();
    let stranger = TestSigner::new("example.test.");
    let findings = run(&fixture, world.signed(&fixture), &[stranger.ds()]).await;
    assert_one(
        &findings,
        "dnssec-anchor-mismatch",
        Severity::Error,
        "example.test.",
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
    // An anchor that cannot be read is reported the same way.
    let findings = run(
        &fixture,
        world.signed(&fixture),
        &["example.test. DS nonsense".into()],
    )
    .await;
    assert_one(
        &findings,
        "dnssec-anchor-mismatch",
        Severity::Error,
        "example.test.",
    );
}

#[tokio::test]
async fn parent_ds_for_another_key_is_a_ds_mismatch() {
    let fixture = Fixture::new();
    let world = World::new();
    let stranger = TestSigner::new("example.test.");
    let mut records = world
        .child
        .sign(&child_records(&fixture), time(-DAY), time(7 * DAY));
    records.extend(
        world
            .parent
            .sign(&parent_records(&[stranger.ds()]), time(-DAY), time(7 * DAY)),
    );
    let findings = run(&fixture, records.clone(), &[world.parent.ds()]).await;
    let f = assert_one(
        &findings,
        "dnssec-ds-mismatch",
        Severity::Error,
        "example.test.",
    );
    assert!(
        f.fix.as_deref().unwrap().contains("example.test. DS "),
        "{f:#?}"
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
    // With the zone's own anchor the zone validates, and the wrong DS is still reported.
    let findings = run(&fixture, records, &[world.child.ds()]).await;
    assert_one(
        &findings,
        "dnssec-ds-mismatch",
        Severity::Error,
        "example.test.",
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn parent_without_ds_is_a_warning() {
    let fixture = Fixture::new();
    let world = World::new();
    let mut records = world
        .child
        .sign(&child_records(&fixture), time(-DAY), time(7 * DAY));
    records.extend(
        world
            .parent
            .sign(&parent_records(&[]), time(-DAY), time(7 * DAY)),
    );
    let findings = run(&fixture, records, &[world.child.ds()]).await;
    let f = assert_one(
        &findings,
        "dnssec-ds-missing",
        Severity::Warning,
        "example.test.",
    );
    let tag = world.child.ksk_dnskey.calculate_key_tag().unwrap();
    assert!(
        f.fix.as_deref().unwrap().starts_with(&format!(
            "publish at the parent (registrar): example.test. DS {tag} 15 2 "
        )),
        "{f:#?}"
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn altered_data_is_an_invalid_signature() {
    let fixture = Fixture::new();
    let world = World::new();
    // The MX changed after signing (its old RRSIG kept).
    let records: Vec<Record> = world
        .signed(&fixture)
        .into_iter()
        .map(|mut r| {
            if let RData::MX(mx) = &r.data {
                r.data = RData::MX(hickory_proto::rr::rdata::MX::new(20, mx.exchange.clone()));
            }
            r
        })
        .collect();
    let findings = run(&fixture, records, &[world.parent.ds()]).await;
    let f = assert_one(
        &findings,
        "dnssec-signature-invalid",
        Severity::Error,
        "example.test.",
    );
    assert!(f.message.starts_with("example.test. MX"), "{f:#?}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn expired_signature() {
    let fixture = Fixture::new();
    let world = World::new();
    let records = world.signed(&fixture);
    let mx = rrset_of(&records, "example.test.", RecordType::MX);
    let expired = world.child.rrsig(&mx, time(-14 * DAY), time(-DAY), false);
    let records = replace_rrsig(records, "example.test.", RecordType::MX, Some(expired));
    let findings = run(&fixture, records, &[world.parent.ds()]).await;
    let f = assert_one(
        &findings,
        "dnssec-signature-expired",
        Severity::Error,
        "example.test.",
    );
    assert!(f.seen.as_deref().unwrap().contains("expired at"), "{f:#?}");
    assert_eq!(findings.len(), 1, "{findings:#?}");

    // A whole zone signed with an expired validity: the DNSKEY RRset itself fails.
    let mut records = world
        .child
        .sign(&child_records(&fixture), time(-14 * DAY), time(-DAY));
    records.extend(world.parent.sign(
        &parent_records(&[world.child.ds()]),
        time(-DAY),
        time(7 * DAY),
    ));
    let findings = run(&fixture, records, &[world.parent.ds()]).await;
    assert_one(
        &findings,
        "dnssec-signature-expired",
        Severity::Error,
        "example.test.",
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn signature_from_the_future() {
    let fixture = Fixture::new();
    let world = World::new();
    let records = world.signed(&fixture);
    let owner = "_25._tcp.mail.example.test.";
    let tlsa = rrset_of(&records, owner, RecordType::TLSA);
    assert!(!tlsa.is_empty());
    let future = world.child.rrsig(&tlsa, time(DAY), time(7 * DAY), false);
    let records = replace_rrsig(records, owner, RecordType::TLSA, Some(future));
    let findings = run(&fixture, records, &[world.parent.ds()]).await;
    assert_one(
        &findings,
        "dnssec-signature-not-yet-valid",
        Severity::Error,
        owner,
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn unsigned_rrset_in_a_signed_zone() {
    let fixture = Fixture::new();
    let world = World::new();
    let owner = "_465._tcp.mail.example.test.";
    let records = replace_rrsig(world.signed(&fixture), owner, RecordType::TLSA, None);
    let findings = run(&fixture, records, &[world.parent.ds()]).await;
    assert_one(
        &findings,
        "dnssec-signature-missing",
        Severity::Error,
        owner,
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn unsigned_zone() {
    // With TLSA records planned: an error.
    let fixture = Fixture::new();
    let mut records = child_records(&fixture);
    records.extend(parent_records(&[]));
    let findings = run(&fixture, records.clone(), &[]).await;
    let f = assert_one(
        &findings,
        "dnssec-unsigned",
        Severity::Error,
        "example.test.",
    );
    assert!(f.message.contains("TLSA"), "{f:#?}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    // Without TLSA: information.
    let plain = Fixture::build(vec![("202611e".into(), dnssec_common::ed25519_key())], None);
    let mut records = child_records(&plain);
    records.extend(parent_records(&[]));
    let findings = run(&plain, records, &[]).await;
    assert_one(
        &findings,
        "dnssec-unsigned",
        Severity::Info,
        "example.test.",
    );
}

#[tokio::test]
async fn no_anchor_and_no_parent_is_only_unverified() {
    let fixture = Fixture::new();
    let world = World::new();
    let records = world
        .child
        .sign(&child_records(&fixture), time(-DAY), time(7 * DAY));
    let findings = run(&fixture, records, &[]).await;
    let f = assert_one(
        &findings,
        "dnssec-chain-unverified",
        Severity::Info,
        "example.test.",
    );
    assert!(f.message.contains("root"), "{f:#?}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn unsupported_algorithm_gives_no_verdict() {
    use hickory_proto::dnssec::rdata::{DNSKEY, RRSIG, SigInput};
    use hickory_proto::dnssec::{Algorithm, PublicKeyBuf};
    let fixture = Fixture::new();
    let zone = wire_name("example.test.");
    // A zone "signed" with algorithm 253 (PRIVATEDNS, RFC 4034 A.1.1): nothing verifies it.
    let key = DNSKEY::new(
        true,
        true,
        false,
        PublicKeyBuf::new(vec![7; 32], Algorithm::Unknown(253)),
    );
    let dnskey = Record::from_rdata(
        zone.clone(),
        3600,
        RData::DNSSEC(DNSSECRData::DNSKEY(key.clone())),
    );
    let input = SigInput {
        type_covered: RecordType::DNSKEY,
        algorithm: Algorithm::Unknown(253),
        num_labels: 2,
        original_ttl: 3600,
        sig_expiration: hickory_proto::rr::SerialNumber::new(time(DAY)),
        sig_inception: hickory_proto::rr::SerialNumber::new(time(-DAY)),
        key_tag: key.calculate_key_tag().unwrap(),
        signer_name: zone.clone(),
    };
    let rrsig = Record::from_rdata(
        zone.clone(),
        3600,
        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![1; 64]))),
    );
    let mut records = child_records(&fixture);
    records.push(dnskey);
    records.push(rrsig);
    let findings = run(&fixture, records, &[]).await;
    assert_one(
        &findings,
        "dnssec-algorithm-unsupported",
        Severity::Warning,
        "example.test.",
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[tokio::test]
async fn without_servers_the_authenticated_flag_decides() {
    let fixture = Fixture::new();
    let options = options();
    let unsigned = ZoneLookup::new(&fixture.zone_text());
    let findings = mailzone_check::dnssec::check(&fixture.ctx(&unsigned, &options)).await;
    assert_one(
        &findings,
        "dnssec-not-validated",
        Severity::Info,
        "example.test.",
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let signed = ZoneLookup::signed(&fixture.zone_text());
    let findings = mailzone_check::dnssec::check(&fixture.ctx(&signed, &options)).await;
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn anchors_parse() {
    let anchors = mailzone_check::dnssec::parse_anchors(&[
        "example.test. 3600 IN DS 35583 13 2 313F31F929FCEA00DFE75C2D70511A4DDB5F8EB435797A35DFA175569BE0CF16".into(),
        "example.test. DNSKEY 257 3 13 IAKvxbQm1L2pfFRO954t/OmXIDV7W1ysABWJJKDqNXt6zYjc19i3a1FNi+UdPi54oAzlQYzWYxlx38cQJZ85xQ== ; KSK".into(),
        "; a comment line".into(),
    ])
    .unwrap();
    assert_eq!(anchors.len(), 2);
    assert!(mailzone_check::dnssec::parse_anchors(&["example.test. A 192.0.2.1".into()]).is_err());
    let _ = name("example.test");
}
