//! `mailzone providers`: every DNS server kind, its config keys and what it can do.

use std::process::ExitCode;

use clap::Args;
use mailzone_dns::Capabilities;
use mailzone_records::config::{DNS_UPDATE_PROVIDERS, ProviderKind, close_kinds};
use serde_json::json;

use crate::args::Format;

#[derive(Args)]
pub struct ProvidersArgs {
    /// Show only this kind (e.g. cloudflare, powerdns).
    pub kind: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// One kind as listed.
struct Entry {
    kind: &'static str,
    title: &'static str,
    /// (key, secret, required, help)
    keys: Vec<(String, bool, bool, &'static str)>,
    capabilities: Capabilities,
}

fn native() -> Vec<Entry> {
    let key = |k: &str, secret, required, help| (k.to_string(), secret, required, help);
    vec![
        Entry {
            kind: "rfc2136",
            title: "RFC 2136 dynamic updates with TSIG (Knot, BIND, PowerDNS, NSD behind a primary…)",
            keys: vec![
                key("host", false, true, "the primary's host name or address"),
                key("port", false, false, "53 by default"),
                key("protocol", false, false, "tcp (default) or udp"),
                key("keyName", false, false, "the TSIG key's name"),
                key("key", true, false, "the TSIG secret, base64"),
                key(
                    "algorithm",
                    false,
                    false,
                    "hmac-sha256 (default), hmac-sha384, hmac-sha512",
                ),
            ],
            capabilities: mailzone_dns::rfc2136::CAPABILITIES,
        },
        Entry {
            kind: "powerdns",
            title: "PowerDNS Authoritative, through its HTTP API",
            keys: vec![
                key(
                    "url",
                    false,
                    true,
                    "the API's base URL, e.g. http://127.0.0.1:8081",
                ),
                key("serverId", false, false, "localhost by default"),
                key("key", true, true, "the API key (api-key in pdns.conf)"),
            ],
            capabilities: mailzone_dns::powerdns::CAPABILITIES,
        },
        Entry {
            kind: "zonefile",
            title: "Zone files on disk (BIND, NSD, Knot), with a reload command",
            keys: vec![
                key(
                    "path",
                    false,
                    true,
                    "the file written; {zone} and {stateDir} stand for the zone and the state directory",
                ),
                key(
                    "layout",
                    false,
                    false,
                    "zone (the whole zone file, default) or include (a file the zone $INCLUDEs)",
                ),
                key(
                    "zoneFile",
                    false,
                    false,
                    "with layout = include: the zone file that includes it (its serial is bumped)",
                ),
                key(
                    "reloadCommand",
                    false,
                    false,
                    "argv run after each write, e.g. [\"knotc\", \"zone-reload\", \"{zone}\"]",
                ),
            ],
            capabilities: mailzone_dns::zone_file::capabilities(true),
        },
    ]
}

fn dns_update(kind: &'static ProviderKind) -> Entry {
    Entry {
        kind: kind.kind,
        title: kind.title,
        keys: kind
            .settings
            .iter()
            .map(|s| (s.key.to_string(), s.secret, s.required, s.help))
            .collect(),
        capabilities: mailzone_dns::dns_update::capabilities(kind.min_ttl),
    }
}

pub fn run(args: ProvidersArgs) -> anyhow::Result<ExitCode> {
    let mut entries = native();
    entries.extend(DNS_UPDATE_PROVIDERS.iter().map(dns_update));
    if let Some(wanted) = &args.kind {
        let wanted = wanted.trim().to_ascii_lowercase();
        entries.retain(|e| e.kind == wanted);
        if entries.is_empty() {
            let close = close_kinds(&wanted);
            let hint = if close.is_empty() {
                String::new()
            } else {
                format!("; did you mean {}?", close.join(", "))
            };
            anyhow::bail!(
                "no DNS server kind {wanted}{hint} (`mailzone providers` lists them all)"
            );
        }
    }
    match args.format {
        Format::Json => {
            let list: Vec<_> = entries.iter().map(entry_json).collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Format::Text => print!("{}", text(&entries, args.kind.is_some())),
    }
    Ok(ExitCode::SUCCESS)
}

fn entry_json(e: &Entry) -> serde_json::Value {
    json!({
        "kind": e.kind,
        "title": e.title,
        "settings": e.keys.iter().map(|(key, secret, required, help)| json!({
            "key": key, "secret": secret, "required": required, "help": help,
        })).collect::<Vec<_>>(),
        "capabilities": e.capabilities.json(),
    })
}

/// The list as text: one block per kind, keys with `(secret)` and `(required)`; with one
/// kind asked for, each key's help too.
fn text(entries: &[Entry], detailed: bool) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&format!("{:<18} {}\n", e.kind, e.title));
        for (key, secret, required, help) in &e.keys {
            let mut notes = Vec::new();
            if *required {
                notes.push("required");
            }
            if *secret {
                notes.push("secret: also {key}File, {key}Env");
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; ").replace("{key}", key))
            };
            if detailed {
                out.push_str(&format!("  {key}{notes}: {help}\n"));
            } else {
                out.push_str(&format!("  {key}{notes}\n"));
            }
        }
        out.push_str(&format!("  {}\n", e.capabilities.summary()));
    }
    out
}
