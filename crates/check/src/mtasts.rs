//! MTA-STS (RFC 8461) and SMTP TLS reporting (RFC 8460).
//!
//! - `_mta-sts.<domain>` TXT: `v=STSv1; id=<1–32 ALPHA/DIGIT>` (RFC 8461 §3.1);
//! - `_smtp._tls.<domain>` TXT: `v=TLSRPTv1; rua=<mailto: or https: URIs, comma-separated>`
//!   (RFC 8460 §3);
//! - the policy at `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.3),
//!   fetched when [`CheckOptions::fetch_mta_sts`](crate::CheckOptions) is set: it must parse
//!   (§3.2) and, in `enforce` or `testing` mode, its `mx:` patterns must match every MX
//!   host (§4.1: `*.example.org` matches exactly one label). Not reachable is only `info`.
//! - §3.2: `max_age` "in the range of weeks or greater"; under a day, senders fetch often
//!   and a policy-host outage soon leaves them without a policy (`mta-sts-max-age-short`);
//!   §5: mode `testing` or `none` protects nothing (`mta-sts-not-enforced`, information).
//! - RFC 8460: MTA-STS without a TLS-RPT record leaves TLS failures unreported
//!   (`tls-rpt-missing`).
//!
//! More than one record of either kind is `zone-multiple-records` (see [`crate::zone`]);
//! then these syntax checks are skipped.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mailzone_records::{MtaStsMode, Name, RData, RecordPurpose};

use crate::context::DomainContext;
use crate::finding::Finding;
use crate::lookup::Answer;
use crate::support;

crate::codes::declare! {
    purpose: Some(RecordPurpose::MtaSts);
    TXT_SYNTAX: Error, "mta-sts-txt-syntax",
        "the `_mta-sts` TXT record is not `v=STSv1; id=<1-32 alphanumerics>`";
    TLSRPT_SYNTAX: Error, "tls-rpt-syntax" (Some(RecordPurpose::TlsRpt)),
        "the `_smtp._tls` TXT record is not `v=TLSRPTv1; rua=<mailto:/https: URIs>`";
    POLICY_UNREACHABLE: Info, "mta-sts-policy-unreachable",
        "the MTA-STS policy could not be fetched over HTTPS";
    POLICY_INVALID: Error, "mta-sts-policy-invalid",
        "the fetched MTA-STS policy does not parse (RFC 8461 §3.2)";
    POLICY_MX_UNCOVERED: Error, "mta-sts-policy-mx-uncovered",
        "an MX host matches no `mx:` pattern of the fetched MTA-STS policy";
    POLICY_DIFFERS: Warning, "mta-sts-policy-differs",
        "the fetched MTA-STS policy differs from the one mailzone generates";
    MAX_AGE_SHORT: Warning, "mta-sts-max-age-short",
        "the fetched policy's `max_age` is under one day (RFC 8461 §3.2 expects weeks)";
    NOT_ENFORCED: Info, "mta-sts-not-enforced",
        "the fetched policy's mode is `testing` or `none`: senders deliver without TLS on failure";
    TLSRPT_MISSING: Warning, "tls-rpt-missing" (Some(RecordPurpose::TlsRpt)),
        "MTA-STS is published but no `_smtp._tls` TLS-RPT record: TLS failures go unreported";
}

/// The largest policy read (RFC 8461 §3.3 suggests senders limit the body; 64 KiB is
/// plenty for any real policy).
const MAX_POLICY_BYTES: usize = 64 * 1024;

/// A parsed policy (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: MtaStsMode,
    pub max_age: u32,
    /// The `mx:` patterns, lowercase, in order.
    pub mx: Vec<String>,
}

