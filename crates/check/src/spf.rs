//! SPF checks (RFC 7208): the record a domain publishes, evaluated the way a receiver
//! evaluates it, for every IP address of the server.
//!
//! The rules, each with the section it comes from:
//! - RFC 7208 §4.5: exactly one `v=spf1` TXT record at a name; none → `none`, several →
//!   `permerror` (`spf-missing`, `spf-multiple`).
//! - RFC 7208 §4.6, §12 (ABNF): the record's syntax — mechanisms and their qualifiers,
//!   modifiers (`redirect=` and `exp=` at most once, §6), CIDR lengths (`ip4` 0–32, `ip6`
//!   0–128, no leading zeros), domain-specs ending in a top label or a macro, macros (§7.1)
//!   parsed and checked; an unknown mechanism is a `permerror` (`spf-syntax`).
//! - RFC 7208 §4 `check_host()`: a full evaluation for each server IP with the sender
//!   `postmaster@<domain>` (§4.3: the local part `postmaster` when none is known) must give
//!   `pass` (`spf-not-pass`). Mechanisms: `include` (§5.2: a `none` from the included
//!   domain is a `permerror`), `redirect` (§6.1: ignored when the record has `all`; a target
//!   without a record is a `permerror`), `a` (§5.3), `mx` (§5.4), `ptr` (§5.5), `ip4`/`ip6`
//!   with CIDR (§5.6), `exists` (§5.7, always an `A` query), `all` (§5.1). Addresses are
//!   fetched as `A` for an IPv4 client and `AAAA` for an IPv6 one (§5); an IPv4-mapped IPv6
//!   address is evaluated as IPv4. NXDOMAIN counts as an empty answer (§5); any
//!   other DNS failure is a `temperror` (§4.4, §5).
//! - RFC 7208 §4.6.4: at most 10 DNS-querying terms (`include`, `a`, `mx`, `ptr`, `exists`,
//!   `redirect`) per evaluation (`spf-too-many-lookups`); at most 2 void lookups, i.e. term
//!   queries answered NXDOMAIN or with no records (`spf-too-many-void-lookups`); an `mx`
//!   term whose name has more than 10 exchangers is a `permerror` (`spf-mx-too-many`); of
//!   the names a `ptr` term finds, only the first 10 are looked at.
//! - RFC 7208 §5.5: `ptr` SHOULD NOT be used (`spf-ptr`, a warning).
//! - RFC 7208 §5.1, §4.7: `+all` passes every host on the Internet (`spf-pass-all`,
//!   an error: forged mail passes SPF, and DMARC through SPF alignment); `?all` and a record ending without `all` or `redirect=` give `neutral` to
//!   everyone else, which is no protection (`spf-neutral-all`, `spf-no-all`, information).
//! - RFC 7208 §5.2, §6.1: a record reached through `include:`/`redirect=` that ends in
//!   `+all` opens the domain's policy too (`spf-pass-all`, named after that record).
//! - RFC 7208 §3.4: the answer carrying the record should fit in 512 octets
//!   (`spf-record-too-long`); §6.1: `redirect=` beside `all` is never used
//!   (`spf-redirect-ignored`); §5.1: mechanisms after `all` are never evaluated
//!   (`spf-terms-after-all`).
//! - RFC 7208 §2.3: receivers check the HELO name too, and bounces (empty MAIL FROM) are
//!   judged by it alone, so each exchanger host inside the zone needs its own record
//!   (mailzone plans `v=spf1 a -all`) that passes for every server IP (`spf-host-missing`,
//!   `spf-host-not-pass`).
//!
//! Counting lookups: a single evaluation stops at the first matching mechanism, so the
//! number of lookups depends on the client. The limit checks therefore use a *walk*
//! ([`walk`]): an evaluation in which no mechanism matches, which visits every term a real
//! evaluation can reach (not those after `all`, nor a `redirect=` beside `all`) — the most
//! lookups any client can cause. That is also what checkdmarc counts.
//!
//! Choices where RFC 7208 leaves room: the `p` macro expands to `unknown` (§7.3 allows it
//! when the name cannot be validated; it is discouraged and costs PTR queries); `h` (the
//! HELO name) expands to the sender's domain; a macro expansion that is not a valid DNS
//! name is treated as a void lookup; the address lookups of the exchangers found by an `mx`
//! term are not counted as void lookups (only the term's own query is).
//!
//! Why hand-written: `mail-auth` (the SPF implementation in Rust, 0.13.3 used by dkim.rs,
//! and 0.15.1 the latest, which needs rustc 1.98 anyway) evaluates SPF, but its
//! `SpfOutput` exposes only the result, domain, explanation and report address — neither
//! the number of DNS lookups nor the void lookups (it has no void-lookup limit at all) nor
//! a per-term trace — and it resolves through its own hickory resolver (or a cache filled
//! in advance), not through a [`Lookup`], so it could neither ask the zone's authoritative
//! servers nor run against the test double.

