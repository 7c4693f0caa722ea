//! Client autoconfiguration: PACC (draft-ietf-mailmaint-pacc-02 §4: `ua-auto-config.<domain>`
//! serving a JSON configuration whose SHA-256 is published in `_ua-auto-config.<domain>` TXT
//! as `v=UAAC1; a=sha256; d=<base64>`), Thunderbird's legacy `autoconfig.<domain>` and
//! Microsoft's `autodiscover.<domain>`.
//!
//! The PACC document is rendered here, deterministically, because its digest goes into DNS:
//! the HTTP endpoint (mailzone serve) must serve exactly these bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::model::{ServiceFamily, Services};
use crate::name::Name;

/// The PACC configuration document for a domain: one entry per offered protocol with the
/// host, port and transport security, and the `https` URL of each HTTP service. Keys are
/// sorted (serde_json's map), so equal configurations give equal bytes.
pub fn pacc_document(services: &Services) -> String {
    let mut protocols = Map::new();
    for family in ServiceFamily::ALL {
        let Some(service) = services.get(family) else {
            continue;
        };
        let key = match family {
            ServiceFamily::Submission => "smtp",
            other => other.key(),
        };
        let entry = if family.is_http() {
            let path = match family {
                ServiceFamily::Jmap => "/.well-known/jmap",
                ServiceFamily::Caldav => "/.well-known/caldav",
                _ => "/.well-known/carddav",
            };
            json!({ "url": https_url(&service.hostname, service.port, path) })
        } else {
            json!({
                "host": service.hostname.as_str(),
                "port": service.port,
                "encryption": "tls",
            })
        };
        protocols.insert(key.to_string(), entry);
    }
    let document = json!({
        "version": 1,
        "protocols": Value::Object(protocols),
        "authentication": { "password": {} },
    });
    let mut text = serde_json::to_string_pretty(&document).expect("a JSON value always serialises");
    text.push('\n');
    text
}

fn https_url(host: &Name, port: u16, path: &str) -> String {
    if port == 443 {
        format!("https://{}{path}", host.as_str())
    } else {
        format!("https://{}:{port}{path}", host.as_str())
    }
}

/// `v=UAAC1; a=sha256; d=<base64 SHA-256 of the document>`.
pub fn pacc_txt_value(document: &str) -> String {
    let digest = Sha256::digest(document.as_bytes());
    format!("v=UAAC1; a=sha256; d={}", BASE64.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Service;

    #[test]
    fn document_and_digest() {
        let host = Name::host("mail.example.org").unwrap();
        let services = Services {
            imap: Some(Service {
                hostname: host.clone(),
                port: 993,
                cleartext_port: None,
            }),
            jmap: Some(Service {
                hostname: host.clone(),
                port: 443,
                cleartext_port: None,
            }),
            ..Services::default()
        };
        let doc = pacc_document(&services);
        let parsed: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(parsed["protocols"]["imap"]["port"], 993);
        assert_eq!(
            parsed["protocols"]["jmap"]["url"],
            "https://mail.example.org/.well-known/jmap"
        );
        assert!(parsed["protocols"].get("pop3").is_none());
        assert_eq!(doc, pacc_document(&services), "deterministic");
        let txt = pacc_txt_value(&doc);
        let d = txt.strip_prefix("v=UAAC1; a=sha256; d=").unwrap();
        assert_eq!(
            BASE64.decode(d).unwrap(),
            Sha256::digest(doc.as_bytes()).to_vec()
        );
    }
}