/// Parses a policy body: `key: value` lines (CRLF, LF accepted too), `version: STSv1`,
/// `mode`, `max_age` (at most 31557600) and, unless the mode is `none`, at least one `mx`.
/// Unknown keys are ignored (§3.2: extensions).
pub fn parse_policy(text: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("line {} (`{line}`) is not `key: value`", i + 1))?;
        let (key, value) = (key.trim(), value.trim());
        let once = |slot: &Option<String>| {
            if slot.is_some() {
                Err(format!("`{key}` appears more than once"))
            } else {
                Ok(())
            }
        };
        match key {
            "version" => {
                once(&version)?;
                version = Some(value.to_string());
            }
            "mode" => {
                once(&mode)?;
                mode = Some(value.to_string());
            }
            "max_age" => {
                once(&max_age)?;
                max_age = Some(value.to_string());
            }
            "mx" => mx.push(value.to_ascii_lowercase()),
            _ => {}
        }
    }
    match version.as_deref() {
        Some("STSv1") => {}
        Some(other) => return Err(format!("`version: {other}` is not `STSv1`")),
        None => return Err("the `version: STSv1` line is missing".into()),
    }
    let mode = match mode.as_deref() {
        Some("enforce") => MtaStsMode::Enforce,
        Some("testing") => MtaStsMode::Testing,
        Some("none") => MtaStsMode::None,
        Some(other) => {
            return Err(format!("`mode: {other}` is not enforce, testing or none"));
        }
        None => return Err("the `mode` line is missing".into()),
    };
    let max_age = match max_age {
        Some(v) if !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u64 = v
                .parse()
                .map_err(|_| format!("`max_age: {v}` is not a number"))?;
            if n > u64::from(mailzone_records::mtasts::MAX_AGE_LIMIT) {
                return Err(format!("`max_age: {v}` is above 31557600 (RFC 8461 §3.2)"));
            }
            n as u32
        }
        Some(v) => return Err(format!("`max_age: {v}` is not a number of seconds")),
        None => return Err("the `max_age` line is missing".into()),
    };
    if mode != MtaStsMode::None && mx.is_empty() {
        return Err("there is no `mx` line, so no host is allowed".into());
    }
    for pattern in &mx {
        let host = pattern.strip_prefix("*.").unwrap_or(pattern);
        if Name::host(host).is_err() || host.is_empty() {
            return Err(format!(
                "`mx: {pattern}` is not a host name or `*.` pattern"
            ));
        }
    }
    Ok(Policy { mode, max_age, mx })
}

/// RFC 8461 §4.1: a pattern matches the host itself, or with `*.` exactly one leftmost
/// label.
pub fn mx_matches(pattern: &str, host: &Name) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.as_str();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => host == pattern,
    }
}

/// Why an `_mta-sts` TXT value is not RFC 8461 §3.1 syntax, if it is not.
pub fn txt_error(value: &str) -> Option<String> {
    let rest = match after_version(value, "STSv1") {
        Ok(rest) => rest,
        Err(why) => return Some(why),
    };
    let mut id = None;
    for (key, val) in &rest {
        if key.is_empty() {
            return Some("a field has no name".into());
        }
        if *key == "id" {
            if id.is_some() {
                return Some("`id` appears twice".into());
            }
            id = Some(*val);
        }
    }
    match id {
        None => Some("the `id` field is missing".into()),
        Some(id)
            if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Some(format!(
                "`id={id}` must be 1 to 32 letters and digits (RFC 8461 §3.1)"
            ))
        }
        Some(_) => None,
    }
}

/// Why a `_smtp._tls` TXT value is not RFC 8460 §3 syntax, if it is not.
pub fn tlsrpt_error(value: &str) -> Option<String> {
    let rest = match after_version(value, "TLSRPTv1") {
        Ok(rest) => rest,
        Err(why) => return Some(why),
    };
    let rua: Vec<&str> = rest
        .iter()
        .filter(|(k, _)| *k == "rua")
        .map(|(_, v)| *v)
        .collect();
    match rua.as_slice() {
        [] => Some("the `rua` field (where reports go) is missing".into()),
        [one] => {
            for uri in one.split(',') {
                let uri = uri.trim();
                let ok = match uri.split_once(':') {
                    Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mailto") => {
                        rest.contains('@') && !rest.starts_with('@') && !rest.ends_with('@')
                    }
                    Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => {
                        rest.starts_with("//") && rest.len() > 2
                    }
                    _ => false,
                };
                if !ok {
                    return Some(format!(
                        "`{uri}` is not a mailto: address or https: URL (RFC 8460 §3)"
                    ));
                }
            }
            None
        }
        _ => Some("`rua` appears more than once".into()),
    }
}

