//! The DNS server kinds and their config keys: mailzone's own (`rfc2136`, `powerdns`,
//! `zonefile`) and the providers reachable through the `dns-update` library.
//!
//! Pure data: one [`ProviderKind`] per `DnsUpdater::new_*` constructor of `dns-update` 0.6.1
//! (built with its `ring` feature), except RFC 2136 (mailzone's own `rfc2136` kind) and the
//! library's test providers. A kind's name is the library's own (its provider module's name),
//! so a Stalwart user finds the names they know. Each [`Setting`] mirrors one constructor
//! parameter (or config struct field), camelCased; the library's request timeout is not a
//! setting (mailzone passes the DNS server's own `timeout`).
//!
//! A setting named `endpoint` is always an optional URL that replaces the provider's API
//! address (tests point it at a loopback mock server). Required addresses of self-hosted
//! servers keep their own names (`baseUrl`, `serverUrl`, `host`).
//!
//! A [`Setting::secret`] setting may be given in the config as `<key>`, `<key>File` or
//! `<key>Env`, and is never shown back.

/// One DNS provider kind of `dns-update` and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderKind {
    /// The config `kind`: the library's own name for the provider ("cloudflare", "route53").
    pub kind: &'static str,
    /// The provider's name for people ("Cloudflare", "Amazon Route 53").
    pub title: &'static str,
    /// The settings, in the order of the library's constructor parameters.
    pub settings: &'static [Setting],
    /// The smallest TTL the provider accepts, where it documents one; 1 otherwise.
    pub min_ttl: u32,
}

impl ProviderKind {
    /// The setting named `key`, if the kind has one.
    pub fn setting(&self, key: &str) -> Option<&'static Setting> {
        self.settings.iter().find(|s| s.key == key)
    }
}

/// One config key of a provider kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The camelCase config key: "apiToken", "accessKeyId", "region", "endpoint"...
    pub key: &'static str,
    /// A token, password, secret key or private key: the config may give it as `<key>`,
    /// `<key>File` or `<key>Env`, and it is write-only.
    pub secret: bool,
    /// The provider cannot be built without it.
    pub required: bool,
    /// One line: what it is.
    pub help: &'static str,
}

/// A required setting that is not secret (a user name, an ID, a region...).
const fn req(key: &'static str, help: &'static str) -> Setting {
    Setting {
        key,
        secret: false,
        required: true,
        help,
    }
}

/// An optional setting that is not secret.
const fn opt(key: &'static str, help: &'static str) -> Setting {
    Setting {
        key,
        secret: false,
        required: false,
        help,
    }
}

/// A required secret: a token, password, secret key or private key.
const fn secret(key: &'static str, help: &'static str) -> Setting {
    Setting {
        key,
        secret: true,
        required: true,
        help,
    }
}

/// An optional secret.
const fn opt_secret(key: &'static str, help: &'static str) -> Setting {
    Setting {
        key,
        secret: true,
        required: false,
        help,
    }
}

const fn kind(
    kind: &'static str,
    title: &'static str,
    min_ttl: u32,
    settings: &'static [Setting],
) -> ProviderKind {
    ProviderKind {
        kind,
        title,
        settings,
        min_ttl,
    }
}

/// The kinds mailzone implements itself, with their own keys (the keys every kind takes,
/// `ttl`, `timeout`, the propagation timings…, are not listed).
pub static NATIVE_PROVIDERS: &[ProviderKind] = &[
    kind(
        "rfc2136",
        "RFC 2136 dynamic updates with TSIG (Knot, BIND, PowerDNS, NSD behind a primary…)",
        0,
        &[
            req("host", "the primary's host name or address"),
            opt("port", "53 by default"),
            opt("protocol", "tcp (default) or udp"),
            opt("keyName", "the TSIG key's name"),
            opt_secret("key", "the TSIG secret, base64"),
            opt(
                "algorithm",
                "hmac-sha256 (default), hmac-sha384, hmac-sha512",
            ),
        ],
    ),
    kind(
        "powerdns",
        "PowerDNS Authoritative, through its HTTP API",
        0,
        &[
            req("url", "the API's base URL, e.g. http://127.0.0.1:8081"),
            opt("serverId", "localhost by default"),
            secret("key", "the API key (api-key in pdns.conf)"),
            opt(
                "dnsAddress",
                "IP[:PORT] where this PowerDNS answers DNS: serials are then read with one SOA query instead of an API request",
            ),
        ],
    ),
    kind(
        "zonefile",
        "Zone files on disk (BIND, NSD, Knot), with a reload command",
        0,
        &[
            req(
                "path",
                "the file written; {zone} and {stateDir} stand for the zone and the state directory",
            ),
            opt(
                "layout",
                "zone (the whole zone file, default) or include (a file the zone $INCLUDEs)",
            ),
            opt(
                "zoneFile",
                "with layout = include: the zone file that includes it (its serial is bumped)",
            ),
            opt(
                "reloadCommand",
                "argv run after each write, e.g. [\"knotc\", \"zone-reload\", \"{zone}\"]",
            ),
        ],
    ),
];

