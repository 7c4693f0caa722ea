//! `dkimManagement`: manual keys from files, or automatic keys with their algorithms, RSA
//! size, selector template, rotation and delegation.

use super::raw::*;
use super::*;

impl Validator<'_> {
    pub(super) fn dkim_management(
        &self,
        key: &str,
        raw: Option<RawDkimManagement>,
        dns_servers: &[DnsServer],
    ) -> Result<DkimManagement> {
        match raw {
            None => Ok(DkimManagement::Automatic {
                algorithms: vec![DkimAlgorithm::Ed25519Sha256, DkimAlgorithm::RsaSha256],
                selector_template: DEFAULT_SELECTOR_TEMPLATE.into(),
                rsa_bits: dkim::GENERATED_RSA_BITS,
                rotation: DkimRotation::default(),
                on_key_change: Vec::new(),
                delegation: None,
            }),
            Some(RawDkimManagement::Manual(manual)) => {
                let mut keys: Vec<ManualDkimKey> = Vec::with_capacity(manual.keys.len());
                for (i, k) in manual.keys.into_iter().enumerate() {
                    let key_path = format!("{key}.manual.keys[{i}]");
                    let selector = k.selector.trim().to_ascii_lowercase();
                    dkim::validate_selector(&selector).map_err(|m| {
                        ConfigError::new(format!("{key_path}.selector"), Some(&k.selector), m)
                    })?;
                    if keys.iter().any(|existing| existing.selector == selector) {
                        return Err(ConfigError::new(
                            format!("{key_path}.selector"),
                            Some(&k.selector),
                            "selector listed twice",
                        ));
                    }
                    keys.push(ManualDkimKey {
                        selector,
                        private_key_file: self
                            .key_file(&format!("{key_path}.privateKeyFile"), &k.private_key_file)?,
                    });
                }
                Ok(DkimManagement::Manual { keys })
            }
            Some(RawDkimManagement::Automatic(auto)) => {
                let names = auto
                    .algorithms
                    .unwrap_or_else(|| vec!["ed25519-sha256".into(), "rsa-sha256".into()]);
                let algorithms = list(&names, &format!("{key}.automatic.algorithms"), |k, v| {
                    DkimAlgorithm::parse(v).ok_or_else(|| {
                        ConfigError::new(
                            k,
                            Some(v),
                            "unknown DKIM algorithm; use ed25519-sha256 or rsa-sha256",
                        )
                    })
                })?;
                if algorithms.is_empty() {
                    return Err(ConfigError::new(
                        format!("{key}.automatic.algorithms"),
                        None,
                        "at least one algorithm is needed",
                    ));
                }
                // One key per algorithm is made and rotated: a second entry would only
                // make the same selector twice.
                if let Some(i) =
                    (1..algorithms.len()).find(|&i| algorithms[..i].contains(&algorithms[i]))
                {
                    return Err(ConfigError::new(
                        format!("{key}.automatic.algorithms[{i}]"),
                        Some(&names[i]),
                        "algorithm listed twice",
                    ));
                }
                let auto_selector_template_written = auto.selector_template.is_some();
                let template = auto
                    .selector_template
                    .unwrap_or_else(|| DEFAULT_SELECTOR_TEMPLATE.into());
                let template_key = format!("{key}.automatic.selectorTemplate");
                let samples: Vec<String> = algorithms
                    .iter()
                    .map(|a| dkim::expand_selector(&template, (2026, 11, 26), *a))
                    .collect();
                for sample in &samples {
                    dkim::validate_selector(sample)
                        .map_err(|m| ConfigError::new(&template_key, Some(&template), m))?;
                }
                if algorithms.len() > 1 && !template.contains("{algorithm}") {
                    return Err(ConfigError::new(
                        &template_key,
                        Some(&template),
                        "with several algorithms the template must contain {algorithm}, or their selectors collide",
                    ));
                }
                let rsa_bits = rsa_bits(&format!("{key}.automatic.rsaBits"), auto.rsa_bits)?;
                let rotation = DkimRotation {
                    rotate_after: duration(
                        &format!("{key}.automatic.rotateAfter"),
                        auto.rotate_after,
                        "90d",
                    )?,
                    retire_after: duration(
                        &format!("{key}.automatic.retireAfter"),
                        auto.retire_after,
                        "7d",
                    )?,
                    delete_after: duration(
                        &format!("{key}.automatic.deleteAfter"),
                        auto.delete_after,
                        "30d",
                    )?,
                };
                let on_key_change =
                    self.command(&format!("{key}.automatic.onKeyChange"), auto.on_key_change)?;
                let delegation = delegation(
                    &format!("{key}.automatic"),
                    auto.delegate_to,
                    auto.delegate_dns_server,
                    auto_selector_template_written,
                    dns_servers,
                )?;
                Ok(DkimManagement::Automatic {
                    algorithms,
                    selector_template: template,
                    rsa_bits,
                    rotation,
                    on_key_change,
                    delegation,
                })
            }
        }
    }
}

/// `dkimManagement.automatic.delegateTo` and `delegateDnsServer`: both or neither. The
/// provider zone is published through a configured DNS server; the selectors are the fixed
/// slots, so a `selectorTemplate` beside `delegateTo` is a contradiction.
pub(super) fn delegation(
    key: &str,
    delegate_to: Option<String>,
    dns_server: Option<String>,
    template_written: bool,
    dns_servers: &[DnsServer],
) -> Result<Option<DkimDelegation>> {
    let (zone_written, server_name) = match (delegate_to, dns_server) {
        (None, None) => return Ok(None),
        (None, Some(server)) => {
            return Err(ConfigError::new(
                format!("{key}.delegateDnsServer"),
                Some(&server),
                "delegateDnsServer without delegateTo: name the provider zone the keys are delegated to",
            ));
        }
        (Some(zone), None) => {
            return Err(ConfigError::new(
                format!("{key}.delegateDnsServer"),
                None,
                format!(
                    "delegateTo = {zone:?} needs delegateDnsServer: the [dnsServer.<name>] that publishes the provider zone"
                ),
            ));
        }
        (Some(zone), Some(server)) => (zone, server),
    };
    let zone = host(&format!("{key}.delegateTo"), &zone_written)?;
    if !dns_servers.iter().any(|s| s.name == server_name) {
        let known: Vec<&str> = dns_servers.iter().map(|s| s.name.as_str()).collect();
        return Err(ConfigError::new(
            format!("{key}.delegateDnsServer"),
            Some(&server_name),
            format!(
                "no [dnsServer.{server_name}] table (defined: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    if template_written {
        return Err(ConfigError::new(
            format!("{key}.selectorTemplate"),
            None,
            "with delegateTo the selectors are the fixed slots e1/e2 (Ed25519) and r1/r2 (RSA); remove selectorTemplate",
        ));
    }
    Ok(Some(DkimDelegation {
        zone,
        dns_server: server_name,
    }))
}

/// RFC 8301 §3.2: verifiers accept RSA keys of 1024 to 4096 bits; mailzone makes 2048 or
/// more.
pub(super) fn rsa_bits(key: &str, value: Option<i64>) -> Result<usize> {
    let Some(bits) = value else {
        return Ok(dkim::GENERATED_RSA_BITS);
    };
    usize::try_from(bits)
        .ok()
        .filter(|b| dkim::RSA_BITS_ALLOWED.contains(b))
        .ok_or_else(|| {
            ConfigError::new(
                key,
                Some(&bits.to_string()),
                "RSA keys are made with 2048, 3072 or 4096 bits (RFC 8301 §3.2: fewer is weak, more does not verify everywhere)",
            )
        })
}
