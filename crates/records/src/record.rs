//! Resource records as the planner produces them, tagged with the [`RecordPurpose`] that
//! explains why they exist (RFC 1035 §3.2 for the record layout).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::name::Name;

/// Why a record exists (what Stalwart calls a `DnsRecordType`: the values of
/// `publishRecords` and `updateRecords`), plus mailzone's `address` (A/AAAA of mail hosts
/// inside the zone). The serialised names are the config and API names. A record's type
/// on the wire is its [`RrType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RecordPurpose {
    Mx,
    Address,
    Spf,
    Dkim,
    Dmarc,
    TlsRpt,
    MtaSts,
    Srv,
    AutoConfig,
    AutoConfigLegacy,
    AutoDiscover,
    Caa,
    Tlsa,
}

impl RecordPurpose {
    /// Every type, in the order records are printed.
    pub const ALL: [RecordPurpose; 13] = [
        RecordPurpose::Mx,
        RecordPurpose::Address,
        RecordPurpose::Spf,
        RecordPurpose::Dkim,
        RecordPurpose::Dmarc,
        RecordPurpose::TlsRpt,
        RecordPurpose::MtaSts,
        RecordPurpose::Srv,
        RecordPurpose::AutoConfig,
        RecordPurpose::AutoConfigLegacy,
        RecordPurpose::AutoDiscover,
        RecordPurpose::Caa,
        RecordPurpose::Tlsa,
    ];

    /// The camelCase name used in the config, the CLI and the API.
    pub fn name(self) -> &'static str {
        match self {
            RecordPurpose::Mx => "mx",
            RecordPurpose::Address => "address",
            RecordPurpose::Spf => "spf",
            RecordPurpose::Dkim => "dkim",
            RecordPurpose::Dmarc => "dmarc",
            RecordPurpose::TlsRpt => "tlsRpt",
            RecordPurpose::MtaSts => "mtaSts",
            RecordPurpose::Srv => "srv",
            RecordPurpose::AutoConfig => "autoConfig",
            RecordPurpose::AutoConfigLegacy => "autoConfigLegacy",
            RecordPurpose::AutoDiscover => "autoDiscover",
            RecordPurpose::Caa => "caa",
            RecordPurpose::Tlsa => "tlsa",
        }
    }

    /// A comma-separated list of every name, for error messages.
    pub fn all_names() -> String {
        RecordPurpose::ALL.map(RecordPurpose::name).join(", ")
    }
}

impl fmt::Display for RecordPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a record type name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown record type `{0}`; known types: {types}", types = RecordPurpose::all_names())]
pub struct UnknownRecordPurpose(pub String);

impl FromStr for RecordPurpose {
    type Err = UnknownRecordPurpose;

    /// Accepts the camelCase names case-insensitively (`tlsrpt` works as `tlsRpt`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordPurpose::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRecordPurpose(s.to_string()))
    }
}

/// A record's type on the wire: the types mailzone writes and reads (RFC 1035 §3.2.2,
/// RFC 3596 AAAA, RFC 2782 SRV, RFC 8659 CAA, RFC 6698 TLSA). Ordered by mnemonic, so
/// that lists sorted by type read alphabetically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RrType {
    A,
    Aaaa,
    Mx,
    Txt,
    Cname,
    Srv,
    Caa,
    Tlsa,
    Ptr,
    Ns,
}

impl RrType {
    /// Every type mailzone handles.
    pub const ALL: [RrType; 10] = [
        RrType::A,
        RrType::Aaaa,
        RrType::Mx,
        RrType::Txt,
        RrType::Cname,
        RrType::Srv,
        RrType::Caa,
        RrType::Tlsa,
        RrType::Ptr,
        RrType::Ns,
    ];

    /// The mnemonic of the zone-file presentation format.
    pub fn as_str(self) -> &'static str {
        match self {
            RrType::A => "A",
            RrType::Aaaa => "AAAA",
            RrType::Mx => "MX",
            RrType::Txt => "TXT",
            RrType::Cname => "CNAME",
            RrType::Srv => "SRV",
            RrType::Caa => "CAA",
            RrType::Tlsa => "TLSA",
            RrType::Ptr => "PTR",
            RrType::Ns => "NS",
        }
    }
}

impl Ord for RrType {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for RrType {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for RrType {
    /// Honours width and alignment (`{:<5}` lines up zone-file columns).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for RrType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Record data, in the forms mailzone produces. TXT holds the logical bytes; it is split
/// into character-strings only when rendered (see [`crate::txt`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx {
        preference: u16,
        exchange: Name,
    },
    Txt(Vec<u8>),
    Cname(Name),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    Caa {
        flags: u8,
        tag: String,
        value: String,
    },
    Tlsa {
        usage: u8,
        selector: u8,
        matching_type: u8,
        data: Vec<u8>,
    },
    /// Read by the checker (reverse DNS); the planner never produces it.
    Ptr(Name),
    /// Read by the checker (delegations); the planner never produces it.
    Ns(Name),
}

impl RData {
    /// The record's type on the wire.
    pub fn rtype(&self) -> RrType {
        match self {
            RData::A(_) => RrType::A,
            RData::Aaaa(_) => RrType::Aaaa,
            RData::Mx { .. } => RrType::Mx,
            RData::Txt(_) => RrType::Txt,
            RData::Cname(_) => RrType::Cname,
            RData::Srv { .. } => RrType::Srv,
            RData::Caa { .. } => RrType::Caa,
            RData::Tlsa { .. } => RrType::Tlsa,
            RData::Ptr(_) => RrType::Ptr,
            RData::Ns(_) => RrType::Ns,
        }
    }

    /// The value as a person or a provider's web form wants it: TXT as its joined text
    /// (not split, not quoted), everything else in zone-file presentation form.
    pub fn value(&self) -> String {
        match self {
            RData::Txt(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            other => crate::zonefile::rdata_presentation(other),
        }
    }
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Record {
    pub name: Name,
    pub ttl: u32,
    pub data: RData,
}

/// A record the planner says a domain needs, with the reason it exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DesiredRecord {
    pub purpose: RecordPurpose,
    pub record: Record,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_types_sort_by_mnemonic_and_print_padded() {
        let mut sorted = RrType::ALL;
        sorted.sort();
        let mnemonics: Vec<&str> = sorted.iter().map(|t| t.as_str()).collect();
        let mut alphabetical = mnemonics.clone();
        alphabetical.sort_unstable();
        assert_eq!(mnemonics, alphabetical);
        for t in RrType::ALL {
            assert_eq!(t.to_string(), t.as_str());
            assert_eq!(format!("{t:<6}|"), format!("{:<6}|", t.as_str()));
        }
        assert_eq!(serde_json::to_value(RrType::Tlsa).unwrap(), "TLSA");
    }

    #[test]
    fn record_type_names_round_trip() {
        for t in RecordPurpose::ALL {
            assert_eq!(t.name().parse::<RecordPurpose>().unwrap(), t);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
        }
        assert_eq!(
            "TLSRPT".parse::<RecordPurpose>().unwrap(),
            RecordPurpose::TlsRpt
        );
        let err = "mxx".parse::<RecordPurpose>().unwrap_err().to_string();
        assert!(err.contains("unknown record type `mxx`"), "{err}");
        assert!(err.contains("autoConfigLegacy"), "{err}");
    }
}