/// Every `dns-update` provider kind, sorted by kind.
pub static DNS_UPDATE_PROVIDERS: &[ProviderKind] = &[
    kind(
        "alidns",
        "Alibaba Cloud DNS",
        600,
        &[
            req(
                "accessKey",
                "AccessKey ID of a RAM user allowed to manage Alibaba Cloud DNS",
            ),
            secret("secretKey", "AccessKey secret of that AccessKey ID"),
            opt(
                "region",
                "region of the API endpoint, e.g. cn-hangzhou (default: the central alidns.aliyuncs.com)",
            ),
            opt_secret(
                "securityToken",
                "STS security token, for temporary credentials",
            ),
            opt(
                "line",
                "resolution line of the records (default: the provider's default line)",
            ),
        ],
    ),
    kind(
        "arvancloud",
        "ArvanCloud",
        1,
        &[secret(
            "apiKey",
            "API key as the panel shows it (\"Apikey ...\"), sent as the Authorization header",
        )],
    ),
    kind(
        "autodns",
        "InterNetX AutoDNS",
        1,
        &[
            req("username", "AutoDNS user name"),
            secret("password", "AutoDNS password"),
            opt(
                "context",
                "AutoDNS context number (default 4, the live system)",
            ),
        ],
    ),
    kind(
        "azuredns",
        "Azure DNS",
        1,
        &[
            req("tenantId", "Microsoft Entra tenant (directory) ID"),
            req(
                "clientId",
                "application (client) ID of the service principal",
            ),
            secret("clientSecret", "client secret of the service principal"),
            req("subscriptionId", "subscription that holds the DNS zones"),
            req("resourceGroup", "resource group that holds the DNS zones"),
            opt(
                "environment",
                "Azure cloud: public (default), china or usgovernment",
            ),
        ],
    ),
    kind(
        "baiducloud",
        "Baidu AI Cloud DNS",
        1,
        &[
            req("accessKey", "access key ID"),
            secret("secretKey", "secret access key"),
        ],
    ),
    kind(
        "bluecatv2",
        "BlueCat Address Manager (REST API v2)",
        1,
        &[
            req(
                "serverUrl",
                "URL of the Address Manager, e.g. https://bam.example.com",
            ),
            req("username", "API user name"),
            secret("password", "API user password"),
            req("configName", "configuration that holds the zones"),
            req("viewName", "DNS view that holds the zones"),
            opt(
                "skipDeploy",
                "true: do not deploy the changes to the DNS servers after an update (default false)",
            ),
        ],
    ),
    kind(
        "bunny",
        "Bunny DNS (bunny.net)",
        1,
        &[secret("apiKey", "account API key")],
    ),
    kind(
        "cloudflare",
        "Cloudflare",
        60,
        &[secret(
            "apiToken",
            "API token with the Zone DNS Edit permission on the zones",
        )],
    ),
    kind(
        "cloudns",
        "ClouDNS",
        60,
        &[
            opt(
                "authId",
                "auth-id of an API user (give authId or subAuthId)",
            ),
            opt(
                "subAuthId",
                "sub-auth-id of an API sub-user (instead of authId)",
            ),
            secret("authPassword", "password of that API user"),
        ],
    ),
    kind(
        "constellix",
        "Constellix",
        1,
        &[
            secret("apiKey", "API key"),
            secret("secretKey", "secret key of that API key"),
        ],
    ),
    kind(
        "cpanel",
        "cPanel",
        1,
        &[
            req(
                "baseUrl",
                "URL of the cPanel server, e.g. https://cpanel.example.com:2083",
            ),
            req("username", "cPanel account user name"),
            secret("token", "cPanel API token of that account"),
        ],
    ),
    kind(
        "ddnss",
        "DDNSS.de",
        1,
        &[secret("key", "update key of the account")],
    ),
    kind("desec", "deSEC", 3600, &[secret("authToken", "API token")]),
    kind(
        "digitalocean",
        "DigitalOcean",
        30,
        &[secret(
            "authToken",
            "personal access token with write scope",
        )],
    ),
    kind(
        "dnsimple",
        "DNSimple",
        1,
        &[
            secret("authToken", "account API access token"),
            req(
                "accountId",
                "account ID (the number in the dashboard's URLs)",
            ),
        ],
    ),
    kind(
        "dnsmadeeasy",
        "DNS Made Easy",
        1,
        &[
            secret("apiKey", "API key"),
            secret("apiSecret", "secret key of that API key"),
        ],
    ),
    kind(
        "domeneshop",
        "Domeneshop",
        1,
        &[
            secret("apiToken", "API token"),
            secret("apiSecret", "API secret of that token"),
        ],
    ),
    kind(
        "dreamhost",
        "DreamHost",
        1,
        &[secret("apiKey", "API key with the dns-* functions")],
    ),
    kind(
        "duckdns",
        "Duck DNS",
        60,
        &[secret("token", "account token")],
    ),
    kind("dynu", "Dynu", 1, &[secret("apiKey", "API key")]),
    kind(
        "easydns",
        "easyDNS",
        1,
        &[
            secret("token", "API token"),
            secret("key", "API key of that token"),
        ],
    ),
    kind(
        "edgedns",
        "Akamai Edge DNS",
        1,
        &[
            req(
                "host",
                "EdgeGrid API host of the API client, e.g. akab-xxxx.luna.akamaiapis.net",
            ),
            secret("clientToken", "EdgeGrid client token"),
            secret("clientSecret", "EdgeGrid client secret"),
            secret("accessToken", "EdgeGrid access token"),
            opt(
                "accountSwitchKey",
                "account switch key, for an API client of several accounts",
            ),
        ],
    ),
    kind(
        "exoscale",
        "Exoscale DNS",
        1,
        &[
            secret("apiKey", "API key"),
            secret("apiSecret", "API secret of that key"),
        ],
    ),
    kind(
        "freemyip",
        "freemyip.com",
        1,
        &[secret("token", "account token")],
    ),
    kind(
        "gandiv5",
        "Gandi LiveDNS",
        300,
        &[secret(
            "personalAccessToken",
            "personal access token with the Manage domain name technical configurations permission",
        )],
    ),
    kind(
        "gcore",
        "Gcore DNS",
        1,
        &[secret("apiToken", "permanent API token")],
    ),
    kind(
        "glesys",
        "GleSYS",
        60,
        &[
            req("apiUser", "API user (the CL account name)"),
            secret("apiKey", "API key with the domain permissions"),
        ],
    ),
    kind(
        "godaddy",
        "GoDaddy",
        600,
        &[
            secret("apiKey", "production API key"),
            secret("apiSecret", "API secret of that key"),
        ],
    ),
    kind(
        "google_cloud_dns",
        "Google Cloud DNS",
        1,
        &[
            secret(
                "serviceAccountJson",
                "service account key: the JSON file Google Cloud gives",
            ),
            req("projectId", "Google Cloud project ID"),
            opt(
                "managedZone",
                "managed zone name (default: the zone whose DNS name is the longest suffix)",
            ),
            opt(
                "privateZone",
                "true: use private zones only (default false)",
            ),
            opt(
                "impersonateServiceAccount",
                "e-mail of a service account to impersonate",
            ),
        ],
    ),
    kind(
        "hetzner",
        "Hetzner DNS",
        60,
        &[secret(
            "apiToken",
            "Hetzner Cloud API token with read and write permission",
        )],
    ),
    kind(
        "hostingde",
        "hosting.de",
        1,
        &[secret("apiKey", "API key with the DNS permissions")],
    ),
    kind(
        "hostinger",
        "Hostinger",
        1,
        &[secret("apiToken", "API token")],
    ),
    kind(
        "huaweicloud",
        "Huawei Cloud DNS",
        1,
        &[
            req("accessKey", "access key ID"),
            secret("secretKey", "secret access key"),
            req("region", "region of the API endpoint, e.g. ap-southeast-1"),
        ],
    ),
    kind(
        "hurricane",
        "Hurricane Electric (dns.he.net)",
        1,
        &[secret(
            "credentials",
            "dynamic DNS keys: zone=key pairs, one a line or separated by commas",
        )],
    ),
    kind(
        "ibmcloud",
        "IBM Cloud DNS (SoftLayer classic)",
        1,
        &[
            req("username", "SoftLayer API user name"),
            secret("apiKey", "SoftLayer API key of that user"),
        ],
    ),
    kind(
        "infoblox",
        "Infoblox NIOS",
        1,
        &[
            req("host", "host name or URL of the Grid Master"),
            opt("port", "WAPI port (default 443)"),
            req("username", "WAPI user name"),
            secret("password", "WAPI password"),
            opt("wapiVersion", "WAPI version (default 2.11)"),
            opt(
                "dnsView",
                "DNS view that holds the zones (default External)",
            ),
        ],
    ),
    kind(
        "infomaniak",
        "Infomaniak",
        1,
        &[secret("accessToken", "API token with the domain scope")],
    ),
    kind(
        "inwx",
        "INWX",
        1,
        &[
            req("username", "INWX account user name"),
            secret("password", "INWX account password"),
            opt("sandbox", "true: use the OTE test system (default false)"),
        ],
    ),
    kind(
        "ionos",
        "IONOS",
        1,
        &[secret("apiKey", "API key: prefix.secret")],
    ),
    kind("ipv64", "IPv64.net", 1, &[secret("apiKey", "API key")]),
    kind(
        "joker",
        "Joker.com",
        1,
        &[
            opt_secret("apiKey", "DMAPI API key (or username and password)"),
            opt(
                "username",
                "DMAPI user name (with password, instead of apiKey)",
            ),
            opt_secret("password", "DMAPI password"),
        ],
    ),
    kind(
        "lightsail",
        "Amazon Lightsail DNS",
        1,
        &[
            req("accessKeyId", "AWS access key ID"),
            secret("secretAccessKey", "AWS secret access key"),
            opt_secret(
                "sessionToken",
                "AWS session token, for temporary credentials",
            ),
            opt("region", "AWS region (default us-east-1)"),
            opt(
                "domain",
                "Lightsail domain to write to (default: the zone's own name)",
            ),
        ],
    ),
    kind(
        "linode",
        "Akamai Cloud (Linode) DNS",
        300,
        &[secret(
            "authToken",
            "personal access token with the Domains read/write scope",
        )],
    ),
    kind(
        "luadns",
        "LuaDNS",
        300,
        &[
            req("apiUsername", "account e-mail address"),
            secret("apiToken", "API token"),
        ],
    ),
    kind(
        "mythicbeasts",
        "Mythic Beasts",
        1,
        &[
            req("username", "API key ID"),
            secret("password", "API key secret"),
        ],
    ),
    kind(
        "namecheap",
        "Namecheap",
        60,
        &[
            req("apiUser", "API user name"),
            secret("apiKey", "API key"),
            req(
                "clientIp",
                "public IPv4 address mailzone calls from, allow-listed at Namecheap",
            ),
            opt(
                "username",
                "account user name the changes are made for (default: apiUser)",
            ),
        ],
    ),
    kind(
        "namedotcom",
        "Name.com",
        300,
        &[
            req("username", "account user name"),
            secret("apiToken", "API token"),
        ],
    ),
    kind("namesilo", "NameSilo", 3600, &[secret("apiKey", "API key")]),
    kind(
        "netcup",
        "netcup",
        1,
        &[
            req("customerNumber", "customer number"),
            secret("apiKey", "CCP API key"),
            secret("apiPassword", "CCP API password"),
        ],
    ),
    kind(
        "netlify",
        "Netlify DNS",
        1,
        &[secret("accessToken", "personal access token")],
    ),
    kind(
        "nifcloud",
        "NIFCLOUD DNS",
        1,
        &[
            req("accessKey", "access key ID"),
            secret("secretKey", "secret access key"),
        ],
    ),
    kind(
        "ns1",
        "NS1 (IBM NS1 Connect)",
        1,
        &[secret("apiKey", "API key")],
    ),
    kind(
        "oraclecloud",
        "Oracle Cloud Infrastructure DNS",
        1,
        &[
            req("tenancyOcid", "OCID of the tenancy"),
            req("userOcid", "OCID of the user the API key belongs to"),
            req("fingerprint", "fingerprint of the API signing key"),
            secret(
                "privateKeyPem",
                "API signing key: RSA private key, PEM, not encrypted",
            ),
            opt_secret(
                "privateKeyPassword",
                "passphrase of the key (dns-update 0.6.1 refuses encrypted keys: leave it out)",
            ),
            req("region", "region of the DNS API, e.g. eu-frankfurt-1"),
            req(
                "compartmentOcid",
                "OCID of the compartment that holds the zones",
            ),
        ],
    ),
    kind(
        "ovh",
        "OVHcloud",
        1,
        &[
            req("applicationKey", "application key"),
            secret("applicationSecret", "application secret"),
            secret("consumerKey", "consumer key with the /domain/zone rights"),
            req(
                "endpointName",
                "API endpoint: ovh-eu, ovh-us, ovh-ca, kimsufi-eu, kimsufi-ca, soyoustart-eu or soyoustart-ca",
            ),
        ],
    ),
    kind(
        "pdns",
        "PowerDNS Authoritative (HTTP API)",
        1,
        &[
            secret("apiKey", "API key (the server's api-key)"),
            opt(
                "endpoint",
                "URL of the HTTP API (default http://localhost:8081)",
            ),
            opt(
                "serverName",
                "server ID in the API paths (default localhost)",
            ),
        ],
    ),
    kind(
        "plesk",
        "Plesk",
        1,
        &[
            req(
                "baseUrl",
                "URL of the Plesk server, e.g. https://plesk.example.com:8443",
            ),
            secret("apiKey", "Plesk API key"),
        ],
    ),
    kind(
        "porkbun",
        "Porkbun",
        600,
        &[
            secret("apiKey", "API key"),
            secret("secretApiKey", "secret API key"),
        ],
    ),
    kind(
        "route53",
        "Amazon Route 53",
        1,
        &[
            req("accessKeyId", "AWS access key ID"),
            secret("secretAccessKey", "AWS secret access key"),
            opt_secret(
                "sessionToken",
                "AWS session token, for temporary credentials",
            ),
            opt(
                "region",
                "AWS region used to sign requests (default us-east-1)",
            ),
            opt(
                "hostedZoneId",
                "hosted zone ID (default: looked up from the zone name)",
            ),
            opt("privateZoneOnly", "true: look up private hosted zones only"),
            opt(
                "endpoint",
                "URL of the API (default https://route53.amazonaws.com)",
            ),
        ],
    ),
    kind(
        "safedns",
        "ANS SafeDNS",
        1,
        &[secret("authToken", "API application key")],
    ),
    kind(
        "scaleway",
        "Scaleway Domains and DNS",
        1,
        &[secret("apiToken", "secret key of an API key")],
    ),
    kind(
        "selectel",
        "Selectel DNS",
        60,
        &[
            req("username", "service user name"),
            secret("password", "service user password"),
            req("accountId", "account ID"),
            req("projectId", "project ID the service user is scoped to"),
        ],
    ),
    kind(
        "simplycom",
        "Simply.com",
        1,
        &[
            req("accountName", "account name, e.g. S123456"),
            secret("apiKey", "API key"),
        ],
    ),
    kind(
        "spaceship",
        "Spaceship",
        1,
        &[
            secret("apiKey", "API key"),
            secret("apiSecret", "API secret of that key"),
        ],
    ),
    kind(
        "tencentcloud",
        "Tencent Cloud DNSPod",
        600,
        &[
            req("secretId", "SecretId of the API key"),
            secret("secretKey", "SecretKey of the API key"),
            opt("region", "region, e.g. ap-guangzhou (default: none)"),
            opt_secret("sessionToken", "session token, for temporary credentials"),
        ],
    ),
    kind(
        "transip",
        "TransIP",
        1,
        &[
            req("login", "account login name"),
            secret("privateKeyPem", "private key of the API key pair, PEM"),
            opt(
                "globalKey",
                "true: the key is not restricted to allow-listed IP addresses (default false)",
            ),
        ],
    ),
    kind(
        "ultradns",
        "UltraDNS",
        1,
        &[
            req("username", "user name"),
            secret("password", "password"),
            opt(
                "endpoint",
                "URL of the API (default https://api.ultradns.com)",
            ),
        ],
    ),
    kind(
        "vercel",
        "Vercel DNS",
        1,
        &[
            secret("authToken", "access token"),
            opt("teamId", "team ID, for domains that belong to a team"),
        ],
    ),
    kind(
        "volcengine",
        "Volcano Engine DNS",
        1,
        &[
            req("accessKey", "Access Key ID"),
            secret("secretKey", "Secret Access Key"),
            opt(
                "region",
                "region used to sign requests (default cn-north-1)",
            ),
            opt(
                "endpoint",
                "URL of the API (default https://open.volcengineapi.com)",
            ),
        ],
    ),
    kind("vultr", "Vultr DNS", 1, &[secret("apiKey", "API key")]),
    kind(
        "websupport",
        "Websupport",
        1,
        &[
            secret("apiKey", "API key (identifier)"),
            secret("secret", "API secret of that key"),
        ],
    ),
    kind(
        "yandexcloud",
        "Yandex Cloud DNS",
        1,
        &[
            secret(
                "iamTokenB64",
                "authorized key of a service account: its JSON file, or that JSON base64-encoded",
            ),
            req("folderId", "ID of the folder that holds the zones"),
        ],
    ),
    kind(
        "zoneeu",
        "Zone.eu",
        1,
        &[
            req("username", "ZoneID user name"),
            secret("apiKey", "ZoneID API key"),
        ],
    ),
];