/// The fields after the leading `v=<version>` (both records must start with it), or why
/// the record does not.
fn after_version<'a>(value: &'a str, version: &str) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut fields = fields(value);
    match fields.first() {
        None => Err("the record is empty".into()),
        Some(first) if *first != ("v", version) => {
            Err(format!("the record must start with `v={version}`"))
        }
        Some(_) => Ok(fields.split_off(1)),
    }
}

/// `key=value` fields separated by `;` with optional whitespace; a trailing `;` allowed.
fn fields(value: &str) -> Vec<(&str, &str)> {
    value
        .split(';')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => ("", f),
        })
        .collect()
}

/// One of the two TXT records whose syntax this module checks.
struct TxtRecord {
    code: &'static crate::codes::Code,
    purpose: RecordPurpose,
    /// The version tag that makes a TXT record one of these.
    version: &'static str,
    /// The record's name in messages.
    label: &'static str,
    /// What a malformed record leads to.
    consequence: &'static str,
    expected: &'static str,
    /// Why a value is malformed, if it is.
    error: fn(&str) -> Option<String>,
}

/// The `_mta-sts` record (RFC 8461 §3.1).
const STS_TXT: TxtRecord = TxtRecord {
    code: TXT_SYNTAX,
    purpose: RecordPurpose::MtaSts,
    version: "v=STSv1",
    label: "MTA-STS",
    consequence: "senders ignore the policy",
    expected: "v=STSv1; id=<1 to 32 letters and digits>",
    error: txt_error,
};

/// The `_smtp._tls` record (RFC 8460 §3).
const TLSRPT_TXT: TxtRecord = TxtRecord {
    code: TLSRPT_SYNTAX,
    purpose: RecordPurpose::TlsRpt,
    version: "v=TLSRPTv1",
    label: "TLS-RPT",
    consequence: "no TLS reports will be sent",
    expected: "v=TLSRPTv1; rua=mailto:…",
    error: tlsrpt_error,
};

/// Whether `record` is served at `name`; the failed lookup, or the finding for a malformed
/// record, goes to `findings`.
fn served(
    ctx: &DomainContext<'_>,
    record: &TxtRecord,
    answer: Result<Answer, Finding>,
    name: &Name,
    findings: &mut Vec<Finding>,
) -> bool {
    match answer {
        Err(f) => {
            findings.push(f);
            false
        }
        Ok(answer) => {
            findings.extend(malformed(ctx, record, &answer, name));
            !support::txt_family(&answer, name, record.version).is_empty()
        }
    }
}

/// The finding for a malformed `record` at `name`, when exactly one is served (several are
/// the zone check's `zone-multiple-records`).
fn malformed(
    ctx: &DomainContext<'_>,
    record: &TxtRecord,
    answer: &Answer,
    name: &Name,
) -> Option<Finding> {
    let [one] = support::txt_family(answer, name, record.version)[..] else {
        return None;
    };
    let value = one.record.data.value();
    let why = (record.error)(&value)?;
    let finding = Finding::new(
        record.code,
        name.to_string(),
        format!(
            "the {} record at {name} is malformed: {why}; {}",
            record.label, record.consequence
        ),
    )
    .seen(value)
    .expected(record.expected);
    let wanted = ctx
        .desired
        .iter()
        .find(|d| d.purpose == record.purpose && matches!(d.record.data, RData::Txt(_)));
    Some(match wanted {
        Some(d) => finding.fix(format!("replace it by {}", support::line(&d.record))),
        None => finding,
    })
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let domain = &ctx.domain.name;
    let mut findings = Vec::new();
    let (Ok(sts_name), Ok(rpt_name)) = (domain.prefixed("_mta-sts"), domain.prefixed("_smtp._tls"))
    else {
        return findings;
    };
    let (sts, rpt) = tokio::join!(
        support::query(ctx, &sts_name, "TXT"),
        support::query(ctx, &rpt_name, "TXT")
    );
    let sts_served = served(ctx, &STS_TXT, sts, &sts_name, &mut findings);
    let rpt_served = served(ctx, &TLSRPT_TXT, rpt, &rpt_name, &mut findings);
    findings.extend(tlsrpt_missing(
        &sts_name,
        &rpt_name,
        sts_served && !rpt_served,
    ));
    if ctx.options.fetch_mta_sts && (ctx.domain.mta_sts.enabled || sts_served) {
        findings.extend(check_policy(ctx).await);
    }
    findings
}

