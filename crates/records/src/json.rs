//! The JSON form of desired records: an array of
//! `{"domain", "name", "type", "ttl", "value", "recordType"}` objects (a contract scripts use),
//! plus `rdata`, the zone-file presentation of the data (TXT split and quoted).

use serde::Serialize;

use crate::name::Name;
use crate::record::{DesiredRecord, RecordPurpose};
use crate::zonefile;

/// One record as JSON. `name` is absolute (trailing dot), `value` is what a provider's
/// web form wants (TXT joined, unquoted), `rdata` what a zone file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonRecord {
    pub domain: String,
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub value: String,
    #[serde(rename = "recordType")]
    pub purpose: RecordPurpose,
    pub rdata: String,
}

/// Converts one domain's records to their JSON form.
pub fn records(domain: &Name, records: &[DesiredRecord]) -> Vec<JsonRecord> {
    records
        .iter()
        .map(|d| JsonRecord {
            domain: domain.as_str().to_string(),
            name: d.record.name.to_string(),
            rtype: d.record.data.rtype().to_string(),
            ttl: d.record.ttl,
            value: d.record.data.value(),
            purpose: d.purpose,
            rdata: zonefile::rdata_presentation(&d.record.data),
        })
        .collect()
}
