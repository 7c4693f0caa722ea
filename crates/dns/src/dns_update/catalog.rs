//! Builds the `dns-update` library's [`DnsUpdater`] for one provider kind of the catalog
//! ([`mailzone_records::config::DNS_UPDATE_PROVIDERS`]) from the DNS server's settings.
//!
//! Every setting is text (the config's strings, secrets already read from their file or
//! environment variable); numbers, booleans and names such as OVH's endpoints are parsed
//! here. Errors name the setting, never its value: a value may be a secret.
//!
//! Values are cleaned before use: a secret loses the line break that ends the file it came
//! from, any other value its surrounding white space. An empty value counts as missing. A
//! line break or other control character inside a single-line value is an error (the
//! library would silently drop a header made from it); private keys, JSON key files and the
//! Hurricane Electric key list may span lines.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use dns_update::DnsUpdater;
use dns_update::providers::azuredns::{AzureDnsConfig, AzureEnvironment};
use dns_update::providers::bluecatv2::BluecatV2Config;
use dns_update::providers::edgedns::EdgeDnsConfig;
use dns_update::providers::google_cloud_dns::GoogleCloudDnsConfig;
use dns_update::providers::infoblox::InfobloxConfig;
use dns_update::providers::joker::JokerAuth;
use dns_update::providers::lightsail::LightsailConfig;
use dns_update::providers::oraclecloud::OracleCloudConfig;
use dns_update::providers::ovh::OvhEndpoint;
use dns_update::providers::route53::Route53Config;
use dns_update::providers::volcengine::VolcengineConfig;
use dns_update::providers::yandexcloud::YandexCloudConfig;
use mailzone_records::config::{ProviderKind, close_kinds, dns_update_provider};

/// The settings of one DNS server as the config gave them, secrets already read (file/env/inline resolved by the caller).
pub type Settings = std::collections::BTreeMap<String, zeroize::Zeroizing<String>>;

/// Settings whose value may span lines.
const MULTILINE: &[&str] = &[
    "privateKeyPem",
    "serviceAccountJson",
    "iamTokenB64",
    "credentials",
];

/// Builds the library's updater for `kind` from its settings. Errors name the setting (never its value) — e.g. "dnsServer setting `region`: ... " — and are returned as `String`.
///
/// Only the kind's own settings (its catalog entry) are read; other keys of the map are
/// ignored (the config layer rejects unknown keys). `timeout` is the library's HTTP request
/// timeout, for the constructors that take one: all but `route53` (its `Route53Config` has
/// no timeout in dns-update 0.6.1, so its calls need a timeout around them).
pub fn build(
    kind: &str,
    settings: &Settings,
    timeout: std::time::Duration,
) -> Result<dns_update::DnsUpdater, String> {
    let Some(provider) = dns_update_provider(kind) else {
        return Err(unknown_kind(kind));
    };
    build_with(&Args::new(provider, settings), timeout)
}

