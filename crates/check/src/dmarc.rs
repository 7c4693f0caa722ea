//! DMARC checks (RFC 7489, with the changes of RFC 9989, which obsoletes it).
//!
//! The rules, each with the section it comes from:
//! - RFC 7489 §6.1, §6.6.3 steps 2–5: the policy is the TXT record at `_dmarc.<domain>`
//!   that starts with `v=DMARC1`; other TXT records there are discarded; none →
//!   `dmarc-missing`, several → DMARC processing does not apply at all (`dmarc-multiple`).
//! - RFC 7489 §6.3, §6.4 (RFC 9989 §4.7, §4.8): the record is a tag-list (RFC 6376 §3.2:
//!   `tag=value` separated by `;`, no tag twice); `v=DMARC1` is the first tag; `p` is one of
//!   `none`, `quarantine`, `reject`; `sp` and `np` (RFC 9989) take the same values;
//!   `adkim`/`aspf` are `r` or `s`; `fo` is `0`, `1`, `d`, `s` joined by `:`; `psd`
//!   (RFC 9989) is `y`, `n` or `u`; `t` (RFC 9989) is `y` or `n`; `rua`/`ruf` are
//!   comma-separated URIs with an optional `!size`, `mailto:` addresses with a valid domain.
//!   Any of these wrong → `dmarc-syntax`.
//! - RFC 9989 §4.7: a record without `p` means `p=none` (RFC 7489 required `p`, and §6.6.3
//!   step 6 applied `p=none` only with a valid `rua`): `dmarc-policy-none`, a warning.
//! - RFC 7489 §6.4 writes tag names as ABNF strings, case-insensitive (RFC 5234 §2.3), while
//!   the DKIM tag-list it builds on is case-sensitive (RFC 6376 §3.2): `P=reject` is
//!   accepted and noted (`dmarc-tag-case`, information).
//! - RFC 7489 §6.3 (`p` second in the ABNF of §6.4; RFC 9989 allows any order):
//!   `dmarc-p-not-second`, information.
//! - RFC 7489 §6.3 "Unknown tags MUST be ignored": `dmarc-unknown-tag`, information (a typo
//!   such as `rue=` silently loses the reports).
//! - RFC 9989 removes `pct`, `rf` and `ri` (receivers following it ignore them; `pct=0`
//!   no longer means "monitoring"): `dmarc-removed-tag`, a warning (deprecated).
//! - `p=none` asks receivers to deliver mail failing DMARC as usual (RFC 7489 §6.3):
//!   `dmarc-policy-none`, a warning.
//! - RFC 7489 §7.1: a `rua`/`ruf` address in another organisation's domain receives
//!   reports only when that domain publishes `<domain>._report._dmarc.<report-domain>` TXT
//!   `v=DMARC1`; missing → `dmarc-report-unauthorized`, a warning (the reports are silently
//!   not sent; mail is not affected).
//! - RFC 7489 §6.3 `pct`: below 100, receivers apply the policy to that share of failing
//!   mail only and the next weaker policy to the rest (`dmarc-pct-partial`, a warning).
//! - RFC 7489 §6.3 `sp`, RFC 9989 §4.7 `np`: a subdomain policy weaker than `p` leaves
//!   forged mail from (existing or non-existent) subdomains less protected than the domain
//!   (`dmarc-subdomain-policy-weaker`, a warning).
//! - RFC 7489 §6.2: receivers MUST support `mailto:` report URIs and MAY support others;
//!   a report address of another scheme (`https:`) gets reports from few or none
//!   (`dmarc-report-not-mailto`, a warning).
//! - RFC 5321 §5.1, RFC 7505: reports go by mail, so a report address in a domain with a
//!   null MX, or with neither MX nor address records, loses them
//!   (`dmarc-report-undeliverable`, a warning). The domain itself is left to the MX check.
//!
//! "Another organisation": RFC 7489 compares organisational domains, found with the Public
//! Suffix List, which mailzone does not carry. A report domain counts as the same
//! organisation when it is the domain, inside it, a parent of it, or inside the domain's
//! zone; every other domain is asked for the authorisation record (a report domain of the
//! same organisation that is none of these gets a false error, which publishing the record
//! silences).

