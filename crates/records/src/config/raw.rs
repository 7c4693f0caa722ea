//! The config file as written: camelCase keys, unknown keys rejected. Field types stay
//! close to TOML (strings, numbers); [`super`] validates them into the model.

use indexmap::IndexMap;
use serde::Deserialize;

use crate::model::{
    Alignment, DmarcDisposition, MtaStsMode, Transport, TsigAlgorithm, ZoneFileLayout,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConfig {
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) domain: IndexMap<String, RawDomain>,
    /// The domains of a file parsed chunk by chunk (`config::chunks`), one map per chunk
    /// in file order after those of `domain`: each chunk's map is let go once its domains
    /// are validated, rather than one map of every domain held to the end.
    #[serde(skip)]
    pub(super) domain_chunks: Vec<IndexMap<String, RawDomain>>,
    #[serde(default)]
    pub(super) dns_server: IndexMap<String, RawDnsServer>,
    #[serde(default)]
    pub(super) serve: RawServe,
    #[serde(default)]
    pub(super) notify: RawNotify,
}

/// One chunk of a big config file (see `config::chunks`): the same tables as
/// [`RawConfig`], each of them optional, since a chunk holds only some of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConfigPart {
    pub(super) server: Option<RawServer>,
    #[serde(default)]
    pub(super) domain: IndexMap<String, RawDomain>,
    #[serde(default)]
    pub(super) dns_server: IndexMap<String, RawDnsServer>,
    pub(super) serve: Option<RawServe>,
    pub(super) notify: Option<RawNotify>,
}

/// `[serve]`: settings of `mailzone serve`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawServe {
    pub(super) tls: Option<RawServeTls>,
    pub(super) check_interval: Option<String>,
    #[serde(default)]
    pub(super) check_nameservers: Vec<String>,
    pub(super) check_connect: Option<bool>,
}

