//! Zone hygiene: a CNAME at the mail domain (RFC 1034 §3.6.2, RFC 2181 §10.1: a CNAME
//! cannot coexist with the MX, TXT and other records a mail domain needs), TXT
//! character-strings over 255 bytes (RFC 1035 §3.3.14: a length octet cannot say more), and
//! more than one record where a standard allows one (RFC 7208 §4.5 SPF, RFC 7489 §6.6.3
//! DMARC, RFC 8461 §3.1 MTA-STS, RFC 8460 §3 TLS-RPT, RFC 6376 §3.6.2.2 DKIM: with two,
//! receivers ignore both). Also home of `dns-lookup-failed`, the finding for a question
//! no server answered.

use std::collections::BTreeMap;

use mailzone_records::{Name, RData, RecordPurpose};

use crate::context::DomainContext;
use crate::finding::Finding;
use crate::support;

crate::codes::declare! {
    purpose: None;
    LOOKUP_FAILED: Error, "dns-lookup-failed",
        "a DNS question got no usable answer (timeout, SERVFAIL, REFUSED)";
    APEX_CNAME: Error, "zone-apex-cname",
        "the mail domain itself is a CNAME, which cannot coexist with MX and TXT";
    TXT_STRING_TOO_LONG: Error, "zone-txt-string-too-long",
        "a TXT character-string longer than 255 bytes was served";
    MULTIPLE_RECORDS: Error, "zone-multiple-records",
        "more than one SPF, DMARC, MTA-STS, TLS-RPT, DKIM or PACC record at one name";
}