use mailzone_records::{Name, RData, RecordPurpose};

use crate::codes::Code;
use crate::context::DomainContext;
use crate::finding::Finding;

crate::codes::declare! {
    purpose: Some(RecordPurpose::Dmarc);
    MISSING: Error, "dmarc-missing",
        "no `v=DMARC1` record at `_dmarc.<domain>`: DMARC does not apply";
    MULTIPLE: Error, "dmarc-multiple",
        "more than one `v=DMARC1` record: receivers apply none of them";
    SYNTAX: Error, "dmarc-syntax",
        "the DMARC record breaks RFC 7489 §6.4 / RFC 9989 (version, `p`, tag values, URIs)";
    POLICY_NONE: Warning, "dmarc-policy-none",
        "`p=none`: mail failing DMARC is delivered as usual (monitoring only)";
    REPORT_UNAUTHORIZED: Warning, "dmarc-report-unauthorized",
        "a report address in another domain lacks its `_report._dmarc` authorisation";
    REMOVED_TAG: Warning, "dmarc-removed-tag",
        "the record uses `pct`, `rf` or `ri`, which RFC 9989 removed";
    UNKNOWN_TAG: Info, "dmarc-unknown-tag",
        "the record has a tag DMARC does not define; receivers ignore it";
    P_NOT_SECOND: Info, "dmarc-p-not-second",
        "`p` is not the second tag, as RFC 7489's grammar (not RFC 9989's) wants";
    TAG_CASE: Info, "dmarc-tag-case",
        "a tag name has capitals (`P=reject`): valid by RFC 7489's grammar, risky in practice";
    PCT_PARTIAL: Warning, "dmarc-pct-partial",
        "`pct` below 100: RFC 7489 receivers apply the policy to only part of the failing mail";
    SUBDOMAIN_WEAKER: Warning, "dmarc-subdomain-policy-weaker",
        "`sp` or `np` is weaker than `p`: forged mail from subdomains is stopped less";
    REPORT_NOT_MAILTO: Warning, "dmarc-report-not-mailto",
        "a `rua`/`ruf` URI is not `mailto:`, the only scheme receivers must support";
    REPORT_UNDELIVERABLE: Warning, "dmarc-report-undeliverable",
        "a `rua`/`ruf` address's domain accepts no mail (null MX, or no MX and no address)";
}

/// RFC 7489 §6.6.3 step 3: a DMARC record starts with the tag `v=DMARC1` (white space
/// around `=` allowed, RFC 6376 §3.2). The exact spelling is checked by [`analyse`].
pub fn is_dmarc_record(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text);
    let first = text.split(';').next().unwrap_or("");
    match first.split_once('=') {
        Some((name, value)) => {
            name.trim_matches(is_wsp).eq_ignore_ascii_case("v")
                && value.trim_matches(is_wsp).eq_ignore_ascii_case("DMARC1")
        }
        None => false,
    }
}

fn is_wsp(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// What a DMARC record says and what is wrong with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// The tags in order, names in lowercase, values trimmed.
    pub tags: Vec<(String, String)>,
    /// Violations of RFC 7489 §6.4 / RFC 9989 (each makes the record invalid).
    pub errors: Vec<String>,
    /// `pct`, `rf`, `ri` as written (RFC 9989 removed them).
    pub removed: Vec<String>,
    /// Tags DMARC does not define, as written.
    pub unknown: Vec<String>,
    /// `p` is present but not the second tag.
    pub p_not_second: bool,
    /// There is no `p` tag (RFC 9989 §4.7: the record means `p=none`).
    pub p_missing: bool,
    /// Tag names written with capitals, as written.
    pub capitals: Vec<String>,
}

impl Analysis {
    /// The value of tag `name`.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The report URIs of `rua` and `ruf` (without `!size`).
    pub fn report_uris(&self) -> Vec<String> {
        ["rua", "ruf"]
            .iter()
            .filter_map(|t| self.tag(t))
            .flat_map(|v| v.split(','))
            .map(|u| {
                let u = u.trim_matches(is_wsp);
                u.split_once('!').map_or(u, |(uri, _)| uri).to_string()
            })
            .filter(|u| !u.is_empty())
            .collect()
    }
}

