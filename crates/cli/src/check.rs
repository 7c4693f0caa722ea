//! `mailzone check`: compare what DNS serves with what each domain needs and explain every
//! problem (docs/checks.md). Exit status 0 when there is no error finding (warnings too
//! with `--strict`), 1 otherwise.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use mailzone_check::{CheckOptions, Finding, Severity};
use mailzone_dns::resolver::parse_nameserver;
use mailzone_engine::check::DEFAULT_CONCURRENCY;
use mailzone_engine::{CheckReport, CheckRequest};
use mailzone_records::Name;

use crate::args::Format;
use crate::plural;

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    files: crate::args::ConfigArgs,
    /// Only these domains (Unicode names are accepted); all configured domains when omitted.
    domains: Vec<String>,
    /// Ask these servers (IP or IP:PORT, port 53 by default; repeatable) instead of each
    /// zone's authoritative servers.
    #[arg(long = "nameserver", value_name = "IP[:PORT]", value_parser = parse_nameserver)]
    nameservers: Vec<SocketAddr>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit 1 on warnings too.
    #[arg(long)]
    strict: bool,
    /// Do not fetch the MTA-STS policy over HTTPS.
    #[arg(long)]
    no_fetch: bool,
    /// Check again every `--interval` until interrupted, printing the whole report once and
    /// then only the findings that appeared or went away (with `--format json`: one JSON
    /// object per line). The exit status is that of the last check.
    #[arg(long)]
    watch: bool,
    /// The time between two checks with `--watch` (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = humantime::parse_duration, requires = "watch")]
    interval: std::time::Duration,
    /// Open no connection to the mail servers: skip the live TLS checks of the MX hosts
    /// (port 25) and of the submission and IMAP endpoints.
    #[arg(long)]
    no_connect: bool,
    /// Also trust the CA certificates in this PEM file for the mail servers' TLS (a
    /// private CA), besides Mozilla's roots (repeatable).
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_files: Vec<std::path::PathBuf>,
    /// Connect to another port for a standard service (tests): `smtp=2525`,
    /// `submissions=PORT`, `submission=PORT`, `imaps=PORT` (repeatable).
    #[arg(long = "port", value_name = "SERVICE=PORT", hide = true)]
    ports: Vec<String>,
    /// Time allowed for one DNS question (e.g. 500ms, 5s).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = mailzone_records::config::parse_duration)]
    timeout: std::time::Duration,
    /// Time allowed for all the questions of one domain: those still unanswered are
    /// reported as `dns-lookup-failed` (naming the server and the question), and the other
    /// domains go on.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = mailzone_records::config::parse_duration)]
    domain_timeout: std::time::Duration,
    /// Domains checked at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(usize))]
    concurrency: usize,
    /// Where to fetch the MTA-STS policy from instead of RFC 8461's URL, `{domain}` standing
    /// for the mail domain (its host is still resolved through the servers asked). For tests
    /// with a web server on another port.
    #[arg(long, value_name = "URL", hide = true)]
    mta_sts_url: Option<String>,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut extra_roots = Vec::new();
    for path in &args.ca_files {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        extra_roots.extend(
            mailzone_check::live_tls::parse_ca_pem(&text)
                .map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?,
        );
    }
    let mut service_ports = mailzone_check::live_tls::ServicePorts::default();
    for spec in &args.ports {
        service_ports
            .set(spec)
            .map_err(|e| anyhow::anyhow!("--port {e}"))?;
    }
    let (loaded, store) = args.files.load().await?;
    let request = CheckRequest {
        domains: args.domains,
        nameservers: args.nameservers,
        state_dir: args.files.state_dir,
        options: CheckOptions {
            fetch_mta_sts: !args.no_fetch,
            live_tls: !args.no_connect,
            extra_roots,
            service_ports,
            timeout: args.timeout,
            domain_timeout: args.domain_timeout,
            mta_sts_url: args.mta_sts_url,
            ..CheckOptions::default()
        },
        concurrency: args.concurrency.max(1),
        store: store.clone(),
    };
    let strict = args.strict;
    let report = if args.watch {
        let watching = watch(&loaded, &request, args.format, args.interval, strict);
        crate::args::then_close(store, watching).await?
    } else {
        let report =
            crate::args::then_close(store, mailzone_engine::check(&loaded, &request)).await?;
        print_report(&report, args.format)?;
        report
    };
    Ok(exit_code(&report, strict))
}