use std::net::{IpAddr, Ipv4Addr};

use mailzone_records::{Name, RecordPurpose};

use crate::context::DomainContext;
use crate::finding::Finding;

mod eval;
mod parse;
#[cfg(test)]
mod tests;

pub use eval::{ProblemKind, SpfOutcome, SpfProblem, SpfResult, TraceStep, evaluate, walk};
pub use parse::{
    Directive, DomainSpec, MacroPart, Mechanism, Qualifier, SpfRecord, is_spf_record, parse_record,
};

/// RFC 7208 §4.6.4: at most 10 DNS-querying terms per evaluation.
pub const MAX_LOOKUPS: u32 = 10;
/// RFC 7208 §4.6.4: at most 2 void lookups per evaluation.
pub const MAX_VOID_LOOKUPS: u32 = 2;
/// RFC 7208 §4.6.4: an `mx` term may look at most 10 exchangers, a `ptr` term 10 names.
pub const MAX_NAMES_PER_TERM: usize = 10;
/// A walk stops here whatever happens (include loops, absurd records).
const WALK_HARD_CAP: u32 = 100;

crate::codes::declare! {
    purpose: Some(RecordPurpose::Spf);
    MISSING: Error, "spf-missing",
        "the domain has no `v=spf1` record: receivers get `none` for every sender";
    MULTIPLE: Error, "spf-multiple",
        "more than one `v=spf1` record at one name: `permerror` (RFC 7208 §4.5)";
    SYNTAX: Error, "spf-syntax",
        "an SPF record does not follow the grammar of RFC 7208 §12: `permerror`";
    NOT_PASS: Error, "spf-not-pass",
        "the domain's SPF policy does not give `pass` for one of the server's IP addresses";
    TOO_MANY_LOOKUPS: Error, "spf-too-many-lookups",
        "evaluating the policy needs more than 10 DNS-querying terms: `permerror`";
    TOO_MANY_VOID_LOOKUPS: Error, "spf-too-many-void-lookups",
        "evaluating the policy meets more than 2 empty or NXDOMAIN answers: `permerror`";
    INCLUDE_INVALID: Error, "spf-include-invalid",
        "an `include:` or `redirect=` target has no SPF record: `permerror`";
    MX_TOO_MANY: Error, "spf-mx-too-many",
        "an `mx` term names a domain with more than 10 exchangers: `permerror`";
    TEMPERROR: Error, "spf-temperror",
        "a DNS question of the SPF evaluation failed: receivers get `temperror`";
    PTR: Warning, "spf-ptr",
        "the policy uses the `ptr` mechanism, which RFC 7208 §5.5 says not to use";
    PASS_ALL: Error, "spf-pass-all",
        "the record ends in `+all`: every host on the Internet passes";
    NEUTRAL_ALL: Info, "spf-neutral-all",
        "the record ends in `?all`: other hosts get `neutral`, no protection";
    NO_ALL: Info, "spf-no-all",
        "the record has neither `all` nor `redirect=`: other hosts get `neutral`";
    HOST_MISSING: Warning, "spf-host-missing",
        "an exchanger host inside the zone has no SPF record for its HELO name";
    HOST_NOT_PASS: Error, "spf-host-not-pass",
        "an exchanger host's own SPF record does not pass the server's IP addresses";
    RECORD_TOO_LONG: Warning, "spf-record-too-long",
        "the answer carrying the SPF record does not fit in 512 octets (RFC 7208 §3.4)";
    REDIRECT_IGNORED: Warning, "spf-redirect-ignored",
        "the record has both `all` and `redirect=`: the redirect is never used (RFC 7208 §6.1)";
    TERMS_AFTER_ALL: Info, "spf-terms-after-all",
        "mechanisms after `all` are never evaluated (RFC 7208 §5.1)";
}