/// Analyses a DMARC record (RFC 7489 §6.3, §6.4; RFC 9989 §4.7).
pub fn analyse(text: &str) -> Analysis {
    let mut a = Analysis::default();
    for (index, segment) in text.split(';').enumerate() {
        let segment = segment.trim_matches(is_wsp);
        if segment.is_empty() {
            continue; // a trailing `;` (RFC 6376 §3.2), or an empty tag-spec, tolerated
        }
        let Some((name, value)) = segment.split_once('=') else {
            a.errors
                .push(format!("`{segment}` is not a `tag=value` pair"));
            continue;
        };
        let written = name.trim_matches(is_wsp);
        let value = value.trim_matches(is_wsp);
        let valid_name = written.starts_with(|c: char| c.is_ascii_alphabetic())
            && written
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            a.errors.push(format!("`{written}` is not a tag name"));
            continue;
        }
        // RFC 7489 §6.4 writes tag names as ABNF strings, which are case-insensitive
        // (RFC 5234 §2.3); the DKIM tag-list rule it builds on (RFC 6376 §3.2) says
        // case-sensitive. Accepted, and noted.
        let lower = written.to_ascii_lowercase();
        let name = lower.as_str();
        if name != written {
            a.capitals.push(written.to_string());
        }
        if a.tags.iter().any(|(n, _)| n == name) {
            a.errors.push(format!(
                "the tag `{name}` appears twice, which makes the tag list invalid (RFC 6376 §3.2)"
            ));
            continue;
        }
        if index == 0 && !(name == "v" && value == "DMARC1") {
            a.errors.push(format!(
                "the record must start with exactly `v=DMARC1` (RFC 7489 §6.4), not `{segment}`"
            ));
        }
        a.tags.push((name.to_string(), value.to_string()));
        if name != "v" && index > 0 {
            check_tag(&mut a, name, value);
        } else if name == "v" && index > 0 {
            a.errors.push("`v=DMARC1` must be the first tag".into());
        }
    }
    match a.tags.iter().position(|(n, _)| n == "p") {
        None => a.p_missing = true,
        Some(position) => a.p_not_second = position != 1,
    }
    a
}

fn check_tag(a: &mut Analysis, name: &str, value: &str) {
    let lower = value.to_ascii_lowercase();
    let one_of = |allowed: &[&str]| allowed.contains(&lower.as_str());
    let error = match name {
        "p" | "sp" | "np" => (!one_of(&["none", "quarantine", "reject"]))
            .then(|| format!("`{name}={value}`: the policy must be none, quarantine or reject")),
        "adkim" | "aspf" => (!one_of(&["r", "s"]))
            .then(|| format!("`{name}={value}`: the alignment mode must be r or s")),
        "fo" => (value.is_empty()
            || !lower
                .split(':')
                .all(|o| matches!(o.trim_matches(is_wsp), "0" | "1" | "d" | "s")))
        .then(|| format!("`fo={value}`: failure options are 0, 1, d and s, joined by `:`")),
        "psd" => (!one_of(&["y", "n", "u"]))
            .then(|| format!("`psd={value}`: must be y, n or u (RFC 9989 §4.7)")),
        "t" => {
            (!one_of(&["y", "n"])).then(|| format!("`t={value}`: must be y or n (RFC 9989 §4.7)"))
        }
        "rua" | "ruf" => uri_list_error(name, value),
        "pct" | "rf" | "ri" => {
            let note = match name {
                "pct" if !matches!(value.parse::<u8>(), Ok(0..=100)) => {
                    " (and not an integer from 0 to 100)"
                }
                "ri" if value.parse::<u32>().is_err() => " (and not an integer)",
                "rf" if !lower.split(':').all(|f| f.trim_matches(is_wsp) == "afrf") => {
                    " (and not `afrf`)"
                }
                _ => "",
            };
            a.removed.push(format!("{name}={value}{note}"));
            None
        }
        _ => {
            a.unknown.push(format!("{name}={value}"));
            None
        }
    };
    if let Some(error) = error {
        a.errors.push(error);
    }
}

