//! Runs every check of a domain and orders the findings: errors first, then warnings, then
//! information, each by name.

use std::future::Future;
use std::pin::Pin;

use crate::context::DomainContext;
use crate::finding::Finding;

/// All findings for one domain.
pub async fn check_domain(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let checks: [Pin<Box<dyn Future<Output = Vec<Finding>> + Send + '_>>; 14] = [
        Box::pin(crate::records::check(ctx)),
        Box::pin(crate::mx::check(ctx)),
        Box::pin(crate::spf::check(ctx)),
        Box::pin(crate::dkim::check(ctx)),
        Box::pin(crate::dmarc::check(ctx)),
        Box::pin(crate::mtasts::check(ctx)),
        Box::pin(crate::srv::check(ctx)),
        Box::pin(crate::autoconfig::check(ctx)),
        Box::pin(crate::tlsa::check(ctx)),
        Box::pin(crate::dnssec::check(ctx)),
        Box::pin(crate::caa::check(ctx)),
        Box::pin(crate::zone::check(ctx)),
        Box::pin(crate::ptr::check(ctx)),
        Box::pin(crate::live_tls::check(ctx)),
    ];
    let mut findings: Vec<Finding> = futures::future::join_all(checks)
        .await
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
