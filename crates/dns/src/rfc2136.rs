//! The RFC 2136 provider: reads a zone by AXFR (RFC 5936), writes it by DNS UPDATE
//! (RFC 2136), both authenticated with TSIG (RFC 8945).
//!
//! # One UPDATE per zone, assembled by hand
//!
//! hickory's client helpers (`Client::create`, `append`, `compare_and_swap`,
//! `delete_by_rdata`, `delete_rrset`) each build and send *one* UPDATE for *one* change.
//! Reconciling a zone with them would take many messages, each applied on its own: a
//! concurrent edit could land between them, and a failure half-way would leave the zone
//! half-changed. mailzone sends one atomic UPDATE per zone, so [`Rfc2136Provider::apply`]
//! builds the message itself (RFC 2136 §2: header with OPCODE UPDATE, then):
//!
//! - the **zone section** (§2.3): the zone apex, type SOA, class IN;
//! - the **prerequisite section** (§2.4), one entry per RRset the change set touches, on the
//!   values as they were read: an RRset read empty must still not exist (§2.4.3: class
//!   NONE, TTL 0, RDLENGTH 0); an RRset read with records must still hold exactly those
//!   records (§2.4.2 "RRset exists (value dependent)": every RR as read, class IN, TTL 0,
//!   TXT with the character-strings as read);
//! - the **update section** (§2.5): first the deletes (§2.5.4 "delete an RR from an RRset":
//!   class NONE, TTL 0, RDATA exactly as read), then the adds (§2.5.1: class IN with the
//!   TTL; TXT split at 255 bytes), addresses (A, AAAA) before the records that point at
//!   them. BIND refuses (REFUSED) an UPDATE adding an MX or SRV whose target inside the
//!   zone has no address; it checks after applying the whole message, so a new host's
//!   address and its MX can travel together.
//!
//! The server applies all of it or nothing (§3.2: prerequisites are checked before any
//! change; §3.4: the update section is applied atomically), and a prerequisite that no
//! longer holds fails the whole message with YXRRSET/NXRRSET: [`DnsError::Conflict`].
//!
//! The message is split only when its encoded size exceeds 65535 bytes, the limit of a
//! TCP message (RFC 1035 §4.2.2). Each part then carries the changes and the
//! prerequisites of whole RRsets, so each part is still checked against what was read.
//! With `protocol = udp`, an UPDATE larger than one UDP message is sent over TCP rather
//! than split: one atomic message is worth a TCP connection.
//!
//! # Reading
//!
//! [`Rfc2136Provider::read_zone`] asks for a zone transfer (AXFR, RFC 5936 §2.2) over TCP,
//! TSIG-signed, and verifies the signature of every message of the answer (RFC 8945
//! §5.3.1). When the transfer is refused (REFUSED or NOTAUTH without a TSIG error), it
//! falls back to one query per RRset mailzone cares about (plus the SOA) and says so in
//! [`ZoneSnapshot::method`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm as WireAlgorithm, TsigError};
use hickory_proto::rr::{DNSClass, RData as WireRData, Record as WireRecord, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use mailzone_records::diff::{ChangeSet, LiveRecord};
use mailzone_records::{Name, RData, RrType};
use tracing::Instrument as _;
use zeroize::Zeroizing;

use crate::convert::{
    from_wire, live_to_wire_rdata, ns_from_wire, record_type, to_wire_name, to_wire_record,
};
use crate::query::{self, Op, check_answer};
use crate::transport::{
    self, Answer, Encoded, Endpoint, Idle, Opening, TCP_MAX, TcpConn, UdpSockets,
};
pub use mailzone_records::{Transport, TsigAlgorithm};

/// Connections kept for reuse; more than the reconcile's concurrency would sit unused.
const MAX_IDLE_CONNECTIONS: usize = 32;
use crate::error::Cause;
use crate::provider::{Capabilities, Conditional, ReadScope};
use crate::tsig::{Signer, Verified};
use crate::{ApplyReport, DnsError, Provider, Rcode, ReadMethod, ZoneSnapshot};

/// Where and how to reach the primary server.
#[derive(Debug, Clone)]
pub struct Rfc2136Config {
    pub server: SocketAddr,
    /// TCP, or UDP falling back to TCP on truncation. Transfers always use TCP
    /// (RFC 5936 §4.1).
    pub protocol: Transport,
    pub tsig: Option<TsigConfig>,
    /// How long to wait for each answer (each message of a transfer).
    pub timeout: Duration,
}

/// A TSIG key (RFC 8945). `Debug` shows the key name and algorithm, never the secret.
#[derive(Clone)]
pub struct TsigConfig {
    pub key_name: String,
    pub algorithm: TsigAlgorithm,
    pub secret: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for TsigConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigConfig")
            .field("key_name", &self.key_name)
            .field("algorithm", &self.algorithm)
            .field(
                "secret",
                &format_args!("<{} bytes, redacted>", self.secret.len()),
            )
            .finish()
    }
}