// ---------------------------------------------------------------------------------------
// The checks of a domain
// ---------------------------------------------------------------------------------------

/// The sender the evaluations use for a domain (§4.3: `postmaster` when there is no local
/// part, as for a bounce checked against the HELO name).
fn postmaster(name: &Name) -> String {
    format!("postmaster@{}", name.as_str())
}

/// The SPF records the planner wants at `name`, as zone-file lines.
fn desired_lines(ctx: &DomainContext<'_>, name: &Name) -> Vec<String> {
    ctx.desired
        .iter()
        .filter(|d| d.purpose == RecordPurpose::Spf && &d.record.name == name)
        .map(|d| crate::support::line(&d.record))
        .collect()
}

/// The SPF value wanted at `name`: the planner's, or mailzone's standard one.
fn desired_value(ctx: &DomainContext<'_>, name: &Name, host: bool) -> String {
    ctx.desired
        .iter()
        .find(|d| d.purpose == RecordPurpose::Spf && &d.record.name == name)
        .map(|d| d.record.data.value())
        .unwrap_or_else(|| {
            if host {
                mailzone_records::spf::host_value(&ctx.domain.spf)
            } else {
                mailzone_records::spf::domain_value(&ctx.domain.spf)
            }
        })
}

fn publish_fix(ctx: &DomainContext<'_>, name: &Name, host: bool) -> String {
    let lines = desired_lines(ctx, name);
    if lines.is_empty() {
        format!("publish {name} TXT \"{}\"", desired_value(ctx, name, host))
    } else {
        format!("publish {}", lines.join("; "))
    }
}

/// Why an evaluation did not pass, in parentheses after a space; empty without a problem.
fn reason(outcome: &SpfOutcome) -> String {
    outcome
        .problems
        .first()
        .map(|p| format!(" ({})", p.detail))
        .unwrap_or_default()
}

/// `finding` with the SPF record wanted at `name` as the expected value and its
/// publication as the fix.
fn with_desired(finding: Finding, ctx: &DomainContext<'_>, name: &Name, host: bool) -> Finding {
    finding
        .expected(desired_value(ctx, name, host))
        .fix(publish_fix(ctx, name, host))
}

/// The `v=spf1` TXT values at `name`, or the finding for a failed question.
async fn spf_values(ctx: &DomainContext<'_>, name: &Name) -> Result<Vec<String>, Finding> {
    let answer = crate::support::query(ctx, name, "TXT").await?;
    Ok(parse::spf_texts(&answer.records))
}