/// The version tag a TXT value of mailzone's starts with (`v=spf1`, `v=DMARC1`, …).
fn version_tag(value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let tag = text
        .trim_start()
        .split([' ', ';'])
        .next()
        .unwrap_or("")
        .to_string();
    tag.to_ascii_lowercase().starts_with("v=").then_some(tag)
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let domain = &ctx.domain.name;

    // CNAME at the mail domain.
    match support::query(ctx, domain, "CNAME").await {
        Err(f) => findings.push(f),
        Ok(answer) => {
            let cnames = support::at_name(&answer, domain);
            if !cnames.is_empty() {
                let at_apex = domain == &ctx.domain.zone;
                let message = if at_apex {
                    format!(
                        "{domain} is the zone apex and has a CNAME: the apex must hold SOA and NS, and a CNAME cannot coexist with other data (RFC 1034 §3.6.2)"
                    )
                } else {
                    format!(
                        "{domain} is a CNAME: it cannot also hold the MX, SPF and other records a mail domain needs (RFC 1034 §3.6.2)"
                    )
                };
                findings.push(
                    Finding::new(APEX_CNAME, domain.to_string(), message)
                        .seen(support::lines(cnames.iter().map(|c| &c.record)))
                        .expected("no CNAME; the MX, TXT and other records directly at the name")
                        .fix(format!(
                            "remove {} and publish the records mailzone lists for {domain}",
                            support::lines(cnames.iter().map(|c| &c.record))
                        )),
                );
            }
        }
    }

    // TXT names the planner fills, with the version tag of each desired value there.
    let mut tags: BTreeMap<&Name, Vec<(String, RecordPurpose)>> = BTreeMap::new();
    for d in ctx.desired {
        if let RData::Txt(value) = &d.record.data {
            let entry = tags.entry(&d.record.name).or_default();
            if let Some(tag) = version_tag(value)
                && !entry.iter().any(|(t, _)| t.eq_ignore_ascii_case(&tag))
            {
                entry.push((tag, d.purpose));
            }
        }
    }
    let answers = futures_join(ctx, tags.keys().copied().collect()).await;
    for (name, answer) in tags.keys().zip(answers) {
        let answer = match answer {
            Ok(a) => a,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        for live in support::at_name(&answer, name) {
            let Some(strings) = &live.txt_strings else {
                continue;
            };
            if let Some(long) = strings.iter().find(|s| s.len() > 255) {
                findings.push(
                    Finding::new(
                        TXT_STRING_TOO_LONG,
                        name.to_string(),
                        format!(
                            "a TXT record at {name} has a character-string of {} bytes; one string holds at most 255 (RFC 1035 §3.3.14), so the server or the tool that read it is broken and receivers will not see this value as written",
                            long.len()
                        ),
                    )
                    .seen(support::line(&live.record))
                    .expected("strings of at most 255 bytes; longer values split into several strings")
                    .fix(format!(
                        "publish the value split into strings of at most 255 bytes: {}",
                        support::line(&live.record)
                    )),
                );
            }
        }
        for (tag, purpose) in &tags[name] {
            let same = support::txt_family(&answer, name, tag);
            if same.len() > 1 {
                let desired: Vec<_> = ctx
                    .desired
                    .iter()
                    .filter(|d| {
                        &d.record.name == *name
                            && matches!(&d.record.data, RData::Txt(v) if support::has_tag(v, tag))
                    })
                    .map(|d| &d.record)
                    .collect();
                let extra: Vec<_> = same
                    .iter()
                    .filter(|l| !desired.iter().any(|d| d.data == l.record.data))
                    .map(|l| support::line(&l.record))
                    .collect();
                let mut finding = Finding::new(
                    MULTIPLE_RECORDS,
                    name.to_string(),
                    format!(
                        "{name} has {} `{tag}` TXT records; only one is allowed, and with several receivers use none",
                        same.len()
                    ),
                )
                .seen(support::values(same.iter().copied()))
                .expected(format!(
                    "exactly one: {}",
                    desired
                        .iter()
                        .map(|d| d.data.value())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .fix(if extra.is_empty() {
                    format!("keep one `{tag}` record at {name} and remove the others")
                } else {
                    format!("remove {}", extra.join("; "))
                });
                finding.purpose = Some(*purpose);
                findings.push(finding);
            }
        }
    }
    findings
}

/// TXT answers for several names, asked concurrently.
async fn futures_join(
    ctx: &DomainContext<'_>,
    names: Vec<&Name>,
) -> Vec<Result<crate::lookup::Answer, Finding>> {
    futures::future::join_all(
        names
            .into_iter()
            .map(|name| support::query(ctx, name, "TXT")),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::lookup::{Answer, Lookup, LookupError, Rcode};
    use crate::testutil::{Fixture, case, check_cases, with_code};
    use async_trait::async_trait;
    use mailzone_records::Record;
    use mailzone_records::diff::LiveRecord;

    check_cases!(
        zone_cases,
        [
            case("CNAME at the apex")
                .zone("example.org. 300 IN CNAME example.net.\n")
                .fires("zone-apex-cname", Severity::Error, "example.org."),
            case("two SPF records")
                .add("example.org. 300 IN TXT \"v=spf1 a -all\"\n")
                .fires("zone-multiple-records", Severity::Error, "example.org.")
                .purpose(RecordPurpose::Spf)
                .fix("remove example.org. 300 IN TXT \"v=spf1 a -all\""),
            case("two DMARC records")
                .add("_dmarc.example.org. 300 IN TXT \"v=DMARC1; p=none\"\n")
                .fires(
                    "zone-multiple-records",
                    Severity::Error,
                    "_dmarc.example.org.",
                ),
            // A foreign TXT beside one SPF record is fine.
            case("a foreign TXT beside one SPF record")
                .add("example.org. 300 IN TXT \"v=spf10 is not spf\"\n")
                .quiet(),
        ]
    );

    /// Serves one TXT record with a character-string over 255 bytes, as a broken server or
    /// data source would hand it over.
    struct LongTxt;

    #[async_trait]
    impl Lookup for LongTxt {
        async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError> {
            let records = if rtype == "TXT" && name.as_str() == "example.org" {
                let long = vec![b'a'; 300];
                let mut value = b"v=spf1 ".to_vec();
                value.extend_from_slice(&long);
                vec![LiveRecord {
                    record: Record {
                        name: name.clone(),
                        ttl: 300,
                        data: RData::Txt(value.clone()),
                    },
                    txt_strings: Some(vec![value]),
                }]
            } else {
                Vec::new()
            };
            Ok(Answer {
                rcode: Rcode::NoError,
                records,
                cname_chain: Vec::new(),
                authenticated: false,
            })
        }
    }

    #[tokio::test]
    async fn txt_strings_over_255_bytes_fire() {
        let f = Fixture::new("");
        case("a TXT string over 255 bytes")
            .fires("zone-txt-string-too-long", Severity::Error, "example.org.")
            .alone()
            .assert(&check(&f.ctx(&LongTxt)).await);
    }

    struct Broken;

    #[async_trait]
    impl Lookup for Broken {
        async fn query(&self, name: &Name, _rtype: &str) -> Result<Answer, LookupError> {
            if name.as_str() == "example.org" {
                return Err(LookupError("no answer from 127.0.0.1:53 within 5s".into()));
            }
            Ok(Answer {
                rcode: Rcode::ServFail,
                records: Vec::new(),
                cname_chain: Vec::new(),
                authenticated: false,
            })
        }
    }

    #[tokio::test]
    async fn unanswered_questions_fire() {
        let f = Fixture::new("");
        let findings = check(&f.ctx(&Broken)).await;
        let failed = with_code(&findings, "dns-lookup-failed");
        assert!(failed.contains(&(Severity::Error, "example.org.".to_string())));
        assert!(failed.contains(&(Severity::Error, "_dmarc.example.org.".to_string())));
        let servfail = findings
            .iter()
            .find(|f| f.name == "_dmarc.example.org.")
            .unwrap();
        assert!(servfail.seen.as_deref().unwrap().starts_with("SERVFAIL"));
    }
}
