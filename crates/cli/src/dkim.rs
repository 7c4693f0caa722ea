//! `mailzone dkim`: the DKIM keys of each domain, and the active ones exported for the MTA.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use mailzone_engine::clock;
use mailzone_engine::dkim::{DkimKeyInfo, ExportFormat};

use crate::args::Format;
use mailzone_records::DkimAlgorithm;

#[derive(Args)]
pub struct DkimArgs {
    #[command(subcommand)]
    command: DkimCommand,
}

#[derive(Subcommand)]
enum DkimCommand {
    /// The keys of each domain: selector, algorithm, stage, where the key lives, its record.
    List(ListArgs),
    /// Write the active keys (the ones to sign with) in the MTA's format; files are 0600.
    Export(ExportArgs),
    /// Make a new key now, as Pending: it signs nothing until its record is published and
    /// served, when `dkim rotate` (or `apply`, or the service) activates it.
    Generate(GenerateArgs),
    /// Move keys through their stages: a new key when the active one is older than
    /// rotateAfter (or --now), published and confirmed served before it becomes active;
    /// replaced keys retire, then are withdrawn and deleted.
    Rotate(RotateArgs),
}

#[derive(Args)]
struct RotateArgs {
    #[command(flatten)]
    common: Common,
    /// Replace the active keys now, whatever their age.
    #[arg(long)]
    now: bool,
    /// For domains under manual DNS management: the pending keys' records are published.
    #[arg(long)]
    confirm_published: bool,
    /// Run as if at this Unix time (tests and dry runs of the schedule).
    #[arg(long, hide = true)]
    at: Option<i64>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    common: Common,
    /// Only this algorithm (one of the domain's configured algorithms); all of them when
    /// omitted.
    #[arg(long, value_enum)]
    algorithm: Option<Algorithm>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Algorithm {
    #[value(name = "ed25519-sha256")]
    Ed25519Sha256,
    #[value(name = "rsa-sha256")]
    RsaSha256,
}

#[derive(Args)]
struct Common {
    #[command(flatten)]
    files: crate::args::ConfigArgs,
    /// Only these domains; all when omitted.
    domains: Vec<String>,
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    common: Common,
    /// The MTA's format.
    #[arg(long, value_enum)]
    format: MtaFormat,
    /// The directory to write into (created 0700).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MtaFormat {
    Pem,
    Rspamd,
    Opendkim,
    Stalwart,
}

pub async fn run(args: DkimArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DkimCommand::List(args) => list(args).await,
        DkimCommand::Export(args) => export(args).await,
        DkimCommand::Rotate(args) => rotate(args).await,
        DkimCommand::Generate(args) => generate(args).await,
    }
}

