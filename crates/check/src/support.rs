//! Helpers shared by the checks: asking DNS with failures turned into a finding, zone-file
//! lines for fixes, addresses of a host.

use std::net::IpAddr;

use mailzone_records::diff::LiveRecord;
use mailzone_records::{Name, RData, Record};

use crate::context::DomainContext;
use crate::finding::Finding;
use crate::lookup::{Answer, Rcode};

/// Asks `rtype` at `name`. A question that got no usable answer (network trouble,
/// SERVFAIL, REFUSED) is returned as a `dns-lookup-failed` finding: the check could not be
/// done, which must not pass for "all is well".
pub async fn query(ctx: &DomainContext<'_>, name: &Name, rtype: &str) -> Result<Answer, Finding> {
    let why = match ctx.lookup.query(name, rtype).await {
        Ok(answer) => match &answer.rcode {
            Rcode::NoError | Rcode::NxDomain => return Ok(answer),
            Rcode::ServFail => {
                "SERVFAIL (the server could not answer; with DNSSEC, often a validation failure)"
                    .to_string()
            }
            Rcode::Refused => {
                "REFUSED (the server asked does not serve this name's zone)".to_string()
            }
            Rcode::Other(rcode) => rcode.clone(),
        },
        Err(e) => e.0,
    };
    Err(lookup_failed(
        name,
        format!("the question {name} {rtype} got no usable answer, so it could not be checked"),
        why,
        "make sure the zone's name servers answer (or pass working servers with --nameserver)",
    ))
}

/// A `dns-lookup-failed` finding at `name`: `message` says what could not be checked,
/// `why` what came back instead of an answer.
pub fn lookup_failed(name: &Name, message: String, why: String, fix: &str) -> Finding {
    Finding::new(crate::zone::LOOKUP_FAILED, name.to_string(), message)
        .seen(why)
        .expected("an answer (NOERROR or NXDOMAIN)")
        .fix(fix)
}

/// Records of the answer owned by `name` itself (not the end of a CNAME chain).
pub fn at_name<'a>(answer: &'a Answer, name: &Name) -> Vec<&'a LiveRecord> {
    if !answer.cname_chain.is_empty() {
        return Vec::new();
    }
    answer
        .records
        .iter()
        .filter(|r| &r.record.name == name)
        .collect()
}

/// The A and AAAA addresses of `host` (CNAMEs followed) and the CNAME chain followed to
/// them.
pub async fn addresses(
    ctx: &DomainContext<'_>,
    host: &Name,
) -> Result<(Vec<IpAddr>, Vec<Name>), Finding> {
    let (a, aaaa) = tokio::join!(query(ctx, host, "A"), query(ctx, host, "AAAA"));
    let (a, aaaa) = (a?, aaaa?);
    let mut out = Vec::new();
    for r in a.records.iter().chain(aaaa.records.iter()) {
        match r.record.data {
            RData::A(ip) => out.push(IpAddr::V4(ip)),
            RData::Aaaa(ip) => out.push(IpAddr::V6(ip)),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    let chain = if a.cname_chain.is_empty() {
        aaaa.cname_chain
    } else {
        a.cname_chain
    };
    Ok((out, chain))
}

/// `finding` about an MX or SRV `target` that is an alias (`chain` is its CNAME chain): the
/// record must name the host itself (RFC 5321 §5.1, RFC 2782), so what was seen is the
/// CNAME and what is expected a host with addresses of its own.
pub fn alias_target(finding: Finding, target: &Name, chain: &[Name]) -> Finding {
    finding
        .seen(format!("{target} IN CNAME {}", chain[0]))
        .expected(format!("{target} with its own A/AAAA records"))
}

/// The targets of the PTR records among `records`.
pub fn ptr_names(records: &[LiveRecord]) -> Vec<Name> {
    records
        .iter()
        .filter_map(|l| match &l.record.data {
            RData::Ptr(target) => Some(target.clone()),
            _ => None,
        })
        .collect()
}

/// The values of the TXT records among `records`, as text (invalid UTF-8 replaced).
pub fn texts(records: &[LiveRecord]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.record.data {
            RData::Txt(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

/// The (preference, exchange) of the MX records among `records`.
pub fn exchangers<'a>(records: impl IntoIterator<Item = &'a LiveRecord>) -> Vec<(u16, Name)> {
    records
        .into_iter()
        .filter_map(|l| match &l.record.data {
            RData::Mx {
                preference,
                exchange,
            } => Some((*preference, exchange.clone())),
            _ => None,
        })
        .collect()
}

/// One TLSA record among live records: its fields and the record they came from.
pub struct TlsaRecord<'a> {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: &'a [u8],
    pub record: &'a Record,
}

/// The TLSA records among `records`.
pub fn tlsa_records<'a>(records: impl IntoIterator<Item = &'a LiveRecord>) -> Vec<TlsaRecord<'a>> {
    records
        .into_iter()
        .filter_map(|l| match &l.record.data {
            RData::Tlsa {
                usage,
                selector,
                matching_type,
                data,
            } => Some(TlsaRecord {
                usage: *usage,
                selector: *selector,
                matching: *matching_type,
                data,
                record: &l.record,
            }),
            _ => None,
        })
        .collect()
}

/// One zone-file line (absolute owner, TTL, class, type, data): what to publish or remove.
pub fn line(record: &Record) -> String {
    format!(
        "{} {} IN {} {}",
        record.name,
        record.ttl,
        record.data.rtype(),
        mailzone_records::zonefile::rdata_presentation(&record.data)
    )
}

/// Lines of several records, `; `-separated.
pub fn lines<'a>(records: impl IntoIterator<Item = &'a Record>) -> String {
    records.into_iter().map(line).collect::<Vec<_>>().join("; ")
}

