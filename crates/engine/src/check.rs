//! The `check` use case: for each selected domain, the records the planner wants and the
//! keys mailzone holds, compared with what DNS serves by every check of `mailzone-check`.
//! Domains are checked concurrently with a bound; inside a domain the
//! checks (and their questions) run concurrently too.

use std::net::SocketAddr;
use std::path::PathBuf;

use futures::StreamExt as _;
use mailzone_check::lookup::{CachedLookup, DeadlineLookup};
use mailzone_check::{CheckOptions, DnsLookup, DomainContext, Finding, Lookup, Severity};
use mailzone_records::{DkimManagement, Name};
use mailzone_store::Store;

use crate::records::{RecordsRequest, dkim_private_keys, records};
use crate::{EngineError, LoadedConfig, clock};

/// Domains checked at once by default.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// What to check: which domains (all when empty), which servers to ask (the zones'
/// authoritative servers, found through /etc/resolv.conf, when empty), where the state
/// database lives (automatic DKIM keys), the check options and how many domains at once.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub domains: Vec<String>,
    pub nameservers: Vec<SocketAddr>,
    pub state_dir: PathBuf,
    pub options: CheckOptions,
    pub concurrency: usize,
    /// An open store to use instead of the SQLite database in `state_dir`.
    pub store: Option<Store>,
}

/// The findings of one domain, errors first (see [`mailzone_check::run::check_domain`]).
#[derive(Debug, Clone)]
pub struct DomainFindings {
    pub domain: Name,
    pub findings: Vec<Finding>,
}

/// The findings of every checked domain, in config order.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub domains: Vec<DomainFindings>,
}

