//! Counting the DNS messages a client sent, from a packet capture (`tcpdump -w`).
//!
//! The reconcile benchmark captures the loopback traffic to the server's port while a tool
//! runs, then counts what the tool sent: every DNS message over UDP (one per datagram) and
//! over TCP (RFC 1035 §4.2.2: each message is preceded by its 16-bit length, and a message
//! may span segments or share one with others, so the byte stream of each connection is
//! reassembled first). Each message is classified by opcode and, for queries, by the type
//! of its question (SOA, AXFR, IXFR, other).
//!
//! Only the classic pcap format is read (not pcapng): the one `tcpdump -w` writes, with
//! the link types a Linux loopback capture has (Ethernet on `lo`, Linux cooked on `any`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// What a client sent to the server, message by message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsCounts {
    /// Every DNS message, whatever its kind.
    pub messages: u64,
    /// Opcode UPDATE (RFC 2136).
    pub updates: u64,
    /// Opcode QUERY, by question type (`SOA`, `AXFR`, `IXFR`, `TXT`, `TYPE65`, …).
    pub queries: BTreeMap<String, u64>,
    /// Any other opcode (NOTIFY, …), by opcode number.
    pub other_opcodes: BTreeMap<u8, u64>,
    /// TCP connections opened (SYN seen).
    pub tcp_connections: u64,
    /// DNS messages over TCP.
    pub tcp_messages: u64,
    /// DNS messages over UDP.
    pub udp_messages: u64,
    /// Bytes at the end of a TCP stream that did not form a whole message (should be 0).
    pub incomplete_bytes: u64,
    /// Messages too short or malformed to classify (counted in `messages` too).
    pub undecodable: u64,
}

impl DnsCounts {
    /// Queries of one question type.
    pub fn queries_of(&self, qtype: &str) -> u64 {
        self.queries.get(qtype).copied().unwrap_or(0)
    }

    /// A short breakdown: `1,000 AXFR + 1,000 UPDATE + 2,000 SOA + 26,000 other queries`.
    pub fn breakdown(&self) -> String {
        let mut parts = Vec::new();
        for (qtype, n) in &self.queries {
            if matches!(qtype.as_str(), "AXFR" | "IXFR" | "SOA") {
                parts.push(format!("{} {qtype}", thousands(*n)));
            }
        }
        if self.updates > 0 {
            parts.push(format!("{} UPDATE", thousands(self.updates)));
        }
        let other_queries: u64 = self
            .queries
            .iter()
            .filter(|(t, _)| !matches!(t.as_str(), "AXFR" | "IXFR" | "SOA"))
            .map(|(_, n)| n)
            .sum();
        if other_queries > 0 {
            let types: Vec<&str> = self
                .queries
                .keys()
                .map(String::as_str)
                .filter(|t| !matches!(*t, "AXFR" | "IXFR" | "SOA"))
                .collect();
            parts.push(format!(
                "{} other queries ({})",
                thousands(other_queries),
                types.join("/")
            ));
        }
        for (opcode, n) in &self.other_opcodes {
            parts.push(format!("{n} opcode {opcode}"));
        }
        if self.undecodable > 0 {
            parts.push(format!("{} undecodable", self.undecodable));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" + ")
        }
    }

    fn count(&mut self, message: &[u8]) {
        self.messages += 1;
        match classify(message) {
            Some(Kind::Query(qtype)) => *self.queries.entry(qtype).or_default() += 1,
            Some(Kind::Update) => self.updates += 1,
            Some(Kind::Other(opcode)) => *self.other_opcodes.entry(opcode).or_default() += 1,
            None => self.undecodable += 1,
        }
    }
}

/// `26000` → `26,000`.
pub fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

enum Kind {
    Query(String),
    Update,
    Other(u8),
}

/// The kind of one DNS request message.
fn classify(message: &[u8]) -> Option<Kind> {
    if message.len() < 12 {
        return None;
    }
    let opcode = (message[2] >> 3) & 0x0f;
    match opcode {
        0 => {
            let qdcount = u16::from_be_bytes([message[4], message[5]]);
            if qdcount == 0 {
                return Some(Kind::Query("no question".into()));
            }
            let qtype = question_type(message)?;
            Some(Kind::Query(type_name(qtype)))
        }
        5 => Some(Kind::Update),
        other => Some(Kind::Other(other)),
    }
}

