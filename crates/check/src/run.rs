//! Runs every check of a domain and orders the findings: errors first, then warnings, then
//! information, each by name.

use crate::context::DomainContext;
use crate::finding::Finding;

/// All findings for one domain.
pub async fn check_domain(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let (records, mx, spf, dkim, dmarc, mtasts, srv) = tokio::join!(
        crate::records::check(ctx),
        crate::mx::check(ctx),
        crate::spf::check(ctx),
        crate::dkim::check(ctx),
        crate::dmarc::check(ctx),
        crate::mtasts::check(ctx),
        crate::srv::check(ctx),
    );
    let (autoconfig, tlsa, dnssec, caa, zone, ptr, live_tls) = tokio::join!(
        crate::autoconfig::check(ctx),
        crate::tlsa::check(ctx),
        crate::dnssec::check(ctx),
        crate::caa::check(ctx),
        crate::zone::check(ctx),
        crate::ptr::check(ctx),
        crate::live_tls::check(ctx),
    );
    let mut findings: Vec<Finding> = [
        records, mx, spf, dkim, dmarc, mtasts, srv, autoconfig, tlsa, dnssec, caa, zone, ptr,
        live_tls,
    ]
    .into_iter()
    .flatten()
    .collect();
    findings.sort_by(|a, b| (a.severity, &a.name, a.code).cmp(&(b.severity, &b.name, b.code)));
    // Several checks ask the same question: a failed one is reported once.
    let mut unique: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings {
        if !unique.contains(&f) {
            unique.push(f);
        }
    }
    unique
}