/// RFC 7489 §6.4 `dmarc-uri`: `URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]`, separated
/// by `,`; a `mailto:` URI needs an address with a valid domain.
fn uri_list_error(name: &str, value: &str) -> Option<String> {
    if value.is_empty() {
        return Some(format!("`{name}=` has no URI"));
    }
    for item in value.split(',') {
        let item = item.trim_matches(is_wsp);
        let (uri, size) = match item.split_once('!') {
            Some((u, s)) => (u, Some(s)),
            None => (item, None),
        };
        if let Some(size) = size {
            let digits = size.trim_end_matches(['k', 'm', 'g', 't', 'K', 'M', 'G', 'T']);
            if digits.is_empty()
                || !digits.bytes().all(|b| b.is_ascii_digit())
                || size.len() > digits.len() + 1
            {
                return Some(format!(
                    "`{name}`: `!{size}` is not a size (digits and an optional k, m, g or t)"
                ));
            }
        }
        let Some((scheme, rest)) = uri.split_once(':') else {
            return Some(format!(
                "`{name}`: `{uri}` is not a URI; write `mailto:{uri}`"
            ));
        };
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok || rest.is_empty() || uri.contains(is_wsp) {
            return Some(format!("`{name}`: `{uri}` is not a URI"));
        }
        if scheme.eq_ignore_ascii_case("mailto") && mailto_domain(uri).is_none() {
            return Some(format!(
                "`{name}`: `{uri}` is not a mail address with a valid domain"
            ));
        }
    }
    None
}

/// The domain of a `mailto:` URI (`mailto:dmarc@example.net?subject=x` → `example.net`).
fn mailto_domain(uri: &str) -> Option<Name> {
    let (scheme, rest) = uri.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("mailto") {
        return None;
    }
    let address = rest.split('?').next()?;
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() {
        return None;
    }
    Name::host(domain).ok().filter(|d| d.as_str().contains('.'))
}

/// The DMARC record the planner wants for the domain, as a zone-file line.
fn desired(ctx: &DomainContext<'_>) -> Option<(String, String)> {
    ctx.desired
        .iter()
        .find(|d| d.purpose == RecordPurpose::Dmarc)
        .map(|d| (d.record.data.value(), crate::support::line(&d.record)))
}

fn publish_fix(ctx: &DomainContext<'_>, name: &Name) -> String {
    match desired(ctx) {
        Some((_, line)) => format!("publish {line}"),
        None => format!(
            "publish {name} TXT \"{}\"",
            mailzone_records::dmarc::value(&ctx.domain.dmarc)
        ),
    }
}

fn expected_value(ctx: &DomainContext<'_>) -> String {
    desired(ctx)
        .map(|(value, _)| value)
        .unwrap_or_else(|| mailzone_records::dmarc::value(&ctx.domain.dmarc))
}

/// True when reports to `report` stay within the domain's organisation (see the module
/// documentation for the approximation).
fn same_organisation(ctx: &DomainContext<'_>, report: &Name) -> bool {
    let domain = &ctx.domain.name;
    report.is_within(domain) || domain.is_within(report) || report.is_within(&ctx.domain.zone)
}

