//! SRV records for mail clients (RFC 2782 format; RFC 6186 §3 IMAP/POP3/submission,
//! RFC 8314 §5.1 `_submissions`/implicit TLS, RFC 8620 §2.2 `_jmap`, RFC 6764 §3
//! CalDAV/CardDAV). RFC 6186 §3.4 / RFC 2782: target `.` means "not offered".

use crate::model::{ServiceFamily, Services};
use crate::name::Name;

/// One SRV record to publish under `<label>._tcp.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvEntry {
    pub label: &'static str,
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: Name,
}

impl SrvEntry {
    fn offered(label: &'static str, port: u16, target: &Name) -> SrvEntry {
        SrvEntry {
            label,
            priority: 0,
            weight: 1,
            port,
            target: target.clone(),
        }
    }

    /// `0 0 0 .`: the service is decidedly not available (RFC 2782, RFC 6186 §3.4), so
    /// clients do not probe for it.
    fn not_offered(label: &'static str) -> SrvEntry {
        SrvEntry {
            label,
            priority: 0,
            weight: 0,
            port: 0,
            target: Name::root(),
        }
    }
}

/// Every SRV entry of a domain: each family's TLS and cleartext variants, offered or not.
pub fn entries(services: &Services) -> Vec<SrvEntry> {
    let mut out = Vec::new();
    for family in ServiceFamily::ALL {
        let (tls_label, clear_label) = family.srv_labels();
        let service = services.get(family);
        out.push(match service {
            Some(s) => SrvEntry::offered(tls_label, s.port, &s.hostname),
            None => SrvEntry::not_offered(tls_label),
        });
        if let Some(label) = clear_label {
            out.push(
                match service.and_then(|s| s.cleartext_port.map(|p| (s, p))) {
                    Some((s, port)) => SrvEntry::offered(label, port, &s.hostname),
                    None => SrvEntry::not_offered(label),
                },
            );
        }
    }
    out
}

/// The autodiscover SRV (`_autodiscover._tcp`, Microsoft's convention): HTTPS on the host.
pub fn autodiscover(host: &Name) -> SrvEntry {
    SrvEntry::offered("_autodiscover", 443, host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Service;

    #[test]
    fn offered_and_not_offered() {
        let host = Name::host("mail.example.org").unwrap();
        let services = Services {
            imap: Some(Service::tls_only(&host, 993)),
            submission: Some(Service {
                hostname: host.clone(),
                port: 465,
                cleartext_port: Some(587),
            }),
            ..Services::default()
        };
        let e = entries(&services);
        let find = |l: &str| e.iter().find(|x| x.label == l).unwrap();
        assert_eq!(find("_imaps").port, 993);
        assert_eq!(find("_imap").target, Name::root());
        assert_eq!(find("_submission").port, 587);
        assert_eq!(find("_pop3s").weight, 0);
        assert_eq!(find("_jmap").port, 0);
        assert_eq!(e.len(), 11);
    }
}