impl CheckReport {
    /// How many findings have `severity`, over every domain.
    pub fn count(&self, severity: Severity) -> usize {
        self.domains
            .iter()
            .flat_map(|d| &d.findings)
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Checks the selected domains with a [`DnsLookup`] built from the request.
pub async fn check(
    loaded: &LoadedConfig,
    request: &CheckRequest,
) -> Result<CheckReport, EngineError> {
    let lookup = if request.nameservers.is_empty() {
        DnsLookup::from_system(request.options.timeout)
            .map_err(|e| EngineError::Usage(e.to_string()))?
    } else {
        DnsLookup::with_servers(request.nameservers.clone(), request.options.timeout)
    };
    check_with(loaded, request, &lookup).await
}

/// Checks the selected domains, asking `lookup`.
pub async fn check_with(
    loaded: &LoadedConfig,
    request: &CheckRequest,
    lookup: &dyn Lookup,
) -> Result<CheckReport, EngineError> {
    let planned = records(
        loaded,
        &RecordsRequest {
            domains: request.domains.clone(),
            types: Vec::new(),
            state_dir: request.state_dir.clone(),
            now_unix: clock::unix_now(),
            store: request.store.clone(),
        },
    )
    .await?;
    let needs_store = planned
        .iter()
        .any(|d| matches!(d.domain.dkim_management, DkimManagement::Automatic { .. }));
    let opened = if needs_store {
        Some(crate::records::RequestStore::open(request.store.as_ref(), &request.state_dir).await?)
    } else {
        None
    };
    let store = opened.as_ref().map(|o| o.store.clone());
    let mut keys = Vec::with_capacity(planned.len());
    for domain in &planned {
        keys.push(dkim_private_keys(loaded, &domain.domain, store.as_ref()).await?);
    }
    if let Some(opened) = opened {
        opened.close().await;
    }
    let server = &loaded.config.server;
    // A fresh live TLS probe cache per run, like the answer cache below: a run never reuses
    // what an earlier run (a `--watch` round, the last scheduled check) saw.
    let options = &CheckOptions {
        live_tls_cache: Default::default(),
        ..request.options.clone()
    };
    // One answer cache for the run: the questions the domains share (their mail host, the
    // SPF includes of a provider) are sent once.
    let cached = CachedLookup::new(lookup);
    let cached = &cached;
    // Boxed `Send` futures: see the same construction in `reconcile`.
    let runs: Vec<futures::future::BoxFuture<'_, (usize, DomainFindings)>> = planned
        .iter()
        .zip(keys.iter())
        .enumerate()
        .map(|(index, (domain, keys))| {
            Box::pin(async move {
                let findings =
                    check_one(server, domain, keys, loaded.tlsa.as_ref(), cached, options).await;
                (
                    index,
                    DomainFindings {
                        domain: domain.domain.name.clone(),
                        findings,
                    },
                )
            }) as futures::future::BoxFuture<'_, _>
        })
        .collect();
    // Unordered: a domain waiting for a slow server holds one slot only, never the ones
    // behind it; the report is put back in config order afterwards.
    let mut done: Vec<(usize, DomainFindings)> = futures::stream::iter(runs)
        .buffer_unordered(request.concurrency.max(1))
        .collect()
        .await;
    done.sort_by_key(|(index, _)| *index);
    let (asked, sent) = cached.counts();
    tracing::debug!(asked, sent, "questions asked by the checks, and sent");
    let domains = done.into_iter().map(|(_, d)| d).collect();
    Ok(CheckReport { domains })
}

/// The findings of one domain, its questions bounded by [`CheckOptions::domain_timeout`]
/// (each unanswered one is a `dns-lookup-failed` finding). The whole domain is bounded too,
/// by that limit plus the policy fetch's: checks that connect (HTTPS) have their own
/// timeouts, so this only fires on a bug, reported with the questions still unanswered.
async fn check_one(
    server: &mailzone_records::Server,
    domain: &mailzone_records::zones::DomainRecords,
    keys: &[(String, mailzone_records::dkim::DkimPrivateKey)],
    tlsa: Option<&mailzone_records::tlsa::TlsaKeys>,
    lookup: &dyn Lookup,
    options: &CheckOptions,
) -> Vec<Finding> {
    let bounded = DeadlineLookup::new(lookup, options.domain_timeout);
    let ctx = DomainContext {
        server,
        domain: &domain.domain,
        desired: &domain.records,
        dkim_keys: keys,
        tlsa,
        lookup: &bounded,
        options,
    };
    let limit = options.domain_timeout + options.fetch_timeout;
    match tokio::time::timeout(limit, mailzone_check::run::check_domain(&ctx)).await {
        Ok(findings) => findings,
        Err(_) => {
            let name = &domain.domain.name;
            let unanswered = bounded.unanswered();
            vec![mailzone_check::support::lookup_failed(
                name,
                format!(
                    "the checks of {name} did not finish within {}, so it could not be checked",
                    mailzone_check::lookup::seconds(limit)
                ),
                if unanswered.is_empty() {
                    "no question was left unanswered: a connection did not finish".into()
                } else {
                    format!("still unanswered: {}", unanswered.join("; "))
                },
                "make sure the zone's name servers answer (or pass working servers with --nameserver)",
            )]
        }
    }
}

/// The indented `seen`, `expected` and `fix` lines of a finding in a text report, those
/// it has: the same in `mailzone check` and in notifications.
pub fn finding_details_text(
    seen: &Option<String>,
    expected: &Option<String>,
    fix: &Option<String>,
) -> String {
    let mut s = String::new();
    for (label, value) in [("seen", seen), ("expected", expected), ("fix", fix)] {
        if let Some(value) = value {
            s.push_str(&format!("          {label:<9} {value}\n"));
        }
    }
    s
}

/// The report as JSON (`check --format json` and the API): `{"domains": [{"domain",
/// "findings"}], "summary": {"errors", "warnings", "infos"}}`.
pub fn report_json(report: &CheckReport) -> serde_json::Value {
    serde_json::json!({
        "domains": report.domains.iter().map(|d| serde_json::json!({
            "domain": d.domain.as_str(),
            "findings": d.findings,
        })).collect::<Vec<_>>(),
        "summary": {
            "errors": report.count(mailzone_check::Severity::Error),
            "warnings": report.count(mailzone_check::Severity::Warning),
            "infos": report.count(mailzone_check::Severity::Info),
        },
    })
}