/// The type of the first question (skips its name, which starts at offset 12).
fn question_type(message: &[u8]) -> Option<u16> {
    let mut at = 12;
    loop {
        let len = *message.get(at)? as usize;
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 == 0xc0 {
            at += 2;
            break;
        }
        at += 1 + len;
    }
    let bytes = message.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn type_name(qtype: u16) -> String {
    match qtype {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        52 => "TLSA".into(),
        251 => "IXFR".into(),
        252 => "AXFR".into(),
        255 => "ANY".into(),
        257 => "CAA".into(),
        other => format!("TYPE{other}"),
    }
}

/// One direction of one TCP connection, being reassembled.
#[derive(Default)]
struct Stream {
    next_seq: Option<u32>,
    data: Vec<u8>,
    /// Segments that arrived ahead of a gap, by sequence number.
    pending: BTreeMap<u32, Vec<u8>>,
}

impl Stream {
    fn segment(&mut self, seq: u32, payload: &[u8]) {
        let next = *self.next_seq.get_or_insert(seq);
        let ahead = seq.wrapping_sub(next) as i32;
        if ahead > 0 {
            self.pending.insert(seq, payload.to_vec());
            return;
        }
        // At or behind the expected sequence number: keep only the new bytes.
        let skip = (-ahead) as usize;
        if skip < payload.len() {
            self.data.extend_from_slice(&payload[skip..]);
            self.next_seq = Some(next.wrapping_add((payload.len() - skip) as u32));
        }
        // Segments that were waiting for this one.
        while let Some((&seq, _)) = self.pending.iter().next() {
            let next = self.next_seq.expect("set above");
            if (seq.wrapping_sub(next) as i32) > 0 {
                break;
            }
            let payload = self.pending.remove(&seq).expect("present");
            let skip = next.wrapping_sub(seq) as usize;
            if skip < payload.len() {
                self.data.extend_from_slice(&payload[skip..]);
                self.next_seq = Some(next.wrapping_add((payload.len() - skip) as u32));
            }
        }
    }
}

type StreamKey = (IpAddr, u16, IpAddr, u16);

/// Counts the DNS messages sent to `server_port` (over UDP and TCP) in a classic pcap file.
/// Packets to other ports and packets from the server are ignored.
pub fn count_client_messages(pcap: &[u8], server_port: u16) -> Result<DnsCounts, String> {
    if pcap.len() < 24 {
        return Err("the capture is shorter than a pcap header".into());
    }
    let magic = [pcap[0], pcap[1], pcap[2], pcap[3]];
    let little = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => {
            return Err(format!(
                "not a pcap file (magic {magic:02x?}); pcapng is not read"
            ));
        }
    };
    let u32_at = |bytes: &[u8], at: usize| -> u32 {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let linktype = u32_at(pcap, 20);
    let mut counts = DnsCounts::default();
    let mut streams: HashMap<StreamKey, Stream> = HashMap::new();
    let mut order: Vec<StreamKey> = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32_at(pcap, at + 8) as usize;
        let start = at + 16;
        let end = start + caplen;
        if end > pcap.len() {
            break; // a capture cut short mid-packet
        }
        at = end;
        let frame = &pcap[start..end];
        let Some(ip) = network_layer(linktype, frame) else {
            continue;
        };
        let Some((src, dst, protocol, transport)) = ip_layer(ip) else {
            continue;
        };
        match protocol {
            17 if transport.len() >= 8 => {
                let dport = u16::from_be_bytes([transport[2], transport[3]]);
                let length = u16::from_be_bytes([transport[4], transport[5]]) as usize;
                if dport != server_port {
                    continue;
                }
                let payload = &transport[8..length.clamp(8, transport.len())];
                counts.udp_messages += 1;
                counts.count(payload);
            }
            6 if transport.len() >= 20 => {
                let sport = u16::from_be_bytes([transport[0], transport[1]]);
                let dport = u16::from_be_bytes([transport[2], transport[3]]);
                if dport != server_port {
                    continue;
                }
                let seq =
                    u32::from_be_bytes([transport[4], transport[5], transport[6], transport[7]]);
                let offset = ((transport[12] >> 4) as usize) * 4;
                let flags = transport[13];
                let key = (src, sport, dst, dport);
                if flags & 0x02 != 0 {
                    // SYN: a new connection (a reused port starts a new stream).
                    counts.tcp_connections += 1;
                    if let Some(old) = streams.remove(&key) {
                        finish_stream(&mut counts, old);
                    }
                    streams.insert(
                        key,
                        Stream {
                            next_seq: Some(seq.wrapping_add(1)),
                            ..Stream::default()
                        },
                    );
                    order.push(key);
                    continue;
                }
                let payload = transport.get(offset..).unwrap_or_default();
                if payload.is_empty() {
                    continue;
                }
                if !streams.contains_key(&key) {
                    order.push(key);
                }
                streams.entry(key).or_default().segment(seq, payload);
            }
            _ => {}
        }
    }
    for key in order {
        if let Some(stream) = streams.remove(&key) {
            finish_stream(&mut counts, stream);
        }
    }
    Ok(counts)
}