async fn keys(common: &Common) -> anyhow::Result<Vec<DkimKeyInfo>> {
    let (loaded, store) = common.files.load().await?;
    let request = common
        .files
        .records_request(common.domains.clone(), clock::unix_now(), &store);
    let keys = mailzone_engine::dkim::list(&loaded, &request);
    Ok(crate::args::then_close(store, keys).await?)
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let keys = keys(&args.common).await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            crate::args::write_json(&mut out, &keys)?;
        }
        Format::Text => {
            if keys.is_empty() {
                writeln!(
                    out,
                    "no DKIM keys yet (automatic keys are made by `mailzone records` or a publish)"
                )?;
            } else {
                writeln!(
                    out,
                    "{:<30} {:<16} {:<15} {:<9} {:<8} RECORD",
                    "DOMAIN", "SELECTOR", "ALGORITHM", "STAGE", "SOURCE"
                )?;
            }
            for k in &keys {
                writeln!(
                    out,
                    "{:<30} {:<16} {:<15} {:<9} {:<8} {}",
                    k.domain,
                    k.selector,
                    k.algorithm.as_str(),
                    k.stage,
                    k.source,
                    k.record
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        MtaFormat::Pem => ExportFormat::Pem,
        MtaFormat::Opendkim => ExportFormat::Opendkim,
        MtaFormat::Stalwart => ExportFormat::Stalwart,
        MtaFormat::Rspamd => ExportFormat::Rspamd,
    };
    let keys = keys(&args.common).await?;
    let written = mailzone_engine::dkim::export(&keys, format, &args.out)?;
    for path in &written {
        println!("{}", path.display());
    }
    if !crate::quiet() {
        let active = keys
            .iter()
            .filter(|k| k.stage == mailzone_records::DkimStage::Active.as_str())
            .count();
        eprintln!(
            "mailzone: {} file(s) written to {} ({active} active key(s); 0600)",
            written.len(),
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(args: RotateArgs) -> anyhow::Result<ExitCode> {
    let (loaded, store) = args.common.files.load().await?;
    let now_unix = args.at.unwrap_or_else(clock::unix_now);
    let request = args
        .common
        .files
        .records_request(args.common.domains.clone(), now_unix, &store);
    let rotation = mailzone_engine::dkim::rotate(
        &loaded,
        &request,
        args.now,
        args.confirm_published,
        &mailzone_engine::Silent,
    );
    let reports = crate::args::then_close(store, rotation).await?;
    let mut out = std::io::stdout().lock();
    if args.format == Format::Json {
        crate::args::write_json(&mut out, &reports)?;
        drop(out);
        return on_key_change_failures(&reports);
    }
    for r in &reports {
        let mut said = false;
        for (what, selectors) in [
            ("generated (pending)", &r.generated),
            ("activated", &r.activated),
            ("retiring", &r.retiring),
            ("withdrawn from DNS", &r.retired),
            ("deleted", &r.deleted),
        ] {
            if !selectors.is_empty() {
                writeln!(out, "{}: {what}: {}", r.domain, selectors.join(", "))?;
                said = true;
            }
        }
        if let Some(waiting) = &r.waiting {
            writeln!(out, "{}: waiting: {waiting}", r.domain)?;
        } else if !said {
            writeln!(out, "{}: nothing due", r.domain)?;
        }
    }
    drop(out);
    on_key_change_failures(&reports)
}

async fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let (loaded, store) = args.common.files.load().await?;
    let request =
        args.common
            .files
            .records_request(args.common.domains.clone(), clock::unix_now(), &store);
    let algorithm = args.algorithm.map(|a| match a {
        Algorithm::Ed25519Sha256 => DkimAlgorithm::Ed25519Sha256,
        Algorithm::RsaSha256 => DkimAlgorithm::RsaSha256,
    });
    let generation = mailzone_engine::dkim::generate(&loaded, &request, algorithm);
    let keys = crate::args::then_close(store, generation).await?;
    let mut out = std::io::stdout().lock();
    if args.format == Format::Json {
        crate::args::write_json(&mut out, &keys)?;
        return Ok(ExitCode::SUCCESS);
    }
    for k in &keys {
        let what = if k.created {
            "generated"
        } else {
            "already pending"
        };
        let next = if k.dns_automatic {
            format!(
                "`mailzone dkim rotate {}` (or `apply`) publishes it and activates it once served",
                k.domain
            )
        } else {
            format!(
                "publish the record, then run `mailzone dkim rotate {} --confirm-published`",
                k.domain
            )
        };
        writeln!(
            out,
            "{}: {} ({}) {what}, Pending: {next}",
            k.domain,
            k.selector,
            k.algorithm.as_str()
        )?;
        writeln!(
            out,
            "  {} TXT {} (`mailzone records {} --types dkim` prints the zone-file lines)",
            k.owner, k.record, k.domain
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit 1 with the first `onKeyChange` failure (after the report was printed: the key
/// changes themselves happened).
fn on_key_change_failures(
    reports: &[mailzone_engine::dkim::RotationReport],
) -> anyhow::Result<ExitCode> {
    match reports.iter().find_map(|r| r.on_key_change_failed.as_ref()) {
        Some(failure) => anyhow::bail!("{failure}"),
        None => Ok(ExitCode::SUCCESS),
    }
}