/// The policy URL of a domain.
pub fn policy_url(template: Option<&str>, domain: &Name) -> String {
    template
        .unwrap_or("https://mta-sts.{domain}/.well-known/mta-sts.txt")
        .replace("{domain}", domain.as_str())
}

/// Fetches a policy body from `url`, connecting only to `addresses` (found through the
/// checker's [`Lookup`](crate::Lookup) by [`resolve_url_host`]): HTTP 200 required,
/// redirects not followed (RFC 8461 §3.3), at most 64 KiB. No proxy is used and no other
/// name is resolved: the client's resolver refuses every name, so the system resolver is
/// never asked, by construction.
pub async fn fetch_policy(
    url: &reqwest::Url,
    addresses: &[IpAddr],
    timeout: Duration,
) -> Result<String, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .no_proxy()
        .use_preconfigured_tls((*crate::connect::tls_client_config()).clone())
        .dns_resolver(Arc::new(NoResolver))
        .user_agent(concat!("mailzone/", env!("CARGO_PKG_VERSION")));
    if let UrlHost::Name(host) = url_host(url) {
        let to: Vec<SocketAddr> = addresses.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
        builder = builder.resolve_to_addrs(host, &to);
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot build an HTTPS client: {e}"))?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| describe_error(&e))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!(
            "{url} answered HTTP {status}{}",
            if status.is_redirection() {
                " (RFC 8461 §3.3: redirects are not followed)"
            } else {
                ""
            }
        ));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading {url}: {}", describe_error(&e)))?;
    if body.len() > MAX_POLICY_BYTES {
        return Err(format!("{url} is larger than 64 KiB"));
    }
    String::from_utf8(body.to_vec()).map_err(|_| format!("{url} is not UTF-8 text"))
}

/// The resolver of the policy client: every name was resolved beforehand through the
/// checker's lookup and handed to reqwest as an override, so any other name is refused.
struct NoResolver;

impl reqwest::dns::Resolve for NoResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let why = format!(
            "{} was not resolved through the servers the check asks",
            name.as_str()
        );
        Box::pin(async move { Err(why.into()) })
    }
}

/// The addresses the policy at `url` may be fetched from: its host resolved through
/// `lookup` (A and AAAA, CNAMEs followed), or the IP literal itself, each allowed by
/// [`crate::connect::may_connect`]; otherwise why the fetch cannot be tried.
pub async fn resolve_url_host(
    lookup: &dyn crate::Lookup,
    url: &reqwest::Url,
) -> Result<Vec<IpAddr>, String> {
    let found = match url_host(url) {
        UrlHost::Ip(ip) => vec![ip],
        UrlHost::Name(host) => resolve_host(lookup, host).await?,
        UrlHost::None => return Err(format!("{url} has no host")),
    };
    let (ok, refused) = crate::connect::allowed(&found);
    if ok.is_empty() {
        return Err(format!(
            "not connecting: {} (only loopback and globally reachable addresses are contacted)",
            refused.join("; ")
        ));
    }
    Ok(ok)
}

/// The host of a URL: an IP literal is connected to as it is, a name is resolved.
enum UrlHost<'a> {
    Ip(IpAddr),
    Name(&'a str),
    None,
}

fn url_host(url: &reqwest::Url) -> UrlHost<'_> {
    match url.host_str() {
        None => UrlHost::None,
        Some(host) => match host.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => UrlHost::Ip(ip),
            Err(_) => UrlHost::Name(host),
        },
    }
}

