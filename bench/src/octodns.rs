//! octoDNS, the peer of the reconcile benchmarks: its venv (octoDNS with its RFC 2136 and
//! PowerDNS providers, made on first use), and the same records as octoDNS zone files: `mailzone records --format json` output turned
//! into one YAML file per zone for octoDNS's `YamlProvider` (so that both tools publish
//! identical data in the reconcile benchmark).
//!
//! octoDNS owns a whole zone: records it is not told about are deleted. So the zone files
//! also carry the records the test server's zone file starts with (the apex NS and the
//! `ns1` glue); the SOA is the server's and octoDNS leaves it alone.
//!
//! The YAML is written by hand: flow-style scalars quoted as JSON strings (which YAML
//! reads as double-quoted scalars), keys sorted. TXT values escape `\` and `;` as octoDNS
//! requires (`escaped_semicolons: true` in the provider config).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mail_zones::ByZone;
use crate::measure::{run_quiet, which};

/// One record as `mailzone records --format json` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonRecord {
    /// Absolute owner name with the trailing dot.
    pub name: String,
    pub rtype: String,
    pub ttl: u32,
    /// TXT: the whole text (joined); others: as `rdata`.
    pub value: String,
    /// Presentation form of the RDATA.
    pub rdata: String,
}

impl JsonRecord {
    /// Reads the records of `mailzone records --format json` (a JSON array).
    pub fn parse_all(json: &str) -> Result<Vec<JsonRecord>, String> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("records JSON: {e}"))?;
        let array = value
            .as_array()
            .ok_or("records JSON: not an array of records")?;
        array
            .iter()
            .map(|r| {
                let field = |key: &str| {
                    r.get(key)
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| format!("records JSON: a record without `{key}`: {r}"))
                };
                Ok(JsonRecord {
                    name: field("name")?,
                    rtype: field("type")?,
                    ttl: r
                        .get("ttl")
                        .and_then(serde_json::Value::as_u64)
                        .ok_or_else(|| format!("records JSON: a record without `ttl`: {r}"))?
                        as u32,
                    value: field("value")?,
                    rdata: field("rdata")?,
                })
            })
            .collect()
    }

    /// A record given as zone-file presentation parts (for the kit's NS and glue).
    pub fn new(name: &str, rtype: &str, ttl: u32, rdata: &str) -> JsonRecord {
        JsonRecord {
            name: name.to_owned(),
            rtype: rtype.to_owned(),
            ttl,
            value: rdata.to_owned(),
            rdata: rdata.to_owned(),
        }
    }
}

/// The zone a record belongs to among `zones` (absolute, with the trailing dot): the
/// longest one that is a suffix of its name, found by dropping the name's labels one at a
/// time (a set lookup each, not a scan of every zone: the benchmarks hold 100,000 zones).
pub fn zone_of<'z>(name: &str, zones: &'z HashSet<String>) -> Option<&'z str> {
    let name = name.to_ascii_lowercase();
    let mut rest = name.as_str();
    loop {
        if let Some(zone) = zones.get(rest) {
            return Some(zone.as_str());
        }
        rest = rest.split_once('.')?.1;
        if rest.is_empty() {
            return None;
        }
    }
}

/// Writes `dir/octodns.yaml`: every zone synced from the YAML zone files in `zone_dir` to
/// one target provider named `target`, whose settings are `provider` (YAML lines of its
/// table, `class:` included, without indentation).
pub fn write_octodns_yaml(
    dir: &Path,
    zone_dir: &Path,
    target: &str,
    provider: &str,
    zones: &[String],
) -> Result<PathBuf, String> {
    let mut config = format!(
        "---\nproviders:\n  config:\n    class: octodns.provider.yaml.YamlProvider\n    \
         default_ttl: 300\n    directory: {}\n    enforce_order: false\n    \
         escaped_semicolons: true\n  {target}:\n",
        serde_json::to_string(&zone_dir.to_string_lossy()).expect("a string"),
    );
    for line in provider.lines() {
        let _ = writeln!(config, "    {line}");
    }
    config.push_str("zones:\n");
    for zone in zones {
        let _ = writeln!(
            config,
            "  {zone}.:\n    sources:\n    - config\n    targets:\n    - {target}"
        );
    }
    let path = dir.join("octodns.yaml");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    Ok(path)
}