/// Why a TSIG key cannot be used. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsigConfigError {
    #[error("the secret of TSIG key `{key_name}` is not valid base64")]
    Base64 { key_name: String },
    #[error("the secret of TSIG key `{key_name}` is empty")]
    Empty { key_name: String },
}

impl TsigConfig {
    /// A key from its base64 secret, as `tsig-keygen` and `keymgr` print it.
    pub fn from_base64(
        key_name: impl Into<String>,
        algorithm: TsigAlgorithm,
        secret_base64: &str,
    ) -> Result<TsigConfig, TsigConfigError> {
        let key_name = key_name.into();
        let secret = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(secret_base64.trim())
                .map_err(|_| TsigConfigError::Base64 {
                    key_name: key_name.clone(),
                })?,
        );
        if secret.is_empty() {
            return Err(TsigConfigError::Empty { key_name });
        }
        Ok(TsigConfig {
            key_name,
            algorithm,
            secret,
        })
    }
}

/// hickory's name for a TSIG algorithm.
pub(crate) fn wire_algorithm(algorithm: TsigAlgorithm) -> WireAlgorithm {
    match algorithm {
        TsigAlgorithm::HmacSha256 => WireAlgorithm::HmacSha256,
        TsigAlgorithm::HmacSha384 => WireAlgorithm::HmacSha384,
        TsigAlgorithm::HmacSha512 => WireAlgorithm::HmacSha512,
    }
}

/// A zone published on a primary server that accepts RFC 2136 UPDATEs.
pub struct Rfc2136Provider {
    config: Rfc2136Config,
    /// The key, ready to sign; the error of an unusable key name is returned by every
    /// request (so that [`Rfc2136Provider::new`] cannot fail).
    signer: Result<Option<Signer>, DnsError>,
    sent: AtomicU64,
    /// TCP connections kept open after a transfer for the UPDATE that usually follows
    /// (RFC 7766 §6.2.1 allows several messages per connection): one connection per zone
    /// instead of two.
    idle: Idle<TcpConn, MAX_IDLE_CONNECTIONS>,
    /// UDP sockets kept between signed SOA questions.
    udp_sockets: UdpSockets,
    /// The TCP connections being opened to the server, not answered on yet.
    opening: Opening,
}

impl fmt::Debug for Rfc2136Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136Provider")
            .field("config", &self.config)
            .field("messages_sent", &self.messages_sent())
            .finish()
    }
}

impl Rfc2136Provider {
    /// A provider for `config`. Nothing is sent until it is used; a TSIG key name that is
    /// not a domain name makes every request fail with a permanent error saying so.
    pub fn new(config: Rfc2136Config) -> Rfc2136Provider {
        let signer = config
            .tsig
            .as_ref()
            .map(|tsig| Signer::new(tsig, config.server))
            .transpose();
        Rfc2136Provider {
            config,
            signer,
            sent: AtomicU64::new(0),
            idle: Idle::default(),
            udp_sockets: UdpSockets::default(),
            opening: transport::opening(),
        }
    }

    pub fn config(&self) -> &Rfc2136Config {
        &self.config
    }

