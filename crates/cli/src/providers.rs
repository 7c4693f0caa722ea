//! `mailzone providers`: every DNS server kind, its config keys and what it can do.

use std::process::ExitCode;

use clap::Args;
use mailzone_dns::Capabilities;
use mailzone_records::config::{ProviderKind, close_kinds, provider_kinds};
use serde_json::json;

use crate::args::Format;

#[derive(Args)]
pub struct ProvidersArgs {
    /// Show only this kind (e.g. cloudflare, powerdns).
    pub kind: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// One kind as listed: its keys, and what its provider can do.
struct Entry {
    kind: &'static ProviderKind,
    capabilities: Capabilities,
}

fn entry(kind: &'static ProviderKind) -> Entry {
    let capabilities = match kind.kind {
        "rfc2136" => mailzone_dns::rfc2136::CAPABILITIES,
        "powerdns" => mailzone_dns::powerdns::CAPABILITIES,
        "zonefile" => mailzone_dns::zone_file::capabilities(true),
        _ => mailzone_dns::dns_update::capabilities(kind.min_ttl),
    };
    Entry { kind, capabilities }
}

pub fn run(args: ProvidersArgs) -> anyhow::Result<ExitCode> {
    let mut entries: Vec<Entry> = provider_kinds().map(entry).collect();
    if let Some(wanted) = &args.kind {
        let wanted = wanted.trim().to_ascii_lowercase();
        entries.retain(|e| e.kind.kind == wanted);
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
        "kind": e.kind.kind,
        "title": e.kind.title,
        "settings": e.kind.settings.iter().map(|s| json!({
            "key": s.key, "secret": s.secret, "required": s.required, "help": s.help,
        })).collect::<Vec<_>>(),
        "capabilities": e.capabilities.json(),
    })
}

/// The list as text: one block per kind, keys with `(secret)` and `(required)`; with one
/// kind asked for, each key's help too.
fn text(entries: &[Entry], detailed: bool) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&format!("{:<18} {}\n", e.kind.kind, e.kind.title));
        for setting in e.kind.settings {
            let (key, help) = (setting.key, setting.help);
            let mut notes = Vec::new();
            if setting.required {
                notes.push("required");
            }
            if setting.secret {
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
