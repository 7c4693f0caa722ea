//! `mailzone serve`: the HTTP API, the task workers and the public endpoints.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use mailzone_dns::resolver::parse_nameserver;
use mailzone_server::ServeOptions;

#[derive(Args)]
pub struct ServeArgs {
    /// The config file (mailzone.toml).
    #[arg(long, short, env = "MAILZONE_CONFIG", default_value = "mailzone.toml")]
    config: PathBuf,
    /// Where the API listens (and the public endpoints, without --public-listen).
    #[arg(long, env = "MAILZONE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A separate listener for the public endpoints (MTA-STS policy, autoconfig,
    /// autodiscover, PACC) only.
    #[arg(long, env = "MAILZONE_PUBLIC_LISTEN")]
    public_listen: Option<SocketAddr>,
    #[command(flatten)]
    store: crate::args::StoreArgs,
    /// Tasks this instance runs at once.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// How often every automatically managed domain is reconciled (drift repair).
    #[arg(long, default_value = "1h", value_parser = mailzone_records::config::parse_duration)]
    reconcile_interval: Duration,
    /// How often the certificate files of [server.tls] are read for a changed key (a
    /// renewal): a change schedules TlsaSync tasks.
    #[arg(long, default_value = "1m", value_parser = mailzone_records::config::parse_duration)]
    certificate_check_interval: Duration,
    /// How often every domain is checked (changed findings are notified through
    /// [notify]); overrides serve.checkInterval (default 6h).
    #[arg(long, value_parser = mailzone_records::config::parse_duration)]
    check_interval: Option<Duration>,
    /// The servers the scheduled check asks (IP or IP:PORT, port 53 by default;
    /// repeatable) instead of each zone's authoritative servers; overrides
    /// serve.checkNameservers.
    #[arg(long = "check-nameserver", value_name = "IP[:PORT]", value_parser = parse_nameserver)]
    check_nameservers: Vec<std::net::SocketAddr>,
    /// Attempts before a transient failure becomes Failed.
    #[arg(long, default_value_t = 8)]
    max_attempts: u32,
    /// The first retry's delay; it doubles with each attempt.
    #[arg(long, default_value = "30s", value_parser = mailzone_records::config::parse_duration)]
    retry_backoff: Duration,
    /// The longest retry delay.
    #[arg(long, default_value = "1h", value_parser = mailzone_records::config::parse_duration)]
    max_retry_backoff: Duration,
    /// How long a running task's lease lasts without renewal (a task whose instance died
    /// is taken over after it).
    #[arg(long, default_value = "60s", value_parser = mailzone_records::config::parse_duration)]
    lease: Duration,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (state_dir, database) = args.store.location()?;
    let mut options = ServeOptions::new(args.config, state_dir);
    options.database = database;
    options.listen = args.listen;
    options.public_listen = args.public_listen;
    options.workers = args.workers;
    options.reconcile_interval = args.reconcile_interval;
    options.certificate_check_interval = args
        .certificate_check_interval
        .max(Duration::from_millis(100));
    options.policy.max_attempts = args.max_attempts.max(1);
    options.policy.first_backoff = args.retry_backoff;
    options.policy.max_backoff = args.max_retry_backoff;
    options.policy.lease = args.lease.max(Duration::from_secs(3));
    options.check.interval = args
        .check_interval
        .map(|interval| interval.max(Duration::from_secs(1)));
    options.check.nameservers = args.check_nameservers;
    mailzone_server::serve(options).await?;
    Ok(ExitCode::SUCCESS)
}
