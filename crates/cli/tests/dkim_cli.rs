//! `mailzone dkim list` and `mailzone dkim export`: every key with its stage, and the active
//! keys written 0600 in the formats MTAs read (checked with openssl and against the
//! documented table formats of opendkim.conf(5)).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The example config with example.net under manual DNS management (the example publishes
/// it into a zone file): these tests follow DKIM keys that the operator publishes, whose
/// stages move on commands only. Its relative paths made absolute, in the target's
/// temporary directory.
fn example() -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .canonicalize()
        .unwrap();
    let text = std::fs::read_to_string(examples.join("example.org.toml")).unwrap();
    let automatic = "dnsManagement = { automatic = { dnsServer = \"local-files\" } }\n";
    assert!(
        text.contains(automatic),
        "the example changed: update this test"
    );
    let text = text
        .replace(automatic, "")
        .replace("\"certs/", &format!("\"{}/certs/", examples.display()))
        .replace("\"keys/", &format!("\"{}/keys/", examples.display()));
    // Written beside and renamed over: every call writes it again, and the tests of this
    // file run side by side, so a plain write could be read half done (empty) by another.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("dkim_cli-example.toml");
    let mut beside = tempfile::NamedTempFile::new_in(dir).unwrap();
    std::io::Write::write_all(&mut beside, text.as_bytes()).unwrap();
    beside.persist(&path).unwrap();
    path
}

