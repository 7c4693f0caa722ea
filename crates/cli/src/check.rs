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
    /// Time allowed for one DNS question (500ms, 5s, …).
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
    let (loaded, store) = args.files.load().await?;
    let request = CheckRequest {
        domains: args.domains,
        nameservers: args.nameservers,
        state_dir: args.files.state_dir,
        options: CheckOptions {
            fetch_mta_sts: !args.no_fetch,
            timeout: args.timeout,
            domain_timeout: args.domain_timeout,
            mta_sts_url: args.mta_sts_url,
            ..CheckOptions::default()
        },
        concurrency: args.concurrency.max(1),
        store: store.clone(),
    };
    let report = crate::args::then_close(store, mailzone_engine::check(&loaded, &request)).await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Text => out.write_all(text(&report).as_bytes())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &mailzone_engine::check::report_json(&report))
                .context("writing JSON")?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    Ok(if errors > 0 || (args.strict && warnings > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Findings grouped per domain, errors first (the order `check_domain` gives), each with
/// what is wrong, what was seen, what was expected and the fix.
fn text(report: &CheckReport) -> String {
    let mut out = String::new();
    for (i, domain) in report.domains.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let count = |s| domain.findings.iter().filter(|f| f.severity == s).count();
        let (errors, warnings, infos) = (
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Info),
        );
        if domain.findings.is_empty() {
            out.push_str(&format!("{}: all checks passed\n", domain.domain.as_str()));
            continue;
        }
        out.push_str(&format!(
            "{}: {}, {}, {}\n",
            domain.domain.as_str(),
            plural(errors, "error"),
            plural(warnings, "warning"),
            plural(infos, "info")
        ));
        for finding in &domain.findings {
            out.push_str(&finding_text(finding));
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

fn finding_text(f: &Finding) -> String {
    let severity = match f.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    };
    let purpose = f.purpose.map(|t| format!(" ({t})")).unwrap_or_default();
    let mut s = format!(
        "  {severity:<7} {} {}{purpose}\n          {}\n",
        f.code, f.name, f.message
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
    use mailzone_records::Name;

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
    fn text_groups_per_domain_with_seen_expected_and_fix() {
        assert_eq!(
            text(&report()),
            "example.org: 1 error, 0 warnings, 0 infos\n  \
             error   record-missing _dmarc.example.org. (dmarc)\n          \
             the dmarc record is not served\n          \
             seen      nothing\n          \
             expected  _dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=reject\"\n          \
             fix       publish _dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=reject\"\n\
             \nexample.net: all checks passed\n\
             \n2 domains checked: 1 error, 0 warnings\n"
        );
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
