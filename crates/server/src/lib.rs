//! `mailzone serve`: the HTTP API over the engine (`/api/v1`, bearer tokens), the
//! task workers that run `DnsManagement` tasks with leases and retries, the drift schedule,
//! and the public endpoints a mail domain needs (MTA-STS policy, autoconfig, autodiscover,
//! PACC).
//!
//! Layout: [`api`] (routes, JSON shapes, errors), [`auth`] (bearer tokens), [`public`] (the
//! well-known documents), [`runner`] (workers, schedule, shutdown), [`openapi`] (the
//! description served at `/api/v1/openapi.json`), [`state`] (what the handlers share),
//! [`ui`] (the web UI under `/ui/`).

pub mod alerts;
pub mod api;
pub mod auth;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod public;
pub mod runner;
pub mod state;
pub mod systemd;
pub mod tls;
pub mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use mailzone_engine::tasks::TaskPolicy;
use mailzone_engine::{load_config, load_config_from};
use mailzone_store::Store;
use tokio::sync::watch;

pub use state::AppState;

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config_path: PathBuf,
    /// The API (and, without `public_listen`, the public endpoints too).
    pub listen: SocketAddr,
    /// A separate listener for the public endpoints only.
    pub public_listen: Option<SocketAddr>,
    pub state_dir: PathBuf,
    /// `postgres://…`: a PostgreSQL database shared by several instances, instead of the
    /// SQLite database in `state_dir` (which then holds only the sealing key).
    pub database: Option<String>,
    /// Tasks run at once by this instance.
    pub workers: usize,
    /// How often every automatically managed domain is reconciled (drift repair).
    pub reconcile_interval: Duration,
    /// How often the certificate files are read for a changed key (TlsaSync).
    pub certificate_check_interval: Duration,
    /// How often an idle worker looks for due tasks.
    pub poll_interval: Duration,
    pub policy: TaskPolicy,
    /// The scheduled check's command-line settings (over `serve.checkInterval` and
    /// `serve.checkNameservers`).
    pub check: alerts::CheckFlags,
}

impl ServeOptions {
    pub fn new(config_path: PathBuf, state_dir: PathBuf) -> ServeOptions {
        ServeOptions {
            config_path,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_listen: None,
            state_dir,
            database: None,
            workers: 2,
            reconcile_interval: Duration::from_secs(3600),
            certificate_check_interval: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            policy: TaskPolicy::default(),
            check: alerts::CheckFlags::default(),
        }
    }
}

/// The start-up run of every automatically managed domain (and its DKIM rotation), then
/// the ended tasks older than the retention deleted.
async fn schedule_at_start(state: AppState) {
    let loaded = state.loaded();
    let started = std::time::Instant::now();
    match mailzone_engine::tasks::schedule_all(&state.store, &loaded).await {
        Ok(scheduled) => tracing::info!(
            tasks = scheduled,
            millis = started.elapsed().as_millis() as u64,
            "DnsManagement tasks scheduled at start"
        ),
        Err(e) => tracing::error!("cannot schedule the start-up tasks: {e}"),
    }
    drop(loaded);
    runner::prune_tasks(&state).await;
}

/// Runs the service until SIGTERM or Ctrl-C: then the listeners stop accepting, running
/// tasks are given back at their next await point (every step of a run is idempotent) and
/// the function returns.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    // The file alone first: its mistakes are reported before any database is touched.
    load_config(&options.config_path)?;
    let store = match &options.database {
        Some(url) => Store::open_postgres(url, &options.state_dir).await?,
        None => Store::open_sqlite(&options.state_dir).await?,
    };
    let loaded = load_config_from(&options.config_path, &store).await?;
    // The notification secrets and addresses now: a mistake stops the start, not the
    // first alert hours later.
    notify::channels(&loaded.path, &loaded.config.notify).map_err(anyhow::Error::msg)?;
    let state = AppState::new(
        store.clone(),
        loaded,
        options.config_path.clone(),
        options.state_dir.clone(),
    )
    .with_check_nameservers(options.check.nameservers.clone());
    let (stop_tx, stop_rx) = watch::channel(false);

    let acceptor = match &state.loaded().config.serve.tls {
        Some(tls) => Some(tls::acceptor(tls)?),
        None => None,
    };
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let api_listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let api_addr = api_listener.local_addr()?;
    let mut servers = Vec::new();
    let app = match options.public_listen {
        Some(public_addr) => {
            let listener = tokio::net::TcpListener::bind(public_addr)
                .await
                .with_context(|| format!("cannot listen on {public_addr}"))?;
            println!(
                "mailzone: public endpoints on {scheme}://{}",
                listener.local_addr()?
            );
            servers.push(tokio::spawn(serve_router(
                listener,
                acceptor.clone(),
                public::router(state.clone()),
                stop_rx.clone(),
            )));
            api::router(state.clone()).merge(ui::router(state.clone()))
        }
        None => api::router(state.clone())
            .merge(ui::router(state.clone()))
            .merge(public::router(state.clone())),
    };
    // Only now that every listener is bound: a start that fails on a busy port must not
    // burn the one-time token.
    auth::ensure_admin_token(&store).await?;
    println!(
        "mailzone: API on {scheme}://{api_addr}/api/v1 (health: {scheme}://{api_addr}/healthz)"
    );
    servers.push(tokio::spawn(serve_router(
        api_listener,
        acceptor,
        app,
        stop_rx.clone(),
    )));

    let mut background = runner::start(&state, &options, stop_rx.clone());
    // Scheduled once the API answers: with thousands of domains the start-up tasks take
    // seconds to write, and the workers take them as they come.
    background.push(tokio::spawn(schedule_at_start(state.clone())));
    // Only now, config loaded and every listener bound, is the service ready.
    systemd::ready(&format!("API on {scheme}://{api_addr}"));
    background.extend(systemd::spawn_watchdog(stop_rx.clone()));
    runner::wait_for_signals(&state, stop_tx).await;
    systemd::stopping();
    tracing::info!("shutting down: giving running tasks back");
    for handle in servers {
        let _ = handle.await;
    }
    for handle in background.drain(..) {
        let _ = handle.await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn serve_router(
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let shutdown = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let served = match acceptor {
        Some(acceptor) => {
            let listener = tls::TlsListener {
                tcp: listener,
                acceptor,
            };
            let service = router.into_make_service_with_connect_info::<ui::limiter::ClientAddr>();
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            let service = router.into_make_service_with_connect_info::<ui::limiter::ClientAddr>();
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    if let Err(e) = served {
        tracing::error!("HTTP server: {e}");
    }
}
