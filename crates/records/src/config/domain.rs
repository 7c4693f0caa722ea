//! `[domain."<name>"]`: a mail domain's zone, DNS management and policies (SPF, DMARC,
//! MTA-STS, TLS-RPT, CAA).

use super::raw::*;
use super::*;

impl Validator<'_> {
    pub(super) fn domain(
        &self,
        key: &str,
        written: &str,
        raw: RawDomain,
        server: &Server,
        dns_servers: &[DnsServer],
    ) -> Result<Domain> {
        let name = host(key, written)?;
        let (dns_management, origin, server_ttl) = dns_management(
            &format!("{key}.dnsManagement"),
            raw.dns_management,
            dns_servers,
        )?;
        let zone = match &origin {
            Some(origin) => {
                let zone = host(&format!("{key}.dnsManagement.automatic.origin"), origin)?;
                if !name.is_within(&zone) {
                    return Err(ConfigError::new(
                        format!("{key}.dnsManagement.automatic.origin"),
                        Some(origin),
                        format!(
                            "the domain {} is not inside the zone {}",
                            name.as_str(),
                            zone.as_str()
                        ),
                    ));
                }
                zone
            }
            None => name.clone(),
        };
        let domain_str = name.as_str().to_string();
        let report = |uris: Option<Vec<String>>, key: &str| -> Result<Vec<String>> {
            let uris = uris.unwrap_or_else(|| vec![server.report_address.clone()]);
            list(&uris, key, |key, uri| {
                let full = dmarc::complete_report_uri(uri, &domain_str);
                dmarc::validate_report_uri(&full)
                    .map(|_| full)
                    .map_err(|m| ConfigError::new(key, Some(uri), m))
            })
        };
        let dmarc_raw = raw.dmarc.unwrap_or(RawDmarc {
            policy: None,
            subdomain_policy: None,
            rua: None,
            ruf: None,
            adkim: None,
            aspf: None,
        });
        let dmarc = DmarcPolicy {
            policy: dmarc_raw.policy.unwrap_or(DmarcDisposition::Reject),
            subdomain_policy: dmarc_raw.subdomain_policy,
            rua: report(dmarc_raw.rua, &format!("{key}.dmarc.rua"))?,
            ruf: match dmarc_raw.ruf {
                Some(ruf) => report(Some(ruf), &format!("{key}.dmarc.ruf"))?,
                None => Vec::new(),
            },
            adkim: dmarc_raw.adkim,
            aspf: dmarc_raw.aspf,
        };
        let tls_rpt = match raw.tls_rpt {
            Some(t) => TlsRptPolicy {
                enabled: t.enabled.unwrap_or(true),
                rua: report(t.rua, &format!("{key}.tlsRpt.rua"))?,
            },
            None => TlsRptPolicy {
                enabled: true,
                rua: report(None, &format!("{key}.tlsRpt.rua"))?,
            },
        };
        Ok(Domain {
            ttl: ttl(&format!("{key}.ttl"), raw.ttl)?
                .or(server_ttl)
                .unwrap_or(server.ttl),
            spf: spf_policy(&format!("{key}.spf"), raw.spf)?,
            dmarc,
            tls_rpt,
            mta_sts: mta_sts_policy(&format!("{key}.mtaSts"), raw.mta_sts, server)?,
            caa: raw
                .caa
                .map(|c| {
                    caa_policy(
                        &format!("{key}.caa"),
                        c,
                        &dmarc::complete_report_uri(&server.report_address, &domain_str),
                    )
                })
                .transpose()?,
            dkim_management: self.dkim_management(
                &format!("{key}.dkimManagement"),
                raw.dkim_management,
                dns_servers,
            )?,
            dns_management,
            name,
            zone,
        })
    }
}

