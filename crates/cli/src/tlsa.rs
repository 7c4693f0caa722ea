//! `mailzone tlsa status`: the certificate's, the next key's, the stored and the served
//! TLSA digests side by side.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use mailzone_engine::clock;
use mailzone_engine::tlsa::TlsaStatus;

use crate::args::Format;

#[derive(Args)]
pub struct TlsaArgs {
    #[command(subcommand)]
    command: TlsaCommand,
}

#[derive(Subcommand)]
enum TlsaCommand {
    /// One row per digest: its usage, role (current, next, retiring), whether the
    /// certificate file or nextKey has it, when it is withdrawn, and which servers serve it.
    /// Exit 1 when a digest that should be published is not served everywhere.
    Status(StatusArgs),
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    files: crate::args::ConfigArgs,
    /// Only these domains' TLSA names; all when omitted.
    domains: Vec<String>,
    /// Seconds to wait for each DNS answer.
    #[arg(long, default_value = "3s", value_parser = mailzone_records::config::parse_duration)]
    timeout: Duration,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub async fn run(args: TlsaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TlsaCommand::Status(args) => status(args).await,
    }
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let (loaded, store) = args.files.load().await?;
    let request = args
        .files
        .records_request(args.domains.clone(), clock::unix_now(), &store);
    let status = mailzone_engine::tlsa::status(&loaded, &request, args.timeout);
    let status = crate::args::then_close(store, status).await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            crate::args::write_json(&mut out, &status)?;
        }
        Format::Text => write_text(&mut out, &status)?,
    }
    let missing = status.digests.iter().any(|d| {
        d.planned && !status.servers.is_empty() && d.served_by.len() < status.servers.len()
    });
    Ok(if missing || !status.errors.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn write_text(out: &mut impl std::io::Write, status: &TlsaStatus) -> std::io::Result<()> {
    writeln!(out, "host {} ({})", status.host, status.certificate_subject)?;
    if !status.managed {
        writeln!(
            out,
            "rollover state: not kept (no selected domain publishes TLSA through mailzone)"
        )?;
    }
    writeln!(
        out,
        "{:<5} {:<64} {:<9} {:<4} {:<4} {:<20} served",
        "usage", "digest (SHA-256 of the SPKI)", "role", "cert", "next", "withdrawn at"
    )?;
    let yes = |b: bool| if b { "yes" } else { "-" };
    for d in &status.digests {
        let served = if status.servers.is_empty() {
            "(no server to ask)".to_string()
        } else {
            format!("{}/{}", d.served_by.len(), status.servers.len())
        };
        writeln!(
            out,
            "{:<5} {:<64} {:<9} {:<4} {:<4} {:<20} {}{}",
            format!("{} 1 1", d.usage),
            d.digest,
            d.role,
            yes(d.in_certificate),
            yes(d.next_key),
            d.retire_at
                .map(clock::rfc3339)
                .unwrap_or_else(|| "-".into()),
            served,
            if d.planned { "" } else { " (not planned)" }
        )?;
    }
    if !status.names.is_empty() {
        writeln!(out, "names: {}", status.names.join(", "))?;
    }
    for e in &status.errors {
        writeln!(out, "error: {e}")?;
    }
    Ok(())
}