/// Every SPF finding for the domain (see the module documentation for the rules).
pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let domain = &ctx.domain.name;
    let values = match spf_values(ctx, domain).await {
        Ok(values) => values,
        Err(finding) => return vec![finding],
    };
    match values.as_slice() {
        [] => {
            findings.push(with_desired(
                    Finding::new(
                        MISSING,
                        domain.to_string(),
                        format!(
                            "{domain} publishes no `v=spf1` TXT record, so receivers get `none` for mail from it and cannot tell forged mail apart (RFC 7208 §4.5)"
                        ),
                    )
                    .seen("no v=spf1 record"),
                    ctx,
                    domain,
                    false,
            ));
            return findings;
        }
        [_] => {}
        several => {
            findings.push(
                Finding::new(
                    MULTIPLE,
                    domain.to_string(),
                    format!(
                        "{domain} has {} `v=spf1` records; with more than one, every evaluation is a permerror (RFC 7208 §4.5)",
                        several.len()
                    ),
                )
                .seen(several.join(" | "))
                .expected(format!("exactly one: {}", desired_value(ctx, domain, false)))
                .fix(format!(
                    "keep one record and remove the others: {}",
                    publish_fix(ctx, domain, false)
                )),
            );
            return findings;
        }
    }
    let text = &values[0];
    let record = match parse_record(text) {
        Ok(record) => record,
        Err(why) => {
            findings.push(with_desired(
                    Finding::new(
                        SYNTAX,
                        domain.to_string(),
                        format!("the SPF record of {domain} is not valid: {why}; every evaluation is a permerror (RFC 7208 §4.6)"),
                    )
                    .seen(text.clone()),
                    ctx,
                    domain,
                    false,
            ));
            return findings;
        }
    };
    findings.extend(record_warnings(domain, text, &record));
    findings.extend(record_advice(domain, text, &record));

    let ips = crate::support::server_ips(ctx);
    // The walks: one per address family the server uses (the void lookups of `a` and `mx`
    // depend on it), IPv4 when it has no address at all.
    let mut samples: Vec<IpAddr> = Vec::new();
    for ip in &ips {
        if !samples.iter().any(|s| s.is_ipv4() == ip.is_ipv4()) {
            samples.push(*ip);
        }
    }
    if samples.is_empty() {
        samples.push(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)));
    }
    let sender = postmaster(domain);
    for sample in samples {
        let outcome = walk(ctx.lookup, domain, sample, &sender).await;
        findings.extend(walk_findings(domain, &outcome));
        findings.extend(reached_pass_all(domain, &outcome));
    }

    for ip in &ips {
        let outcome = evaluate(ctx.lookup, domain, *ip, &sender).await;
        if outcome.result != SpfResult::Pass {
            let reason = reason(&outcome);
            let family = if ip.is_ipv4() { "ip4" } else { "ip6" };
            findings.push(
                Finding::new(
                    NOT_PASS,
                    domain.to_string(),
                    format!(
                        "mail from {sender} sent by the server at {ip} gets SPF `{}`{reason}, not `pass`: receivers may reject or junk it (RFC 7208 §4)",
                        outcome.result
                    ),
                )
                .seen(format!(
                    "check_host({ip}, {}, {sender}) = {}; trace:\n{}",
                    domain.as_str(),
                    outcome.result,
                    outcome.trace_text()
                ))
                .expected("pass")
                .fix(format!(
                    "{} (or add `{family}:{ip}` before the `all` of the record)",
                    publish_fix(ctx, domain, false)
                )),
            );
        }
    }

    findings.extend(check_hosts(ctx, &ips).await);
    dedup(findings)
}

/// Warnings read from the domain's own record: `ptr`, `+all`, `?all`, no `all`.
fn record_warnings(domain: &Name, text: &str, record: &SpfRecord) -> Vec<Finding> {
    let mut findings = Vec::new();
    match record.all().map(|d| d.qualifier) {
        Some(Qualifier::Pass) => findings.push(
            Finding::new(
                PASS_ALL,
                domain.to_string(),
                format!(
                    "the SPF record of {domain} ends in `+all`: every host on the Internet passes for {domain} (RFC 7208 §5.1)"
                ),
            )
            .seen(text.to_string())
            .expected("`-all` or `~all`")
            .fix("end the record in `-all` (or `~all` while testing)"),
        ),
        Some(Qualifier::Neutral) => findings.push(
            Finding::new(
                NEUTRAL_ALL,
                domain.to_string(),
                format!(
                    "the SPF record of {domain} ends in `?all`: hosts it does not list get `neutral`, which protects nothing (RFC 7208 §8.2)"
                ),
            )
            .seen(text.to_string())
            .expected("`-all` or `~all`")
            .fix("end the record in `-all` (or `~all`) once every sending host is listed"),
        ),
        Some(_) => {}
        None if record.redirect.is_none() => findings.push(
            Finding::new(
                NO_ALL,
                domain.to_string(),
                format!(
                    "the SPF record of {domain} has neither `all` nor `redirect=`: hosts it does not list get `neutral` (RFC 7208 §4.7)"
                ),
            )
            .seen(text.to_string())
            .expected("a record ending in `-all` or `~all`")
            .fix("end the record in `-all`"),
        ),
        None => {}
    }
    findings
}