/// Every DMARC finding for the domain (see the module documentation for the rules).
pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let domain = &ctx.domain.name;
    let Ok(name) = domain.prefixed("_dmarc") else {
        return findings; // the planner could not build the name either; it says why
    };
    let answer = match crate::support::query(ctx, &name, "TXT").await {
        Ok(answer) => answer,
        Err(finding) => return vec![finding],
    };
    let texts = crate::support::texts(&answer.records);
    let records: Vec<&String> = texts
        .iter()
        .filter(|t| is_dmarc_record(t.as_bytes()))
        .collect();
    let text = match records.as_slice() {
        [] => {
            let seen = if texts.is_empty() {
                format!("no TXT record at {name}")
            } else {
                format!(
                    "{} (receivers discard TXT records that do not start with v=DMARC1, RFC 7489 §6.6.3)",
                    texts.join(" | ")
                )
            };
            findings.push(
                Finding::new(
                    MISSING,
                    name.to_string(),
                    format!(
                        "{domain} publishes no DMARC policy at {name}: receivers apply no DMARC policy to mail claiming to be from {domain} and send no reports (RFC 7489 §6.6.3)"
                    ),
                )
                .seen(seen)
                .expected(expected_value(ctx))
                .fix(publish_fix(ctx, &name)),
            );
            return findings;
        }
        [one] => (*one).clone(),
        several => {
            findings.push(
                Finding::new(
                    MULTIPLE,
                    name.to_string(),
                    format!(
                        "{name} has {} `v=DMARC1` records; with more than one, receivers apply none of them (RFC 7489 §6.6.3 step 5)",
                        several.len()
                    ),
                )
                .seen(several.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" | "))
                .expected(format!("exactly one: {}", expected_value(ctx)))
                .fix(format!(
                    "keep one record and remove the others: {}",
                    publish_fix(ctx, &name)
                )),
            );
            return findings;
        }
    };

    let analysis = analyse(&text);
    // Every finding below is about the served record: its text is what was seen.
    let about_record = |code: &'static Code, message: String| {
        Finding::new(code, name.to_string(), message).seen(text.clone())
    };
    if !analysis.errors.is_empty() {
        findings.push(
            about_record(
                SYNTAX,
                format!(
                    "the DMARC record of {domain} is not valid: {} (RFC 7489 §6.3, §6.4; RFC 9989 §4.7)",
                    analysis.errors.join("; ")
                ),
            )
            .expected(expected_value(ctx))
            .fix(publish_fix(ctx, &name)),
        );
    }
    if analysis.p_missing {
        findings.push(
            about_record(
                POLICY_NONE,
                format!(
                    "the DMARC record of {domain} has no `p` tag: receivers following RFC 9989 (§4.7) treat it as `p=none`, and RFC 7489 receivers, for which `p` was required, apply p=none only when `rua` is valid (§6.6.3 step 6) and otherwise ignore the record; forged mail from {domain} is not stopped"
                ),
            )
            .expected("p=quarantine or p=reject")
            .fix(format!(
                "add `p=reject` (or `p=quarantine`) right after `v=DMARC1`: {}",
                publish_fix(ctx, &name)
            )),
        );
    }
    if analysis
        .tag("p")
        .is_some_and(|p| p.eq_ignore_ascii_case("none"))
    {
        findings.push(
            about_record(
                POLICY_NONE,
                format!(
                    "the DMARC policy of {domain} is `p=none`: receivers deliver mail that fails DMARC as usual, so forged mail from {domain} is not stopped (monitoring only)"
                ),
            )
            .expected("p=quarantine or p=reject")
            .fix(format!(
                "once the reports show that your own mail passes, set `p=quarantine` or `p=reject` (mailzone: `dmarc = {{ policy = \"reject\" }}`); {}",
                publish_fix(ctx, &name)
            )),
        );
    }
    if !analysis.removed.is_empty() {
        findings.push(
            about_record(
                REMOVED_TAG,
                format!(
                    "the DMARC record of {domain} uses {}, removed by RFC 9989: receivers following it ignore them (`pct` no longer samples; a `pct=0` record is treated like pct=100)",
                    analysis.removed.join(", ")
                ),
            )
            .expected("no pct, rf or ri tags")
            .fix("remove the tags; use `t=y` (RFC 9989) instead of `pct` for a test phase"),
        );
    }
    if !analysis.unknown.is_empty() {
        findings.push(
            about_record(
                UNKNOWN_TAG,
                format!(
                    "the DMARC record of {domain} has tags DMARC does not define, which receivers ignore: {} (a typo?)",
                    analysis.unknown.join(", ")
                ),
            )
            .expected("only v, p, sp, np, adkim, aspf, fo, rua, ruf, psd, t")
            .fix("correct or remove the tags"),
        );
    }
    if !analysis.capitals.is_empty() {
        findings.push(
            about_record(
                TAG_CASE,
                format!(
                    "the DMARC record of {domain} writes tag names with capitals ({}): RFC 7489's grammar accepts them (ABNF strings are case-insensitive, RFC 5234 §2.3), but the DKIM tag-list syntax it builds on is case-sensitive (RFC 6376 §3.2), so some receivers may not recognise them",
                    analysis.capitals.join(", ")
                ),
            )
            .expected("tag names in lowercase")
            .fix(publish_fix(ctx, &name)),
        );
    }
    if analysis.p_not_second {
        findings.push(
            about_record(
                P_NOT_SECOND,
                format!(
                    "in the DMARC record of {domain}, `p` is not the second tag: RFC 7489 §6.4 puts it right after `v=DMARC1` and some older receivers expect it there (RFC 9989 allows any order)"
                ),
            )
            .expected("v=DMARC1; p=…; …")
            .fix(publish_fix(ctx, &name)),
        );
    }
    findings.extend(policy_strength(&name, &text, &analysis));
    findings.extend(report_schemes(&name, &text, &analysis));
    findings.extend(check_report_authorisation(ctx, &analysis).await);
    findings.extend(check_report_delivery(ctx, &analysis).await);
    findings
}