/// Splits a reassembled TCP byte stream into its length-prefixed messages and counts them.
fn finish_stream(counts: &mut DnsCounts, stream: Stream) {
    let mut rest = stream.data.as_slice();
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + len {
            break;
        }
        counts.tcp_messages += 1;
        counts.count(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    counts.incomplete_bytes += rest.len() as u64;
}

/// The IP packet inside a frame of the capture's link type.
fn network_layer(linktype: u32, frame: &[u8]) -> Option<&[u8]> {
    match linktype {
        // Ethernet (what `tcpdump -i lo` writes on Linux), with optional VLAN tags.
        1 => {
            let mut at = 12;
            loop {
                let ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
                if ethertype == 0x8100 || ethertype == 0x88a8 {
                    at += 4;
                    continue;
                }
                return frame.get(at + 2..);
            }
        }
        // BSD loopback / null: a 4-byte address family.
        0 | 108 => frame.get(4..),
        // Raw IP.
        12 | 101 => Some(frame),
        // Linux cooked capture (`-i any`), v1 and v2.
        113 => frame.get(16..),
        276 => frame.get(20..),
        _ => None,
    }
}

/// (source, destination, protocol, transport header and payload) of an IPv4 or IPv6 packet.
fn ip_layer(packet: &[u8]) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
    match packet.first()? >> 4 {
        4 => {
            let ihl = ((packet[0] & 0x0f) as usize) * 4;
            let total = u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]) as usize;
            let protocol = *packet.get(9)?;
            let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            let end = total.clamp(ihl, packet.len());
            Some((src.into(), dst.into(), protocol, packet.get(ihl..end)?))
        }
        6 => {
            let payload_len = u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]) as usize;
            let protocol = *packet.get(6)?;
            let src: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            let end = (40 + payload_len).min(packet.len());
            Some((src.into(), dst.into(), protocol, packet.get(40..end)?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: u16 = 5300;

    /// A DNS message: header with `opcode`, one question `example.test` of `qtype`.
    fn dns(opcode: u8, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, opcode << 3, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["example", "test"] {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    fn framed(message: &[u8]) -> Vec<u8> {
        let mut out = (message.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(message);
        out
    }

    /// An Ethernet + IPv4 frame from 127.0.0.1:`sport` to 127.0.0.1:`dport`.
    fn frame(protocol: u8, sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut transport = Vec::new();
        transport.extend_from_slice(&sport.to_be_bytes());
        transport.extend_from_slice(&dport.to_be_bytes());
        if protocol == 6 {
            transport.extend_from_slice(&seq.to_be_bytes());
            transport.extend_from_slice(&0u32.to_be_bytes());
            transport.push(5 << 4);
            transport.push(flags);
            transport.extend_from_slice(&[0; 6]);
        } else {
            transport.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            transport.extend_from_slice(&[0, 0]);
        }
        transport.extend_from_slice(payload);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + transport.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0, 64, protocol, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        ip.extend_from_slice(&transport);
        let mut eth = vec![0; 12];
        eth.extend_from_slice(&0x0800u16.to_be_bytes());
        eth.extend_from_slice(&ip);
        eth
    }

    fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&262_144u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for f in frames {
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    #[test]
    fn counts_tcp_messages_across_and_within_segments_and_udp() {
        // Connection 1: an AXFR query and an UPDATE in one byte stream, split mid-message,
        // with a retransmitted segment and one out of order.
        let mut stream = framed(&dns(0, 252));
        stream.extend(framed(&dns(5, 6)));
        let (a, b) = stream.split_at(10);
        let (b, c) = b.split_at(20);
        let isn = 1000u32;
        let s1 = isn + 1;
        let s2 = s1 + a.len() as u32;
        let s3 = s2 + b.len() as u32;
        let frames = vec![
            frame(6, 40000, PORT, isn, 0x02, &[]),
            frame(6, 40000, PORT, s1, 0x18, a),
            frame(6, 40000, PORT, s3, 0x18, c), // ahead of a gap
            frame(6, 40000, PORT, s2, 0x18, b),
            frame(6, 40000, PORT, s2, 0x18, b), // retransmission
            // The server's answer is ignored.
            frame(6, PORT, 40000, 5000, 0x18, &framed(&dns(0, 252))),
            // Connection 2: one SOA query.
            frame(6, 40001, PORT, 7, 0x02, &[]),
            frame(6, 40001, PORT, 8, 0x18, &framed(&dns(0, 6))),
            // UDP: a TXT query, and one to another port.
            frame(17, 40002, PORT, 0, 0, &dns(0, 16)),
            frame(17, 40002, 53, 0, 0, &dns(0, 16)),
        ];
        let counts = count_client_messages(&pcap(&frames), PORT).unwrap();
        assert_eq!(counts.messages, 4);
        assert_eq!(counts.updates, 1);
        assert_eq!(counts.queries_of("AXFR"), 1);
        assert_eq!(counts.queries_of("SOA"), 1);
        assert_eq!(counts.queries_of("TXT"), 1);
        assert_eq!(counts.tcp_connections, 2);
        assert_eq!(counts.tcp_messages, 3);
        assert_eq!(counts.udp_messages, 1);
        assert_eq!(counts.incomplete_bytes, 0);
        assert_eq!(
            counts.breakdown(),
            "1 AXFR + 1 SOA + 1 UPDATE + 1 other queries (TXT)"
        );
    }

    #[test]
    fn rejects_what_is_not_pcap() {
        assert!(count_client_messages(b"not a capture at all, no", PORT).is_err());
        let empty = count_client_messages(&pcap(&[]), PORT).unwrap();
        assert_eq!(empty, DnsCounts::default());
        assert_eq!(empty.breakdown(), "none");
        assert_eq!(thousands(26_000), "26,000");
        assert_eq!(thousands(999), "999");
    }
}