/// `[notify]`: where changed check findings are reported.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawNotify {
    pub(super) webhook: Option<RawWebhook>,
    pub(super) smtp: Option<RawSmtp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawWebhook {
    pub(super) url: String,
    pub(super) secret_file: Option<String>,
    pub(super) secret_env: Option<String>,
    pub(super) timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSmtp {
    pub(super) host: String,
    pub(super) port: Option<u16>,
    pub(super) starttls: Option<String>,
    pub(super) implicit_tls: Option<bool>,
    pub(super) username: Option<String>,
    pub(super) password_file: Option<String>,
    pub(super) password_env: Option<String>,
    pub(super) from: String,
    pub(super) to: Vec<String>,
    pub(super) timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawServeTls {
    pub(super) certificate: String,
    pub(super) private_key: String,
}

/// A `[dnsServer.<name>]` table. Which keys apply depends on `kind`; the validator
/// refuses the others by name. Keys not listed here are the settings of a `dns-update`
/// provider (`apiToken`, `region`, …), collected in `settings`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawDnsServer {
    pub(super) kind: String,
    // rfc2136
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) protocol: Option<Transport>,
    pub(super) key_name: Option<String>,
    pub(super) algorithm: Option<TsigAlgorithm>,
    // rfc2136 (TSIG secret) and powerdns (API key)
    pub(super) key: Option<String>,
    pub(super) key_file: Option<String>,
    pub(super) key_env: Option<String>,
    // powerdns
    pub(super) url: Option<String>,
    pub(super) server_id: Option<String>,
    pub(super) dns_address: Option<String>,
    // zonefile
    pub(super) path: Option<String>,
    pub(super) layout: Option<ZoneFileLayout>,
    pub(super) zone_file: Option<String>,
    pub(super) reload_command: Option<Vec<String>>,
    // every kind
    pub(super) ttl: Option<u32>,
    pub(super) timeout: Option<String>,
    pub(super) propagation_delay: Option<String>,
    pub(super) polling_interval: Option<String>,
    pub(super) propagation_timeout: Option<String>,
    pub(super) authoritative_servers: Option<Vec<String>>,
    pub(super) max_requests_per_second: Option<f64>,
    pub(super) max_concurrent_zones: Option<u32>,
    #[serde(flatten)]
    pub(super) settings: std::collections::BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) enum RawDnsManagement {
    Manual {},
    Automatic(RawAutomaticDns),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawAutomaticDns {
    pub(super) dns_server: String,
    pub(super) origin: Option<String>,
    pub(super) publish_records: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawServer {
    pub(super) hostname: String,
    #[serde(default)]
    pub(super) ipv4: Vec<String>,
    #[serde(default)]
    pub(super) ipv6: Vec<String>,
    pub(super) report_address: Option<String>,
    pub(super) mail_exchangers: Option<Vec<RawMailExchanger>>,
    #[serde(default)]
    pub(super) services: RawServices,
    pub(super) tls: Option<RawTls>,
    pub(super) ttl: Option<u32>,
    pub(super) acme: Option<RawAcme>,
}

/// `[server.acme]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawAcme {
    pub(super) directory: String,
    #[serde(default)]
    pub(super) contact: Vec<String>,
    pub(super) certificate: Option<String>,
    pub(super) private_key: Option<String>,
    pub(super) names: Option<Vec<String>>,
    pub(super) renew_before: Option<RawFraction>,
    pub(super) ca_certificate: Option<String>,
    pub(super) reuse_key: Option<bool>,
}

/// A fraction written as a number (`0.33`) or as a ratio (`"1/3"`).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawFraction {
    Number(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawMailExchanger {
    pub(super) hostname: String,
    pub(super) priority: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawServices {
    pub(super) imap: Option<RawService>,
    pub(super) pop3: Option<RawService>,
    pub(super) submission: Option<RawService>,
    pub(super) jmap: Option<RawService>,
    pub(super) caldav: Option<RawService>,
    pub(super) carddav: Option<RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawService {
    pub(super) enabled: Option<bool>,
    pub(super) cleartext: Option<bool>,
    pub(super) hostname: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) cleartext_port: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawTls {
    pub(super) certificate: String,
    pub(super) next_key: Option<String>,
    pub(super) retire_after: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawDomain {
    pub(super) ttl: Option<u32>,
    pub(super) dns_management: Option<RawDnsManagement>,
    pub(super) spf: Option<RawSpf>,
    pub(super) dmarc: Option<RawDmarc>,
    pub(super) tls_rpt: Option<RawTlsRpt>,
    pub(super) mta_sts: Option<RawMtaSts>,
    pub(super) caa: Option<RawCaa>,
    pub(super) dkim_management: Option<RawDkimManagement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSpf {
    pub(super) qualifier: Option<String>,
    #[serde(default)]
    pub(super) mechanisms: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawDmarc {
    pub(super) policy: Option<DmarcDisposition>,
    pub(super) subdomain_policy: Option<DmarcDisposition>,
    pub(super) rua: Option<Vec<String>>,
    pub(super) ruf: Option<Vec<String>>,
    pub(super) adkim: Option<Alignment>,
    pub(super) aspf: Option<Alignment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawTlsRpt {
    pub(super) enabled: Option<bool>,
    pub(super) rua: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawMtaSts {
    pub(super) enabled: Option<bool>,
    pub(super) mode: Option<MtaStsMode>,
    pub(super) max_age: Option<u32>,
    pub(super) mx: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawCaa {
    pub(super) issuers: Vec<String>,
    pub(super) issuers_wild: Option<Vec<String>>,
    pub(super) account_uri: Option<String>,
    #[serde(default)]
    pub(super) validation_methods: Vec<String>,
    pub(super) iodef: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) enum RawDkimManagement {
    Manual(RawManualDkim),
    Automatic(RawAutomaticDkim),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawManualDkim {
    pub(super) keys: Vec<RawManualKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawManualKey {
    pub(super) selector: String,
    pub(super) private_key_file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawAutomaticDkim {
    pub(super) algorithms: Option<Vec<String>>,
    pub(super) selector_template: Option<String>,
    pub(super) rsa_bits: Option<i64>,
    pub(super) rotate_after: Option<String>,
    pub(super) retire_after: Option<String>,
    pub(super) delete_after: Option<String>,
    pub(super) on_key_change: Option<Vec<String>>,
    pub(super) delegate_to: Option<String>,
    pub(super) delegate_dns_server: Option<String>,
}
