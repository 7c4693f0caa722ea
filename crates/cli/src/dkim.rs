//! `mailzone dkim`: the DKIM keys of each domain, and the active ones exported for the MTA.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use mailzone_engine::dkim::{DkimKeyInfo, ExportFormat};
use mailzone_engine::{RecordsRequest, clock, load_config};

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
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    format: ListFormat,
}

#[derive(Args)]
struct Common {
    /// The config file (mailzone.toml).
    #[arg(long, short, env = "MAILZONE_CONFIG", default_value = "mailzone.toml")]
    config: PathBuf,
    /// Only these domains; all when omitted.
    domains: Vec<String>,
    /// Where mailzone keeps its state database.
    #[arg(long, env = "MAILZONE_STATE_DIR", default_value = "mailzone-data")]
    state_dir: PathBuf,
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    format: ListFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Text,
    Json,
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
    }
}

async fn keys(common: &Common) -> anyhow::Result<Vec<DkimKeyInfo>> {
    let loaded = load_config(&common.config)?;
    let request = RecordsRequest {
        domains: common.domains.clone(),
        types: vec![],
        state_dir: common.state_dir.clone(),
        now_unix: clock::unix_now(),
        store: None,
    };
    Ok(mailzone_engine::dkim::list(&loaded, &request).await?)
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let keys = keys(&args.common).await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &keys)?;
            writeln!(out)?;
        }
        ListFormat::Text => {
            if keys.is_empty() {
                writeln!(
                    out,
                    "no DKIM keys yet (automatic keys are made by `mailzone records` or a publish)"
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
        MtaFormat::Rspamd => anyhow::bail!(
            "--format rspamd is not available in this version; use pem (one PKCS#8 file per key), opendkim or stalwart"
        ),
    };
    let keys = keys(&args.common).await?;
    let written = mailzone_engine::dkim::export(&keys, format, &args.out)?;
    for path in &written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(args: RotateArgs) -> anyhow::Result<ExitCode> {
    let loaded = load_config(&args.common.config)?;
    let request = RecordsRequest {
        domains: args.common.domains.clone(),
        types: vec![],
        state_dir: args.common.state_dir.clone(),
        now_unix: args.at.unwrap_or_else(clock::unix_now),
        store: None,
    };
    let reports = mailzone_engine::dkim::rotate(
        &loaded,
        &request,
        args.now,
        args.confirm_published,
        &mailzone_engine::Silent,
    )
    .await?;
    let mut out = std::io::stdout().lock();
    if args.format == ListFormat::Json {
        serde_json::to_writer_pretty(&mut out, &reports)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
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
    Ok(ExitCode::SUCCESS)
}
