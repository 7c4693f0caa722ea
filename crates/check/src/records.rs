//! Every desired record, compared with what DNS serves (RFC 1035 §3.2 records, RFC 2181
//! §5 RRsets): missing, wrong value, extra values at a name and type mailzone owns.
//!
//! The comparison is [`mailzone_records::diff::diff`] with an empty ledger, so "owned" means
//! exactly what `mailzone apply` would change (docs/publishing.md): the whole RRset for MX,
//! A, AAAA, CNAME, SRV and TLSA at a name the planner fills, the TXT values of mailzone's
//! families (`v=spf1`, `v=DMARC1`, …), the CAA properties of the configured CAs. Other
//! people's records (a site verification TXT, another CA's CAA) are never findings. TTLs are
//! not compared. A desired CNAME (`mta-sts`, `autoconfig`, …) is also satisfied by
//! addresses equal to its target's: what clients reach is the same host.

use std::collections::BTreeSet;

use mailzone_records::diff::{LiveRecord, PlanEntry, diff};
use mailzone_records::{DesiredRecord, Name, RData, Record, RecordPurpose};

use crate::context::DomainContext;
use crate::finding::Finding;
use crate::support;

crate::codes::declare! {
    purpose: None;
    MISSING: Error, "record-missing",
        "a record mailzone wants is not served";
    WRONG_VALUE: Error, "record-wrong-value",
        "the name and type are served with other values than mailzone wants";
    EXTRA_VALUE: Error, "record-extra-value",
        "a value mailzone does not want is served beside the wanted ones at a name and type it owns";
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    // TTLs are not compared: every record gets TTL 0 on both sides.
    let desired: Vec<DesiredRecord> = ctx
        .desired
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.record.ttl = 0;
            d
        })
        .collect();
    let slots: BTreeSet<(Name, &'static str)> = desired
        .iter()
        .map(|d| (d.record.name.clone(), d.record.data.rtype()))
        .collect();
    let answers = futures::future::join_all(
        slots
            .iter()
            .map(|(name, rtype)| support::query(ctx, name, rtype)),
    )
    .await;
    let mut live: Vec<LiveRecord> = Vec::new();
    let mut failed: BTreeSet<(Name, &'static str)> = BTreeSet::new();
    for ((name, rtype), answer) in slots.iter().zip(answers) {
        match answer {
            Ok(answer) => live.extend(support::at_name(&answer, name).into_iter().map(|l| {
                let mut l = l.clone();
                l.record.ttl = 0;
                l
            })),
            Err(f) => {
                failed.insert((name.clone(), rtype));
                findings.push(f);
            }
        }
    }
    let changes = diff(&ctx.domain.zone, &desired, &live, &BTreeSet::new(), &[]);
    let ttl_of = |record: &Record| {
        ctx.desired
            .iter()
            .find(|d| d.record.name == record.name && d.record.data == record.data)
            .map_or(ctx.domain.ttl, |d| d.record.ttl)
    };
    let with_ttl = |record: &Record| Record {
        ttl: ttl_of(record),
        ..record.clone()
    };
    let live_ttl = |record: &Record| Record {
        ttl: ctx.domain.ttl,
        ..record.clone()
    };
    for entry in changes.entries() {
        match entry {
            PlanEntry::Add(d) => {
                let slot = (d.record.name.clone(), d.record.data.rtype());
                if failed.contains(&slot) {
                    continue;
                }
                if let RData::Cname(target) = &d.record.data
                    && same_addresses(ctx, &d.record.name, target).await
                {
                    continue;
                }
                let record = with_ttl(&d.record);
                findings.push(typed(
                    Finding::new(
                        MISSING,
                        record.name.to_string(),
                        format!(
                            "the {} record {} is not served",
                            d.purpose,
                            describe(&record)
                        ),
                    )
                    .seen("nothing")
                    .expected(support::line(&record))
                    .fix(format!("publish {}", support::line(&record))),
                    d.purpose,
                ));
            }
            PlanEntry::Replace { purpose, old, new } => {
                let name = new[0].name.clone();
                let new: Vec<Record> = new.iter().map(with_ttl).collect();
                let old: Vec<Record> = old.iter().map(live_ttl).collect();
                findings.push(typed(
                    Finding::new(
                        WRONG_VALUE,
                        name.to_string(),
                        format!(
                            "{name} {} is served with {} instead of {}",
                            new[0].data.rtype(),
                            plural_values(&old),
                            plural_values(&new),
                        ),
                    )
                    .seen(join_values(&old))
                    .expected(join_values(&new))
                    .fix(format!(
                        "remove {}; publish {}",
                        support::lines(&old),
                        support::lines(&new)
                    )),
                    purpose,
                ));
            }
            PlanEntry::Delete(purpose, record) => {
                let record = live_ttl(&record);
                let wanted: Vec<Record> = ctx
                    .desired
                    .iter()
                    .filter(|d| {
                        d.record.name == record.name && d.record.data.rtype() == record.data.rtype()
                    })
                    .map(|d| d.record.clone())
                    .collect();
                let mut finding = Finding::new(
                    EXTRA_VALUE,
                    record.name.to_string(),
                    format!(
                        "{} {} also has the value {}, which mailzone does not want there",
                        record.name,
                        record.data.rtype(),
                        record.data.value()
                    ),
                )
                .seen(record.data.value())
                .expected(if wanted.is_empty() {
                    "nothing".to_string()
                } else {
                    join_values(&wanted)
                })
                .fix(format!("remove {}", support::line(&record)));
                if let Some(t) = purpose {
                    finding = typed(finding, t);
                }
                findings.push(finding);
            }
        }
    }
    findings
}

fn typed(mut finding: Finding, purpose: RecordPurpose) -> Finding {
    finding.purpose = Some(purpose);
    finding
}

fn describe(record: &Record) -> String {
    format!(
        "{} {} {}",
        record.name,
        record.data.rtype(),
        record.data.value()
    )
}

fn join_values(records: &[Record]) -> String {
    records
        .iter()
        .map(|r| r.data.value())
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural_values(records: &[Record]) -> String {
    let values: Vec<String> = records
        .iter()
        .map(|r| format!("`{}`", r.data.value()))
        .collect();
    values.join(", ")
}

/// True when `name` (not an alias) has addresses and they are exactly those of `target`.
async fn same_addresses(ctx: &DomainContext<'_>, name: &Name, target: &Name) -> bool {
    let (Ok((at_name, _)), Ok((at_target, _))) = (
        support::addresses(ctx, name).await,
        support::addresses(ctx, target).await,
    ) else {
        return false;
    };
    let set = |v: Vec<std::net::IpAddr>| v.into_iter().collect::<BTreeSet<_>>();
    !at_name.is_empty() && set(at_name) == set(at_target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::testutil::{case, check_cases};

    check_cases!(records_cases, [
        case("foreign records and other TTLs")
            .remove(&["^example.org. 3600 IN TXT \"v=spf1"])
            .add(
                "example.org. 86400 IN TXT \"v=spf1 mx -all\"\n\
                 example.org. 300 IN TXT \"google-site-verification=abc\"\n\
                 example.org. 300 IN CAA 0 issue \"digicert.com\"\n\
                 www.example.org. 300 IN A 192.0.2.80\n",
            )
            .quiet(),
        case("missing record")
            .remove(&["_dmarc"])
            .fires("record-missing", Severity::Error, "_dmarc.example.org.")
            .purpose(RecordPurpose::Dmarc)
            .fix("publish _dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=reject; rua=mailto:postmaster@example.org\""),
        case("wrong value")
            .remove(&["IN MX"])
            .add("example.org. 300 IN MX 20 mail.example.org.\n")
            .fires("record-wrong-value", Severity::Error, "example.org.")
            .seen("20 mail.example.org.")
            .expected("10 mail.example.org.")
            .fix("remove example.org. 3600 IN MX 20 mail.example.org.; publish example.org. 3600 IN MX 10 mail.example.org."),
        case("extra value")
            .add("example.org. 300 IN MX 20 backup.example.net.\n")
            .fires("record-extra-value", Severity::Error, "example.org.")
            .fix("remove example.org. 3600 IN MX 20 backup.example.net."),
        case("a CNAME replaced by the same addresses")
            .remove(&["autoconfig.example.org."])
            .add(
                "autoconfig.example.org. 300 IN A 192.0.2.10\n\
                 autoconfig.example.org. 300 IN AAAA 2001:db8::10\n",
            )
            .quiet(),
        case("a CNAME replaced by other addresses")
            .remove(&["autoconfig.example.org."])
            .add("autoconfig.example.org. 300 IN A 192.0.2.99\n")
            .fires("record-missing", Severity::Error, "autoconfig.example.org."),
    ]);
}