/// RFC 7208 §5.1, §5.2, §6.1: a record reached through `include:` or `redirect=` that ends
/// in `+all` passes every host, and so does the domain's policy through it (an include
/// that returns `pass` matches). The walk records each `all` it reaches.
fn reached_pass_all(domain: &Name, outcome: &SpfOutcome) -> Vec<Finding> {
    outcome
        .trace
        .iter()
        .filter(|step| &step.domain != domain)
        .filter(|step| {
            let term = step.term.to_ascii_lowercase();
            term == "all" || term == "+all"
        })
        .map(|step| {
            Finding::new(
                PASS_ALL,
                step.domain.to_string(),
                format!(
                    "the SPF record of {}, reached from {domain} through include: or redirect=, ends in `{}`: every host on the Internet passes it, and so passes SPF for {domain} (RFC 7208 §5.1, §5.2, §6.1)",
                    step.domain.as_str(),
                    step.term
                ),
            )
            .seen(format!("{}: {}", step.domain.as_str(), step.term))
            .expected("`-all` or `~all` in every record the policy reaches")
            .fix(format!(
                "end the record at {} in `-all`, or stop including it from {domain}",
                step.domain.as_str()
            ))
        })
        .collect()
}

/// RFC 7208 §3.4: the answer to the TXT question, estimated for the SPF record alone
/// (header, question, one answer record with its name compressed), must fit in 512 octets,
/// or receivers on UDP get a truncated answer and must retry over TCP, which some do not.
fn spf_answer_size(domain: &Name, text: &str) -> usize {
    let name_wire = domain.as_str().trim_end_matches('.').len() + 2;
    let strings = text.len().div_ceil(255).max(1);
    12 + name_wire + 4 + 2 + 10 + text.len() + strings
}

/// Findings about the shape of the domain's own record that do not change its result:
/// its size (§3.4), a `redirect=` beside `all` (§6.1), terms after `all` (§5.1).
fn record_advice(domain: &Name, text: &str, record: &SpfRecord) -> Vec<Finding> {
    let mut findings = Vec::new();
    let size = spf_answer_size(domain, text);
    if size > 512 {
        findings.push(
            Finding::new(
                RECORD_TOO_LONG,
                domain.to_string(),
                format!(
                    "the SPF record of {domain} is {} octets long, so the answer carrying it is about {size} octets, over the 512 that RFC 7208 §3.4 asks SPF answers to fit in: receivers asking over UDP get a truncated answer and must retry over TCP, which some do not (they then get temperror or none)",
                    text.len()
                ),
            )
            .seen(format!("{} octets: {text}", text.len()))
            .expected("an answer of at most 512 octets (a record of about 450 octets or fewer)")
            .fix("shorten the record: move groups of senders behind `include:` or merge address ranges"),
        );
    }
    let terms: Vec<&str> = text.split_whitespace().skip(1).collect();
    let is_all = |t: &&str| {
        t.trim_start_matches(['+', '-', '~', '?'])
            .eq_ignore_ascii_case("all")
    };
    let is_modifier = |t: &&str| t.find('=').is_some_and(|eq| !t[..eq].contains([':', '/']));
    if record.all().is_some() && record.redirect.is_some() {
        let all = terms.iter().find(|t| is_all(t)).copied().unwrap_or("all");
        let redirect = terms
            .iter()
            .find(|t| t.to_ascii_lowercase().starts_with("redirect="))
            .copied()
            .unwrap_or("redirect=");
        findings.push(
            Finding::new(
                REDIRECT_IGNORED,
                domain.to_string(),
                format!(
                    "the SPF record of {domain} has both `{all}` and `{redirect}`: with an `all` mechanism the redirect is never used (RFC 7208 §6.1), so the policy it names does not apply"
                ),
            )
            .seen(text.to_string())
            .expected("either `all` or `redirect=`, not both")
            .fix("remove the `all` mechanism to use the redirect, or remove `redirect=`"),
        );
    }
    let after: Vec<&str> = terms
        .iter()
        .skip_while(|t| !is_all(t))
        .skip(1)
        .filter(|t| !is_modifier(t))
        .copied()
        .collect();
    if !after.is_empty() {
        findings.push(
            Finding::new(
                TERMS_AFTER_ALL,
                domain.to_string(),
                format!(
                    "the SPF record of {domain} has terms after `all` ({}), which are never evaluated (RFC 7208 §5.1): the hosts they name do not pass",
                    after.join(" ")
                ),
            )
            .seen(text.to_string())
            .expected("`all` as the last mechanism")
            .fix("move the terms before `all`, or remove them"),
        );
    }
    findings
}