/// The A and AAAA addresses of `host` through `lookup`, or why there are none.
async fn resolve_host(lookup: &dyn crate::Lookup, host: &str) -> Result<Vec<IpAddr>, String> {
    let name = Name::host(host).map_err(|e| format!("`{host}` is not a host name: {e}"))?;
    let (a, aaaa) = tokio::join!(lookup.query(&name, "A"), lookup.query(&name, "AAAA"));
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (rtype, answer) in [("A", a), ("AAAA", aaaa)] {
        match answer {
            Ok(answer) => {
                for r in &answer.records {
                    match r.record.data {
                        RData::A(ip) => out.push(IpAddr::V4(ip)),
                        RData::Aaaa(ip) => out.push(IpAddr::V6(ip)),
                        _ => {}
                    }
                }
                if answer.records.is_empty() {
                    problems.push(format!("{rtype}: {}", rcode_text(&answer.rcode)));
                }
            }
            Err(e) => problems.push(format!("{rtype}: {e}")),
        }
    }
    if out.is_empty() {
        return Err(format!(
            "the policy host {name} does not resolve through the servers asked ({})",
            problems.join("; ")
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn rcode_text(rcode: &crate::Rcode) -> String {
    match rcode {
        crate::Rcode::NoError => "no record (NODATA)".into(),
        crate::Rcode::NxDomain => "NXDOMAIN".into(),
        crate::Rcode::ServFail => "SERVFAIL".into(),
        crate::Rcode::Refused => "REFUSED".into(),
        crate::Rcode::Other(other) => other.clone(),
    }
}

fn describe_error(e: &reqwest::Error) -> String {
    // The chain says what failed (DNS name, TLS certificate, connection refused).
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The policy at `url`, fetched from the addresses its host has through the check's lookup.
async fn fetch(ctx: &DomainContext<'_>, url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let addresses = resolve_url_host(ctx.lookup, &parsed).await?;
    fetch_policy(&parsed, &addresses, ctx.options.fetch_timeout).await
}

async fn check_policy(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let domain = &ctx.domain.name;
    let Ok(host) = domain.prefixed("mta-sts") else {
        return Vec::new();
    };
    let url = policy_url(ctx.options.mta_sts_url.as_deref(), domain);
    let configured = ctx
        .domain
        .mta_sts
        .enabled
        .then(|| mailzone_records::mtasts::policy_text(&ctx.domain.mta_sts));
    let body = match fetch(ctx, &url).await {
        Ok(body) => body,
        Err(why) => {
            let mut f = Finding::new(
                POLICY_UNREACHABLE,
                host.to_string(),
                format!("the MTA-STS policy could not be fetched from {url}: {why}"),
            )
            .seen(why)
            .expected(format!("HTTP 200 from {url}"));
            if let Some(text) = &configured {
                f = f.fix(format!(
                    "serve this text at {url}: {}",
                    text.replace("\r\n", "\\r\\n")
                ));
            }
            return vec![f];
        }
    };
    let policy = match parse_policy(&body) {
        Ok(p) => p,
        Err(why) => {
            let mut f = Finding::new(
                POLICY_INVALID,
                host.to_string(),
                format!("the MTA-STS policy at {url} is invalid: {why}; senders treat the domain as having no policy"),
            )
            .seen(body.replace("\r\n", "\\r\\n").replace('\n', "\\n"));
            if let Some(text) = &configured {
                let shown = text.replace("\r\n", "\\r\\n");
                f = f
                    .expected(shown.clone())
                    .fix(format!("serve this text at {url}: {shown}"));
            }
            return vec![f];
        }
    };
    let mut findings = policy_advice(&host, &url, &policy);
    if policy.mode != MtaStsMode::None {
        let hosts = mx_hosts(ctx).await;
        for mx in hosts {
            if !policy.mx.iter().any(|p| mx_matches(p, &mx)) {
                findings.push(
                    Finding::new(
                        POLICY_MX_UNCOVERED,
                        host.to_string(),
                        format!(
                            "the MX host {mx} matches no `mx:` line of the MTA-STS policy at {url} (mode {}): senders that apply the policy will not deliver to it",
                            policy.mode.as_str()
                        ),
                    )
                    .seen(policy.mx.iter().map(|p| format!("mx: {p}")).collect::<Vec<_>>().join(", "))
                    .expected(format!("an `mx:` line matching {}", mx.as_str()))
                    .fix(format!(
                        "add `mx: {}` to the policy at {url} and publish a new id in the _mta-sts TXT record",
                        mx.as_str()
                    )),
                );
            }
        }
    }
    if let Some(text) = configured {
        let want = parse_policy(&text).expect("mailzone's own policy parses");
        let mut got_mx = policy.mx.clone();
        let mut want_mx = want.mx.clone();
        got_mx.sort();
        want_mx.sort();
        if policy.mode != want.mode || policy.max_age != want.max_age || got_mx != want_mx {
            findings.push(
                Finding::new(
                    POLICY_DIFFERS,
                    host.to_string(),
                    format!(
                        "the MTA-STS policy at {url} is not the one mailzone generates (mode {}, max_age {}, {} mx lines; configured: mode {}, max_age {}, {} mx lines)",
                        policy.mode.as_str(),
                        policy.max_age,
                        policy.mx.len(),
                        want.mode.as_str(),
                        want.max_age,
                        want.mx.len()
                    ),
                )
                .seen(body.replace("\r\n", "\\r\\n").replace('\n', "\\n"))
                .expected(text.replace("\r\n", "\\r\\n"))
                .fix(format!(
                    "serve the expected text at {url} (the _mta-sts id mailzone publishes is its digest)"
                )),
            );
        }
    }
    findings
}

/// RFC 8460 §1, §3: with MTA-STS published, senders that fail to deliver over TLS report it
/// only to a `_smtp._tls` address; without one, a broken certificate or policy goes unseen
/// until mail is lost (mox asks for it beside MTA-STS).
fn tlsrpt_missing(sts_name: &Name, rpt_name: &Name, missing: bool) -> Option<Finding> {
    missing.then(|| {
        Finding::new(
            TLSRPT_MISSING,
            rpt_name.to_string(),
            format!(
                "{sts_name} publishes an MTA-STS policy but {rpt_name} has no `v=TLSRPTv1` record: senders that fail to deliver over TLS (expired certificate, policy mismatch) have nowhere to report it (RFC 8460)"
            ),
        )
        .seen(format!("no v=TLSRPTv1 TXT record at {rpt_name}"))
        .expected(format!("{rpt_name} TXT \"v=TLSRPTv1; rua=mailto:<address>\""))
        .fix(format!(
            "publish {rpt_name} 3600 IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@<your domain>\" (mailzone: `tlsRpt = {{ rua = [...] }}`)"
        ))
    })
}

/// RFC 8461 §3.2 `max_age` of at least a day (weeks expected); §5 a mode that protects.
fn policy_advice(host: &Name, url: &str, policy: &Policy) -> Vec<Finding> {
    let mut findings = Vec::new();
    const DAY: u32 = 86_400;
    if policy.max_age < DAY {
        findings.push(
            Finding::new(
                MAX_AGE_SHORT,
                host.to_string(),
                format!(
                    "the MTA-STS policy at {url} has `max_age: {}`, under one day: senders keep it only that long, so an outage of the policy host (or an attacker blocking it) soon leaves them without a policy; RFC 8461 §3.2 expects weeks or more",
                    policy.max_age
                ),
            )
            .seen(format!("max_age: {}", policy.max_age))
            .expected("max_age: 604800 or more (one week; up to 31557600)")
            .fix("raise `max_age` (mailzone: `mtaSts = { maxAge = 604800 }`) and publish a new id"),
        );
    }
    if policy.mode != MtaStsMode::Enforce {
        findings.push(
            Finding::new(
                NOT_ENFORCED,
                host.to_string(),
                format!(
                    "the MTA-STS policy at {url} is in mode `{}`: senders that cannot make a valid TLS connection to an MX deliver anyway (mode testing only reports it, RFC 8461 §5), so a downgrade attack still works",
                    policy.mode.as_str()
                ),
            )
            .seen(format!("mode: {}", policy.mode.as_str()))
            .expected("mode: enforce")
            .fix("once the TLS reports show no failures, switch to `mode: enforce` (mailzone: `mtaSts = { mode = \"enforce\" }`) and publish a new id"),
        );
    }
    findings
}

/// The MX hosts senders will use: the served ones, or the configured ones when none is
/// served (the MX check reports that).
async fn mx_hosts(ctx: &DomainContext<'_>) -> Vec<Name> {
    let domain = &ctx.domain.name;
    let served: Vec<Name> = match ctx.lookup.query(domain, "MX").await {
        Ok(answer) => support::at_name(&answer, domain)
            .into_iter()
            .filter_map(|l| match &l.record.data {
                RData::Mx { exchange, .. } if !exchange.is_root() => Some(exchange.clone()),
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut hosts = if served.is_empty() {
        ctx.server
            .mail_exchangers
            .iter()
            .map(|mx| mx.hostname.clone())
            .collect()
    } else {
        served
    };
    hosts.sort();
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod tests;
