//! Conversions between hickory's wire records and mailzone's [`Record`] / [`LiveRecord`]
//! (RFC 1035 §3.3 for A, MX, TXT, CNAME; RFC 3596 AAAA; RFC 2782 SRV; RFC 8659 CAA;
//! RFC 6698 TLSA).
//!
//! Reading keeps what an RFC 2136 delete or prerequisite must repeat byte for byte: TXT
//! character-strings exactly as served (RFC 1035 §3.3.14) in [`LiveRecord::txt_strings`],
//! CAA values as raw bytes. Writing splits TXT values mailzone generates at 255 bytes
//! ([`mailzone_records::txt::split`]).
//!
//! Names are lowercased and validated by [`Name::owner`]. Records whose owner (or target)
//! is not a name mailzone can represent — above all wildcards (`*.example.org`), but also
//! labels with escaped bytes — are reported as [`Unrepresentable`] and skipped by readers:
//! mailzone never writes such names, and RFC 2136 matches owner names literally
//! (§2.4, §2.5: a wildcard owner is not expanded), so a skipped record never belongs to an
//! RRset mailzone changes or places a prerequisite on.

use hickory_proto::rr::rdata::caa::CAA;
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector, TLSA};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SRV, TXT};
use hickory_proto::rr::{Name as WireName, RData as WireRData, Record as WireRecord, RecordType};
use mailzone_records::diff::LiveRecord;
use mailzone_records::{Name, RData, Record, txt};

/// The RR types mailzone models (those the planner writes); every other type is invisible to it.
pub const MODELLED_TYPES: [&str; 8] = ["A", "AAAA", "MX", "TXT", "CNAME", "SRV", "CAA", "TLSA"];

/// A wire record mailzone cannot represent (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{owner} {rtype}: {reason}")]
pub struct Unrepresentable {
    pub owner: String,
    pub rtype: String,
    pub reason: String,
}

/// The hickory record type of a mnemonic mailzone uses (`"TXT"`, `"SOA"`, …).
pub fn record_type(rtype: &str) -> Option<RecordType> {
    match rtype.to_ascii_uppercase().as_str() {
        "A" => Some(RecordType::A),
        "AAAA" => Some(RecordType::AAAA),
        "MX" => Some(RecordType::MX),
        "TXT" => Some(RecordType::TXT),
        "CNAME" => Some(RecordType::CNAME),
        "SRV" => Some(RecordType::SRV),
        "CAA" => Some(RecordType::CAA),
        "TLSA" => Some(RecordType::TLSA),
        "SOA" => Some(RecordType::SOA),
        "NS" => Some(RecordType::NS),
        "PTR" => Some(RecordType::PTR),
        _ => None,
    }
}

/// A mailzone name as an absolute wire name.
pub fn to_wire_name(name: &Name) -> WireName {
    if name.is_root() {
        return WireName::root();
    }
    // A `Name` holds only letters, digits, `-` and `_` in labels of 1 to 63 bytes, at most
    // 253 of them in all: taken as they are, without the escapes of the text form to parse.
    name.as_str()
        .split('.')
        .try_fold(WireName::root(), |wire, label| {
            wire.append_label(label.as_bytes())
        })
        .expect("a validated Name is a valid wire name")
}

/// A wire name as a mailzone name: lowercase, validated as an owner name. The root is
/// [`Name::root`] (the SRV "no service" target, the null MX).
pub fn from_wire_name(name: &WireName) -> Result<Name, String> {
    if name.is_root() {
        return Ok(Name::root());
    }
    if let Some(plain) = Name::owner_of_labels(name.iter()) {
        return Ok(plain);
    }
    let ascii = name.to_ascii();
    Name::owner(&ascii).map_err(|e| format!("name `{ascii}`: {e}"))
}

