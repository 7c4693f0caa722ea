//! `[server.acme]`: validation of the ACME settings (RFC 8555; DNS-01, §8.4), with the
//! defaults that depend on the rest of the config (the names, the file paths).

use std::path::PathBuf;

use super::raw::{RawAcme, RawFraction};
use super::{ConfigError, Result, Validator, host, list};
use crate::model::{AcmeSettings, DnsManagement, Domain, FileRef, Server};
use crate::name::Name;

/// Renew when a third of the lifetime is left (Let's Encrypt's advice for 90-day
/// certificates: renew after 60 days).
pub const DEFAULT_RENEW_BEFORE: f64 = 1.0 / 3.0;

const KEY: &str = "server.acme";

impl Validator<'_> {
    pub(super) fn acme(
        &self,
        raw: RawAcme,
        server: &Server,
        domains: &[Domain],
    ) -> Result<AcmeSettings> {
        let directory = directory(&raw.directory)?;
        let contact = list(&raw.contact, &format!("{KEY}.contact"), contact)?;
        let certificate = match &raw.certificate {
            Some(written) => self.file(&format!("{KEY}.certificate"), written)?,
            None => default_certificate(server)?,
        };
        let private_key = match &raw.private_key {
            Some(written) => self.file(&format!("{KEY}.privateKey"), written)?,
            None => FileRef {
                path: key_beside(&certificate.path),
                key_path: format!("{KEY}.privateKey"),
            },
        };
        if private_key.path == certificate.path {
            return Err(ConfigError::new(
                format!("{KEY}.privateKey"),
                Some(&private_key.path.display().to_string()),
                "the private key and the certificate need different files",
            ));
        }
        let names = names(raw.names.as_deref(), server, domains)?;
        Ok(AcmeSettings {
            directory,
            contact,
            certificate,
            private_key,
            names,
            renew_before: renew_before(raw.renew_before)?,
            ca_certificate: raw
                .ca_certificate
                .map(|p| self.file(&format!("{KEY}.caCertificate"), &p))
                .transpose()?,
            reuse_key: raw.reuse_key.unwrap_or(true),
        })
    }
}

/// RFC 8555 §6.1: ACME is spoken over HTTPS only.
fn directory(written: &str) -> Result<String> {
    let url = written.trim();
    let rest = url.strip_prefix("https://").unwrap_or("");
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(char::is_whitespace) {
        return Err(ConfigError::new(
            format!("{KEY}.directory"),
            Some(written),
            "expected the https:// URL of the ACME directory (e.g. https://acme-v02.api.letsencrypt.org/directory)",
        ));
    }
    Ok(url.to_string())
}

fn contact(key: &str, written: &str) -> Result<String> {
    let address = written.strip_prefix("mailto:").unwrap_or("");
    let ok = address
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !ok {
        return Err(ConfigError::new(
            key,
            Some(written),
            "expected a mailto: URL (e.g. mailto:hostmaster@example.org)",
        ));
    }
    Ok(written.to_string())
}

fn default_certificate(server: &Server) -> Result<FileRef> {
    match &server.tls {
        Some(tls) => Ok(FileRef {
            path: tls.certificate.path.clone(),
            key_path: format!("{KEY}.certificate"),
        }),
        None => Err(ConfigError::new(
            format!("{KEY}.certificate"),
            None,
            "where should the certificate go? Set server.acme.certificate, or server.tls.certificate (the default)",
        )),
    }
}

/// `mail.pem` → `mail.key`, `fullchain` → `fullchain.key`, in the same directory.
fn key_beside(certificate: &std::path::Path) -> PathBuf {
    let stem = certificate
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "certificate".into());
    certificate.with_file_name(format!("{stem}.key"))
}