    fn endpoint(&self) -> Result<Endpoint<'_>, DnsError> {
        Ok(Endpoint {
            server: self.config.server,
            timeout: self.config.timeout,
            protocol: self.config.protocol,
            signer: self.signer.as_ref().map_err(Clone::clone)?.as_ref(),
            counter: Some(&self.sent),
            udp_sockets: Some(&self.udp_sockets),
            opening: Some(&self.opening),
        })
    }

    /// AXFR (RFC 5936): the SOA serial and every record between the two SOAs, or the
    /// refusal.
    async fn transfer(&self, zone: &Name) -> Result<Transfer, DnsError> {
        let endpoint = Endpoint {
            // RFC 5936 §4.1: AXFR is a TCP protocol.
            protocol: Transport::Tcp,
            ..self.endpoint()?
        };
        let server = endpoint.server;
        let mut request = Message::query();
        let mut q = Query::query(to_wire_name(zone), RecordType::AXFR);
        q.set_query_class(DNSClass::IN);
        request.add_query(q);
        request.metadata.recursion_desired = false;

        let (mut conn, first_raw, mut verifier) =
            endpoint.start_stream(&request, self.idle.take()).await?;
        let mut next_raw = Some(first_raw);
        let apex = to_wire_name(zone);
        let mut serial = None;
        let mut records = Vec::new();
        let mut first = true;
        loop {
            let raw = match next_raw.take() {
                Some(raw) => raw,
                None => conn.recv().await?,
            };
            let message = endpoint.decode(&raw, &request)?;
            let tsig = match verifier.as_mut() {
                Some(v) => Some(v.verify(&raw, &message)?),
                None => None,
            };
            let rcode = Rcode::from(message.response_code);
            // Refused: REFUSED (BIND) or NOTAUTH (Knot, with TSIG error BADKEY when the
            // key is known but not in the zone's transfer ACL). A wrong secret or clock
            // (BADSIG, BADTIME) is not a refusal: reading record by record would fail the
            // same way, so it is reported as it is.
            let key_refused = matches!(tsig, None | Some(Verified::Unsigned | Verified::Signed))
                || matches!(tsig, Some(Verified::Rejected(TsigError::BadKey, _)));
            if first && matches!(rcode, Rcode::Refused | Rcode::NotAuth) && key_refused {
                tracing::info!(%server, zone = %zone, %rcode,
                    "zone transfer refused; reading the zone record by record");
                return Ok(Transfer::Refused { rcode });
            }
            let tsig = match tsig {
                // RFC 8945 §5.3.1: messages after the first may be unsigned; the
                // verifier accumulates them and checks them with the next signed one.
                Some(Verified::Unsigned) if !first => None,
                other => other,
            };
            let message = check_answer(
                server,
                Op::Transfer { zone },
                Answer { message, tsig },
                &endpoint,
            )?;
            first = false;
            let mut done = false;
            for record in message.answers {
                if done {
                    return Err(malformed_transfer(
                        server,
                        zone,
                        "records after the closing SOA",
                    ));
                }
                if serial.is_none() {
                    // RFC 5936 §2.2: the answer starts with the zone's SOA.
                    match &record.data {
                        WireRData::SOA(soa) if record.name == apex => serial = Some(soa.serial),
                        _ => {
                            return Err(malformed_transfer(
                                server,
                                zone,
                                "it does not start with the SOA",
                            ));
                        }
                    }
                    continue;
                }
                if record.record_type() == RecordType::SOA && record.name == apex {
                    // RFC 5936 §2.2: … and ends with it.
                    done = true;
                    continue;
                }
                records.push(record);
            }
            if done {
                break;
            }
        }
        if let Some(v) = &verifier {
            v.finish()?;
        }
        let serial = serial.expect("the loop ends only after the opening SOA");
        self.idle.keep(conn);
        Ok(Transfer::Zone { serial, records })
    }

    async fn read_by_queries(
        &self,
        zone: &Name,
        wanted: &[(Name, RrType)],
        refusal: Rcode,
    ) -> Result<ZoneSnapshot, DnsError> {
        let endpoint = self.endpoint()?;
        let mut tcp = None;
        let serial = query::serial(&endpoint, &mut tcp, zone).await.map_err(|e| {
            let server = endpoint.server;
            let message = format!(
                "the server {server} refused the transfer of zone {zone} ({refusal}), and reading the zone record by record failed: {e}"
            );
            e.reworded(message)
        })?;
        let mut asked = std::collections::BTreeSet::new();
        let mut records = Vec::new();
        for (name, rtype) in wanted {
            if !name.is_within(zone) || !asked.insert((name.clone(), *rtype)) {
                continue;
            }
            records.extend(query::rrset(&endpoint, &mut tcp, name, rtype.as_str()).await?);
        }
        Ok(ZoneSnapshot {
            zone: zone.clone(),
            serial,
            records,
            method: ReadMethod::Queries,
            ns_records: None,
        })
    }

    /// Sends one UPDATE, encoded and signed once: over TCP when it does not fit in a UDP
    /// message.
    async fn send_update(
        &self,
        zone: &Name,
        message: &Message,
        encoded: Encoded<'_>,
    ) -> Result<(), DnsError> {
        let mut endpoint = self.endpoint()?;
        if endpoint.protocol == Transport::Udp
            && encoded.len() > usize::from(crate::transport::UDP_PAYLOAD)
        {
            endpoint.protocol = Transport::Tcp;
        }
        let mut tcp = self.idle.take();
        let answer = endpoint
            .exchange_encoded(&mut tcp, message, encoded)
            .await?;
        if let Some(conn) = tcp {
            self.idle.keep(conn);
        }
        check_answer(endpoint.server, Op::Update { zone }, answer, &endpoint)?;
        Ok(())
    }
}