/// Findings from a walk: the limits, and the problems of the records it reached.
fn walk_findings(domain: &Name, outcome: &SpfOutcome) -> Vec<Finding> {
    let mut findings = Vec::new();
    for step in &outcome.trace {
        let mechanism = step
            .term
            .trim_start_matches(['+', '-', '~', '?'])
            .to_ascii_lowercase();
        if mechanism == "ptr" || mechanism.starts_with("ptr:") {
            findings.push(
                Finding::new(
                    PTR,
                    step.domain.to_string(),
                    format!(
                        "the SPF record of {} uses `{}`: `ptr` is slow, unreliable and SHOULD NOT be used (RFC 7208 §5.5); some receivers ignore it",
                        step.domain.as_str(),
                        step.term
                    ),
                )
                .seen(step.term.clone())
                .expected("`a`, `mx`, `ip4:` or `ip6:` instead")
                .fix(format!(
                    "replace `{}` with the addresses of the hosts it was meant to match (`ip4:`/`ip6:` or `a:`)",
                    step.term
                )),
            );
        }
    }
    let trace = outcome.trace_text();
    for problem in &outcome.problems {
        let name = problem.name.to_string();
        let finding = match problem.kind {
            ProblemKind::TooManyLookups => Finding::new(
                TOO_MANY_LOOKUPS,
                domain.to_string(),
                format!(
                    "evaluating the SPF policy of {domain} can take {} DNS-querying terms (include, a, mx, ptr, exists, redirect); RFC 7208 §4.6.4 allows 10, so receivers get permerror: {}",
                    outcome.lookups, problem.detail
                ),
            )
            .seen(format!("{} lookups; trace:\n{trace}", outcome.lookups))
            .expected("at most 10 DNS-querying terms")
            .fix("replace includes that are not needed, or flatten them into `ip4:`/`ip6:` ranges, until at most 10 terms query DNS"),
            ProblemKind::TooManyVoidLookups => {
                let voids: Vec<String> = outcome
                    .trace
                    .iter()
                    .filter(|s| s.outcome.starts_with("void"))
                    .map(|s| format!("{}: {} ({})", s.domain.as_str(), s.term, s.outcome))
                    .collect();
                Finding::new(
                    TOO_MANY_VOID_LOOKUPS,
                    domain.to_string(),
                    format!(
                        "evaluating the SPF policy of {domain} meets {} DNS answers that are empty or NXDOMAIN; RFC 7208 §4.6.4 allows 2, so receivers get permerror",
                        outcome.void_lookups
                    ),
                )
                .seen(voids.join("; "))
                .expected("at most 2 void lookups")
                .fix("remove the terms whose names have no records (listed above), or publish the records they expect")
            }
            ProblemKind::Syntax => Finding::new(
                SYNTAX,
                name.clone(),
                format!(
                    "the SPF record of {} (reached from {domain}) is not valid: {}; the evaluation is a permerror (RFC 7208 §4.6)",
                    problem.name.as_str(),
                    problem.detail
                ),
            )
            .expected("a record following RFC 7208 §12")
            .fix(format!("correct the record at {name}, or stop referring to it from {domain}")),
            ProblemKind::MultipleRecords => Finding::new(
                MULTIPLE,
                name.clone(),
                format!(
                    "{} (reached from {domain}) has several `v=spf1` records: the evaluation is a permerror (RFC 7208 §4.5)",
                    problem.name.as_str()
                ),
            )
            .seen(problem.detail.clone())
            .expected("exactly one v=spf1 record")
            .fix(format!("keep one v=spf1 record at {name}")),
            ProblemKind::NoRecord => Finding::new(
                INCLUDE_INVALID,
                name.clone(),
                format!("{}; receivers evaluating {domain} get permerror", problem.detail),
            )
            .seen(format!("no v=spf1 record at {name}"))
            .expected("a v=spf1 record at every include:/redirect= target")
            .fix(format!(
                "remove the include:/redirect= of {} from the SPF policy of {domain}, or publish an SPF record there",
                problem.name.as_str()
            )),
            ProblemKind::TooManyMxNames => Finding::new(
                MX_TOO_MANY,
                name.clone(),
                format!("{}; receivers get permerror", problem.detail),
            )
            .expected("at most 10 MX records at a name an mx term refers to")
            .fix("use `ip4:`/`ip6:` or `a:` terms for those hosts instead of `mx`"),
            ProblemKind::Dns => Finding::new(
                TEMPERROR,
                name.clone(),
                format!(
                    "while evaluating the SPF policy of {domain}, {}: receivers get temperror and defer or accept the mail unchecked",
                    problem.detail
                ),
            )
            .expected("an answer (NOERROR or NXDOMAIN)")
            .fix(format!("make sure the name servers of {name} answer")),
        };
        findings.push(finding);
    }
    findings
}