fn renew_before(raw: Option<RawFraction>) -> Result<f64> {
    let key = format!("{KEY}.renewBefore");
    let (value, written) = match raw {
        None => return Ok(DEFAULT_RENEW_BEFORE),
        Some(RawFraction::Number(n)) => (Some(n), n.to_string()),
        Some(RawFraction::Text(text)) => (ratio(&text), text),
    };
    match value {
        Some(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(ConfigError::new(
            key,
            Some(&written),
            "expected a fraction of the certificate's lifetime between 0 and 1 (e.g. 0.33 or \"1/3\")",
        )),
    }
}

fn ratio(text: &str) -> Option<f64> {
    let (a, b) = text.trim().split_once('/')?;
    let (a, b): (f64, f64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (b != 0.0).then(|| a / b)
}

/// The names, given or by default; each must lie in a zone mailzone manages, since its
/// `_acme-challenge` TXT record is published there.
fn names(written: Option<&[String]>, server: &Server, domains: &[Domain]) -> Result<Vec<Name>> {
    let key = format!("{KEY}.names");
    let names = match written {
        Some([]) => {
            return Err(ConfigError::new(
                key,
                None,
                "at least one name is needed (omit the key for the default: the mail host and the mta-sts, autoconfig and autodiscover names of each managed domain)",
            ));
        }
        Some(written) => list(written, &key, |k, v| {
            let name = host(k, v)?;
            match managed_zone(&name, domains) {
                Some(_) => Ok(name),
                None => Err(ConfigError::new(k, Some(v), not_managed(&name))),
            }
        })?,
        None => default_names(server, domains)?,
    };
    let mut unique = Vec::with_capacity(names.len());
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    Ok(unique)
}

fn default_names(server: &Server, domains: &[Domain]) -> Result<Vec<Name>> {
    if managed_zone(&server.hostname, domains).is_none() {
        return Err(ConfigError::new(
            format!("{KEY}.names"),
            None,
            format!("{}; list the names yourself", not_managed(&server.hostname)),
        ));
    }
    let mut names = vec![server.hostname.clone()];
    for domain in domains.iter().filter(|d| is_managed(d)) {
        for label in ["mta-sts", "autoconfig", "autodiscover"] {
            let name = domain.name.prefixed(label).map_err(|e| {
                ConfigError::new(format!("{KEY}.names"), None, format!("{label}: {e}"))
            })?;
            names.push(name);
        }
    }
    Ok(names)
}

fn is_managed(domain: &Domain) -> bool {
    matches!(domain.dns_management, DnsManagement::Automatic { .. })
}

/// The deepest zone under automatic DNS management that holds `name`.
pub fn managed_zone<'a>(name: &Name, domains: &'a [Domain]) -> Option<&'a Domain> {
    domains
        .iter()
        .filter(|d| is_managed(d) && name.is_within(&d.zone))
        .max_by_key(|d| d.zone.as_str().len())
}

fn not_managed(name: &Name) -> String {
    format!(
        "{name} is in no zone whose DNS mailzone manages (DNS-01 publishes _acme-challenge.{name} there)"
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::parse;

    const BASE: &str = r#"
[server]
hostname = "mail.example.org"
tls = { certificate = "/etc/mail/fullchain.pem" }

[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"

[domain."example.org"]
dnsManagement = { automatic = { dnsServer = "primary" } }

[domain."other.test"]
"#;

    fn with_acme(acme: &str) -> String {
        BASE.replace(
            "[dnsServer.primary]",
            &format!("[server.acme]\n{acme}\n\n[dnsServer.primary]"),
        )
    }

    #[test]
    fn defaults_cover_the_mail_host_and_the_managed_domains_names() {
        let config = parse(
            &with_acme(r#"directory = "https://acme.test/dir""#),
            Path::new("/etc/mailzone"),
        )
        .unwrap();
        let acme = config.server.acme.unwrap();
        let names: Vec<&str> = acme.names.iter().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "mail.example.org",
                "mta-sts.example.org",
                "autoconfig.example.org",
                "autodiscover.example.org"
            ]
        );
        assert_eq!(acme.certificate.path, Path::new("/etc/mail/fullchain.pem"));
        assert_eq!(acme.private_key.path, Path::new("/etc/mail/fullchain.key"));
        assert!(acme.reuse_key);
        assert!((acme.renew_before - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn ratios_and_explicit_names_are_accepted() {
        let config = parse(
            &with_acme(
                r#"directory = "https://acme.test/dir"
renewBefore = "1/4"
names = ["mail.example.org", "imap.example.org"]
certificate = "cert.pem"
privateKey = "key.pem"
reuseKey = false"#,
            ),
            Path::new("/etc/mailzone"),
        )
        .unwrap();
        let acme = config.server.acme.unwrap();
        assert_eq!(acme.names.len(), 2);
        assert_eq!(acme.renew_before, 0.25);
        assert_eq!(acme.private_key.path, Path::new("/etc/mailzone/key.pem"));
        assert!(!acme.reuse_key);
    }

    #[test]
    fn mistakes_name_their_key() {
        let cases = [
            (
                r#"directory = "http://acme.test/dir""#,
                "server.acme.directory",
            ),
            (
                "directory = \"https://a.test/d\"\ncontact = [\"hostmaster@example.org\"]",
                "server.acme.contact[0]",
            ),
            (
                "directory = \"https://a.test/d\"\nrenewBefore = 1.5",
                "server.acme.renewBefore",
            ),
            (
                "directory = \"https://a.test/d\"\nnames = [\"www.other.test\"]",
                "server.acme.names[0]",
            ),
            (
                "directory = \"https://a.test/d\"\nprivateKey = \"/etc/mail/fullchain.pem\"",
                "server.acme.privateKey",
            ),
            ("directory = \"https://a.test/d\"\nrenew = 1", "server.acme"),
        ];
        for (acme, key) in cases {
            let err = parse(&with_acme(acme), Path::new("/")).unwrap_err();
            assert!(err.key.starts_with(key), "{acme}: {err}");
        }
    }
}