/// The outcome of an AXFR request.
enum Transfer {
    Zone {
        serial: u32,
        records: Vec<WireRecord>,
    },
    /// REFUSED or NOTAUTH (without a wrong-key TSIG error).
    Refused { rcode: Rcode },
}

fn malformed_transfer(server: SocketAddr, zone: &Name, why: &str) -> DnsError {
    DnsError::permanent(
        server,
        Cause::Malformed,
        format!("the transfer of zone {zone} from {server} is malformed: {why} (RFC 5936 §2.2)"),
    )
}

/// The prerequisites and changes of one RRset: the unit a split never cuts.
#[derive(Debug, Default)]
struct RrsetChanges {
    prerequisites: Vec<WireRecord>,
    deletes: Vec<WireRecord>,
    adds: Vec<WireRecord>,
}

impl RrsetChanges {
    /// An upper bound of the encoded size (names uncompressed).
    fn encoded_len(&self) -> usize {
        self.prerequisites
            .iter()
            .chain(&self.deletes)
            .chain(&self.adds)
            .map(|r| {
                let mut buf = Vec::new();
                let mut encoder = BinEncoder::new(&mut buf);
                // An encoding error would also fail the real message, which reports it.
                let _ = r.emit(&mut encoder);
                buf.len()
            })
            .sum()
    }
}

/// BIND answers REFUSED to an UPDATE adding an MX or SRV whose target inside the zone has
/// no address record (checked once the whole message is applied), which reads like a key
/// problem: name the targets that may be the cause.
fn targets_without_address_hint(zone: &Name, changes: &ChangeSet) -> String {
    let addressed: std::collections::BTreeSet<&Name> = changes
        .adds
        .iter()
        .filter(|a| matches!(a.record.data, RData::A(_) | RData::Aaaa(_)))
        .map(|a| &a.record.name)
        .collect();
    let mut targets: Vec<String> = changes
        .adds
        .iter()
        .filter_map(|a| match &a.record.data {
            RData::Mx { exchange: t, .. } | RData::Srv { target: t, .. } => Some(t),
            _ => None,
        })
        .filter(|t| !t.is_root() && t.is_within(zone) && !addressed.contains(t))
        .map(Name::to_string)
        .collect();
    targets.sort();
    targets.dedup();
    if targets.is_empty() {
        return String::new();
    }
    format!(
        " (BIND also answers REFUSED when an MX or SRV target inside the zone has no A or AAAA record: check {})",
        targets.join(", ")
    )
}

/// Addresses first, then the records pointing at them. BIND checks that an MX or SRV
/// target inside the zone has an address only once the whole message is applied (tested),
/// so this order is not required by it; it keeps the message readable in a packet dump
/// and safe with a server that checks record by record.
fn add_rank(r: &WireRecord) -> u8 {
    match r.record_type() {
        RecordType::A | RecordType::AAAA => 0,
        RecordType::MX | RecordType::SRV | RecordType::CNAME => 2,
        _ => 1,
    }
}