/// 1 when the report has errors (or warnings, with `--strict`).
fn exit_code(report: &CheckReport, strict: bool) -> ExitCode {
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    if errors > 0 || (strict && warnings > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_report(report: &CheckReport, format: Format) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Text => out.write_all(text(report).as_bytes())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &mailzone_engine::check::report_json(report))
                .context("writing JSON")?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `--watch`: the whole report first, then every `interval` what changed, until SIGINT or
/// SIGTERM; returns the last report. A check that fails as a whole (the state database
/// gone, say) ends the watch with its error.
async fn watch(
    loaded: &mailzone_engine::LoadedConfig,
    request: &CheckRequest,
    format: Format,
    interval: std::time::Duration,
    strict: bool,
) -> anyhow::Result<CheckReport> {
    let mut last = mailzone_engine::check(loaded, request).await?;
    print_report(&last, format)?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(last),
            _ = terminate.recv() => return Ok(last),
        }
        let report = mailzone_engine::check(loaded, request).await?;
        let changes = changes(&last, &report);
        if !changes.is_empty() {
            let at = mailzone_engine::clock::rfc3339(mailzone_engine::clock::unix_now());
            let mut out = std::io::stdout().lock();
            match format {
                Format::Text => {
                    out.write_all(changes_text(&at, &changes, &report, strict).as_bytes())?
                }
                Format::Json => {
                    serde_json::to_writer(&mut out, &changes_json(&at, &changes, &report))?;
                    writeln!(out)?;
                }
            }
            out.flush()?;
        }
        last = report;
    }
}

/// A finding that appeared (`true`) or went away (`false`) between two checks, with its
/// domain. Findings are the same when domain, code, name and severity are (as the
/// service's notifications compare them), so a changed `seen` text alone is no change.
type Change<'a> = (bool, &'a Name, &'a Finding);