/// The `dns-update` provider kind named `kind`.
pub fn dns_update_provider(kind: &str) -> Option<&'static ProviderKind> {
    DNS_UPDATE_PROVIDERS.iter().find(|p| p.kind == kind)
}

/// Every kind: mailzone's own, then those of `dns-update`.
pub fn provider_kinds() -> impl Iterator<Item = &'static ProviderKind> {
    NATIVE_PROVIDERS.iter().chain(DNS_UPDATE_PROVIDERS)
}

/// The kind named `kind`, native or `dns-update`.
pub fn provider_kind(kind: &str) -> Option<&'static ProviderKind> {
    provider_kinds().find(|p| p.kind == kind)
}

/// Up to three known kinds closest to `kind` (edit distance), for "unknown kind" errors.
///
/// Case, `-`, `_`, `.` and spaces are ignored ("Route-53" is close to "route53"); a kind that
/// contains the text ("google" for "google_cloud_dns") is close too. Kinds too far to be a
/// typo of `kind` are left out, so the list may be empty.
pub fn close_kinds(kind: &str) -> Vec<&'static str> {
    let wanted = normalize(kind);
    if wanted.is_empty() {
        return Vec::new();
    }
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &'static str)> = provider_kinds()
        .filter_map(|p| {
            let candidate = normalize(p.kind);
            let distance = edit_distance(&wanted, &candidate);
            if distance <= limit {
                Some((distance, p.kind))
            } else if wanted.len() >= 3 && candidate.contains(&wanted) {
                // A prefix or part of the name: ranked after the typos.
                Some((limit + 1 + candidate.len() - wanted.len(), p.kind))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, k)| k).collect()
}

fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn kinds_are_unique_lowercase_and_sorted() {
        let mut seen = HashSet::new();
        for p in DNS_UPDATE_PROVIDERS {
            assert!(seen.insert(p.kind), "duplicate kind {}", p.kind);
            assert!(
                !p.kind.is_empty()
                    && p.kind
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "kind {} is not lowercase",
                p.kind
            );
            assert!(!p.title.is_empty(), "{} has no title", p.kind);
            assert!(p.min_ttl >= 1, "{}: min_ttl 0", p.kind);
        }
        assert!(
            DNS_UPDATE_PROVIDERS
                .windows(2)
                .all(|w| w[0].kind < w[1].kind),
            "the catalog is sorted by kind"
        );
        // mailzone's own RFC 2136 provider and the library's test providers are not here.
        for excluded in ["rfc2136", "pebble", "in_memory"] {
            assert!(dns_update_provider(excluded).is_none(), "{excluded}");
        }
    }

    #[test]
    fn keys_are_camel_case_and_unique_per_kind() {
        for p in DNS_UPDATE_PROVIDERS {
            assert!(!p.settings.is_empty(), "{} has no settings", p.kind);
            let mut seen = HashSet::new();
            for s in p.settings {
                assert!(seen.insert(s.key), "{}: duplicate key {}", p.kind, s.key);
                let mut chars = s.key.chars();
                assert!(
                    chars.next().is_some_and(|c| c.is_ascii_lowercase())
                        && chars.all(|c| c.is_ascii_alphanumeric()),
                    "{}: key {} is not camelCase",
                    p.kind,
                    s.key
                );
                // `<key>File` and `<key>Env` are the secret's other spellings: no setting may
                // be named like one.
                assert!(
                    !s.key.ends_with("File") && !s.key.ends_with("Env"),
                    "{}: key {}",
                    p.kind,
                    s.key
                );
                assert!(
                    !s.help.is_empty() && !s.help.contains('\n'),
                    "{}: help of {}",
                    p.kind,
                    s.key
                );
                // The library's own timeout parameter is not a setting.
                assert_ne!(s.key, "timeout", "{}", p.kind);
            }
        }
    }

    #[test]
    fn endpoint_is_always_an_optional_url() {
        for p in DNS_UPDATE_PROVIDERS {
            if let Some(s) = p.setting("endpoint") {
                assert!(!s.required && !s.secret, "{}", p.kind);
                assert!(s.help.starts_with("URL"), "{}: {}", p.kind, s.help);
            }
        }
    }

    #[test]
    fn lookup() {
        let cloudflare = dns_update_provider("cloudflare").unwrap();
        assert_eq!(cloudflare.title, "Cloudflare");
        assert_eq!(cloudflare.min_ttl, 60);
        assert!(cloudflare.setting("apiToken").unwrap().secret);
        assert_eq!(dns_update_provider("desec").unwrap().min_ttl, 3600);
        let route53 = dns_update_provider("route53").unwrap();
        assert!(route53.setting("accessKeyId").unwrap().required);
        assert!(!route53.setting("accessKeyId").unwrap().secret);
        assert!(route53.setting("secretAccessKey").unwrap().secret);
        assert!(!route53.setting("region").unwrap().required);
        assert!(dns_update_provider("Cloudflare").is_none());
        assert!(dns_update_provider("").is_none());
    }

    #[test]
    fn close_kinds_suggests_typos_first() {
        assert_eq!(close_kinds("cloudflar").first(), Some(&"cloudflare"));
        assert_eq!(close_kinds("CloudFlare").first(), Some(&"cloudflare"));
        assert_eq!(close_kinds("route-53").first(), Some(&"route53"));
        assert_eq!(close_kinds("hetzer").first(), Some(&"hetzner"));
        assert_eq!(close_kinds("gandi").first(), Some(&"gandiv5"));
        assert_eq!(close_kinds("google"), vec!["google_cloud_dns"]);
        assert!(close_kinds("cloudflar").len() <= 3);
        assert!(close_kinds("").is_empty());
        assert!(close_kinds("zzzzzzzzzzzz").is_empty());
    }

    /// `docs/providers-catalog.md` is written from the catalog; it must stay accurate.
    #[test]
    fn the_docs_list_the_catalog() {
        let docs = include_str!("../../../../docs/providers-catalog.md");
        let notes = |s: &Setting| match (s.secret, s.required) {
            (true, true) => " (secret)",
            (true, false) => " (secret, optional)",
            (false, true) => "",
            (false, false) => " (optional)",
        };
        for p in DNS_UPDATE_PROVIDERS {
            let settings: Vec<String> = p
                .settings
                .iter()
                .map(|s| format!("`{}`{}", s.key, notes(s)))
                .collect();
            let min_ttl = if p.min_ttl > 1 {
                p.min_ttl.to_string()
            } else {
                "-".to_string()
            };
            let row = format!(
                "| `{}` | {} | {} | {min_ttl} |",
                p.kind,
                p.title,
                settings.join(", ")
            );
            assert!(
                docs.contains(&row),
                "docs/providers-catalog.md lacks: {row}"
            );
            let section = format!("### `{}`: {}\n\n", p.kind, p.title);
            let start = docs
                .find(&section)
                .unwrap_or_else(|| panic!("docs/providers-catalog.md lacks {section}"));
            let lines: Vec<String> = p
                .settings
                .iter()
                .map(|s| format!("- `{}`{}: {}", s.key, notes(s), s.help))
                .collect();
            let expected = format!("{section}{}\n\n", lines.join("\n"));
            assert!(
                docs[start..].starts_with(&expected),
                "docs/providers-catalog.md: the settings of {} differ",
                p.kind
            );
        }
        let rows = docs.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(rows, DNS_UPDATE_PROVIDERS.len());
        assert!(docs.contains(&format!("There are {} kinds.", DNS_UPDATE_PROVIDERS.len())));
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("cloudflar", "cloudflare"), 1);
    }
}