/// The change set grouped by RRset, as wire records (RFC 2136 §2.4, §2.5).
fn group_changes(
    server: SocketAddr,
    zone: &Name,
    changes: &ChangeSet,
) -> Result<Vec<RrsetChanges>, DnsError> {
    let check = |name: &Name, rtype: RrType| -> Result<RecordType, DnsError> {
        if !name.is_within(zone) {
            return Err(DnsError::permanent(
                server,
                Cause::Request,
                format!("{name} is outside zone {zone}: not sent"),
            ));
        }
        record_type(rtype.as_str()).ok_or_else(|| {
            DnsError::permanent(
                server,
                Cause::Request,
                format!("mailzone cannot write {rtype} records"),
            )
        })
    };
    let mut groups: BTreeMap<(Name, RrType), RrsetChanges> = BTreeMap::new();
    for p in &changes.prerequisites {
        let rtype = check(&p.name, p.rtype)?;
        let group = groups.entry((p.name.clone(), p.rtype)).or_default();
        if p.records.is_empty() {
            // RFC 2136 §2.4.3: RRset does not exist — class NONE, TTL 0, RDLENGTH 0.
            let mut r = WireRecord::update0(to_wire_name(&p.name), 0, rtype);
            r.dns_class = DNSClass::NONE;
            group.prerequisites.push(r);
        } else {
            // RFC 2136 §2.4.2: RRset exists (value dependent) — class IN, TTL 0, every
            // RR as read.
            for live in &p.records {
                group.prerequisites.push(prerequisite_record(live));
            }
        }
    }
    for (_, live) in &changes.deletes {
        let r = &live.record;
        check(&r.name, r.data.rtype())?;
        // RFC 2136 §2.5.4: delete an RR from an RRset — class NONE, TTL 0, RDATA as read.
        let mut wire = WireRecord::from_rdata(to_wire_name(&r.name), 0, live_to_wire_rdata(live));
        wire.dns_class = DNSClass::NONE;
        groups
            .entry((r.name.clone(), r.data.rtype()))
            .or_default()
            .deletes
            .push(wire);
    }
    for add in &changes.adds {
        let r = &add.record;
        check(&r.name, r.data.rtype())?;
        // RFC 2136 §2.5.1: add to an RRset — class IN, with the TTL.
        groups
            .entry((r.name.clone(), r.data.rtype()))
            .or_default()
            .adds
            .push(to_wire_record(r));
    }
    Ok(groups.into_values().collect())
}

fn prerequisite_record(live: &LiveRecord) -> WireRecord {
    WireRecord::from_rdata(to_wire_name(&live.record.name), 0, live_to_wire_rdata(live))
}

/// One UPDATE message (RFC 2136 §2) for these RRsets.
fn update_message(zone: &Name, groups: &[&RrsetChanges]) -> Message {
    let mut m = Message::query(); // a random ID
    m.metadata.op_code = OpCode::Update;
    m.metadata.message_type = MessageType::Query;
    m.metadata.recursion_desired = false;
    // §2.3: the zone section names the zone, type SOA, class IN.
    let mut zone_q = Query::query(to_wire_name(zone), RecordType::SOA);
    zone_q.set_query_class(DNSClass::IN);
    m.add_query(zone_q);
    // §2.4: prerequisites (sent in the answer section).
    for g in groups {
        m.add_answers(g.prerequisites.iter().cloned());
    }
    // §2.5: updates (sent in the authority section): deletes, then adds.
    for g in groups {
        m.add_authorities(g.deletes.iter().cloned());
    }
    let mut adds: Vec<&WireRecord> = groups.iter().flat_map(|g| &g.adds).collect();
    adds.sort_by_key(|r| add_rank(r));
    m.add_authorities(adds.into_iter().cloned());
    m
}

/// Packs RRsets into as few messages as fit in `limit` bytes each.
fn pack(groups: &[RrsetChanges], limit: usize) -> Vec<Vec<&RrsetChanges>> {
    let mut parts: Vec<Vec<&RrsetChanges>> = Vec::new();
    let mut size = 0;
    for g in groups {
        let len = g.encoded_len();
        match parts.last_mut() {
            Some(part) if size + len <= limit => {
                part.push(g);
                size += len;
            }
            _ => {
                parts.push(vec![g]);
                size = len;
            }
        }
    }
    parts
}

/// What this provider can do.
pub const CAPABILITIES: Capabilities = Capabilities {
    read: ReadScope::WholeZone,
    atomic: true,
    conditional: Conditional::Prerequisites,
    serial: true,
    txt_strings_kept: true,
    ttl_read: true,
    min_ttl: 0,
};

