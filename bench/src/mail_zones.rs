//! The mail zones both reconcile benchmarks publish: N zones `z00000.bench.test` …, each a
//! mail domain with 26 records (the mail host is outside every zone), the mailzone config
//! that manages them through one DNS server, and the records as `mailzone records --format
//! json` gives them (what octoDNS is handed, and what is checked with kdig after a run).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use mailzone_testkit::query_at;

use crate::octodns::{JsonRecord, zone_of};

/// The mail host of every zone (outside all of them).
pub const MAIL_HOST: &str = "mail.bench.test";
/// Every record type mailzone can publish.
pub const PUBLISH_RECORDS: &str = r#"["mx", "spf", "dkim", "dmarc", "mtaSts", "tlsRpt", "srv", "autoConfig", "autoConfigLegacy", "autoDiscover", "caa", "tlsa", "address"]"#;
/// The RSA DKIM selector of the first configs, and the one the key change moves to.
pub const OLD_RSA_SELECTOR: &str = "202611r";
pub const NEW_RSA_SELECTOR: &str = "202612r";

/// The records mailzone generates, by zone (absolute name).
pub type ByZone = BTreeMap<String, Vec<JsonRecord>>;

/// The `i`th zone: `z00000.bench.test`, …
pub fn zone_name(i: usize) -> String {
    format!("z{i:05}.bench.test")
}

/// The mailzone config: every zone under automatic management by the DNS server
/// `primary` (`dns_server`: the keys of its `[dnsServer.primary]` table, one per line),
/// with the Ed25519 key `202611e` and the RSA key `rsa_selector` from `rsa_file`.
pub fn mailzone_config(
    zones: &[String],
    dns_server: &str,
    examples: &Path,
    rsa_selector: &str,
    rsa_file: &Path,
) -> String {
    let mut text = format!(
        r#"[server]
hostname = "{MAIL_HOST}"
ipv4 = ["192.0.2.10"]
ipv6 = ["2001:db8::10"]
reportAddress = "mailto:postmaster"

[[server.mailExchangers]]
hostname = "{MAIL_HOST}"
priority = 10

[server.services]
imap = {{ cleartext = false }}
pop3 = {{ enabled = false }}
submission = {{ cleartext = true }}
jmap = {{}}
caldav = {{}}
carddav = {{}}

[server.tls]
certificate = "{certificate}"

[dnsServer.primary]
{dns_server}
"#,
        certificate = examples.join("certs/mail.example.org.pem").display(),
    );
    let ed25519 = examples.join("keys/202611e.pem");
    for zone in zones {
        let _ = write!(
            text,
            r#"
[domain."{zone}"]
dmarc = {{ policy = "reject" }}
mtaSts = {{ mode = "enforce", maxAge = 604800 }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ manual = {{ keys = [
  {{ selector = "202611e", privateKeyFile = "{ed25519}" }},
  {{ selector = "{rsa_selector}", privateKeyFile = "{rsa}" }},
] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = {PUBLISH_RECORDS} }} }}
"#,
            ed25519 = ed25519.display(),
            rsa = rsa_file.display(),
        );
    }
    text
}

/// `mailzone records --format json` of a config, by zone (absolute names).
pub fn records_by_zone(
    mailzone: &Path,
    config: &Path,
    state_dir: &Path,
    zones: &[String],
) -> Result<ByZone, String> {
    records_of(mailzone, config, state_dir, zones, false)
}

/// [`records_by_zone`] for the [`sample_zones`] only, which is all [`verify_samples`]
/// reads: the records of every zone of a 100,000-zone config are 2.6 million.
pub fn sample_records_by_zone(
    mailzone: &Path,
    config: &Path,
    state_dir: &Path,
    zones: &[String],
) -> Result<ByZone, String> {
    let samples: Vec<String> = sample_zones(zones).into_iter().cloned().collect();
    records_of(mailzone, config, state_dir, &samples, true)
}

