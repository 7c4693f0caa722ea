//! For tests: zones signed in memory, the way a signer would sign them (RFC 4034 §3, RFC
//! 4035 §2.2: a KSK signs the DNSKEY RRset, a ZSK every other authoritative RRset), with
//! Ed25519 keys (RFC 8080) from hickory-proto's ring backend, and with any validity
//! period (expired or future signatures). The records go into mailzone-check's
//! `dnssec::source::RecordsSource`, which answers like an authoritative server.

use hickory_proto::dnssec::crypto::Ed25519SigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, RRSIG, SigInput};
use hickory_proto::dnssec::{DigestType, SigningKey as _, TBS};
use hickory_proto::rr::{DNSClass, Name as WireName, RData, Record, RecordType, SerialNumber};

/// One zone's keys.
pub struct TestSigner {
    pub zone: WireName,
    ksk: Ed25519SigningKey,
    zsk: Ed25519SigningKey,
    pub ksk_dnskey: DNSKEY,
    pub zsk_dnskey: DNSKEY,
}

impl TestSigner {
    /// New random keys for `zone` (`example.test`).
    pub fn new(zone: &str) -> TestSigner {
        let zone = wire_name(zone);
        let ksk =
            Ed25519SigningKey::from_pkcs8(&Ed25519SigningKey::generate_pkcs8().unwrap()).unwrap();
        let zsk =
            Ed25519SigningKey::from_pkcs8(&Ed25519SigningKey::generate_pkcs8().unwrap()).unwrap();
        let ksk_dnskey = DNSKEY::new(true, true, false, ksk.to_public_key().unwrap());
        let zsk_dnskey = DNSKEY::new(true, false, false, zsk.to_public_key().unwrap());
        TestSigner {
            zone,
            ksk,
            zsk,
            ksk_dnskey,
            zsk_dnskey,
        }
    }

    /// The DS of the KSK (SHA-256) in zone-file form: a trust anchor, or the parent's
    /// record.
    pub fn ds(&self) -> String {
        let digest = self
            .ksk_dnskey
            .to_digest(&self.zone, DigestType::SHA256)
            .unwrap();
        format!(
            "{} 3600 IN DS {} 15 2 {}",
            self.zone,
            self.ksk_dnskey.calculate_key_tag().unwrap(),
            digest
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    }

    /// The DNSKEY RRset records.
    pub fn dnskey_records(&self) -> Vec<Record> {
        [&self.ksk_dnskey, &self.zsk_dnskey]
            .into_iter()
            .map(|k| {
                Record::from_rdata(
                    self.zone.clone(),
                    3600,
                    RData::DNSSEC(DNSSECRData::DNSKEY(k.clone())),
                )
            })
            .collect()
    }

    /// An RRSIG over `records` (one RRset), valid from `inception` to `expiration`
    /// (seconds since the epoch), by the KSK or the ZSK.
    pub fn rrsig(&self, records: &[Record], inception: u32, expiration: u32, ksk: bool) -> Record {
        let first = &records[0];
        let (key, dnskey): (&Ed25519SigningKey, &DNSKEY) = if ksk {
            (&self.ksk, &self.ksk_dnskey)
        } else {
            (&self.zsk, &self.zsk_dnskey)
        };
        let input = SigInput {
            type_covered: first.record_type(),
            algorithm: key.algorithm(),
            num_labels: first.name.num_labels(),
            original_ttl: first.ttl,
            sig_expiration: SerialNumber::new(expiration),
            sig_inception: SerialNumber::new(inception),
            key_tag: dnskey.calculate_key_tag().unwrap(),
            signer_name: self.zone.clone(),
        };
        let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, records.iter()).unwrap();
        let sig = key.sign(&tbs).unwrap();
        Record::from_rdata(
            first.name.clone(),
            first.ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
        )
    }

    /// Signs every RRset of `records` (plus the zone's DNSKEY RRset, added here) with
    /// signatures valid from `inception` to `expiration`; returns the records and RRSIGs.
    pub fn sign(&self, records: &[Record], inception: u32, expiration: u32) -> Vec<Record> {
        let mut all: Vec<Record> = records.to_vec();
        all.extend(self.dnskey_records());
        let mut sets: Vec<(WireName, RecordType)> = Vec::new();
        for r in &all {
            let key = (r.name.clone(), r.record_type());
            if !sets.contains(&key) {
                sets.push(key);
            }
        }
        let mut out = all.clone();
        for (name, rtype) in sets {
            let set: Vec<Record> = all
                .iter()
                .filter(|r| r.name == name && r.record_type() == rtype)
                .cloned()
                .collect();
            out.push(self.rrsig(&set, inception, expiration, rtype == RecordType::DNSKEY));
        }
        out
    }
}

/// An absolute hickory name.
pub fn wire_name(name: &str) -> WireName {
    let mut n = WireName::from_ascii(name).unwrap();
    n.set_fqdn(true);
    n
}

/// Parses zone-file text (absolute names or relative to `origin`, explicit TTLs) with
/// hickory-proto's parser.
pub fn parse_zone(text: &str, origin: &str) -> Vec<Record> {
    let parser = hickory_proto::serialize::txt::Parser::new(text, None, Some(wire_name(origin)));
    let (_, sets) = parser
        .parse()
        .unwrap_or_else(|e| panic!("bad test zone: {e}\n{text}"));
    sets.values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .collect()
}

/// Seconds since the epoch now, plus `offset` seconds (negative: in the past).
pub fn time(offset: i64) -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (now + offset) as u32
}