fn mailzone(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(args)
        .arg("--config")
        .arg(example())
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn list_and_export_the_active_keys() {
    if !mailzone_testkit::require_tool("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // The automatic keys of example.net are made on first use.
    assert!(
        mailzone(&state, &["records", "example.net"])
            .status
            .success()
    );

    let out = mailzone(&state, &["dkim", "list", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys.len(), 4, "{keys:#?}");
    for k in &keys {
        assert_eq!(k["stage"], "Active");
        let expected_source = if k["domain"] == "example.net" {
            "database"
        } else {
            "config"
        };
        assert_eq!(k["source"], expected_source, "{k}");
        assert!(k.get("privateKey").is_none() && !k.to_string().contains("PRIVATE"));
    }
    let text =
        String::from_utf8(mailzone(&state, &["dkim", "list", "example.org"]).stdout).unwrap();
    // A header naming the columns, then one line per key.
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().next().unwrap().starts_with("DOMAIN") && text.contains("SELECTOR"),
        "{text}"
    );

    let dir = tmp.path().join("export");
    let out = mailzone(
        &state,
        &[
            "dkim",
            "export",
            "--format",
            "opendkim",
            "--out",
            dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&dir), 0o700);
    for k in &keys {
        let (domain, selector) = (
            k["domain"].as_str().unwrap(),
            k["selector"].as_str().unwrap(),
        );
        let pem = dir.join(domain).join(format!("{selector}.pem"));
        assert_eq!(mode(&pem), 0o600, "{}", pem.display());
        assert_eq!(mode(&dir.join(domain)), 0o700);
        // openssl derives the same public key as the published record.
        let der = Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&pem)
            .output()
            .unwrap();
        assert!(
            der.status.success(),
            "{}",
            String::from_utf8_lossy(&der.stderr)
        );
        use base64::Engine as _;
        let record = k["record"].as_str().unwrap();
        let p = record.rsplit("p=").next().unwrap();
        let published = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
        if k["algorithm"] == "rsa-sha256" {
            assert_eq!(published, der.stdout, "{domain} {selector}");
        } else {
            // RFC 8463: the raw 32-byte key is the tail of the SubjectPublicKeyInfo.
            assert_eq!(
                published,
                der.stdout[der.stdout.len() - 32..],
                "{domain} {selector}"
            );
        }
    }
    // opendkim.conf(5): KeyTable "name domain:selector:keypath", SigningTable (refile)
    // "pattern name".
    let key_table = std::fs::read_to_string(dir.join("KeyTable")).unwrap();
    let signing_table = std::fs::read_to_string(dir.join("SigningTable")).unwrap();
    assert_eq!(mode(&dir.join("KeyTable")), 0o600);
    assert_eq!(key_table.lines().count(), 4);
    for line in key_table.lines() {
        let (name, value) = line.split_once(' ').unwrap();
        let parts: Vec<&str> = value.split(':').collect();
        assert_eq!(parts.len(), 3, "{line}");
        assert_eq!(name, format!("{}._domainkey.{}", parts[1], parts[0]));
        assert!(Path::new(parts[2]).is_file(), "{line}");
        assert!(
            signing_table.contains(&format!("*@{} {name}\n", parts[0])),
            "{signing_table}"
        );
    }

    // Stalwart: the TOML parses, one signature per active key named as Stalwart's default
    // `sign` rule expects, each reading its key file.
    let stalwart_dir = tmp.path().join("stalwart");
    let out = mailzone(
        &state,
        &[
            "dkim",
            "export",
            "--format",
            "stalwart",
            "--out",
            stalwart_dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(stalwart_dir.join("stalwart-dkim.toml")).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    let signatures = doc["signature"].as_table().unwrap();
    assert_eq!(signatures.len(), 4, "{text}");
    for k in &keys {
        let prefix = if k["algorithm"] == "rsa-sha256" {
            "rsa"
        } else {
            "ed25519"
        };
        let sig = &signatures[&format!("{prefix}-{}", k["domain"].as_str().unwrap())];
        assert_eq!(sig["selector"].as_str(), k["selector"].as_str());
        assert_eq!(sig["algorithm"].as_str(), k["algorithm"].as_str());
        let key_ref = sig["private-key"].as_str().unwrap();
        let file = key_ref
            .strip_prefix("%{file:")
            .and_then(|r| r.strip_suffix("}%"))
            .unwrap();
        assert!(Path::new(file).is_file(), "{key_ref}");
        assert!(
            sig["headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h.as_str() == Some("From"))
        );
    }
    assert!(doc["auth"]["dkim"]["sign"].is_array(), "{text}");
}

#[test]
fn generate_makes_a_pending_key_that_is_published_but_not_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let json = |args: &[&str]| -> Value {
        let out = mailzone(&state, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };

    // example.org has manual keys: mailzone makes none for it.
    let out = mailzone(&state, &["dkim", "generate", "example.org"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("manual DKIM keys"), "{stderr}");

    assert!(
        mailzone(&state, &["records", "example.net"])
            .status
            .success()
    );
    let before = json(&["dkim", "list", "example.net", "--format", "json"]);
    let first = before
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["algorithm"] == "ed25519-sha256")
        .unwrap()["selector"]
        .as_str()
        .unwrap()
        .to_string();

    let made = json(&[
        "dkim",
        "generate",
        "example.net",
        "--algorithm",
        "ed25519-sha256",
        "--format",
        "json",
    ]);
    assert_eq!(made.as_array().unwrap().len(), 1, "{made}");
    let new = made[0]["selector"].as_str().unwrap().to_string();
    assert_ne!(new, first);
    assert_eq!(
        made[0]["owner"],
        format!("{new}._domainkey.example.net").as_str(),
        "{made}"
    );
    assert_eq!(made[0]["stage"], "Pending");
    assert_eq!(made[0]["created"], true);
    assert_eq!(made[0]["dnsAutomatic"], false);
    assert!(!made.to_string().contains("PRIVATE"));

    // Asked again: the waiting key, not a second one.
    let again = json(&[
        "dkim",
        "generate",
        "example.net",
        "--algorithm",
        "ed25519-sha256",
        "--format",
        "json",
    ]);
    assert_eq!(again[0]["selector"], new.as_str());
    assert_eq!(again[0]["created"], false);

    let keys = json(&["dkim", "list", "example.net", "--format", "json"]);
    let stage_of = |keys: &Value, selector: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["selector"] == selector)
            .map(|k| k["stage"].as_str().unwrap().to_string())
    };
    assert_eq!(stage_of(&keys, &first).as_deref(), Some("Active"));
    assert_eq!(stage_of(&keys, &new).as_deref(), Some("Pending"));
    assert_eq!(keys.as_array().unwrap().len(), 3, "{keys:#}");

    // Its record is among the records to publish…
    let zone =
        String::from_utf8(mailzone(&state, &["records", "example.net", "--types", "dkim"]).stdout)
            .unwrap();
    assert!(
        zone.contains(&format!("{new}._domainkey.example.net.")),
        "{zone}"
    );
    assert!(zone.contains(&format!("{first}._domainkey.example.net.")));
    // …but the MTA does not sign with it yet.
    let dir = tmp.path().join("pem");
    assert!(
        mailzone(
            &state,
            &[
                "dkim",
                "export",
                "--format",
                "pem",
                "--out",
                dir.to_str().unwrap()
            ]
        )
        .status
        .success()
    );
    assert!(
        dir.join("example.net")
            .join(format!("{first}.pem"))
            .is_file()
    );
    assert!(!dir.join("example.net").join(format!("{new}.pem")).exists());

    // Manual DNS: the operator confirms publication, and the rotation path activates it.
    let r = json(&[
        "dkim",
        "rotate",
        "example.net",
        "--confirm-published",
        "--format",
        "json",
    ]);
    assert_eq!(r[0]["activated"], serde_json::json!([new.as_str()]), "{r}");
    assert_eq!(r[0]["retiring"], serde_json::json!([first.as_str()]), "{r}");
    let keys = json(&["dkim", "list", "example.net", "--format", "json"]);
    assert_eq!(stage_of(&keys, &new).as_deref(), Some("Active"));
    assert_eq!(stage_of(&keys, &first).as_deref(), Some("Retiring"));

    // An algorithm the domain does not use is refused.
    let narrow = tmp.path().join("narrow.toml");
    std::fs::write(
        &narrow,
        "[server]\nhostname = \"mail.example.com\"\nipv4 = [\"192.0.2.1\"]\n[domain.\"example.com\"]\ndkimManagement = { automatic = { algorithms = [\"ed25519-sha256\"] } }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(["dkim", "generate", "--algorithm", "rsa-sha256", "--config"])
        .arg(&narrow)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not in dkimManagement.automatic.algorithms"),
        "{stderr}"
    );
}