/// The records of `zones` by zone: of the whole config, or (`by_name`) of those zones
/// only, named on the command line.
fn records_of(
    mailzone: &Path,
    config: &Path,
    state_dir: &Path,
    zones: &[String],
    by_name: bool,
) -> Result<ByZone, String> {
    let names: &[String] = if by_name { zones } else { &[] };
    let output = Command::new(mailzone)
        .args(["records", "--format", "json", "--config"])
        .arg(config)
        .arg("--state-dir")
        .arg(state_dir)
        .args(names)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", mailzone.display()))?;
    if !output.status.success() {
        return Err(format!(
            "mailzone records failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let records = JsonRecord::parse_all(&String::from_utf8_lossy(&output.stdout))?;
    let absolute: std::collections::HashSet<String> =
        zones.iter().map(|z| format!("{z}.")).collect();
    let mut by_zone: BTreeMap<String, Vec<JsonRecord>> = BTreeMap::new();
    for r in records {
        let zone = zone_of(&r.name, &absolute)
            .ok_or_else(|| format!("{} is in none of the zones", r.name))?;
        by_zone.entry(zone.to_owned()).or_default().push(r);
    }
    if by_zone.len() != zones.len() {
        return Err(format!(
            "mailzone records gave records for {} of {} zones",
            by_zone.len(),
            zones.len()
        ));
    }
    Ok(by_zone)
}

/// A few zones to check with kdig: the first, the middle one and the last.
pub fn sample_zones(zones: &[String]) -> Vec<&String> {
    let mut picks = vec![0, zones.len() / 2, zones.len() - 1];
    picks.dedup();
    picks.into_iter().map(|i| &zones[i]).collect()
}

/// The text of a TXT RDATA as kdig prints it (`"a" "b"` → `ab`).
pub fn txt_text(rdata: &str) -> String {
    let mut out = String::new();
    let mut chars = rdata.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', _) => quoted = !quoted,
            ('\\', true) => {
                let next: String = chars.clone().take(3).collect();
                if next.len() == 3 && next.chars().all(|d| d.is_ascii_digit()) {
                    out.push(char::from(next.parse::<u8>().unwrap_or(b'?')));
                    chars.nth(2);
                } else if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            (c, true) => out.push(c),
            (_, false) => {}
        }
    }
    out
}

/// Checks with kdig (not through mailzone's code) that the server at `server` serves
/// exactly `records` at each of their (name, type), and nothing at `absent` names' TXT.
pub fn verify_served(
    server: SocketAddr,
    zone: &str,
    records: &[JsonRecord],
    absent_txt: &[String],
) -> Result<(), String> {
    let mut expected: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in records {
        let value = if r.rtype == "TXT" {
            r.value.clone()
        } else {
            r.rdata.to_ascii_lowercase()
        };
        expected
            .entry((r.name.to_ascii_lowercase(), r.rtype.clone()))
            .or_default()
            .push(value);
    }
    for ((name, rtype), mut want) in expected {
        let answer =
            query_at(server, &name, &rtype).map_err(|e| format!("kdig {name} {rtype}: {e}"))?;
        let mut got: Vec<String> = answer
            .rdata
            .iter()
            .map(|d| {
                if rtype == "TXT" {
                    txt_text(d)
                } else {
                    d.to_ascii_lowercase()
                }
            })
            .collect();
        if rtype == "TXT" {
            // Other TXT values may share the name (none here): only ours must be there.
            got.retain(|g| want.contains(g));
        }
        want.sort();
        got.sort();
        if got != want {
            return Err(format!(
                "{zone}: {server} serves {name} {rtype} as {:?}, expected {want:?}",
                answer.rdata
            ));
        }
    }
    for name in absent_txt {
        let answer = query_at(server, name, "TXT").map_err(|e| format!("kdig {name} TXT: {e}"))?;
        if !answer.rdata.is_empty() {
            return Err(format!(
                "{zone}: {name} TXT should be gone but is {:?}",
                answer.rdata
            ));
        }
    }
    Ok(())
}

/// [`verify_served`] on the first, middle and last zones, and the kit's `ns1` glue there.
pub fn verify_samples(
    server: SocketAddr,
    zones: &[String],
    records: &ByZone,
    absent_selector: Option<&str>,
) -> Result<(), String> {
    for zone in sample_zones(zones) {
        let absent: Vec<String> = absent_selector
            .map(|s| vec![format!("{s}._domainkey.{zone}.")])
            .unwrap_or_default();
        verify_served(server, zone, &records[&format!("{zone}.")], &absent)?;
        // The kit's glue must survive too (octoDNS owns whole zones).
        let glue = query_at(server, &format!("ns1.{zone}"), "A").map_err(|e| e.to_string())?;
        if glue.rdata != ["127.0.0.1"] {
            return Err(format!("{zone}: ns1 A is {:?}", glue.rdata));
        }
    }
    Ok(())
}
