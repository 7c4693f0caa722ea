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

/// The mail (IMAP, POP3, SMTP submission) servers a client is told about, as
/// (family, host, port, socket type): the implicit-TLS port first, then the STARTTLS one
/// when the cleartext port is offered (RFC 8314 §3: implicit TLS is preferred).
fn mail_endpoints(services: &Services) -> Vec<(ServiceFamily, &Name, u16, &'static str)> {
    let mut out = Vec::new();
    for family in [
        ServiceFamily::Imap,
        ServiceFamily::Pop3,
        ServiceFamily::Submission,
    ] {
        if let Some(service) = services.get(family) {
            out.push((family, &service.hostname, service.port, "SSL"));
            if let Some(port) = service.cleartext_port {
                out.push((family, &service.hostname, port, "STARTTLS"));
            }
        }
    }
    out
}

/// Escapes text for XML content and attribute values (XML 1.0 §2.4).
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Thunderbird's autoconfig document (clientConfig 1.1, served at
/// `autoconfig.<domain>/mail/config-v1.1.xml`): one server element per offered mail
/// service and port, the login being the full address.
pub fn thunderbird_config(domain: &Name, services: &Services) -> String {
    let domain = xml_escape(domain.as_str());
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  <emailProvider id=\"{domain}\">\n    <domain>{domain}</domain>\n    <displayName>{domain}</displayName>\n    <displayShortName>{domain}</displayShortName>\n"
    );
    for (family, host, port, socket) in mail_endpoints(services) {
        let (element, kind) = match family {
            ServiceFamily::Submission => ("outgoingServer", "smtp"),
            ServiceFamily::Pop3 => ("incomingServer", "pop3"),
            _ => ("incomingServer", "imap"),
        };
        xml.push_str(&format!(
            "    <{element} type=\"{kind}\">\n      <hostname>{}</hostname>\n      <port>{port}</port>\n      <socketType>{socket}</socketType>\n      <authentication>password-cleartext</authentication>\n      <username>%EMAILADDRESS%</username>\n    </{element}>\n",
            xml_escape(host.as_str())
        ));
    }
    xml.push_str("  </emailProvider>\n</clientConfig>\n");
    xml
}

/// Outlook's autodiscover answer (the 2006a "outlook" response schema, `POST
/// /autodiscover/autodiscover.xml`) for `email`: IMAP, POP3 and SMTP with implicit TLS.
pub fn autodiscover_response(email: &str, services: &Services) -> String {
    let email = xml_escape(email);
    let mut protocols = String::new();
    for (family, host, port, socket) in mail_endpoints(services) {
        if socket != "SSL" {
            continue;
        }
        let kind = match family {
            ServiceFamily::Submission => "SMTP",
            ServiceFamily::Pop3 => "POP3",
            _ => "IMAP",
        };
        protocols.push_str(&format!(
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{}</Server>\n        <Port>{port}</Port>\n        <DomainRequired>off</DomainRequired>\n        <LoginName>{email}</LoginName>\n        <SPA>off</SPA>\n        <SSL>on</SSL>\n        <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
            xml_escape(host.as_str())
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n{protocols}    </Account>\n  </Response>\n</Autodiscover>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Service;

    #[test]
    fn document_and_digest() {
        let host = Name::host("mail.example.org").unwrap();
        let services = Services {
            imap: Some(Service::tls_only(&host, 993)),
            jmap: Some(Service::tls_only(&host, 443)),
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
        let xml = thunderbird_config(&Name::host("example.org").unwrap(), &services);
        assert!(
            xml.contains("<hostname>mail.example.org</hostname>"),
            "{xml}"
        );
        assert!(
            xml.contains("<port>993</port>") && !xml.contains("pop3"),
            "{xml}"
        );
        let xml = autodiscover_response("a<b@example.org", &services);
        assert!(
            xml.contains("<LoginName>a&lt;b@example.org</LoginName>"),
            "{xml}"
        );
        let txt = pacc_txt_value(&doc);
        let d = txt.strip_prefix("v=UAAC1; a=sha256; d=").unwrap();
        assert_eq!(
            BASE64.decode(d).unwrap(),
            Sha256::digest(doc.as_bytes()).to_vec()
        );
    }
}
