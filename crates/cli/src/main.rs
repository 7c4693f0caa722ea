//! The `mailzone` command: thin commands over the engine (DESIGN.md §7).

mod acme;
mod check;
mod dkim;
mod init;
mod reconcile;
mod records;
mod serve;
mod tlsa;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mailzone",
    version,
    about = "Every DNS record a mail domain needs: generated, published, checked."
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug). MAILZONE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the records each mail domain needs, as a zone file or JSON.
    Records(records::RecordsArgs),
    /// Show what `apply` would change in each zone under automatic DNS management.
    Plan(reconcile::PlanArgs),
    /// Publish: bring each zone under automatic DNS management in line, then wait for
    /// propagation.
    Apply(reconcile::ApplyArgs),
    /// Compare what DNS serves with the records each domain needs, and explain every
    /// problem (exit 1 on an error finding).
    Check(check::CheckArgs),
    /// Run the service: HTTP API, DnsManagement tasks with retries, drift repair, and the
    /// MTA-STS / autoconfig / autodiscover endpoints.
    Serve(serve::ServeArgs),
    /// DKIM keys: list them with their stage, export the active ones for the MTA.
    Dkim(dkim::DkimArgs),
    /// TLSA (DANE) records over a certificate's life: `tlsa status` shows the certificate's,
    /// the next key's, the stored and the served digests side by side.
    Tlsa(tlsa::TlsaArgs),
    /// Certificates from an ACME CA over DNS-01 (`[server.acme]`): `renew` when due.
    Acme(acme::AcmeArgs),
    /// Write a commented starter config from a few questions (or flags), prefilled from
    /// Postfix or Stalwart; refuses to overwrite an existing file.
    Init(init::InitArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `check` exits 1 on every failure, usage errors included (its 0/1 status is what
        // scripts and monitoring test); the other commands keep clap's 2.
        Err(e) if e.use_stderr() && first_word().as_deref() == Some("check") => {
            let _ = e.print();
            return ExitCode::FAILURE;
        }
        Err(e) => e.exit(),
    };
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Records(args) => records::run(args).await,
            Command::Plan(args) => reconcile::plan(args).await,
            Command::Apply(args) => reconcile::apply(args).await,
            Command::Check(args) => check::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Dkim(args) => dkim::run(args).await,
            Command::Tlsa(args) => tlsa::run(args).await,
            Command::Acme(args) => acme::run(args).await,
            Command::Init(args) => init::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line a person can act on; the chain is joined, never a backtrace.
            eprintln!("error: {}", format_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The first argument that is not an option: the subcommand.
fn first_word() -> Option<String> {
    std::env::args().skip(1).find(|a| !a.starts_with('-'))
}

fn format_chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILZONE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