/// The record data only, as a person reads it (TXT as its joined text).
pub fn values<'a>(records: impl IntoIterator<Item = &'a LiveRecord>) -> String {
    records
        .into_iter()
        .map(|r| r.record.data.value())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The joined text of the TXT records of an answer (at `name` itself) whose value starts
/// with the version tag `tag` (`v=spf1`, case-insensitive, followed by the end, a space or
/// a `;`).
pub fn txt_family<'a>(answer: &'a Answer, name: &Name, tag: &str) -> Vec<&'a LiveRecord> {
    at_name(answer, name)
        .into_iter()
        .filter(|r| match &r.record.data {
            RData::Txt(bytes) => has_tag(bytes, tag),
            _ => false,
        })
        .collect()
}

/// True when `value` starts with the version tag `tag` (case-insensitive) followed by its
/// end, a space or a `;`.
pub fn has_tag(value: &[u8], tag: &str) -> bool {
    let text = String::from_utf8_lossy(value);
    let text = text.trim_start();
    text.len() >= tag.len()
        && text.is_char_boundary(tag.len())
        && text[..tag.len()].eq_ignore_ascii_case(tag)
        && text[tag.len()..]
            .chars()
            .next()
            .is_none_or(|c| c == ' ' || c == ';')
}

/// Every IP address of the server, v4 first.
pub fn server_ips(ctx: &DomainContext<'_>) -> Vec<IpAddr> {
    ctx.server
        .ipv4
        .iter()
        .map(|ip| IpAddr::V4(*ip))
        .chain(ctx.server.ipv6.iter().map(|ip| IpAddr::V6(*ip)))
        .collect()
}

/// Whether the domain receives mail: the planner wants MX records for it.
pub fn receives_mail(ctx: &DomainContext<'_>) -> bool {
    ctx.desired
        .iter()
        .any(|d| matches!(d.record.data, RData::Mx { .. }) && d.record.name == ctx.domain.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_whole_words() {
        assert!(has_tag(b"v=spf1 mx -all", "v=spf1"));
        assert!(has_tag(b"V=SPF1", "v=spf1"));
        assert!(has_tag(b"v=DMARC1;p=none", "v=DMARC1"));
        assert!(!has_tag(b"v=spf10 mx", "v=spf1"));
        assert!(!has_tag(b"google-site-verification=x", "v=spf1"));
        assert!(!has_tag("v=spé".as_bytes(), "v=spf1"));
    }
}
