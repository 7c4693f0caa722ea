//! `mailzone acme renew`: the certificate of `[server.acme]`, issued or renewed over DNS-01
//! (RFC 8555 §8.4) when it is due.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use mailzone_engine::acme::{Outcome, RenewRequest};
use mailzone_engine::clock;

use crate::args::Format;

#[derive(Args)]
pub struct AcmeArgs {
    #[command(subcommand)]
    command: AcmeCommand,
}

#[derive(Subcommand)]
enum AcmeCommand {
    /// Get a certificate when none is in place or the one in place is due (renewBefore of
    /// its lifetime left): challenges published, waited for, and removed afterwards.
    Renew(RenewArgs),
}

#[derive(Args)]
struct RenewArgs {
    #[command(flatten)]
    files: crate::args::ConfigArgs,
    /// Renew now, even when the certificate is not due.
    #[arg(long)]
    force: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub async fn run(args: AcmeArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AcmeCommand::Renew(args) => renew(args).await,
    }
}

async fn renew(args: RenewArgs) -> anyhow::Result<ExitCode> {
    let (loaded, store) = args.files.load().await?;
    let request = RenewRequest {
        state_dir: args.files.state_dir.clone(),
        store: store.clone(),
        force: args.force,
        now_unix: clock::unix_now(),
    };
    let renewal = mailzone_engine::acme::renew(&loaded, &request, &mailzone_engine::Silent);
    let report = crate::args::then_close(store, renewal)
        .await
        .context("no certificate written")?;
    let mut out = std::io::stdout().lock();
    if args.format == Format::Json {
        crate::args::write_json(&mut out, &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    match report.outcome {
        Outcome::NotDue => writeln!(out, "{}", report.reason)?,
        Outcome::Issued => writeln!(
            out,
            "issued for {} ({}): {}{}",
            report.names.join(", "),
            report.reason,
            report.certificate.display(),
            if report.key_reused {
                ", same key"
            } else {
                ", new key"
            }
        )?,
    }
    for leftover in &report.leftover_challenges {
        writeln!(out, "warning: challenge record not removed: {leftover}")?;
    }
    Ok(ExitCode::SUCCESS)
}