/// RFC 7489 §6.2: only `mailto:` report URIs are sure to be used.
fn report_schemes(name: &Name, text: &str, analysis: &Analysis) -> Vec<Finding> {
    let others: Vec<String> = analysis
        .report_uris()
        .into_iter()
        .filter(|uri| {
            uri.split_once(':')
                .is_some_and(|(scheme, _)| !scheme.eq_ignore_ascii_case("mailto"))
        })
        .collect();
    if others.is_empty() {
        return Vec::new();
    }
    vec![
        Finding::new(
            REPORT_NOT_MAILTO,
            name.to_string(),
            format!(
                "the DMARC record at {name} asks for reports at {}: receivers must support only `mailto:` report addresses (RFC 7489 §6.2), so few or none send reports there",
                others.join(", ")
            ),
        )
        .seen(text.to_string())
        .expected("rua/ruf addresses of the form mailto:<address>")
        .fix("replace them by mailto: addresses (mailzone: `dmarc = { rua = [\"mailto:…\"] }`)"),
    ]
}

/// How strongly a policy value acts on failing mail (none < quarantine < reject); `None`
/// for an invalid value (a syntax error, reported apart).
fn strength(policy: &str) -> Option<u8> {
    match policy.to_ascii_lowercase().as_str() {
        "none" => Some(0),
        "quarantine" => Some(1),
        "reject" => Some(2),
        _ => None,
    }
}

/// RFC 7489 §6.3 `pct` and `sp`, RFC 9989 §4.7 `np`: the parts of the record that weaken
/// the policy `p` sets.
fn policy_strength(name: &Name, text: &str, analysis: &Analysis) -> Vec<Finding> {
    let mut findings = Vec::new();
    let p = analysis.tag("p").unwrap_or("none");
    let Some(p_strength) = strength(p) else {
        return findings;
    };
    if p_strength > 0
        && let Some(pct) = analysis.tag("pct")
        && let Ok(pct) = pct.parse::<u8>()
        && pct < 100
    {
        let weaker = if p_strength == 2 {
            "quarantine"
        } else {
            "none"
        };
        findings.push(
            Finding::new(
                PCT_PARTIAL,
                name.to_string(),
                format!(
                    "the DMARC record at {name} has `pct={pct}`: receivers following RFC 7489 (§6.3) apply `p={p}` to only {pct}% of the mail failing DMARC and `{weaker}` to the rest, so some forged mail gets through (RFC 9989 receivers ignore `pct`)"
                ),
            )
            .seen(text.to_string())
            .expected("no pct (or pct=100)")
            .fix("remove `pct`; for a test phase use `t=y` (RFC 9989)"),
        );
    }
    let sp = analysis.tag("sp");
    let np = analysis.tag("np");
    for (tag, value) in [("sp", sp), ("np", np)] {
        let Some(value) = value else { continue };
        if strength(value).is_some_and(|s| s < p_strength) {
            let which = if tag == "sp" {
                "existing subdomains"
            } else {
                "subdomains that do not exist (RFC 9989 §4.7)"
            };
            findings.push(
                Finding::new(
                    SUBDOMAIN_WEAKER,
                    name.to_string(),
                    format!(
                        "the DMARC record at {name} has `{tag}={value}`, weaker than `p={p}`: forged mail from {which} is treated less strictly than mail from the domain itself (RFC 7489 §6.3)"
                    ),
                )
                .seen(text.to_string())
                .expected(format!("`{tag}` at least as strict as `p` ({p}), or no `{tag}`"))
                .fix(format!("remove `{tag}={value}` (subdomains then get `p`), or set `{tag}={p}`")),
            );
        }
    }
    findings
}