#[async_trait]
impl Provider for Rfc2136Provider {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn read_zone(
        &self,
        zone: &Name,
        wanted: &[(Name, RrType)],
    ) -> Result<ZoneSnapshot, DnsError> {
        let span = tracing::debug_span!("read_zone", zone = %zone, server = %self.config.server);
        async {
            let (serial, wire) = match self.transfer(zone).await? {
                Transfer::Zone { serial, records } => (serial, records),
                Transfer::Refused { rcode } => {
                    return self.read_by_queries(zone, wanted, rcode).await;
                }
            };
            let ns_records = wire
                .iter()
                .filter(|record| record.record_type() == RecordType::NS)
                .map(ns_from_wire)
                .collect::<Option<Vec<_>>>();
            let mut records = Vec::new();
            for record in &wire {
                match from_wire(record) {
                    Ok(Some(live)) => records.push(live),
                    Ok(None) => {}
                    Err(e) => tracing::debug!("skipping a record mailzone cannot represent: {e}"),
                }
            }
            tracing::debug!(serial, records = records.len(), "zone transferred");
            Ok(ZoneSnapshot {
                zone: zone.clone(),
                serial,
                records,
                method: ReadMethod::Transfer,
                ns_records,
            })
        }
        .instrument(span)
        .await
    }

    async fn serial(&self, zone: &Name) -> Result<u32, DnsError> {
        // A SOA answer is small: UDP (TCP only if truncated) spares a connection per zone,
        // whatever protocol the updates use.
        let endpoint = Endpoint {
            protocol: Transport::Udp,
            ..self.endpoint()?
        };
        query::serial(&endpoint, &mut None, zone).await
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<ApplyReport, DnsError> {
        let server = self.config.server;
        let zone = changes.zone.as_ref().ok_or_else(|| {
            DnsError::permanent(
                server,
                Cause::Request,
                "the change set names no zone: nothing was sent",
            )
        })?;
        if changes.is_empty() {
            return Ok(ApplyReport::default());
        }
        let span = tracing::debug_span!("apply", zone = %zone, server = %server);
        async {
            let groups = group_changes(server, zone, changes)?;
            let whole = update_message(zone, &groups.iter().collect::<Vec<_>>());
            let endpoint = self.endpoint()?;
            // The whole UPDATE, already signed; or its parts, each signed when its turn
            // comes (a signature holds for the fudge of 300 seconds, RFC 8945 §5.2.3).
            let parts = match endpoint.encode_if_fits(&whole)? {
                Some(encoded) => vec![(whole, Some(encoded))],
                None => {
                    // Room for the header, the zone section and the TSIG record.
                    let overhead = 12 + zone.as_str().len() + 6 + 512;
                    let parts = pack(&groups, TCP_MAX - overhead);
                    tracing::info!(parts = parts.len(), "the UPDATE exceeds 65535 bytes; splitting it by RRset");
                    parts.iter().map(|part| (update_message(zone, part), None)).collect()
                }
            };
            let mut sent = 0u32;
            let count = parts.len();
            for (message, encoded) in parts {
                let encoded = match encoded {
                    Some(encoded) => encoded,
                    None => endpoint.encode(&message)?,
                };
                match self.send_update(zone, &message, encoded).await {
                    Ok(()) => sent += 1,
                    Err(e) if e.rcode() == Some(Rcode::Refused) => {
                        return Err(e.with_note(&targets_without_address_hint(zone, changes)));
                    }
                    Err(DnsError::Conflict { rcode, .. }) if sent > 0 => {
                        // Not a conflict to re-plan quietly: part of the change landed.
                        let message = format!(
                            "the zone {zone} changed while a split update was applied ({rcode}): {sent} of {count} parts were applied; read the zone again and re-plan"
                        );
                        return Err(DnsError::Transient {
                            server,
                            message,
                            cause: Cause::Rcode(rcode),
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            tracing::debug!(messages = sent, adds = changes.adds.len(), deletes = changes.deletes.len(), "zone updated");
            let serial = match self.serial(zone).await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("the update was applied but the new serial could not be read: {e}");
                    None
                }
            };
            Ok(ApplyReport {
                messages: sent,
                serial,
            })
        }
        .instrument(span)
        .await
    }

    fn messages_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