/// The domain's `dnsManagement`, its zone origin and the TTL of its DNS server.
pub(super) fn dns_management(
    key: &str,
    raw: Option<RawDnsManagement>,
    dns_servers: &[DnsServer],
) -> Result<(DnsManagement, Option<String>, Option<u32>)> {
    let Some(RawDnsManagement::Automatic(auto)) = raw else {
        return Ok((DnsManagement::Manual, None, None));
    };
    let key = format!("{key}.automatic");
    let Some(server) = dns_servers.iter().find(|s| s.name == auto.dns_server) else {
        let known: Vec<&str> = dns_servers.iter().map(|s| s.name.as_str()).collect();
        return Err(ConfigError::new(
            format!("{key}.dnsServer"),
            Some(&auto.dns_server),
            format!(
                "no [dnsServer.{}] table (defined: {})",
                auto.dns_server,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    let publish_records = match auto.publish_records {
        None => DEFAULT_PUBLISH_RECORDS.to_vec(),
        Some(names) => list(&names, &format!("{key}.publishRecords"), |k, v| {
            v.parse::<RecordPurpose>()
                .map_err(|e| ConfigError::new(k, Some(v), e.to_string()))
        })?,
    };
    Ok((
        DnsManagement::Automatic {
            dns_server: auto.dns_server,
            publish_records,
        },
        auto.origin,
        server.ttl,
    ))
}

pub(super) fn spf_policy(key: &str, raw: Option<RawSpf>) -> Result<SpfPolicy> {
    let Some(raw) = raw else {
        return Ok(SpfPolicy {
            all_qualifier: '-',
            mechanisms: Vec::new(),
        });
    };
    let all_qualifier = match raw.qualifier.as_deref().map(str::trim) {
        None | Some("-") | Some("fail") | Some("-all") => '-',
        Some("~") | Some("softfail") | Some("~all") => '~',
        Some("?") | Some("neutral") | Some("?all") => '?',
        Some(other) => {
            return Err(ConfigError::new(
                format!("{key}.qualifier"),
                Some(other),
                "use \"-\" (fail), \"~\" (softfail) or \"?\" (neutral); \"+all\" would authorise every host on the Internet",
            ));
        }
    };
    let mechanisms = list(&raw.mechanisms, &format!("{key}.mechanisms"), |k, m| {
        spf::validate_term(m)
            .map(|_| m.to_string())
            .map_err(|e| ConfigError::new(k, Some(m), e))
    })?;
    Ok(SpfPolicy {
        all_qualifier,
        mechanisms,
    })
}

pub(super) fn mta_sts_policy(
    key: &str,
    raw: Option<RawMtaSts>,
    server: &Server,
) -> Result<MtaStsPolicy> {
    let default_mx = || {
        server
            .mail_exchangers
            .iter()
            .map(|m| m.hostname.as_str().to_string())
            .collect::<Vec<_>>()
    };
    let Some(raw) = raw else {
        return Ok(MtaStsPolicy {
            enabled: true,
            mode: MtaStsMode::Enforce,
            max_age: DEFAULT_MTA_STS_MAX_AGE,
            mx: default_mx(),
        });
    };
    let max_age = raw.max_age.unwrap_or(DEFAULT_MTA_STS_MAX_AGE);
    if max_age > mtasts::MAX_AGE_LIMIT {
        return Err(ConfigError::new(
            format!("{key}.maxAge"),
            Some(&max_age.to_string()),
            "RFC 8461 §3.2 allows at most 31557600 seconds",
        ));
    }
    let mx = match raw.mx {
        None => default_mx(),
        Some(patterns) => list(&patterns, &format!("{key}.mx"), |k, p| {
            // RFC 8461 §4.1: a pattern is a host name or `*.` followed by one, in A-labels
            // (§3.2's ABNF is ASCII): a Unicode name is served as its A-label.
            let (wildcard, host_part) = match p.strip_prefix("*.") {
                Some(rest) => ("*.", rest),
                None => ("", p),
            };
            Name::host(host_part)
                .map(|name| format!("{wildcard}{}", name.as_str()))
                .map_err(|e| ConfigError::new(k, Some(p), e.to_string()))
        })?,
    };
    Ok(MtaStsPolicy {
        enabled: raw.enabled.unwrap_or(true),
        mode: raw.mode.unwrap_or(MtaStsMode::Enforce),
        max_age,
        mx,
    })
}

pub(super) fn caa_policy(key: &str, raw: RawCaa, default_iodef: &str) -> Result<CaaPolicy> {
    if raw.issuers.is_empty() {
        return Err(ConfigError::new(
            format!("{key}.issuers"),
            None,
            "name at least one CA (e.g. \"letsencrypt.org\")",
        ));
    }
    let issuers = list(&raw.issuers, &format!("{key}.issuers"), host)?;
    let issuers_wild = raw
        .issuers_wild
        .map(|w| list(&w, &format!("{key}.issuersWild"), host))
        .transpose()?;
    for (i, method) in raw.validation_methods.iter().enumerate() {
        // RFC 8657 §4: method names are ACME challenge types, letters, digits and hyphens.
        if method.is_empty()
            || !method
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ConfigError::new(
                format!("{key}.validationMethods[{i}]"),
                Some(method),
                "not an ACME challenge type (e.g. dns-01)",
            ));
        }
    }
    if let Some(uri) = &raw.account_uri
        && (uri.contains(char::is_whitespace) || uri.contains(';') || uri.contains('"'))
    {
        return Err(ConfigError::new(
            format!("{key}.accountUri"),
            Some(uri),
            "an account URI may not contain spaces, `;` or quotes",
        ));
    }
    let iodef = raw.iodef.unwrap_or_else(|| default_iodef.to_string());
    if !(iodef.starts_with("mailto:") || iodef.starts_with("https:")) {
        return Err(ConfigError::new(
            format!("{key}.iodef"),
            Some(&iodef),
            "iodef must be a mailto: or https: URI (RFC 8659 §4.4)",
        ));
    }
    Ok(CaaPolicy {
        issuers,
        issuers_wild,
        account_uri: raw.account_uri,
        validation_methods: raw.validation_methods,
        iodef: Some(iodef),
    })
}