/// RFC 7208 §2.3: each exchanger host inside the zone has its own record, passing every
/// server IP for the HELO identity (sender `postmaster@<host>`).
async fn check_hosts(ctx: &DomainContext<'_>, ips: &[IpAddr]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut hosts: Vec<&Name> = ctx
        .server
        .mail_exchangers
        .iter()
        .map(|mx| &mx.hostname)
        .filter(|h| h.is_within(&ctx.domain.zone) && *h != &ctx.domain.name)
        .collect();
    hosts.sort();
    hosts.dedup();
    for host in hosts {
        let values = match spf_values(ctx, host).await {
            Ok(values) => values,
            Err(finding) => {
                findings.push(finding);
                continue;
            }
        };
        if values.is_empty() {
            findings.push(with_desired(
                    Finding::new(
                        HOST_MISSING,
                        host.to_string(),
                        format!(
                            "the exchanger {host} has no SPF record: receivers that check the HELO name {host} (and every bounce, which is judged by it alone) get `none` (RFC 7208 §2.3)"
                        ),
                    )
                    .seen("no v=spf1 record"),
                    ctx,
                    host,
                    true,
            ));
            continue;
        }
        let sender = postmaster(host);
        for ip in ips {
            let outcome = evaluate(ctx.lookup, host, *ip, &sender).await;
            if outcome.result != SpfResult::Pass {
                let reason = reason(&outcome);
                findings.push(with_desired(
                        Finding::new(
                            HOST_NOT_PASS,
                            host.to_string(),
                            format!(
                                "the server at {ip} saying HELO {host} gets SPF `{}`{reason}, not `pass`: bounces and HELO checks fail (RFC 7208 §2.3)",
                                outcome.result
                            ),
                        )
                        .seen(format!(
                            "{}; trace:\n{}",
                            values.join(" | "),
                            outcome.trace_text()
                        )),
                        ctx,
                        host,
                        true,
                ));
            }
        }
    }
    findings
}

/// One finding per (code, name, message): the walks of the two families often agree.
fn dedup(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for finding in findings {
        let same = |f: &Finding| {
            f.code == finding.code
                && f.name == finding.name
                && (f.code != NOT_PASS.id && f.code != HOST_NOT_PASS.id
                    || f.message == finding.message)
        };
        if !out.iter().any(same) {
            out.push(finding);
        }
    }
    out
}