/// The octoDNS YAML zone file of `zone` (absolute, with the trailing dot) holding `records`.
pub fn zone_yaml(zone: &str, records: &[JsonRecord]) -> Result<String, String> {
    // name (relative) → type → (ttl, values)
    let mut by_name: BTreeMap<String, BTreeMap<String, (u32, Vec<String>)>> = BTreeMap::new();
    for r in records {
        let name = r.name.to_ascii_lowercase();
        let relative = if name == zone {
            String::new()
        } else {
            name.strip_suffix(&format!(".{zone}"))
                .ok_or_else(|| format!("{} is not in the zone {zone}", r.name))?
                .to_owned()
        };
        let value = yaml_value(r)?;
        let entry = by_name
            .entry(relative)
            .or_default()
            .entry(r.rtype.clone())
            .or_insert((r.ttl, Vec::new()));
        if entry.0 != r.ttl {
            return Err(format!(
                "{} {}: records of one RRset with different TTLs",
                r.name, r.rtype
            ));
        }
        if !entry.1.contains(&value) {
            entry.1.push(value);
        }
    }
    let mut out = String::from("---\n");
    for (name, types) in &by_name {
        let _ = writeln!(out, "{}:", quote(name));
        for (rtype, (ttl, values)) in types {
            let _ = writeln!(out, "- ttl: {ttl}");
            let _ = writeln!(out, "  type: {rtype}");
            let mut sorted = values.clone();
            sorted.sort();
            match (rtype.as_str(), sorted.as_slice()) {
                // Single-value types take `value`, not `values`.
                ("CNAME", [only]) => {
                    let _ = writeln!(out, "  value: {only}");
                }
                ("CNAME", _) => return Err(format!("{name}: more than one CNAME")),
                _ => {
                    let _ = writeln!(out, "  values:");
                    for v in sorted {
                        let _ = writeln!(out, "  - {v}");
                    }
                }
            }
        }
    }
    Ok(out)
}

