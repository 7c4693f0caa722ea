//! `mailzone dkim export`: the active keys written where the MTA reads them.
//!
//! Export formats:
//! - `pem`: `<dir>/<domain>/<selector>.pem`, PKCS#8, one file per active key;
//! - `opendkim`: the key files as for `pem`, plus `KeyTable` (`<selector>._domainkey.<domain>
//!   <domain>:<selector>:<path>`) and `SigningTable` (`*@<domain> <selector>._domainkey.<domain>`),
//!   the two tables of opendkim.conf(5) (`KeyTable file:…`, `SigningTable refile:…`). A domain
//!   with two keys (Ed25519 and RSA) is signed with both only with `MultipleSignatures yes`,
//!   and Ed25519 needs OpenDKIM 2.11.
//! - `stalwart`: the key files as for `pem`, plus `stalwart-dkim.toml` with one
//!   `[signature."<algorithm>-<domain>"]` table per active key (`private-key` read from the
//!   file with `%{file:…}%`, `domain`, `selector`, `algorithm`, `headers`,
//!   `canonicalization`) and `[auth.dkim] sign` choosing `rsa-<domain>` and
//!   `ed25519-<domain>` by the sender's domain — the names Stalwart's own default uses
//!   (Stalwart docs, MTA › DKIM › Signing).
//!
//! - `rspamd`: `dkim_signing.conf` for rspamd's dkim_signing module
//!   (rspamd.com/doc/modules/dkim_signing.html): `domain { "<domain>" { selectors = [
//!   { path = "…"; selector = "…"; } … ]; } }`, every active key of a domain listed, so a
//!   domain with Ed25519 and RSA keys gets both signatures (the module signs with each entry
//!   of `selectors`: lua_dkim_tools.lua of rspamd 3.4). RSA keys are PKCS#8 PEM
//!   (`<selector>.pem`); Ed25519 keys are `<selector>.key` in rspamd's own form, base64 of
//!   the 64-byte seed and public key, as `rspamadm dkim_keygen -t ed25519` writes them:
//!   rspamd 3.4 fails to sign with an Ed25519 PEM key (it loads PEM keys as RSA only).
//!
//!
//! Every file holding a key is created 0600 in directories made 0700.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use mailzone_records::{DkimAlgorithm, DkimStage};
use zeroize::Zeroizing;

use crate::EngineError;

use super::*;

/// The formats `dkim export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Pem,
    Opendkim,
    Stalwart,
    Rspamd,
}

/// The headers Stalwart signs by default.
pub(crate) const STALWART_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Date",
    "Subject",
    "Message-ID",
    "Organization",
    "MIME-Version",
    "Content-Type",
    "In-Reply-To",
    "References",
    "List-Id",
    "User-Agent",
    "Thread-Topic",
    "Thread-Index",
];