fn unknown_kind(kind: &str) -> String {
    let close = close_kinds(kind);
    if close.is_empty() {
        format!("dnsServer kind `{kind}`: unknown kind")
    } else {
        format!(
            "dnsServer kind `{kind}`: unknown kind; did you mean {}?",
            close
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    }
}

fn build_with(s: &Args<'_>, timeout: Duration) -> Result<DnsUpdater, String> {
    let kind = s.provider.kind;
    let t = Some(timeout);
    let built = match kind {
        "alidns" => DnsUpdater::new_alidns(
            s.req("accessKey")?,
            s.req("secretKey")?,
            s.region("region")?,
            s.opt("securityToken")?,
            s.opt("line")?,
            t,
        ),
        "arvancloud" => DnsUpdater::new_arvancloud(s.req("apiKey")?, t),
        "autodns" => DnsUpdater::new_autodns(
            s.req("username")?,
            s.req("password")?,
            s.number::<u32>("context")?,
            t,
        ),
        "azuredns" => DnsUpdater::new_azuredns(AzureDnsConfig {
            tenant_id: s.req("tenantId")?.into(),
            client_id: s.req("clientId")?.into(),
            client_secret: s.req("clientSecret")?.into(),
            subscription_id: s.req("subscriptionId")?.into(),
            resource_group: s.req("resourceGroup")?.into(),
            environment: s.azure_environment("environment")?,
            request_timeout: t,
        }),
        "baiducloud" => DnsUpdater::new_baiducloud(s.req("accessKey")?, s.req("secretKey")?, t),
        "bluecatv2" => DnsUpdater::new_bluecatv2(BluecatV2Config {
            server_url: s.req_url("serverUrl")?.into(),
            username: s.req("username")?.into(),
            password: s.req("password")?.into(),
            config_name: s.req("configName")?.into(),
            view_name: s.req("viewName")?.into(),
            skip_deploy: s.flag("skipDeploy")?,
            request_timeout: t,
        }),
        "bunny" => DnsUpdater::new_bunny(s.req("apiKey")?, t),
        "cloudflare" => DnsUpdater::new_cloudflare(s.req("apiToken")?, t),
        "cloudns" => {
            let auth_id = s.opt("authId")?;
            let sub_auth_id = s.opt("subAuthId")?;
            let password = s.req("authPassword")?;
            if auth_id.is_none() && sub_auth_id.is_none() {
                return Err(missing(s.provider, "authId", " (or subAuthId)"));
            }
            DnsUpdater::new_cloudns(auth_id, sub_auth_id, password, t)
        }
        "constellix" => DnsUpdater::new_constellix(s.req("apiKey")?, s.req("secretKey")?, t),
        "cpanel" => DnsUpdater::new_cpanel(
            s.req_url("baseUrl")?,
            s.req("username")?,
            s.req("token")?,
            t,
        ),
        "ddnss" => DnsUpdater::new_ddnss(s.req("key")?, t),
        "desec" => DnsUpdater::new_desec(s.req("authToken")?, t),
        "digitalocean" => DnsUpdater::new_digitalocean(s.req("authToken")?, t),
        "dnsimple" => DnsUpdater::new_dnsimple(s.req("authToken")?, s.req("accountId")?, t),
        "dnsmadeeasy" => DnsUpdater::new_dnsmadeeasy(s.req("apiKey")?, s.req("apiSecret")?, t),
        "domeneshop" => DnsUpdater::new_domeneshop(s.req("apiToken")?, s.req("apiSecret")?, t),
        "dreamhost" => DnsUpdater::new_dreamhost(s.req("apiKey")?, t),
        "duckdns" => DnsUpdater::new_duckdns(s.req("token")?, t),
        "dynu" => DnsUpdater::new_dynu(s.req("apiKey")?, t),
        "easydns" => DnsUpdater::new_easydns(s.req("token")?, s.req("key")?, t),
        "edgedns" => DnsUpdater::new_edgedns(EdgeDnsConfig {
            host: s.req("host")?.into(),
            client_token: s.req("clientToken")?.into(),
            client_secret: s.req("clientSecret")?.into(),
            access_token: s.req("accessToken")?.into(),
            account_switch_key: s.opt_string("accountSwitchKey")?,
            request_timeout: t,
        }),
        "exoscale" => DnsUpdater::new_exoscale(s.req("apiKey")?, s.req("apiSecret")?, t),
        "freemyip" => DnsUpdater::new_freemyip(s.req("token")?, t),
        "gandiv5" => DnsUpdater::new_gandiv5(s.req("personalAccessToken")?, t),
        "gcore" => DnsUpdater::new_gcore(s.req("apiToken")?, t),
        "glesys" => DnsUpdater::new_glesys(s.req("apiUser")?, s.req("apiKey")?, t),
        "godaddy" => DnsUpdater::new_godaddy(s.req("apiKey")?, s.req("apiSecret")?, t),
        "google_cloud_dns" => DnsUpdater::new_google_cloud_dns(GoogleCloudDnsConfig {
            service_account_json: s.req("serviceAccountJson")?.into(),
            project_id: s.req("projectId")?.into(),
            managed_zone: s.opt_string("managedZone")?,
            private_zone: s.flag("privateZone")?,
            impersonate_service_account: s.opt_string("impersonateServiceAccount")?,
            request_timeout: t,
        }),
        "hetzner" => DnsUpdater::new_hetzner(s.req("apiToken")?, t),
        "hostingde" => DnsUpdater::new_hostingde(s.req("apiKey")?, t),
        "hostinger" => DnsUpdater::new_hostinger(s.req("apiToken")?, t),
        "huaweicloud" => DnsUpdater::new_huaweicloud(
            s.req("accessKey")?,
            s.req("secretKey")?,
            s.req_region("region")?,
            t,
        ),
        "hurricane" => DnsUpdater::new_hurricane(s.zone_keys("credentials")?, t),
        "ibmcloud" => DnsUpdater::new_ibmcloud(s.req("username")?, s.req("apiKey")?, t),
        "infoblox" => DnsUpdater::new_infoblox(InfobloxConfig {
            host: s.req("host")?.into(),
            port: s.number::<u16>("port")?.map(|p| p.to_string()),
            username: s.req("username")?.into(),
            password: s.req("password")?.into(),
            wapi_version: s.opt_string("wapiVersion")?,
            dns_view: s.opt_string("dnsView")?,
            request_timeout: t,
        }),
        "infomaniak" => DnsUpdater::new_infomaniak(s.req("accessToken")?, t),
        "inwx" => DnsUpdater::new_inwx(
            s.req("username")?,
            s.req("password")?,
            s.flag("sandbox")?,
            t,
        ),
        "ionos" => DnsUpdater::new_ionos(s.req("apiKey")?, t),
        "ipv64" => DnsUpdater::new_ipv64(s.req("apiKey")?, t),
        "joker" => DnsUpdater::new_joker(s.joker_auth()?, t),
        "lightsail" => DnsUpdater::new_lightsail(LightsailConfig {
            access_key_id: s.req("accessKeyId")?.into(),
            secret_access_key: s.req("secretAccessKey")?.into(),
            session_token: s.opt_string("sessionToken")?,
            region: s.region("region")?.map(str::to_string),
            domain: s.opt_string("domain")?,
            request_timeout: t,
        }),
        "linode" => DnsUpdater::new_linode(s.req("authToken")?, t),
        "luadns" => DnsUpdater::new_luadns(s.req("apiUsername")?, s.req("apiToken")?, t),
        "mythicbeasts" => DnsUpdater::new_mythicbeasts(s.req("username")?, s.req("password")?, t),
        "namecheap" => DnsUpdater::new_namecheap(
            s.req("apiUser")?,
            s.req("apiKey")?,
            s.ipv4("clientIp")?,
            s.opt("username")?,
            t,
        ),
        "namedotcom" => DnsUpdater::new_namedotcom(s.req("username")?, s.req("apiToken")?, t),
        "namesilo" => DnsUpdater::new_namesilo(s.req("apiKey")?, t),
        "netcup" => DnsUpdater::new_netcup(
            s.req("customerNumber")?,
            s.req("apiKey")?,
            s.req("apiPassword")?,
            t,
        ),
        "netlify" => DnsUpdater::new_netlify(s.req("accessToken")?, t),
        "nifcloud" => DnsUpdater::new_nifcloud(s.req("accessKey")?, s.req("secretKey")?, t),
        "ns1" => DnsUpdater::new_ns1(s.req("apiKey")?, t),
        "oraclecloud" => {
            let config = OracleCloudConfig {
                tenancy_ocid: s.req("tenancyOcid")?.into(),
                user_ocid: s.req("userOcid")?.into(),
                fingerprint: s.req("fingerprint")?.into(),
                private_key_pem: s.req("privateKeyPem")?.into(),
                private_key_password: s.opt_string("privateKeyPassword")?,
                region: s.req_region("region")?.into(),
                compartment_ocid: s.req("compartmentOcid")?.into(),
                request_timeout: t,
            };
            if config.private_key_password.is_some() {
                return Err(format!(
                    "dnsServer setting `privateKeyPassword`: {kind} (dns-update 0.6.1) cannot use an encrypted private key; give privateKeyPem unencrypted and leave privateKeyPassword out"
                ));
            }
            // The library parses the key now; its other checks were made above.
            match DnsUpdater::new_oraclecloud(config) {
                Err(e) if error_text(&e).contains("private key") => {
                    return Err(
                        "dnsServer setting `privateKeyPem`: not a usable RSA private key (expected an unencrypted PKCS#8 or PKCS#1 PEM)"
                            .to_string(),
                    );
                }
                other => other,
            }
        }
        "ovh" => DnsUpdater::new_ovh(
            s.req("applicationKey")?,
            s.req("applicationSecret")?,
            s.req("consumerKey")?,
            s.ovh_endpoint("endpointName")?,
            t,
        ),
        "pdns" => DnsUpdater::new_pdns(
            s.req("apiKey")?,
            s.url("endpoint")?,
            s.opt("serverName")?,
            t,
        ),
        "plesk" => DnsUpdater::new_plesk(s.req_url("baseUrl")?, s.req("apiKey")?, t),
        "porkbun" => DnsUpdater::new_porkbun(s.req("apiKey")?, s.req("secretApiKey")?, t),
        "route53" => DnsUpdater::new_route53(Route53Config {
            access_key_id: s.req("accessKeyId")?.into(),
            secret_access_key: s.req("secretAccessKey")?.into(),
            session_token: s.opt_string("sessionToken")?,
            region: s.region("region")?.map(str::to_string),
            hosted_zone_id: s.opt_string("hostedZoneId")?,
            private_zone_only: s.opt_flag("privateZoneOnly")?,
            endpoint: s.url("endpoint")?.map(str::to_string),
        }),
        "safedns" => DnsUpdater::new_safedns(s.req("authToken")?, t),
        "scaleway" => DnsUpdater::new_scaleway(s.req("apiToken")?, t),
        "selectel" => DnsUpdater::new_selectel(
            s.req("username")?,
            s.req("password")?,
            s.req("accountId")?,
            s.req("projectId")?,
            t,
        ),
        "simplycom" => DnsUpdater::new_simplycom(s.req("accountName")?, s.req("apiKey")?, t),
        "spaceship" => DnsUpdater::new_spaceship(s.req("apiKey")?, s.req("apiSecret")?, t),
        "tencentcloud" => DnsUpdater::new_tencentcloud(
            s.req("secretId")?,
            s.req("secretKey")?,
            s.region("region")?,
            s.opt("sessionToken")?,
            t,
        ),
        "transip" => DnsUpdater::new_transip(
            s.req("login")?,
            s.req("privateKeyPem")?,
            s.flag("globalKey")?,
            t,
        ),
        "ultradns" => DnsUpdater::new_ultradns(
            s.req("username")?,
            s.req("password")?,
            s.url("endpoint")?.map(str::to_string),
            t,
        ),
        "vercel" => DnsUpdater::new_vercel(s.req("authToken")?, s.opt("teamId")?, t),
        "volcengine" => {
            let (scheme, host) = match s.url("endpoint")? {
                Some(url) => {
                    let (scheme, host) = scheme_and_host(url).ok_or_else(|| {
                        format!(
                            "dnsServer setting `endpoint`: {kind} takes only scheme://host[:port] (no path)"
                        )
                    })?;
                    (Some(scheme.to_string()), Some(host.to_string()))
                }
                None => (None, None),
            };
            DnsUpdater::new_volcengine(VolcengineConfig {
                access_key: s.req("accessKey")?.into(),
                secret_key: s.req("secretKey")?.into(),
                region: s.region("region")?.map(str::to_string),
                host,
                scheme,
                request_timeout: t,
            })
        }
        "vultr" => DnsUpdater::new_vultr(s.req("apiKey")?, t),
        "websupport" => DnsUpdater::new_websupport(s.req("apiKey")?, s.req("secret")?, t),
        "yandexcloud" => DnsUpdater::new_yandexcloud(YandexCloudConfig {
            iam_token_b64: s.req("iamTokenB64")?.into(),
            folder_id: s.req("folderId")?.into(),
            request_timeout: t,
        }),
        "zoneeu" => DnsUpdater::new_zoneeu(s.req("username")?, s.req("apiKey")?, t),
        other => {
            return Err(format!(
                "dnsServer kind `{other}`: in the catalog but not mapped to a dns-update constructor"
            ));
        }
    };
    built.map_err(|e| format!("dnsServer kind `{kind}`: {}", error_text(&e)))
}

/// The library's error as text. Its constructors' messages are fixed sentences ("… is
/// required", "Invalid region …"), never a setting's value; the settings are checked here
/// before it sees them, so these are a last resort.
fn error_text(error: &dns_update::Error) -> String {
    error.to_string()
}

fn missing(provider: &ProviderKind, key: &str, extra: &str) -> String {
    let help = provider.setting(key).map(|s| s.help).unwrap_or_default();
    format!(
        "dnsServer setting `{key}`: missing{extra}; {} needs it: {help}",
        provider.kind
    )
}

/// One kind's settings, read through the catalog: each read key must be a setting of the
/// kind (a mapping that reads another key is a bug, caught by the tests).
struct Args<'a> {
    provider: &'static ProviderKind,
    settings: &'a Settings,
    /// The keys read so far (the tests check that a build reads every catalog setting).
    read: RefCell<BTreeSet<&'static str>>,
}