/// One value of a record in octoDNS's YAML form (a scalar or a flow mapping).
fn yaml_value(r: &JsonRecord) -> Result<String, String> {
    let fields: Vec<&str> = r.rdata.split_whitespace().collect();
    let bad = || {
        format!(
            "{} {}: cannot read the RDATA `{}`",
            r.name, r.rtype, r.rdata
        )
    };
    Ok(match r.rtype.as_str() {
        "A" | "AAAA" | "CNAME" | "NS" | "PTR" => quote(&r.rdata),
        "TXT" | "SPF" => quote(&r.value.replace('\\', "\\\\").replace(';', "\\;")),
        "MX" => {
            let [preference, exchange] = fields[..] else {
                return Err(bad());
            };
            format!(
                "{{exchange: {}, preference: {preference}}}",
                quote(exchange)
            )
        }
        "SRV" => {
            let [priority, weight, port, target] = fields[..] else {
                return Err(bad());
            };
            format!(
                "{{port: {port}, priority: {priority}, target: {}, weight: {weight}}}",
                quote(target)
            )
        }
        "CAA" => {
            let mut parts = r.rdata.splitn(3, ' ');
            let (Some(flags), Some(tag), Some(value)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
                .replace("\\\"", "\"")
                .replace("\\\\", "\\");
            format!(
                "{{flags: {flags}, tag: {}, value: {}}}",
                quote(tag),
                quote(&value)
            )
        }
        "TLSA" => {
            let [usage, selector, matching, data] = fields[..] else {
                return Err(bad());
            };
            format!(
                "{{certificate_association_data: {}, certificate_usage: {usage}, matching_type: {matching}, selector: {selector}}}",
                quote(&data.to_ascii_lowercase())
            )
        }
        other => return Err(format!("{}: type {other} is not converted", r.name)),
    })
}

/// A YAML double-quoted scalar (JSON string syntax is a subset of it).
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// The versions measured, and the nearest ones taken when those cannot be installed.
const PINS: [&str; 3] = [
    "octodns==1.22.0",
    "octodns-bind==1.1.0",
    "octodns-powerdns==1.2.0",
];
const NEAREST: [&str; 3] = [
    "octodns>=1.22,<2",
    "octodns-bind>=1.1,<2",
    "octodns-powerdns>=1.2,<2",
];

/// `bench/.venv-octodns` with octoDNS, octodns-bind and octodns-powerdns, made when
/// missing; returns the venv and the versions installed (`octodns 1.22.0, …`).
pub fn octodns_venv() -> Result<(PathBuf, String), String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-octodns");
    let sync = venv.join("bin/octodns-sync");
    // A venv copied from elsewhere (another checkout path, another Python) has scripts
    // pointing at an interpreter that is not there: make it anew then.
    if sync.is_file()
        && let Ok(versions) = octodns_versions(&venv)
    {
        return Ok((venv, versions));
    }
    eprintln!("octoDNS: creating {} (pip install)", venv.display());
    let python3 = which("python3").ok_or("python3 is needed for octoDNS")?;
    run_quiet(
        Command::new(python3)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    let pip = venv.join("bin/pip");
    let pinned = run_quiet(Command::new(&pip).args(["install", "--quiet"]).args(PINS));
    if let Err(e) = pinned {
        eprintln!("octoDNS: the pinned versions did not install ({e}); taking the nearest");
        run_quiet(
            Command::new(&pip)
                .args(["install", "--quiet"])
                .args(NEAREST),
        )?;
    }
    let versions = octodns_versions(&venv)?;
    Ok((venv, versions))
}

/// `octodns 1.22.0, octodns-bind 1.1.0, octodns-powerdns 1.2.0, dnspython 2.9.2, …`, from
/// the venv (an error when one of them is missing).
pub fn octodns_versions(venv: &Path) -> Result<String, String> {
    let python = venv.join("bin/python");
    let output = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m, platform; \
             print(', '.join(f'{p} {m.version(p)}' for p in ('octodns', 'octodns-bind', 'octodns-powerdns', 'dnspython', 'requests')) + ', Python ' + platform.python_version())",
        ])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !output.status.success() {
        return Err(format!(
            "the octoDNS venv is broken: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// One octoDNS YAML zone file per zone in `zone_dir`: mailzone's records plus the kit's
/// apex NS and `ns1` glue (octoDNS owns whole zones and would delete them otherwise).
pub fn write_zone_files(zone_dir: &Path, zones: &[String], records: &ByZone) -> Result<(), String> {
    for zone in zones {
        let absolute = format!("{zone}.");
        let mut all = records[&absolute].clone();
        // What the kit's zone file holds besides the SOA: octoDNS would delete it otherwise.
        all.push(JsonRecord::new(
            &absolute,
            "NS",
            3600,
            &format!("ns1.{absolute}"),
        ));
        all.push(JsonRecord::new(
            &format!("ns1.{absolute}"),
            "A",
            3600,
            "127.0.0.1",
        ));
        let yaml = zone_yaml(&absolute, &all)?;
        std::fs::write(zone_dir.join(format!("{absolute}yaml")), yaml)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_each_type_and_groups_rrsets() {
        let zone = "z.test.";
        let records = vec![
            JsonRecord::new("z.test.", "MX", 300, "10 mail.example."),
            JsonRecord {
                name: "z.test.".into(),
                rtype: "TXT".into(),
                ttl: 300,
                value: "v=spf1 mx -all".into(),
                rdata: "\"v=spf1 mx -all\"".into(),
            },
            JsonRecord {
                name: "s._domainkey.Z.test.".into(),
                rtype: "TXT".into(),
                ttl: 300,
                value: "v=DKIM1; k=rsa; p=AB\\C".into(),
                rdata: String::new(),
            },
            JsonRecord::new("z.test.", "CAA", 300, "0 issue \"letsencrypt.org\""),
            JsonRecord::new("z.test.", "CAA", 300, "0 iodef \"mailto:a@z.test\""),
            JsonRecord::new("_imap._tcp.z.test.", "SRV", 300, "0 0 0 ."),
            JsonRecord::new("autoconfig.z.test.", "CNAME", 300, "mail.example."),
            JsonRecord::new("_25._tcp.mail.z.test.", "TLSA", 300, "3 1 1 ABCDEF"),
            JsonRecord::new("ns1.z.test.", "A", 3600, "127.0.0.1"),
        ];
        let yaml = zone_yaml(zone, &records).unwrap();
        assert_eq!(
            yaml,
            r#"---
"":
- ttl: 300
  type: CAA
  values:
  - {flags: 0, tag: "iodef", value: "mailto:a@z.test"}
  - {flags: 0, tag: "issue", value: "letsencrypt.org"}
- ttl: 300
  type: MX
  values:
  - {exchange: "mail.example.", preference: 10}
- ttl: 300
  type: TXT
  values:
  - "v=spf1 mx -all"
"_25._tcp.mail":
- ttl: 300
  type: TLSA
  values:
  - {certificate_association_data: "abcdef", certificate_usage: 3, matching_type: 1, selector: 1}
"_imap._tcp":
- ttl: 300
  type: SRV
  values:
  - {port: 0, priority: 0, target: ".", weight: 0}
"autoconfig":
- ttl: 300
  type: CNAME
  value: "mail.example."
"ns1":
- ttl: 3600
  type: A
  values:
  - "127.0.0.1"
"s._domainkey":
- ttl: 300
  type: TXT
  values:
  - "v=DKIM1\\; k=rsa\\; p=AB\\\\C"
"#
        );
        assert!(zone_yaml("other.test.", &records).is_err());
    }

    #[test]
    fn the_octodns_yaml_syncs_every_zone_to_the_one_target() {
        let dir = tempfile::tempdir().unwrap();
        let zones = vec!["a.test".to_string(), "b.test".to_string()];
        let path = write_octodns_yaml(
            dir.path(),
            Path::new("/z"),
            "knot",
            "class: octodns_bind.Rfc2136Provider\nport: 53",
            &zones,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            "---\nproviders:\n  config:\n    class: octodns.provider.yaml.YamlProvider\n    \
             default_ttl: 300\n    directory: \"/z\"\n    enforce_order: false\n    \
             escaped_semicolons: true\n  knot:\n    class: octodns_bind.Rfc2136Provider\n    \
             port: 53\nzones:\n  a.test.:\n    sources:\n    - config\n    targets:\n    - knot\n  \
             b.test.:\n    sources:\n    - config\n    targets:\n    - knot\n"
        );
    }

    #[test]
    fn finds_the_zone_of_a_name() {
        let zones: HashSet<String> = ["a.test.".to_string(), "b.a.test.".to_string()].into();
        assert_eq!(zone_of("x.b.a.test.", &zones), Some("b.a.test."));
        assert_eq!(zone_of("A.test.", &zones), Some("a.test."));
        assert_eq!(zone_of("xa.test.", &zones), None);
    }

    #[test]
    fn reads_the_records_json() {
        let json = r#"[{"domain":"z.test","name":"z.test.","type":"MX","ttl":300,"value":"10 m.","recordType":"mx","rdata":"10 m."}]"#;
        let records = JsonRecord::parse_all(json).unwrap();
        assert_eq!(
            records,
            vec![JsonRecord::new("z.test.", "MX", 300, "10 m.")]
        );
        assert!(JsonRecord::parse_all("{}").is_err());
    }
}
