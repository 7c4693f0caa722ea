//! The `mailzone` command: thin commands over the engine; it parses arguments and prints.

mod acme;
mod admin;
mod args;
mod check;
mod dkim;
mod docs;
mod init;
mod providers;
mod reconcile;
mod records;
mod serve;
mod tlsa;
mod token;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand, ValueEnum};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc asks for them on its
/// arenas, and the kernel then zeroes a whole 2 MiB page on its first touch, again after
/// each purge returns part of it: a 10,000-zone no-op spent a quarter of its CPU zeroing
/// pages (`clear_page_erms`). Without them: 555 -> 466 ms of CPU, 90 -> 71 MiB at peak. The
/// prctl holds whatever the system's THP mode ("always" included); mimalloc's own option
/// (`MIMALLOC_ALLOW_THP=0`) is read before `main` and cannot be set from here.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours; a
    // kernel without it answers EINVAL, which leaves things as they were.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// `--version`: the package version and the git commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MAILZONE_GIT_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "mailzone",
    version = VERSION,
    about = "Every DNS record a mail domain needs: generated, published, checked."
)]
pub(crate) struct Cli {
    /// More log output on stderr (-v info, -vv debug). MAILZONE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr: no progress, no summaries, no log lines below error.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// How log lines are written on stderr: text (colour only on a terminal, never with
    /// NO_COLOR set) or json (one object a line, for journald, Loki, ...).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "MAILZONE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Set once from `--quiet`, before any command runs.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether `--quiet` was given: commands leave out everything on stderr but errors.
pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Whether colour may be written on stderr: a terminal, and no NO_COLOR (no-color.org).
pub(crate) fn stderr_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `n` and `word`, with an `s` unless `n` is one ("1 error", "2 warnings").
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
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
    /// The HTTP API's bearer tokens: create, list, revoke (works on the state directly,
    /// also to recover access).
    Token(token::TokenArgs),
    /// The web UI's admin account: `set-password` (on the state directly, also to recover
    /// access).
    Admin(admin::AdminArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(docs::CompletionsArgs),
    /// Write a man page per command (mailzone.1, mailzone-records.1, ...) into a directory,
    /// or print the main page.
    Man(docs::ManArgs),
    /// List every DNS server kind (RFC 2136, PowerDNS, zone files, the HTTP providers of
    /// dns-update) with its config keys and what it can do.
    Providers(providers::ProvidersArgs),
    /// Write a commented starter config from a few questions (or flags), prefilled from
    /// Postfix or Stalwart; refuses to overwrite an existing file.
    Init(init::InitArgs),
}

fn main() -> ExitCode {
    no_huge_pages();
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
    QUIET.store(cli.quiet, Ordering::Relaxed);
    init_logging(cli.verbose, cli.quiet, cli.log_format);
    let runtime = match runtime_for(&cli.command) {
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
            Command::Token(args) => token::run(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Completions(args) => docs::completions(args),
            Command::Man(args) => docs::man(args),
            Command::Init(args) => init::run(args).await,
            Command::Providers(args) => providers::run(args),
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

/// The async runtime a command runs on. `serve` answers requests while its workers run
/// tasks, so it gets a worker thread per core: one slow handler must not hold back
/// `/healthz` or another client. `plan` and `apply` reconcile zones on two cores (the
/// engine drives half of a batch's zones on each). The other commands do one thing at a
/// time and keep a single thread.
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match command {
        Command::Serve(_) => tokio::runtime::Builder::new_multi_thread(),
        Command::Plan(_) | Command::Apply(_) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().build()
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

fn init_logging(verbose: u8, quiet: bool, format: LogFormat) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILZONE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // The default timer writes RFC 3339 UTC times (`2026-12-05T03:50:07.123456Z`).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(stderr_colour()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .init(),
    }
}