impl<'a> Args<'a> {
    fn new(provider: &'static ProviderKind, settings: &'a Settings) -> Self {
        Args {
            provider,
            settings,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    /// The cleaned value of `key`; `None` when absent or empty.
    fn value(&self, key: &'static str) -> Result<Option<&'a str>, String> {
        self.read.borrow_mut().insert(key);
        let Some(setting) = self.provider.setting(key) else {
            return Err(format!(
                "dnsServer kind `{}`: the mapping reads `{key}`, which is not one of its settings",
                self.provider.kind
            ));
        };
        let Some(raw) = self.settings.get(key) else {
            return Ok(None);
        };
        let value = if setting.secret {
            raw.trim_end_matches(['\r', '\n'])
        } else {
            raw.trim()
        };
        if value.trim().is_empty() {
            return Ok(None);
        }
        if !MULTILINE.contains(&key) && value.chars().any(char::is_control) {
            return Err(format!(
                "dnsServer setting `{key}`: contains a line break or another control character"
            ));
        }
        Ok(Some(value))
    }

    fn req(&self, key: &'static str) -> Result<&'a str, String> {
        self.value(key)?
            .ok_or_else(|| missing(self.provider, key, ""))
    }

    fn opt(&self, key: &'static str) -> Result<Option<&'a str>, String> {
        self.value(key)
    }

    fn opt_string(&self, key: &'static str) -> Result<Option<String>, String> {
        Ok(self.value(key)?.map(str::to_string))
    }

    /// `true` or `false`; absent is `None`.
    fn opt_flag(&self, key: &'static str) -> Result<Option<bool>, String> {
        match self.value(key)? {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(format!("dnsServer setting `{key}`: expected true or false")),
        }
    }

    /// `true` or `false`; absent is `false`.
    fn flag(&self, key: &'static str) -> Result<bool, String> {
        Ok(self.opt_flag(key)?.unwrap_or(false))
    }

    fn number<T: std::str::FromStr + Bounded>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, String> {
        match self.value(key)? {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                format!(
                    "dnsServer setting `{key}`: expected a whole number from 0 to {}",
                    T::MAX
                )
            }),
        }
    }

    /// A region name as the library checks it: 1 to 64 of a-z, 0-9 and `-`.
    fn region(&self, key: &'static str) -> Result<Option<&'a str>, String> {
        let value = self.value(key)?;
        if let Some(v) = value
            && !(v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(format!(
                "dnsServer setting `{key}`: expected a region name such as eu-west-1 (up to 64 of a-z, 0-9 and -)"
            ));
        }
        Ok(value)
    }

    fn req_region(&self, key: &'static str) -> Result<&'a str, String> {
        self.region(key)?
            .ok_or_else(|| missing(self.provider, key, ""))
    }

    /// An `http://` or `https://` URL with a host.
    fn url(&self, key: &'static str) -> Result<Option<&'a str>, String> {
        let value = self.value(key)?;
        if let Some(v) = value
            && scheme_and_host(v.split('/').take(3).collect::<Vec<_>>().join("/").as_str())
                .is_none()
        {
            return Err(format!(
                "dnsServer setting `{key}`: expected an http:// or https:// URL, e.g. https://dns.example.com:8443"
            ));
        }
        Ok(value)
    }

    fn req_url(&self, key: &'static str) -> Result<&'a str, String> {
        self.url(key)?
            .ok_or_else(|| missing(self.provider, key, ""))
    }

    fn ipv4(&self, key: &'static str) -> Result<&'a str, String> {
        let value = self.req(key)?;
        value
            .parse::<std::net::Ipv4Addr>()
            .map(|_| value)
            .map_err(|_| format!("dnsServer setting `{key}`: expected an IPv4 address"))
    }

    fn azure_environment(&self, key: &'static str) -> Result<AzureEnvironment, String> {
        match self.value(key)?.map(str::to_ascii_lowercase).as_deref() {
            None | Some("public") => Ok(AzureEnvironment::Public),
            Some("china") => Ok(AzureEnvironment::China),
            Some("usgovernment") => Ok(AzureEnvironment::UsGovernment),
            Some(_) => Err(format!(
                "dnsServer setting `{key}`: expected public, china or usgovernment"
            )),
        }
    }

    fn ovh_endpoint(&self, key: &'static str) -> Result<OvhEndpoint, String> {
        self.req(key)?.to_ascii_lowercase().parse().map_err(|_| {
            format!(
                "dnsServer setting `{key}`: expected ovh-eu, ovh-us, ovh-ca, kimsufi-eu, kimsufi-ca, soyoustart-eu or soyoustart-ca"
            )
        })
    }

    /// Hurricane Electric's keys: `zone=key` entries, one a line or separated by commas.
    /// Zones are stored lowercase without a final dot.
    fn zone_keys(&self, key: &'static str) -> Result<HashMap<String, String>, String> {
        let text = self.req(key)?;
        let mut map = HashMap::new();
        for (n, entry) in text
            .split(['\n', ','])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (zone, secret) = entry
                .split_once('=')
                .map(|(z, k)| (z.trim().trim_end_matches('.'), k.trim()))
                .filter(|(z, k)| !z.is_empty() && !k.is_empty())
                .ok_or_else(|| {
                    format!("dnsServer setting `{key}`: entry {} is not zone=key", n + 1)
                })?;
            if map
                .insert(zone.to_ascii_lowercase(), secret.to_string())
                .is_some()
            {
                return Err(format!(
                    "dnsServer setting `{key}`: zone {zone} is given twice"
                ));
            }
        }
        Ok(map)
    }

    /// Joker takes an API key, or a user name and password.
    fn joker_auth(&self) -> Result<JokerAuth, String> {
        let api_key = self.opt("apiKey")?;
        let username = self.opt("username")?;
        let password = self.opt("password")?;
        match (api_key, username, password) {
            (Some(key), None, None) => Ok(JokerAuth::ApiKey(key.to_string())),
            (Some(_), _, _) => Err(
                "dnsServer setting `apiKey`: give apiKey, or `username` and `password`, not both"
                    .to_string(),
            ),
            (None, Some(username), Some(password)) => Ok(JokerAuth::UsernamePassword {
                username: username.to_string(),
                password: password.to_string(),
            }),
            (None, Some(_), None) => Err(missing(self.provider, "password", "")),
            (None, None, Some(_)) => Err(missing(self.provider, "username", "")),
            (None, None, None) => Err(missing(
                self.provider,
                "apiKey",
                " (or username and password)",
            )),
        }
    }
}

/// `scheme://host[:port]` with an http(s) scheme and a host, an optional final `/`.
fn scheme_and_host(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme_ok = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let host = rest.strip_suffix('/').unwrap_or(rest);
    (scheme_ok
        && !host.is_empty()
        && !host.contains(['/', '?', '#', '@'])
        && !host.chars().any(char::is_whitespace))
    .then_some((scheme, host))
}

/// The numbers settings take, for the "expected a whole number from 0 to MAX" errors.
trait Bounded {
    const MAX: u64;
}

impl Bounded for u16 {
    const MAX: u64 = u16::MAX as u64;
}

impl Bounded for u32 {
    const MAX: u64 = u32::MAX as u64;
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailzone_records::DkimAlgorithm;
    use mailzone_records::config::DNS_UPDATE_PROVIDERS;
    use mailzone_records::dkim::DkimPrivateKey;
    use std::sync::LazyLock;
    use zeroize::Zeroizing;

    /// An RSA key for the kinds whose constructor parses one (oraclecloud).
    static RSA_PEM: LazyLock<String> = LazyLock::new(|| {
        DkimPrivateKey::generate(DkimAlgorithm::RsaSha256, &mut rand::rng())
            .pkcs8_pem()
            .to_string()
    });

    /// A plausible value for each setting key (or kind + key where kinds differ).
    fn dummy(kind: &str, key: &str) -> String {
        match (kind, key) {
            (_, "endpoint" | "baseUrl" | "serverUrl") => "http://127.0.0.1:9".into(),
            ("edgedns", "host") => "akab-test.luna.akamaiapis.net".into(),
            ("infoblox", "host") => "127.0.0.1".into(),
            ("huaweicloud", "region") => "ap-southeast-1".into(),
            ("oraclecloud", "region") => "eu-frankfurt-1".into(),
            ("alidns", "region") => "cn-hangzhou".into(),
            ("tencentcloud", "region") => "ap-guangzhou".into(),
            ("volcengine", "region") => "cn-north-1".into(),
            (_, "region") => "us-east-1".into(),
            (_, "privateKeyPem") => RSA_PEM.clone(),
            (_, "serviceAccountJson") => r#"{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key":"x","token_uri":"http://127.0.0.1:9/token"}"#.into(),
            (_, "iamTokenB64") => r#"{"id":"key","service_account_id":"sa","private_key":"x"}"#.into(),
            (_, "credentials") => "example.com=key1\nexample.org=key2".into(),
            (_, "skipDeploy" | "privateZone" | "sandbox" | "globalKey" | "privateZoneOnly") => {
                "true".into()
            }
            (_, "context") => "4".into(),
            (_, "port") => "8443".into(),
            (_, "environment") => "public".into(),
            (_, "endpointName") => "ovh-eu".into(),
            (_, "clientIp") => "192.0.2.1".into(),
            (_, "wapiVersion") => "2.11".into(),
            (_, "customerNumber" | "accountId" | "accountName") => "12345".into(),
            _ => format!("dummy-{key}"),
        }
    }

    /// Settings a full fill leaves out: one of two alternatives, or one the library refuses.
    fn left_out(kind: &str, key: &str) -> bool {
        matches!(
            (kind, key),
            ("joker", "username" | "password") | ("oraclecloud", "privateKeyPassword")
        )
    }

    fn full(provider: &ProviderKind) -> Settings {
        provider
            .settings
            .iter()
            .filter(|s| !left_out(provider.kind, s.key))
            .map(|s| {
                (
                    s.key.to_string(),
                    Zeroizing::new(dummy(provider.kind, s.key)),
                )
            })
            .collect()
    }

    fn required_only(provider: &ProviderKind) -> Settings {
        provider
            .settings
            .iter()
            .filter(|s| s.required)
            .map(|s| {
                (
                    s.key.to_string(),
                    Zeroizing::new(dummy(provider.kind, s.key)),
                )
            })
            .collect()
    }

    fn with(mut settings: Settings, key: &str, value: &str) -> Settings {
        settings.insert(key.to_string(), Zeroizing::new(value.to_string()));
        settings
    }

    const T: Duration = Duration::from_secs(5);

    /// The error of a build that must fail (`DnsUpdater` is not `Debug`: no `unwrap_err`).
    fn err(result: Result<DnsUpdater, String>) -> String {
        match result {
            Ok(updater) => panic!("built {}", variant_kind(&updater)),
            Err(error) => error,
        }
    }

    /// The library's variant for each kind, to check each kind reaches its own constructor.
    fn variant_kind(updater: &DnsUpdater) -> &'static str {
        match updater {
            DnsUpdater::Alidns(_) => "alidns",
            DnsUpdater::ArvanCloud(_) => "arvancloud",
            DnsUpdater::Autodns(_) => "autodns",
            DnsUpdater::AzureDns(_) => "azuredns",
            DnsUpdater::BaiduCloud(_) => "baiducloud",
            DnsUpdater::BluecatV2(_) => "bluecatv2",
            DnsUpdater::Bunny(_) => "bunny",
            DnsUpdater::Cloudflare(_) => "cloudflare",
            DnsUpdater::ClouDns(_) => "cloudns",
            DnsUpdater::Constellix(_) => "constellix",
            DnsUpdater::Cpanel(_) => "cpanel",
            DnsUpdater::Ddnss(_) => "ddnss",
            DnsUpdater::Desec(_) => "desec",
            DnsUpdater::DigitalOcean(_) => "digitalocean",
            DnsUpdater::DNSimple(_) => "dnsimple",
            DnsUpdater::DnsMadeEasy(_) => "dnsmadeeasy",
            DnsUpdater::Domeneshop(_) => "domeneshop",
            DnsUpdater::Dreamhost(_) => "dreamhost",
            DnsUpdater::DuckDns(_) => "duckdns",
            DnsUpdater::Dynu(_) => "dynu",
            DnsUpdater::EasyDns(_) => "easydns",
            DnsUpdater::EdgeDns(_) => "edgedns",
            DnsUpdater::Exoscale(_) => "exoscale",
            DnsUpdater::FreeMyIp(_) => "freemyip",
            DnsUpdater::GandiV5(_) => "gandiv5",
            DnsUpdater::Gcore(_) => "gcore",
            DnsUpdater::Glesys(_) => "glesys",
            DnsUpdater::Godaddy(_) => "godaddy",
            DnsUpdater::GoogleCloudDns(_) => "google_cloud_dns",
            DnsUpdater::Hetzner(_) => "hetzner",
            DnsUpdater::HostingDe(_) => "hostingde",
            DnsUpdater::Hostinger(_) => "hostinger",
            DnsUpdater::HuaweiCloud(_) => "huaweicloud",
            DnsUpdater::Hurricane(_) => "hurricane",
            DnsUpdater::IbmCloud(_) => "ibmcloud",
            DnsUpdater::Infoblox(_) => "infoblox",
            DnsUpdater::Infomaniak(_) => "infomaniak",
            DnsUpdater::Inwx(_) => "inwx",
            DnsUpdater::Ionos(_) => "ionos",
            DnsUpdater::Ipv64(_) => "ipv64",
            DnsUpdater::Joker(_) => "joker",
            DnsUpdater::Lightsail(_) => "lightsail",
            DnsUpdater::Linode(_) => "linode",
            DnsUpdater::LuaDns(_) => "luadns",
            DnsUpdater::MythicBeasts(_) => "mythicbeasts",
            DnsUpdater::Namecheap(_) => "namecheap",
            DnsUpdater::NameDotCom(_) => "namedotcom",
            DnsUpdater::NameSilo(_) => "namesilo",
            DnsUpdater::Netcup(_) => "netcup",
            DnsUpdater::Netlify(_) => "netlify",
            DnsUpdater::Nifcloud(_) => "nifcloud",
            DnsUpdater::Ns1(_) => "ns1",
            DnsUpdater::OracleCloud(_) => "oraclecloud",
            DnsUpdater::Ovh(_) => "ovh",
            DnsUpdater::Pdns(_) => "pdns",
            DnsUpdater::Plesk(_) => "plesk",
            DnsUpdater::Porkbun(_) => "porkbun",
            DnsUpdater::Route53(_) => "route53",
            DnsUpdater::Safedns(_) => "safedns",
            DnsUpdater::Scaleway(_) => "scaleway",
            DnsUpdater::Selectel(_) => "selectel",
            DnsUpdater::SimplyCom(_) => "simplycom",
            DnsUpdater::Spaceship(_) => "spaceship",
            DnsUpdater::TencentCloud(_) => "tencentcloud",
            DnsUpdater::Transip(_) => "transip",
            DnsUpdater::UltraDns(_) => "ultradns",
            DnsUpdater::Vercel(_) => "vercel",
            DnsUpdater::Volcengine(_) => "volcengine",
            DnsUpdater::Vultr(_) => "vultr",
            DnsUpdater::WebSupport(_) => "websupport",
            DnsUpdater::YandexCloud(_) => "yandexcloud",
            DnsUpdater::ZoneEu(_) => "zoneeu",
            DnsUpdater::Rfc2136(_) => "rfc2136 (not a catalog kind)",
            _ => "a variant this test does not know",
        }
    }

    #[test]
    fn every_kind_builds_from_plausible_settings_and_reads_every_setting() {
        for provider in DNS_UPDATE_PROVIDERS {
            let settings = full(provider);
            let args = Args::new(provider, &settings);
            let updater = build_with(&args, T)
                .unwrap_or_else(|e| panic!("{}: full settings: {e}", provider.kind));
            assert_eq!(variant_kind(&updater), provider.kind);
            // The mapping reads the catalog's settings one to one.
            let catalog: BTreeSet<&str> = provider.settings.iter().map(|s| s.key).collect();
            assert_eq!(*args.read.borrow(), catalog, "{}", provider.kind);

            // And the required settings alone are enough (joker and cloudns have none
            // required on their own: one of two alternatives is).
            let minimal = match provider.kind {
                "joker" => with(Settings::new(), "apiKey", "k"),
                "cloudns" => with(required_only(provider), "subAuthId", "1"),
                _ => required_only(provider),
            };
            build(provider.kind, &minimal, T)
                .unwrap_or_else(|e| panic!("{}: required settings only: {e}", provider.kind));
        }
    }

    #[test]
    fn a_missing_required_setting_is_named() {
        for provider in DNS_UPDATE_PROVIDERS {
            for setting in provider.settings.iter().filter(|s| s.required) {
                let mut settings = full(provider);
                settings.remove(setting.key);
                let error = err(build(provider.kind, &settings, T));
                assert!(
                    error.starts_with(&format!("dnsServer setting `{}`: missing", setting.key)),
                    "{}: {error}",
                    provider.kind
                );
                // An empty value is missing too.
                let empty = with(full(provider), setting.key, "  ");
                let error = err(build(provider.kind, &empty, T));
                assert!(error.contains(&format!("`{}`", setting.key)), "{error}");
            }
        }
    }

    #[test]
    fn every_mapped_kind_is_in_the_catalog() {
        let source = include_str!("catalog.rs");
        let body = &source[source.find("let built = match kind {").unwrap()
            ..source.find("built.map_err(").unwrap()];
        let mut mapped = BTreeSet::new();
        for line in body.lines() {
            let line = line.trim_start();
            if let Some(rest) = line.strip_prefix('"')
                && let Some((kind, tail)) = rest.split_once('"')
                && tail.trim_start().starts_with("=>")
            {
                mapped.insert(kind);
            }
        }
        let catalog: BTreeSet<&str> = DNS_UPDATE_PROVIDERS.iter().map(|p| p.kind).collect();
        assert_eq!(mapped, catalog);
    }

    #[test]
    fn unknown_kinds_suggest_close_ones() {
        let error = err(build("cloudflar", &Settings::new(), T));
        assert!(
            error
                .starts_with("dnsServer kind `cloudflar`: unknown kind; did you mean `cloudflare`"),
            "{error}"
        );
        let error = err(build("rfc2136", &Settings::new(), T));
        assert!(error.contains("unknown kind"), "{error}");
        let error = err(build("zzzzzzzzzzzzzzzz", &Settings::new(), T));
        assert_eq!(error, "dnsServer kind `zzzzzzzzzzzzzzzz`: unknown kind");
    }

    #[test]
    fn values_are_parsed_with_errors_naming_the_setting_and_not_the_value() {
        let p = |k| dns_update_provider(k).unwrap();
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "bluecatv2",
                "skipDeploy",
                "yes-please",
                "expected true or false",
            ),
            ("autodns", "context", "-1", "expected a whole number"),
            (
                "infoblox",
                "port",
                "70000",
                "expected a whole number from 0 to 65535",
            ),
            ("ovh", "endpointName", "ovh-mars", "expected ovh-eu"),
            (
                "azuredns",
                "environment",
                "germany",
                "expected public, china",
            ),
            ("huaweicloud", "region", "EU West", "expected a region name"),
            ("route53", "region", "us_east_1", "expected a region name"),
            (
                "route53",
                "endpoint",
                "ftp://127.0.0.1",
                "expected an http:// or https:// URL",
            ),
            (
                "pdns",
                "endpoint",
                "127.0.0.1:8081",
                "expected an http:// or https:// URL",
            ),
            (
                "plesk",
                "baseUrl",
                "https:///path",
                "expected an http:// or https:// URL",
            ),
            (
                "volcengine",
                "endpoint",
                "http://127.0.0.1:9/api",
                "only scheme://host[:port]",
            ),
            (
                "namecheap",
                "clientIp",
                "not-an-ip",
                "expected an IPv4 address",
            ),
            (
                "hurricane",
                "credentials",
                "example.com",
                "entry 1 is not zone=key",
            ),
            (
                "hurricane",
                "credentials",
                "a.com=x,A.com.=y",
                "zone A.com is given twice",
            ),
            ("cloudflare", "apiToken", "tok\nen", "control character"),
            (
                "oraclecloud",
                "privateKeyPem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "not a usable RSA private key",
            ),
            (
                "oraclecloud",
                "privateKeyPassword",
                "hunter2-secret",
                "cannot use an encrypted private key",
            ),
            (
                "joker",
                "username",
                "someone",
                "give apiKey, or `username` and `password`, not both",
            ),
        ];
        for (kind, key, value, expected) in cases {
            let settings = with(full(p(kind)), key, value);
            let error = err(build(kind, &settings, T));
            assert!(error.contains(expected), "{kind} {key}: {error}");
            assert!(error.contains(&format!("`{key}`")), "{kind} {key}: {error}");
            assert!(
                !error.contains(value),
                "{kind} {key}: the value is shown: {error}"
            );
        }
    }

    #[test]
    fn alternatives() {
        let joker = dns_update_provider("joker").unwrap();
        let pair = with(with(Settings::new(), "username", "u"), "password", "p");
        assert!(matches!(build("joker", &pair, T), Ok(DnsUpdater::Joker(_))));
        let error = err(build("joker", &with(Settings::new(), "username", "u"), T));
        assert!(
            error.starts_with("dnsServer setting `password`: missing"),
            "{error}"
        );
        let error = err(build("joker", &Settings::new(), T));
        assert!(
            error.starts_with("dnsServer setting `apiKey`: missing (or username and password)"),
            "{error}"
        );
        assert!(joker.settings.iter().all(|s| !s.required));

        let cloudns = with(Settings::new(), "authPassword", "p");
        let error = err(build("cloudns", &cloudns, T));
        assert!(
            error.starts_with("dnsServer setting `authId`: missing (or subAuthId)"),
            "{error}"
        );
        assert!(build("cloudns", &with(cloudns, "authId", "1"), T).is_ok());
    }

    #[test]
    fn values_are_cleaned() {
        // A secret read from a file keeps everything but its final line break.
        let token = with(Settings::new(), "apiToken", "secret-token\n");
        assert!(build("cloudflare", &token, T).is_ok());
        // Optional settings given empty are absent.
        let settings = with(
            required_only(dns_update_provider("route53").unwrap()),
            "region",
            "",
        );
        assert!(build("route53", &settings, T).is_ok());
        // Booleans and enum names ignore case and surrounding space.
        let settings = with(
            full(dns_update_provider("inwx").unwrap()),
            "sandbox",
            " TRUE ",
        );
        assert!(build("inwx", &settings, T).is_ok());
        let settings = with(
            full(dns_update_provider("ovh").unwrap()),
            "endpointName",
            "OVH-CA",
        );
        assert!(build("ovh", &settings, T).is_ok());
    }

    #[test]
    fn scheme_and_host_split() {
        assert_eq!(
            scheme_and_host("http://127.0.0.1:9"),
            Some(("http", "127.0.0.1:9"))
        );
        assert_eq!(
            scheme_and_host("https://a.example/"),
            Some(("https", "a.example"))
        );
        assert_eq!(scheme_and_host("https://a.example/x"), None);
        assert_eq!(scheme_and_host("a.example"), None);
        assert_eq!(scheme_and_host("http://"), None);
    }
}