fn changes<'a>(before: &'a CheckReport, after: &'a CheckReport) -> Vec<Change<'a>> {
    let key = |d: &'a Name, f: &'a Finding| (d, f.code, f.name.as_str(), f.severity);
    let keys = |report: &'a CheckReport| -> Vec<_> {
        report
            .domains
            .iter()
            .flat_map(|d| d.findings.iter().map(move |f| (key(&d.domain, f), f)))
            .collect()
    };
    let (old, new) = (keys(before), keys(after));
    let missing_from = |list: &[(_, &'a Finding)], k| !list.iter().any(|(other, _)| *other == k);
    let mut out: Vec<Change<'a>> = Vec::new();
    for (k, f) in &new {
        if missing_from(&old, *k) {
            out.push((true, k.0, f));
        }
    }
    for (k, f) in &old {
        if missing_from(&new, *k) {
            out.push((false, k.0, f));
        }
    }
    out
}

fn changes_text(at: &str, changes: &[Change<'_>], report: &CheckReport, strict: bool) -> String {
    let appeared = changes.iter().filter(|c| c.0).count();
    let mut s = format!(
        "\n{at}: {} appeared, {} went away; now {}, {}{}\n",
        plural(appeared, "finding"),
        changes.len() - appeared,
        plural(report.count(Severity::Error), "error"),
        plural(report.count(Severity::Warning), "warning"),
        if strict { " (--strict)" } else { "" },
    );
    for (appeared, domain, finding) in changes {
        let sign = if *appeared { '+' } else { '-' };
        s.push_str(&format!("{sign} {}\n", domain.as_str()));
        if *appeared {
            s.push_str(&finding_text(finding));
        } else {
            s.push_str(&format!(
                "  {:<7} {} {}\n",
                severity_word(finding.severity),
                finding.code,
                finding.name
            ));
        }
    }
    s
}

/// One line of `--watch --format json`: `{"at", "appeared": [{"domain", "finding"}],
/// "resolved": [...], "summary"}`.
fn changes_json(at: &str, changes: &[Change<'_>], report: &CheckReport) -> serde_json::Value {
    let list = |appeared: bool| -> Vec<serde_json::Value> {
        changes
            .iter()
            .filter(|c| c.0 == appeared)
            .map(|(_, d, f)| serde_json::json!({ "domain": d.as_str(), "finding": f }))
            .collect()
    };
    let summary = mailzone_engine::check::report_json(report)["summary"].clone();
    serde_json::json!({
        "at": at,
        "appeared": list(true),
        "resolved": list(false),
        "summary": summary,
    })
}

/// One summary line per domain first (the domains with findings, then the ones that
/// passed, counted), then each domain's findings grouped by severity — errors, warnings,
/// information — each with what is wrong, what was seen, what was expected and the fix;
/// last the totals.
fn text(report: &CheckReport) -> String {
    let width = report
        .domains
        .iter()
        .map(|d| d.domain.as_str().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for domain in &report.domains {
        out.push_str(&format!(
            "{:<width$}  {}\n",
            domain.domain.as_str(),
            domain_summary(&domain.findings)
        ));
    }
    for domain in report.domains.iter().filter(|d| !d.findings.is_empty()) {
        out.push_str(&format!("\n{}\n", domain.domain.as_str()));
        for severity in [Severity::Error, Severity::Warning, Severity::Info] {
            let group: Vec<&Finding> = domain
                .findings
                .iter()
                .filter(|f| f.severity == severity)
                .collect();
            if group.is_empty() {
                continue;
            }
            out.push_str(&format!(" {}:\n", severity_heading(severity, group.len())));
            for finding in group {
                out.push_str(&finding_text(finding));
            }
        }
    }
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    out.push_str(&format!(
        "\n{} checked: {}, {}\n",
        plural(report.domains.len(), "domain"),
        plural(errors, "error"),
        plural(warnings, "warning")
    ));
    out
}

/// `all checks passed`, or the counts by severity.
fn domain_summary(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "all checks passed".to_string();
    }
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    format!(
        "{}, {}, {}",
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning"),
        plural(count(Severity::Info), "info")
    )
}

fn severity_heading(severity: Severity, count: usize) -> String {
    match severity {
        Severity::Error => plural(count, "error"),
        Severity::Warning => plural(count, "warning"),
        Severity::Info => plural(count, "info"),
    }
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn finding_text(f: &Finding) -> String {
    let purpose = f.purpose.map(|t| format!(" ({t})")).unwrap_or_default();
    let mut s = format!(
        "  {:<7} {} {}{purpose}\n          {}\n",
        severity_word(f.severity),
        f.code,
        f.name,
        f.message
    );
    s.push_str(&mailzone_engine::check::finding_details_text(
        &f.seen,
        &f.expected,
        &f.fix,
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailzone_engine::DomainFindings;

    fn report() -> CheckReport {
        let finding = Finding {
            code: "record-missing",
            severity: Severity::Error,
            purpose: Some(mailzone_records::RecordPurpose::Dmarc),
            name: "_dmarc.example.org.".into(),
            message: "the dmarc record is not served".into(),
            seen: Some("nothing".into()),
            expected: Some("_dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=reject\"".into()),
            fix: Some("publish _dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=reject\"".into()),
        };
        CheckReport {
            domains: vec![
                DomainFindings {
                    domain: Name::host("example.org").unwrap(),
                    findings: vec![finding],
                },
                DomainFindings {
                    domain: Name::host("example.net").unwrap(),
                    findings: vec![],
                },
            ],
        }
    }

    #[test]
    fn text_summarises_each_domain_then_groups_findings_by_severity() {
        assert_eq!(
            text(&report()),
            "example.org  1 error, 0 warnings, 0 infos\n\
             example.net  all checks passed\n\
             \nexample.org\n \
             1 error:\n  \
             error   record-missing _dmarc.example.org. (dmarc)\n          \
             the dmarc record is not served\n          \
             seen      nothing\n          \
             expected  _dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=reject\"\n          \
             fix       publish _dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=reject\"\n\
             \n2 domains checked: 1 error, 0 warnings\n"
        );
    }

    #[test]
    fn watch_reports_what_appeared_and_what_went_away() {
        let before = report();
        let mut after = report();
        after.domains[0].findings.clear();
        let mut warning = before.domains[0].findings[0].clone();
        warning.severity = Severity::Warning;
        warning.code = "dmarc-policy-none";
        after.domains[1].findings.push(warning);
        let found = changes(&before, &after);
        assert_eq!(found.len(), 2);
        let text = changes_text("2026-12-05T00:00:00Z", &found, &after, false);
        assert!(
            text.starts_with(
                "\n2026-12-05T00:00:00Z: 1 finding appeared, 1 went away; now 0 errors, 1 warning\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("+ example.net\n  warning dmarc-policy-none _dmarc.example.org."),
            "{text}"
        );
        assert!(
            text.contains("- example.org\n  error   record-missing _dmarc.example.org.\n"),
            "{text}"
        );
        let json = changes_json("t", &found, &after);
        assert_eq!(json["appeared"][0]["domain"], "example.net");
        assert_eq!(json["resolved"][0]["finding"]["code"], "record-missing");
        assert_eq!(json["summary"]["warnings"], 1);
        // The same report twice: nothing to print.
        assert!(changes(&after, &after).is_empty());
        // A changed `seen` alone is no change.
        let mut reworded = after.clone();
        reworded.domains[1].findings[0].seen = Some("something else".into());
        assert!(changes(&after, &reworded).is_empty());
    }

    #[test]
    fn json_has_the_documented_shape() {
        let v = mailzone_engine::check::report_json(&report());
        assert_eq!(v["summary"]["errors"], 1);
        assert_eq!(v["summary"]["warnings"], 0);
        let f = &v["domains"][0]["findings"][0];
        assert_eq!(v["domains"][0]["domain"], "example.org");
        assert_eq!(f["code"], "record-missing");
        assert_eq!(f["severity"], "error");
        assert_eq!(f["recordType"], "dmarc");
        assert_eq!(f["name"], "_dmarc.example.org.");
        for key in ["message", "seen", "expected", "fix"] {
            assert!(f[key].is_string(), "{key}");
        }
        assert_eq!(v["domains"][1]["findings"], serde_json::json!([]));
    }
}
