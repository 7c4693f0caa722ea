//! A zone's outcome in JSON (the `zones[]` items of `plan`/`apply --format json` and of
//! the API's plan), serialized straight from the outcome: a run of 100,000 zones writes
//! each one without building a `serde_json::Value` of it first. Every object's keys are
//! written in the order serde_json's own maps keep them (sorted), so the bytes are those
//! of [`zone_json`]'s value printed.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use mailzone_dns::ReadMethod;
use mailzone_records::diff::PlanEntry;
use mailzone_records::{Name, Record, zonefile};

use super::ZoneOutcome;

/// One zone's outcome as JSON, serializable as it is.
pub struct ZoneJson<'a>(pub &'a ZoneOutcome);

/// One zone's outcome as a JSON value.
pub fn zone_json(zone: &ZoneOutcome) -> serde_json::Value {
    serde_json::to_value(ZoneJson(zone)).expect("a zone's outcome is plain JSON")
}

impl Serialize for ZoneJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let zone = self.0;
        let domains: Vec<&str> = zone.domains.iter().map(Name::as_str).collect();
        let changes: Vec<ChangeJson> = zone.entries().into_iter().map(ChangeJson).collect();
        let mut map = serializer.serialize_map(Some(10))?;
        map.serialize_entry("applied", &zone.applied)?;
        map.serialize_entry("capabilities", &zone.capabilities)?;
        map.serialize_entry("changes", &changes)?;
        map.serialize_entry("dnsServer", &zone.dns_server)?;
        map.serialize_entry("domains", &domains)?;
        map.serialize_entry("readBy", &zone.method.map(ReadMethod::name))?;
        map.serialize_entry("replans", &zone.replans)?;
        map.serialize_entry("serial", &zone.serial)?;
        map.serialize_entry("updatesSent", &zone.updates_sent)?;
        map.serialize_entry("zone", zone.zone.as_str())?;
        map.end()
    }
}

/// One change of a zone: an add, a replacement (the old records and the new ones of one
/// RRset slot) or a delete.
struct ChangeJson(PlanEntry);

impl Serialize for ChangeJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (action, purpose, old, new): (_, _, &[Record], &[Record]) = match &self.0 {
            PlanEntry::Add(d) => ("add", Some(d.purpose), &[], std::slice::from_ref(&d.record)),
            PlanEntry::Replace { purpose, old, new } => ("replace", Some(*purpose), old, new),
            PlanEntry::Delete(purpose, r) => ("delete", *purpose, std::slice::from_ref(r), &[]),
        };
        let first = new.first().or(old.first()).expect("a change has a record");
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("action", action)?;
        map.serialize_entry("name", &first.name.to_string())?;
        map.serialize_entry("new", &Records(new))?;
        map.serialize_entry("old", &Records(old))?;
        map.serialize_entry("recordType", &purpose)?;
        map.serialize_entry("type", &first.data.rtype())?;
        map.end()
    }
}

/// Records as an array of `{ rdata, ttl, value }`.
struct Records<'a>(&'a [Record]);

impl Serialize for Records<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for record in self.0 {
            seq.serialize_element(&RecordJson(record))?;
        }
        seq.end()
    }
}

struct RecordJson<'a>(&'a Record);

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.0;
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("rdata", &zonefile::rdata_presentation(&record.data))?;
        map.serialize_entry("ttl", &record.ttl)?;
        map.serialize_entry("value", &record.data.value())?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use mailzone_dns::rfc2136::CAPABILITIES;
    use mailzone_records::diff::{ChangeSet, LiveRecord};
    use mailzone_records::{DesiredRecord, RData, RecordPurpose};

    use super::*;

    fn record(name: &str, data: RData) -> Record {
        Record {
            name: Name::owner(name).unwrap(),
            ttl: 3600,
            data,
        }
    }

    fn txt(name: &str, text: &str) -> Record {
        record(name, RData::Txt(text.as_bytes().to_vec()))
    }

    /// A zone with an add, a replacement (a DKIM key) and a delete (a foreign-typed
    /// record mailzone no longer wants), read by a transfer or not read at all.
    fn outcomes() -> Vec<ZoneOutcome> {
        let old_key = txt("s1._domainkey.example.org", "v=DKIM1; k=rsa; p=AAAA");
        let new_key = txt(
            "s1._domainkey.example.org",
            "v=DKIM1; k=rsa; p=BBBB \"quoted\"",
        );
        let changes = ChangeSet {
            adds: vec![
                DesiredRecord {
                    purpose: RecordPurpose::Dkim,
                    record: new_key,
                },
                DesiredRecord {
                    purpose: RecordPurpose::Mx,
                    record: record(
                        "example.org",
                        RData::Mx {
                            preference: 10,
                            exchange: Name::owner("mail.example.org").unwrap(),
                        },
                    ),
                },
            ],
            deletes: vec![
                (Some(RecordPurpose::Dkim), LiveRecord::from_record(old_key)),
                (
                    None,
                    LiveRecord::from_record(txt("_dmarc.example.org", "v=DMARC1; p=none")),
                ),
            ],
            ..ChangeSet::default()
        };
        let outcome = ZoneOutcome {
            zone: Name::owner("example.org").unwrap(),
            dns_server: "primary".into(),
            domains: vec![Name::owner("example.org").unwrap()],
            method: Some(ReadMethod::Transfer),
            capabilities: CAPABILITIES,
            serial: 7,
            changes,
            applied: true,
            updates_sent: 1,
            replans: 0,
        };
        let unread = ZoneOutcome {
            method: None,
            changes: ChangeSet::default(),
            applied: false,
            updates_sent: 0,
            ..outcome.clone()
        };
        vec![outcome, unread]
    }

    /// Written straight, a zone reads byte for byte as its value printed (whose maps keep
    /// their keys sorted): the order of every object's keys is serde_json's.
    #[test]
    fn written_straight_it_is_its_value_printed() {
        for zone in outcomes() {
            let value = zone_json(&zone);
            assert_eq!(
                serde_json::to_string_pretty(&ZoneJson(&zone)).unwrap(),
                serde_json::to_string_pretty(&value).unwrap()
            );
            assert_eq!(
                serde_json::to_string(&ZoneJson(&zone)).unwrap(),
                value.to_string()
            );
        }
    }

    #[test]
    fn the_changes_name_their_action_records_and_purpose() {
        let value = zone_json(&outcomes()[0]);
        assert_eq!(value["readBy"], "transfer");
        assert_eq!(value["capabilities"], CAPABILITIES.json());
        let changes = value["changes"].as_array().unwrap();
        let actions: Vec<(&str, &str, &str)> = changes
            .iter()
            .map(|c| {
                let purpose = c["recordType"].as_str().unwrap_or("-");
                (
                    c["action"].as_str().unwrap(),
                    c["type"].as_str().unwrap(),
                    purpose,
                )
            })
            .collect();
        assert_eq!(
            actions,
            [
                ("add", "MX", "mx"),
                ("replace", "TXT", "dkim"),
                ("delete", "TXT", "-")
            ]
        );
        let replaced = &changes[1];
        assert_eq!(replaced["name"], "s1._domainkey.example.org.");
        assert_eq!(replaced["old"][0]["value"], "v=DKIM1; k=rsa; p=AAAA");
        assert_eq!(
            replaced["new"][0]["rdata"],
            "\"v=DKIM1; k=rsa; p=BBBB \\\"quoted\\\"\""
        );
        assert_eq!(replaced["new"][0]["ttl"], 3600);
        assert_eq!(zone_json(&outcomes()[1])["readBy"], serde_json::Value::Null);
    }
}