/// Writes the active keys (the ones the MTA signs with) under `dir`; returns the files
/// written. Keys in other stages are left out: a `Pending` key is not in DNS everywhere
/// yet, a `Retiring` one is no longer used to sign.
pub fn export(
    keys: &[DkimKeyInfo],
    format: ExportFormat,
    dir: &Path,
) -> Result<Vec<PathBuf>, EngineError> {
    let fail = |path: &Path, e: std::io::Error| {
        EngineError::Usage(format!("cannot write {}: {e}", path.display()))
    };
    make_private_dir(dir).map_err(|e| fail(dir, e))?;
    // The tables name the key files: absolute, so the MTA finds them from its own cwd.
    let absolute = std::path::absolute(dir).map_err(|e| fail(dir, e))?;
    let dir = absolute.as_path();
    let mut written = Vec::new();
    let mut key_table = String::new();
    let mut signing_table = String::new();
    let mut rspamd: std::collections::BTreeMap<&str, Vec<(String, &str)>> = Default::default();
    let mut stalwart = String::from(
        "# DKIM signatures for Stalwart, written by `mailzone dkim export --format stalwart`.\n",
    );
    for key in keys
        .iter()
        .filter(|k| k.stage == DkimStage::Active.as_str())
    {
        let Some(private) = &key.private_key else {
            continue;
        };
        let domain_dir = dir.join(&key.domain);
        make_private_dir(&domain_dir).map_err(|e| fail(&domain_dir, e))?;
        if format == ExportFormat::Rspamd {
            let (path, text) = match private.ed25519_base64_keypair() {
                Some(raw) => (
                    domain_dir.join(format!("{}.key", key.selector)),
                    Zeroizing::new(format!("{}\n", raw.as_str())),
                ),
                None => (
                    domain_dir.join(format!("{}.pem", key.selector)),
                    Zeroizing::new(private.pkcs8_pem().to_string()),
                ),
            };
            write_private(&path, &text).map_err(|e| fail(&path, e))?;
            written.push(path.clone());
            rspamd
                .entry(key.domain.as_str())
                .or_default()
                .push((path.display().to_string(), key.selector.as_str()));
            continue;
        }
        let path = domain_dir.join(format!("{}.pem", key.selector));
        write_private(&path, private.pkcs8_pem()).map_err(|e| fail(&path, e))?;
        written.push(path.clone());
        let signer = format!("{}._domainkey.{}", key.selector, key.domain);
        key_table.push_str(&format!(
            "{signer} {}:{}:{}\n",
            key.domain,
            key.selector,
            path.display()
        ));
        signing_table.push_str(&format!("*@{} {signer}\n", key.domain));
        let prefix = match key.algorithm {
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
            DkimAlgorithm::RsaSha256 => "rsa",
        };
        let headers: Vec<String> = STALWART_HEADERS.iter().map(|h| format!("{h:?}")).collect();
        stalwart.push_str(&format!(
            "\n[signature.\"{prefix}-{domain}\"]\nprivate-key = \"%{{file:{path}}}%\"\ndomain = \"{domain}\"\nselector = \"{selector}\"\nalgorithm = \"{algorithm}\"\nheaders = [{headers}]\ncanonicalization = \"relaxed/relaxed\"\nset-body-length = false\nreport = false\n",
            domain = key.domain,
            path = path.display(),
            selector = key.selector,
            algorithm = key.algorithm.as_str(),
            headers = headers.join(", "),
        ));
    }
    if format == ExportFormat::Stalwart {
        stalwart.push_str(
            "\n[auth.dkim]\nsign = [ { if = \"is_local_domain('*', sender_domain)\", then = \"['rsa-' + sender_domain, 'ed25519-' + sender_domain]\" },\n         { else = false } ]\n",
        );
        let path = dir.join("stalwart-dkim.toml");
        write_private(&path, &stalwart).map_err(|e| fail(&path, e))?;
        written.push(path);
    }
    if format == ExportFormat::Rspamd {
        let mut text = String::from(
            "# rspamd dkim_signing module: the active DKIM keys, written by\n# `mailzone dkim export --format rspamd` (rewritten on every export; do not edit).\n# Use it as /etc/rspamd/local.d/dkim_signing.conf, or `.include` it from there.\ndomain {\n",
        );
        for (domain, selectors) in &rspamd {
            text.push_str(&format!("  {} {{\n    selectors = [\n", ucl_string(domain)));
            for (path, selector) in selectors {
                text.push_str(&format!(
                    "      {{ path = {}; selector = {}; }},\n",
                    ucl_string(path),
                    ucl_string(selector)
                ));
            }
            text.push_str("    ];\n  }\n");
        }
        text.push_str("}\n");
        let path = dir.join("dkim_signing.conf");
        write_private(&path, &text).map_err(|e| fail(&path, e))?;
        written.push(path);
    }
    if format == ExportFormat::Opendkim {
        for (name, text) in [("KeyTable", key_table), ("SigningTable", signing_table)] {
            let path = dir.join(name);
            write_private(&path, &text).map_err(|e| fail(&path, e))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// A double-quoted UCL string (JSON escapes, which UCL reads).
pub(crate) fn ucl_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

pub(crate) fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Replaces `path` with `text`, mode 0600 from the start (written beside it, then renamed,
/// so the MTA never reads half a key).
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp-mailzone");
    let _ = std::fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let text = Zeroizing::new(text.to_string());
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