/// RFC 5321 §5.1, RFC 7505 §3: the domains of the `mailto:` report addresses accept mail.
async fn check_report_delivery(ctx: &DomainContext<'_>, analysis: &Analysis) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut asked: Vec<Name> = Vec::new();
    for uri in analysis.report_uris() {
        let Some(report) = mailto_domain(&uri) else {
            continue;
        };
        if report == ctx.domain.name || asked.contains(&report) {
            continue; // the domain's own MX is the MX check's
        }
        asked.push(report.clone());
        let answer = match crate::support::query(ctx, &report, "MX").await {
            Ok(answer) => answer,
            Err(finding) => {
                findings.push(finding);
                continue;
            }
        };
        let exchangers = crate::support::exchangers(answer.records.iter());
        let why = if exchangers.iter().any(|(_, host)| host.is_root()) {
            Some("it publishes a null MX (RFC 7505): it accepts no mail".to_string())
        } else if exchangers.is_empty() {
            match crate::support::addresses(ctx, &report).await {
                Ok((addresses, _)) if addresses.is_empty() => Some(
                    "it has neither MX nor A/AAAA records, so mail to it cannot be delivered (RFC 5321 §5.1)"
                        .to_string(),
                ),
                Ok(_) => None,
                Err(finding) => {
                    findings.push(finding);
                    None
                }
            }
        } else {
            None
        };
        if let Some(why) = why {
            findings.push(
                Finding::new(
                    REPORT_UNDELIVERABLE,
                    report.to_string(),
                    format!(
                        "{} asks for DMARC reports at {uri}, but {}: {why}, so the reports are lost",
                        ctx.domain.name,
                        report.as_str()
                    ),
                )
                .seen(format!("{uri}: {why}"))
                .expected(format!("{} with MX records of a host that accepts mail", report.as_str()))
                .fix(format!(
                    "report to an address in a domain that receives mail, or publish MX records for {}",
                    report.as_str()
                )),
            );
        }
    }
    findings
}

/// RFC 7489 §7.1: external report destinations must accept the domain's reports.
async fn check_report_authorisation(ctx: &DomainContext<'_>, analysis: &Analysis) -> Vec<Finding> {
    let mut findings = Vec::new();
    let domain = &ctx.domain.name;
    let mut asked: Vec<Name> = Vec::new();
    for uri in analysis.report_uris() {
        let Some(report) = mailto_domain(&uri) else {
            continue; // not mailto: nothing to authorise (and a bad one is a syntax error)
        };
        if same_organisation(ctx, &report) || asked.contains(&report) {
            continue;
        }
        asked.push(report.clone());
        let Ok(name) = report.prefixed(&format!("{}._report._dmarc", domain.as_str())) else {
            continue; // longer than a DNS name can be: no receiver could ask either
        };
        let answer = match crate::support::query(ctx, &name, "TXT").await {
            Ok(answer) => answer,
            Err(finding) => {
                findings.push(finding);
                continue;
            }
        };
        let authorised = answer.records.iter().any(|r| match &r.record.data {
            RData::Txt(bytes) => is_dmarc_record(bytes),
            _ => false,
        });
        if !authorised {
            findings.push(
                Finding::new(
                    REPORT_UNAUTHORIZED,
                    name.to_string(),
                    format!(
                        "{domain} asks for DMARC reports at {uri}, in another domain ({}), which does not publish {name} TXT \"v=DMARC1\": receivers send it no reports (RFC 7489 §7.1)",
                        report.as_str()
                    ),
                )
                .seen(format!("no v=DMARC1 TXT record at {name}"))
                .expected(format!("{name} TXT \"v=DMARC1\""))
                .fix(format!(
                    "have the operator of {} publish {name} 3600 IN TXT \"v=DMARC1\" (or `*._report._dmarc.{}` for every domain), or send the reports to an address in {domain}",
                    report.as_str(),
                    report.as_str()
                )),
            );
        }
    }
    findings
}

#[cfg(test)]
mod tests;
