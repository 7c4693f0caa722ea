//! The `check` use case over many domains: desired records planned (automatic DKIM keys
//! generated once and then read back from the store, never regenerated), every domain
//! checked with bounded concurrency, findings per domain in config order. DNS is a
//! `ZoneLookup` serving exactly what `records` planned, so every domain is clean; one
//! domain misses a record.

use mailzone_check::lookup::ZoneLookup;
use mailzone_check::{CheckOptions, Severity};
use mailzone_engine::check::check_with;
use mailzone_engine::{CheckRequest, RecordsRequest, load_config, records};

const DOMAINS: usize = 40;

fn config() -> String {
    let mut text = String::from(
        r#"
[server]
hostname = "mail.example.test"
ipv4 = ["192.0.2.10"]

[[server.mailExchangers]]
hostname = "mail.example.test"
priority = 10

[server.services]
imap = {}
"#,
    );
    for i in 0..DOMAINS {
        text.push_str(&format!(
            "\n[domain.\"d{i:03}.test\"]\ndkimManagement = {{ automatic = {{ algorithms = [\"ed25519-sha256\"] }} }}\n"
        ));
    }
    text
}

#[tokio::test]
async fn many_domains_are_checked_with_their_stored_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailzone.toml");
    std::fs::write(&path, config()).unwrap();
    let loaded = load_config(&path).unwrap();
    let state_dir = dir.path().join("state");

    // What a correct DNS serves: the planned records (keys generated here), the mail host's
    // address and its PTR.
    let planned = records(
        &loaded,
        &RecordsRequest {
            domains: vec![],
            types: vec![],
            state_dir: state_dir.clone(),
            now_unix: 1_795_651_200,
            store: None,
        },
    )
    .await
    .unwrap();
    let mut zone = String::from(
        "mail.example.test. 300 IN A 192.0.2.10\n\
         10.2.0.192.in-addr.arpa. 300 IN PTR mail.example.test.\n\
         test. 300 IN CAA 0 issue \"letsencrypt.org\"\n",
    );
    for domain in &planned {
        for d in &domain.records {
            if domain.domain.name.as_str() == "d007.test"
                && d.record.name.as_str().starts_with("_dmarc.")
            {
                continue; // the one defect
            }
            zone.push_str(&mailzone_records::zonefile::record_line(&d.record, 0));
            zone.push('\n');
        }
    }
    let lookup = ZoneLookup::new(&zone);
    let request = CheckRequest {
        domains: vec![],
        nameservers: vec![],
        state_dir,
        options: CheckOptions {
            fetch_mta_sts: false,
            ..CheckOptions::default()
        },
        concurrency: 8,
        store: None,
    };
    let report = check_with(&loaded, &request, &lookup).await.unwrap();
    assert_eq!(report.domains.len(), DOMAINS);
    let names: Vec<&str> = report.domains.iter().map(|d| d.domain.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "config order");
    for domain in &report.domains {
        let errors: Vec<_> = domain
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        if domain.domain.as_str() == "d007.test" {
            assert!(
                errors
                    .iter()
                    .any(|f| f.code == "record-missing" && f.name == "_dmarc.d007.test."),
                "{errors:#?}"
            );
        } else {
            // The DKIM record served is the stored key's: no DKIM or record error.
            assert!(errors.is_empty(), "{}: {errors:#?}", domain.domain);
        }
    }
    assert!(report.count(Severity::Error) >= 1);
}