/// The wire RDATA of a record mailzone writes: TXT split at 255 bytes.
pub fn to_wire_rdata(data: &RData) -> WireRData {
    match data {
        RData::A(ip) => WireRData::A(A(*ip)),
        RData::Aaaa(ip) => WireRData::AAAA(AAAA(*ip)),
        RData::Mx {
            preference,
            exchange,
        } => WireRData::MX(MX::new(*preference, to_wire_name(exchange))),
        RData::Txt(bytes) => WireRData::TXT(TXT::from_bytes(txt::split(bytes))),
        RData::Cname(target) => WireRData::CNAME(CNAME(to_wire_name(target))),
        RData::Ptr(target) => WireRData::PTR(PTR(to_wire_name(target))),
        RData::Ns(target) => WireRData::NS(NS(to_wire_name(target))),
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => WireRData::SRV(SRV::new(*priority, *weight, *port, to_wire_name(target))),
        RData::Caa { flags, tag, value } => WireRData::CAA(caa(*flags, tag, value.as_bytes())),
        RData::Tlsa {
            usage,
            selector,
            matching_type,
            data,
        } => WireRData::TLSA(TLSA::new(
            CertUsage::from(*usage),
            Selector::from(*selector),
            Matching::from(*matching_type),
            data.clone(),
        )),
    }
}

/// The wire RDATA of a record as it was read: TXT with the character-strings the server
/// holds, so that a delete or a prerequisite matches it byte for byte (RFC 2136 §2.4.2,
/// §2.5.4).
pub fn live_to_wire_rdata(live: &LiveRecord) -> WireRData {
    match (&live.record.data, &live.txt_strings) {
        (RData::Txt(_), Some(strings)) => {
            WireRData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
        }
        (data, _) => to_wire_rdata(data),
    }
}

/// A mailzone record as a wire record of class IN.
pub fn to_wire_record(record: &Record) -> WireRecord {
    WireRecord::from_rdata(
        to_wire_name(&record.name),
        record.ttl,
        to_wire_rdata(&record.data),
    )
}

fn caa(flags: u8, tag: &str, value: &[u8]) -> CAA {
    // `CAA` is `#[non_exhaustive]`: start from a constructor, then set the raw fields so
    // the value goes on the wire exactly as given (hickory would re-encode a parsed
    // issuer value, changing its spacing).
    let mut caa = CAA::new_issue(false, None, Vec::new());
    caa.issuer_critical = flags & 0b1000_0000 != 0;
    caa.reserved_flags = flags & 0b0111_1111;
    caa.tag = tag.to_string();
    caa.value = value.to_vec();
    caa
}

/// A wire record as mailzone sees it: `Ok(None)` for a type mailzone does not model (SOA,
/// NS, DNSSEC records, …), `Err` for a record of a modelled type it cannot represent.
pub fn from_wire(record: &WireRecord) -> Result<Option<LiveRecord>, Unrepresentable> {
    let rtype = record.record_type();
    if !MODELLED_TYPES.contains(&rtype.to_string().as_str()) {
        return Ok(None);
    }
    let fail = |reason: String| Unrepresentable {
        owner: record.name.to_ascii(),
        rtype: rtype.to_string(),
        reason,
    };
    let name = from_wire_name(&record.name).map_err(fail)?;
    if name.is_root() {
        return Err(fail("records at the root are not mailzone's".into()));
    }
    let mut txt_strings = None;
    let data = match &record.data {
        WireRData::A(a) => RData::A(a.0),
        WireRData::AAAA(aaaa) => RData::Aaaa(aaaa.0),
        WireRData::MX(mx) => RData::Mx {
            preference: mx.preference,
            exchange: from_wire_name(&mx.exchange).map_err(fail)?,
        },
        WireRData::TXT(t) => {
            let strings: Vec<Vec<u8>> = t.txt_data.iter().map(|s| s.to_vec()).collect();
            let joined = txt::join(&strings);
            txt_strings = Some(strings);
            RData::Txt(joined)
        }
        WireRData::CNAME(c) => RData::Cname(from_wire_name(&c.0).map_err(fail)?),
        WireRData::PTR(p) => RData::Ptr(from_wire_name(&p.0).map_err(fail)?),
        WireRData::NS(n) => RData::Ns(from_wire_name(&n.0).map_err(fail)?),
        WireRData::SRV(srv) => RData::Srv {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: from_wire_name(&srv.target).map_err(fail)?,
        },
        WireRData::CAA(caa) => RData::Caa {
            flags: caa.flags(),
            tag: caa.tag.clone(),
            value: String::from_utf8(caa.value.clone())
                .map_err(|_| fail("the CAA value is not UTF-8".into()))?,
        },
        WireRData::TLSA(tlsa) => RData::Tlsa {
            usage: tlsa.cert_usage.into(),
            selector: tlsa.selector.into(),
            matching_type: tlsa.matching.into(),
            data: tlsa.cert_data.clone(),
        },
        other => return Err(fail(format!("unexpected RDATA {other:?}"))),
    };
    Ok(Some(LiveRecord {
        record: Record {
            name,
            ttl: record.ttl,
            data,
        },
        txt_strings,
    }))
}

