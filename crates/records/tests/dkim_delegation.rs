//! Delegated DKIM (`dkimManagement.automatic.delegateTo`): config validation with the key
//! path of each mistake, and the records the planner makes for a delegating domain.

use std::path::Path;

use mailzone_records::config::parse;
use mailzone_records::dkim::{DkimPrivateKey, DkimSelectorKey};
use mailzone_records::{DkimAlgorithm, DkimDelegation, PlanInput, RData, RecordPurpose, plan};

const BASE: &str = r#"
[server]
hostname = "mail.provider.test"
ipv4 = ["192.0.2.10"]

[dnsServer.provider]
kind = "rfc2136"
host = "127.0.0.1"
"#;

const KEY: &str = "domain.\"customer.test\".dkimManagement.automatic";

fn config(
    automatic: &str,
) -> Result<mailzone_records::Config, mailzone_records::config::ConfigError> {
    parse(
        &format!(
            "{BASE}[domain.\"customer.test\"]\ndkimManagement = {{ automatic = {{ {automatic} }} }}\n"
        ),
        Path::new("/etc/mailzone"),
    )
}

#[test]
fn delegate_to_is_validated_and_names_its_key() {
    let c =
        config(r#"delegateTo = "DKIM.Provider.Test.", delegateDnsServer = "provider""#).unwrap();
    assert_eq!(
        c.domains[0].dkim_management.delegation(),
        Some(&DkimDelegation {
            zone: mailzone_records::Name::host("dkim.provider.test").unwrap(),
            dns_server: "provider".into(),
        })
    );
    let cases = [
        (
            r#"delegateTo = "dkim.provider.test""#,
            "delegateDnsServer",
            "needs delegateDnsServer",
        ),
        (
            r#"delegateDnsServer = "provider""#,
            "delegateDnsServer",
            "without delegateTo",
        ),
        (
            r#"delegateTo = "dkim.provider.test", delegateDnsServer = "nope""#,
            "delegateDnsServer",
            "no [dnsServer.nope] table (defined: provider)",
        ),
        (
            r#"delegateTo = "not a name", delegateDnsServer = "provider""#,
            "delegateTo",
            "",
        ),
        (
            r#"delegateTo = "dkim.provider.test", delegateDnsServer = "provider", selectorTemplate = "s{year}{algorithm}""#,
            "selectorTemplate",
            "fixed slots",
        ),
    ];
    for (written, key, message) in cases {
        let e = config(written).unwrap_err();
        assert_eq!(e.key, format!("{KEY}.{key}"), "{written}: {e}");
        assert!(e.message.contains(message), "{written}: {e}");
    }
}

#[test]
fn slots_alternate_per_algorithm() {
    assert_eq!(
        DkimDelegation::slots(DkimAlgorithm::Ed25519Sha256),
        ["e1", "e2"]
    );
    assert_eq!(
        DkimDelegation::slots(DkimAlgorithm::RsaSha256),
        ["r1", "r2"]
    );
}

#[test]
fn the_domain_gets_every_slot_cname_and_the_keys_go_to_the_provider_zone() {
    let c = config(
        r#"algorithms = ["ed25519-sha256", "rsa-sha256"], delegateTo = "dkim.provider.test", delegateDnsServer = "provider""#,
    )
    .unwrap();
    let key = DkimPrivateKey::generate(DkimAlgorithm::Ed25519Sha256, &mut rand::rng());
    let keys = [DkimSelectorKey {
        selector: "e2".into(),
        key: key.public_key(),
    }];
    let plan_with = |keys: &[DkimSelectorKey]| {
        plan(PlanInput {
            server: &c.server,
            domain: &c.domains[0],
            dkim_keys: keys,
            tlsa: None,
        })
        .unwrap()
        .into_iter()
        .filter(|r| r.purpose == RecordPurpose::Dkim)
        .map(|r| (r.record.name.as_str().to_string(), r.record.data))
        .collect::<Vec<_>>()
    };
    let cname = |slot: &str| {
        (
            format!("{slot}._domainkey.customer.test"),
            RData::Cname(
                mailzone_records::Name::host(&format!("{slot}.customer.test.dkim.provider.test"))
                    .unwrap(),
            ),
        )
    };
    let records = plan_with(&keys);
    let mut expected = vec![
        cname("e1"),
        cname("e2"),
        cname("r1"),
        cname("r2"),
        (
            "e2.customer.test.dkim.provider.test".to_string(),
            RData::Txt(key.public_key().txt_value().into_bytes()),
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sorted = records.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(sorted, expected);
    // The CNAMEs are there whatever the keys: the customer's zone never changes.
    let without_keys = plan_with(&[]);
    assert_eq!(without_keys.len(), 4);
    assert!(
        without_keys
            .iter()
            .all(|(_, d)| matches!(d, RData::Cname(_)))
    );
}
