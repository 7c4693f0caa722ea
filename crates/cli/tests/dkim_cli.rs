//! `mailzone dkim list` and `mailzone dkim export`: every key with its stage, and the active
//! keys written 0600 in the formats MTAs read (checked with openssl and against the
//! documented table formats of opendkim.conf(5)).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/example.org.toml")
        .canonicalize()
        .unwrap()
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
    assert_eq!(text.lines().count(), 2, "{text}");

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

    // Formats of later versions say so and write nothing.
    let later = tmp.path().join("later");
    let out = mailzone(
        &state,
        &[
            "dkim",
            "export",
            "--format",
            "rspamd",
            "--out",
            later.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not available"));
    assert!(!later.exists());
}