/// An NS record as a transfer served it (NS is no type mailzone models, so [`from_wire`]
/// leaves it out), `None` for another type or an owner or host mailzone cannot represent.
pub fn ns_from_wire(record: &WireRecord) -> Option<Record> {
    let WireRData::NS(host) = &record.data else {
        return None;
    };
    Some(Record {
        name: from_wire_name(&record.name).ok()?,
        ttl: record.ttl,
        data: RData::Ns(from_wire_name(&host.0).ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode};
    use std::net::Ipv4Addr;

    fn name(s: &str) -> Name {
        Name::owner(s).unwrap()
    }

    // Found by fuzzing (fuzz/tests/dns.rs): a label read off the wire starting with `-`
    // made a `Name` that `to_wire_name` could not turn back into a wire name (a panic).
    #[test]
    fn a_wire_label_starting_with_a_hyphen_is_refused_not_a_name() {
        use hickory_proto::rr::domain::Label;
        let labels = [b"-ail".as_slice(), b"example", b"test"];
        let wire =
            WireName::from_labels(labels.map(|l| Label::from_raw_bytes(l).unwrap())).unwrap();
        let e = from_wire_name(&wire).unwrap_err();
        assert!(e.contains("-ail"), "{e}");
        // Plain labels, a hyphen inside or last, go both ways.
        let labels = [b"m-ail-".as_slice(), b"example", b"test"];
        let wire =
            WireName::from_labels(labels.map(|l| Label::from_raw_bytes(l).unwrap())).unwrap();
        let name = from_wire_name(&wire).unwrap();
        assert_eq!(name.as_str(), "m-ail-.example.test");
        assert_eq!(to_wire_name(&name), wire);
    }

    /// Labels taken as they are make the wire name hickory parses of the text form.
    #[test]
    fn a_name_s_labels_make_the_wire_name_of_its_text() {
        for text in [
            "example.org",
            "_25._tcp.mail.example.org",
            "s1._domainkey.xn--bcher-kva.example",
            "a-b.c0",
            &[
                "a".repeat(63),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(61),
            ]
            .join("."),
        ] {
            let wire = to_wire_name(&name(text));
            assert_eq!(
                wire,
                WireName::from_ascii(format!("{text}.")).unwrap(),
                "{text}"
            );
            assert!(wire.is_fqdn());
            assert_eq!(wire.to_ascii(), format!("{text}."));
        }
        assert!(to_wire_name(&Name::root()).is_root());
    }

    /// Encodes and decodes a record in a message, the way it crosses the network.
    fn wire_round_trip(record: WireRecord) -> WireRecord {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_answer(record);
        let bytes = m.to_vec().unwrap();
        Message::from_vec(&bytes).unwrap().answers.remove(0)
    }

    fn record(owner: &str, ttl: u32, data: RData) -> Record {
        Record {
            name: name(owner),
            ttl,
            data,
        }
    }

    /// The record as it reads back after crossing the network.
    fn live_round_trip(record: &Record) -> LiveRecord {
        from_wire(&wire_round_trip(to_wire_record(record)))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn txt_strings_split_unevenly_are_kept_and_joined() {
        let strings: Vec<&[u8]> = vec![b"v=DKIM1; k=rsa; ", b"p=MIIB", b"IjAN"];
        let wire = WireRecord::from_rdata(
            WireName::from_ascii("Sel._DomainKey.Example.ORG.").unwrap(),
            300,
            WireRData::TXT(TXT::from_bytes(strings.clone())),
        );
        let live = from_wire(&wire_round_trip(wire)).unwrap().unwrap();
        assert_eq!(live.record.name, name("sel._domainkey.example.org"));
        assert_eq!(
            live.record.data,
            RData::Txt(b"v=DKIM1; k=rsa; p=MIIBIjAN".to_vec())
        );
        let kept: Vec<Vec<u8>> = strings.iter().map(|s| s.to_vec()).collect();
        assert_eq!(live.txt_strings.as_ref(), Some(&kept));
        // A delete repeats the strings as read, not as mailzone would split them.
        match live_to_wire_rdata(&live) {
            WireRData::TXT(t) => assert_eq!(t.txt_data.len(), 3),
            other => panic!("{other:?}"),
        }
        // Written fresh, the same value is one string.
        match to_wire_rdata(&live.record.data) {
            WireRData::TXT(t) => assert_eq!(t.txt_data.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_txt_is_split_at_255_bytes() {
        let value = vec![b'x'; 800];
        match to_wire_rdata(&RData::Txt(value.clone())) {
            WireRData::TXT(t) => {
                let lens: Vec<usize> = t.txt_data.iter().map(|s| s.len()).collect();
                assert_eq!(lens, vec![255, 255, 255, 35]);
            }
            other => panic!("{other:?}"),
        }
        let record = record("big.example.org", 60, RData::Txt(value.clone()));
        assert_eq!(live_round_trip(&record).record, record);
    }

    #[test]
    fn caa_with_quotes_and_parameters_round_trips_byte_for_byte() {
        let caa = RData::Caa {
            flags: 128,
            tag: "issue".into(),
            value: "letsencrypt.org;accounturi=\"https://acme/1\"; validationmethods=dns-01".into(),
        };
        let record = record("example.org", 3600, caa);
        let wire = wire_round_trip(to_wire_record(&record));
        match &wire.data {
            WireRData::CAA(caa) => {
                assert!(caa.issuer_critical);
                assert_eq!(
                    caa.value,
                    b"letsencrypt.org;accounturi=\"https://acme/1\"; validationmethods=dns-01"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(from_wire(&wire).unwrap().unwrap().record, record);
    }

    #[test]
    fn tlsa_round_trips() {
        let tlsa = RData::Tlsa {
            usage: 3,
            selector: 1,
            matching_type: 1,
            data: (0u8..32).collect(),
        };
        let record = record("_25._tcp.mail.example.org", 300, tlsa);
        let live = live_round_trip(&record);
        assert_eq!(live.record, record);
        assert_eq!(live.txt_strings, None);
    }

    #[test]
    fn srv_root_target_and_null_mx() {
        let srv = RData::Srv {
            priority: 0,
            weight: 0,
            port: 0,
            target: Name::root(),
        };
        let srv = record("_imap._tcp.example.org", 300, srv);
        let wire = wire_round_trip(to_wire_record(&srv));
        match &wire.data {
            WireRData::SRV(s) => assert!(s.target.is_root()),
            other => panic!("{other:?}"),
        }
        assert_eq!(from_wire(&wire).unwrap().unwrap().record, srv);

        let null_mx = RData::Mx {
            preference: 0,
            exchange: Name::root(),
        };
        let mx = record("example.org", 300, null_mx);
        assert_eq!(live_round_trip(&mx).record, mx);
    }

    #[test]
    fn targets_are_lowercased() {
        let wire = WireRecord::from_rdata(
            WireName::from_ascii("Example.org.").unwrap(),
            300,
            WireRData::MX(MX::new(
                10,
                WireName::from_ascii("MAIL.Example.org.").unwrap(),
            )),
        );
        let live = from_wire(&wire).unwrap().unwrap();
        assert_eq!(
            live.record.data,
            RData::Mx {
                preference: 10,
                exchange: name("mail.example.org")
            }
        );
    }

    #[test]
    fn wildcards_are_unrepresentable_and_other_types_invisible() {
        let wild = WireRecord::from_rdata(
            WireName::from_ascii("*.example.org.").unwrap(),
            300,
            WireRData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
        );
        let err = from_wire(&wild).unwrap_err();
        assert_eq!(err.rtype, "A");
        assert!(err.owner.starts_with('*'), "{err}");

        let ns = WireRecord::from_rdata(
            WireName::from_ascii("example.org.").unwrap(),
            300,
            WireRData::NS(hickory_proto::rr::rdata::NS(
                WireName::from_ascii("ns1.example.org.").unwrap(),
            )),
        );
        assert_eq!(from_wire(&ns).unwrap(), None);
    }

    #[test]
    fn record_types_by_mnemonic() {
        for t in MODELLED_TYPES {
            assert_eq!(record_type(t).unwrap().to_string(), t);
        }
        assert_eq!(record_type("soa"), Some(RecordType::SOA));
        assert_eq!(record_type("HINFO"), None);
    }
}
