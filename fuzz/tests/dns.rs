//! Fuzz target: DNS answers and zone transfers as mailzone reads them.
//!
//! (a) Pure: mutated real answers (`corpus/dns/*.bin`, one per record type mailzone reads,
//!     an NXDOMAIN and a whole AXFR; made by [`generated_answers`]) through hickory's
//!     `Message::from_vec`, then every record through `mailzone_dns::convert::from_wire`, and
//!     what it accepts back to the wire as mailzone would write it in an UPDATE.
//! (b) Network: a small UDP+TCP server on 127.0.0.1 answers each question with a mutated
//!     valid answer (ID patched to match), or misbehaves (wrong ID, cut, TC bit, silence,
//!     garbage or a lying TCP length prefix, zone transfers cut, split, refused or with a bad
//!     SOA, TSIG-signed or not), while `query_serial`, `query_rrset`, `lookup` and the RFC 2136
//!     provider's `read_zone` ask it. Each call returns `Ok` or `Err` within its timeout.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::caa::CAA;
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector, TLSA};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm as WireTsigAlgorithm;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, HINFO, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name as WireName, RData, Record, RecordType, TSigner};
use mailzone_dns::convert::{from_wire, live_to_wire_rdata, to_wire_record};
use mailzone_dns::{
    Provider, Rfc2136Config, Rfc2136Provider, Transport, TsigAlgorithm, TsigConfig, lookup,
    query_rrset, query_serial,
};
use mailzone_fuzz::{Entry, Inputs, Mutation, Outcome, cases, corpus, corpus_dir, fuzz, mutation};
use mailzone_records::{Name, RrType};
use proptest::collection::vec;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const ZONE: &str = "example.test.";
const KEY_NAME: &str = "mailzone-key";
const KEY_SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret!!";
/// Each call's timeout: short, loopback answers in microseconds.
const TIMEOUT: Duration = Duration::from_millis(250);
/// What a call may take at most: a transfer waits [`TIMEOUT`] per message, and the
/// server sends at most [`MAX_STREAM`] messages plus a few queries.
const CALL_LIMIT: Duration = Duration::from_secs(8);
const MAX_STREAM: usize = 8;

const DKIM: &[u8] = b"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvfOmz9yYZQIpLusfN1oVqz86SbBomYjAbb9doeUnelkZObN7mXFD19AvQ018Gv2empxonLhcM8Qnlj7NZseNXE0z8Gvt5u30yLa/pKmoEoRAzx/BSkTCl6mvabJPTVHOOYebx47yB1miMTAxGDJD+EzdbnGQljlJQkQiH1pQVwwx4s0OzuNKvKRJ77znQCU0l14fjtgifTMz4sj5OSLcOJrzKJTw0DQuEEoY/xmhcYMRfckRMjv/FvP/KGcxA+sbGtZBtDP7YJF5/ViU5Gg0sIopkJtY0sk730ZBnjqVjE3TGUsdo9qeb36BN1OZQFwoGdYUvuo3icwpNhqUzwfFOQIDAQAB";

fn wire(name: &str) -> WireName {
    WireName::from_ascii(name).unwrap()
}

fn rec(name: &str, rdata: RData) -> Record {
    Record::from_rdata(wire(name), 300, rdata)
}

fn soa(serial: u32) -> Record {
    rec(
        ZONE,
        RData::SOA(SOA::new(
            wire("ns1.example.test."),
            wire("hostmaster.example.test."),
            serial,
            3600,
            600,
            86400,
            300,
        )),
    )
}

fn caa(flags: u8, tag: &str, value: &[u8]) -> RData {
    let mut caa = CAA::new_issue(false, None, Vec::new());
    caa.issuer_critical = flags & 0x80 != 0;
    caa.tag = tag.into();
    caa.value = value.to_vec();
    RData::CAA(caa)
}

/// The records of the zone, one or more of every type mailzone reads.
fn zone_records() -> Vec<(&'static str, Vec<Record>)> {
    let mail = "mail.example.test.";
    vec![
        (
            "a",
            vec![
                rec(mail, RData::A(A(Ipv4Addr::new(192, 0, 2, 10)))),
                rec(mail, RData::A(A(Ipv4Addr::new(192, 0, 2, 11)))),
            ],
        ),
        (
            "aaaa",
            vec![rec(
                mail,
                RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10))),
            )],
        ),
        (
            "mx",
            vec![
                rec(ZONE, RData::MX(MX::new(10, wire(mail)))),
                rec(ZONE, RData::MX(MX::new(0, WireName::root()))),
            ],
        ),
        (
            "txt",
            vec![
                rec(
                    ZONE,
                    RData::TXT(TXT::from_bytes(vec![b"v=spf1 ", b"mx -all"])),
                ),
                rec(
                    ZONE,
                    RData::TXT(TXT::from_bytes(vec![
                        b"google-site-verification=abc",
                        b"",
                        b"\x00\xff\"\\",
                    ])),
                ),
            ],
        ),
        (
            "dkim",
            vec![rec(
                "202611e._domainkey.example.test.",
                // Split unevenly, as some servers and operators do.
                RData::TXT(TXT::from_bytes(vec![
                    &DKIM[..150],
                    &DKIM[150..390],
                    &DKIM[390..],
                ])),
            )],
        ),
        (
            "cname",
            vec![
                rec("autoconfig.example.test.", RData::CNAME(CNAME(wire(mail)))),
                rec(mail, RData::A(A(Ipv4Addr::new(192, 0, 2, 10)))),
            ],
        ),
        (
            "srv",
            vec![
                rec(
                    "_imaps._tcp.example.test.",
                    RData::SRV(SRV::new(0, 1, 993, wire(mail))),
                ),
                rec(
                    "_pop3s._tcp.example.test.",
                    RData::SRV(SRV::new(0, 0, 0, WireName::root())),
                ),
            ],
        ),
        (
            "caa",
            vec![
                rec(
                    ZONE,
                    caa(
                        0,
                        "issue",
                        b"letsencrypt.org; accounturi=\"https://acme/1\"",
                    ),
                ),
                rec(ZONE, caa(128, "iodef", b"mailto:caa@example.test")),
                rec(ZONE, caa(0, "issuewild", b";")),
            ],
        ),
        (
            "tlsa",
            vec![rec(
                "_25._tcp.mail.example.test.",
                RData::TLSA(TLSA::new(
                    CertUsage::from(3),
                    Selector::from(1),
                    Matching::from(1),
                    (0u8..32).collect(),
                )),
            )],
        ),
        (
            "ptr",
            vec![rec("10.2.0.192.in-addr.arpa.", RData::PTR(PTR(wire(mail))))],
        ),
        (
            "ns",
            vec![rec(ZONE, RData::NS(NS(wire("ns1.example.test."))))],
        ),
        (
            "wildcard",
            vec![rec(
                "*.example.test.",
                RData::A(A(Ipv4Addr::new(192, 0, 2, 99))),
            )],
        ),
        (
            "hinfo",
            vec![rec(
                mail,
                RData::HINFO(HINFO::new("x86".into(), "Linux".into())),
            )],
        ),
    ]
}

fn response(id: u16, question: Query, answers: Vec<Record>) -> Message {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.metadata.authoritative = true;
    m.add_query(question);
    for a in answers {
        m.add_answer(a);
    }
    let mut edns = Edns::new();
    edns.set_max_payload(1232).set_version(0);
    m.set_edns(edns);
    m
}

/// The corpus of wire answers: one per record type mailzone reads, the SOA, an NXDOMAIN
/// and a whole zone transfer (SOA, every record, SOA) in one message.
fn generated_answers() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut all = Vec::new();
    for (label, records) in zone_records() {
        let first = &records[0];
        let question = Query::query(first.name.clone(), first.record_type());
        out.push((
            format!("answer-{label}.bin"),
            response(1, question, records.clone()),
        ));
        all.extend(records);
    }
    out.push((
        "answer-soa.bin".into(),
        response(
            1,
            Query::query(wire(ZONE), RecordType::SOA),
            vec![soa(2026120501)],
        ),
    ));
    let mut nx = response(
        1,
        Query::query(wire("nope.example.test."), RecordType::A),
        vec![],
    );
    nx.metadata.response_code = ResponseCode::NXDomain;
    nx.add_authority(soa(2026120501));
    out.push(("answer-nxdomain.bin".into(), nx));
    let mut transfer = vec![soa(2026120501)];
    transfer.extend(all);
    transfer.push(soa(2026120501));
    let mut axfr = response(1, Query::query(wire(ZONE), RecordType::AXFR), transfer);
    axfr.edns = None;
    out.push(("axfr.bin".into(), axfr));
    out.into_iter()
        .map(|(n, m)| (n, m.to_vec().unwrap()))
        .collect()
}

/// The committed corpus holds the generated answers (regenerate with
/// `MAILZONE_FUZZ_REGENERATE=1`), and crash regressions beside them.
#[test]
fn committed_answers_are_the_generated_ones() {
    let dir = corpus_dir("dns");
    for (name, bytes) in generated_answers() {
        let path = dir.join(&name);
        if std::env::var_os("MAILZONE_FUZZ_REGENERATE").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == bytes,
            "{} differs from the generator: run with MAILZONE_FUZZ_REGENERATE=1",
            path.display()
        );
    }
}

/// Names, types and numbers at the edges of DNS wire syntax.
const TOKENS: &[&str] = &[
    "\u{c0}\u{0c}",
    "\u{c0}",
    "\u{3f}",
    "\u{40}",
    "\u{ff}\u{ff}",
    "\u{0}\u{0}",
    "\u{0}\u{29}",
    "\u{0}\u{fa}",
    "\u{0}\u{ff}",
    "\u{0}\u{1}\u{0}\u{1}",
    "*",
    "\u{1}*",
    "\u{1}.",
];

fn inputs() -> Inputs {
    Inputs::new("dns", TOKENS)
}

/// Every record of `message` through `from_wire`, and what it accepts back to the wire.
fn convert_all(message: &Message) -> Outcome {
    let mut outcome = Outcome::Refused;
    for record in message
        .answers
        .iter()
        .chain(&message.authorities)
        .chain(&message.additionals)
    {
        if let Ok(Some(live)) = from_wire(record) {
            outcome = Outcome::Accepted;
            let mut update = Message::new(0, MessageType::Query, OpCode::Update);
            update.add_answer(Record::from_rdata(
                to_wire_record(&live.record).name,
                0,
                live_to_wire_rdata(&live),
            ));
            update.add_answer(to_wire_record(&live.record));
            let _ = update.to_vec();
        }
    }
    outcome
}

#[test]
fn answers_parse_and_convert_without_panics() {
    fuzz(
        "dns-wire",
        cases(30_000),
        inputs().bytes(),
        |bytes| match Message::from_vec(bytes) {
            Ok(message) => convert_all(&message),
            Err(_) => Outcome::Refused,
        },
    );
}

// ---------------------------------------------------------------------------------------
// (b) Over the network.

/// How the server answers one request.
#[derive(Debug, Clone)]
enum Action {
    /// The right answer, mutated (no mutation: as it is).
    Answer(Vec<Mutation>),
    /// The right answer with another ID (a spoofed or late answer).
    WrongId,
    /// The right answer with the TC bit (over UDP: the client asks again over TCP).
    Tc,
    /// The right answer cut short.
    Cut(usize),
    /// Random bytes with the request's ID.
    Garbage(Vec<u8>),
    /// No answer at all (the client times out).
    Silent,
    /// TCP: a length prefix that is not the answer's length, then the connection closed.
    BadLength(u16),
    /// TCP: the connection closed without answering.
    Close,
    /// Another corpus answer (another question) with the request's ID.
    Other(usize),
    /// A zone transfer answer, as [`Stream`] says.
    Stream(Stream),
}

/// How a zone transfer goes wrong (or right).
#[derive(Debug, Clone)]
struct Stream {
    /// Records per message (the last message takes the rest).
    split: Vec<usize>,
    fault: StreamFault,
    /// Message index and mutations of one message.
    mutate: Option<(usize, Vec<Mutation>)>,
    /// With TSIG: sign the messages (each, or only the first and the last).
    sign_all: bool,
}

#[derive(Debug, Clone)]
enum StreamFault {
    None,
    /// The connection closes after this many messages.
    CutAfter(usize),
    /// The first SOA is missing.
    NoOpeningSoa,
    /// The closing SOA is missing (the server then closes).
    NoClosingSoa,
    /// The SOAs are at another name.
    OtherSoaName,
    /// Records follow the closing SOA.
    RecordsAfterSoa,
    /// REFUSED: the provider reads record by record instead.
    Refused,
    /// NOTAUTH with an unsigned TSIG error (Knot's answer to a key outside the ACL).
    NotAuth,
    /// The second message has another ID.
    WrongId,
    /// A message signed with another key.
    OtherKey,
    /// Signed (with the right key) at this time: a server whose clock is wrong.
    SignedAt(u64),
}

fn stream() -> impl Strategy<Value = Stream> {
    let fault = prop_oneof![
        4 => Just(StreamFault::None),
        1 => (0usize..MAX_STREAM).prop_map(StreamFault::CutAfter),
        1 => Just(StreamFault::NoOpeningSoa),
        1 => Just(StreamFault::NoClosingSoa),
        1 => Just(StreamFault::OtherSoaName),
        1 => Just(StreamFault::RecordsAfterSoa),
        1 => Just(StreamFault::Refused),
        1 => Just(StreamFault::NotAuth),
        1 => Just(StreamFault::WrongId),
        1 => Just(StreamFault::OtherKey),
        1 => prop_oneof![Just(0u64), Just(299), Just(301), Just((1 << 48) - 1), 0u64..(1 << 48)]
            .prop_map(StreamFault::SignedAt),
    ];
    (
        vec(0usize..12, 0..MAX_STREAM - 1),
        fault,
        proptest::option::weighted(0.5, (0usize..MAX_STREAM, vec(mutation(4096), 1..4))),
        any::<bool>(),
    )
        .prop_map(|(split, fault, mutate, sign_all)| Stream {
            split,
            fault,
            mutate,
            sign_all,
        })
}

fn action(n_answers: usize) -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => vec(mutation(1024), 0..4).prop_map(Action::Answer),
        1 => Just(Action::WrongId),
        2 => Just(Action::Tc),
        1 => (0usize..600).prop_map(Action::Cut),
        1 => vec(any::<u8>(), 0..64).prop_map(Action::Garbage),
        1 => Just(Action::Silent),
        1 => any::<u16>().prop_map(Action::BadLength),
        1 => Just(Action::Close),
        1 => (0..n_answers).prop_map(Action::Other),
        3 => stream().prop_map(Action::Stream),
    ]
}

/// What to ask.
#[derive(Debug, Clone)]
enum Call {
    Serial,
    /// A question of the corpus answer with this index.
    Rrset(usize),
    Lookup(usize),
    ReadZone {
        protocol: Transport,
        tsig: bool,
    },
}

#[derive(Debug, Clone)]
struct Case {
    call: Call,
    /// The server's actions, one per request in order; then correct answers.
    actions: Vec<Action>,
}

/// The server's view: what it answers and how.
struct Server {
    /// The corpus answers by question (name in lowercase, type).
    answers: HashMap<(String, RecordType), Vec<u8>>,
    /// The corpus answers in order (for [`Action::Other`]).
    list: Vec<Vec<u8>>,
    donors: Vec<Entry>,
    tokens: Vec<Vec<u8>>,
    zone: Vec<Record>,
    signer: TSigner,
    other_signer: TSigner,
    actions: Mutex<VecDeque<Action>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Appends a TSIG record (RFC 8945 §4.2) to an encoded message, signed over the previous
/// MAC, `unsigned` (the messages since the last signed one) and the message: with every
/// variable for the first message, with the timers only after it (§5.3.1).
fn sign(
    signer: &TSigner,
    message: &[u8],
    previous_mac: &[u8],
    unsigned: &[u8],
    first: bool,
    time: u64,
) -> (Vec<u8>, Vec<u8>) {
    if message.len() < 12 {
        return (message.to_vec(), previous_mac.to_vec());
    }
    let fudge: u16 = 300;
    let id = [message[0], message[1]];
    let mut algorithm = Vec::new();
    let label = "hmac-sha256";
    algorithm.push(label.len() as u8);
    algorithm.extend_from_slice(label.as_bytes());
    algorithm.push(0);
    let mut key = Vec::new();
    key.push(KEY_NAME.len() as u8);
    key.extend_from_slice(KEY_NAME.as_bytes());
    key.push(0);
    let timers = {
        let mut t = (time.to_be_bytes()[2..]).to_vec();
        t.extend_from_slice(&fudge.to_be_bytes());
        t
    };
    let mut tbs = Vec::new();
    tbs.extend_from_slice(&(previous_mac.len() as u16).to_be_bytes());
    tbs.extend_from_slice(previous_mac);
    tbs.extend_from_slice(unsigned);
    tbs.extend_from_slice(message);
    if first {
        // Key name, class ANY, TTL 0, algorithm, timers, error 0, other length 0.
        tbs.extend_from_slice(&key);
        tbs.extend_from_slice(&255u16.to_be_bytes());
        tbs.extend_from_slice(&0u32.to_be_bytes());
        tbs.extend_from_slice(&algorithm);
        tbs.extend_from_slice(&timers);
        tbs.extend_from_slice(&[0, 0, 0, 0]);
    } else {
        tbs.extend_from_slice(&timers);
    }
    let mac = signer.sign(&tbs).unwrap();
    let mut rdata = algorithm;
    rdata.extend_from_slice(&timers);
    rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(&mac);
    rdata.extend_from_slice(&id);
    rdata.extend_from_slice(&[0, 0, 0, 0]);
    let mut out = message.to_vec();
    out.extend_from_slice(&key);
    out.extend_from_slice(&250u16.to_be_bytes());
    out.extend_from_slice(&255u16.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    let arcount = u16::from_be_bytes([out[10], out[11]]).wrapping_add(1);
    out[10..12].copy_from_slice(&arcount.to_be_bytes());
    (out, mac)
}

/// An unsigned TSIG record carrying `error` (RFC 8945 §5.3.2: BADKEY, BADSIG).
fn tsig_error(message: &[u8], error: u16) -> Vec<u8> {
    let mut out = message.to_vec();
    if out.len() < 12 {
        return out;
    }
    let id = [out[0], out[1]];
    out.push(KEY_NAME.len() as u8);
    out.extend_from_slice(KEY_NAME.as_bytes());
    out.push(0);
    out.extend_from_slice(&250u16.to_be_bytes());
    out.extend_from_slice(&255u16.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    let mut rdata = vec![11];
    rdata.extend_from_slice(b"hmac-sha256");
    rdata.push(0);
    rdata.extend_from_slice(&now().to_be_bytes()[2..]);
    rdata.extend_from_slice(&300u16.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes());
    rdata.extend_from_slice(&id);
    rdata.extend_from_slice(&error.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    let arcount = u16::from_be_bytes([out[10], out[11]]).wrapping_add(1);
    out[10..12].copy_from_slice(&arcount.to_be_bytes());
    out
}

fn set_id(bytes: &mut [u8], id: u16) {
    if bytes.len() >= 2 {
        bytes[..2].copy_from_slice(&id.to_be_bytes());
    }
}

impl Server {
    fn next_action(&self) -> Action {
        self.actions
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Action::Answer(Vec::new()))
    }

    fn mutate(&self, bytes: &mut Vec<u8>, mutations: &[Mutation]) {
        for m in mutations {
            m.apply(bytes, &self.donors, &self.tokens);
        }
    }

    /// The right answer to `request`: the corpus answer to its question, else NXDOMAIN.
    fn answer_to(&self, request: &Message) -> Vec<u8> {
        let key = request
            .queries
            .first()
            .map(|q| (q.name().to_ascii().to_ascii_lowercase(), q.query_type()));
        let mut bytes = match key.and_then(|k| self.answers.get(&k)) {
            Some(b) => b.clone(),
            None => {
                let mut m = Message::new(request.id, MessageType::Response, OpCode::Query);
                m.metadata.authoritative = true;
                m.metadata.response_code = ResponseCode::NXDomain;
                m.add_queries(request.queries.clone());
                m.add_authority(soa(2026120501));
                m.to_vec().unwrap()
            }
        };
        set_id(&mut bytes, request.id);
        bytes
    }

    /// The messages answering one request, as `action` says; `None` closes a TCP
    /// connection afterwards, a length prefix that lies is in the frames.
    fn respond(&self, raw: &[u8], action: Action, tcp: bool) -> Reply {
        let Ok(request) = Message::from_vec(raw) else {
            return Reply::default();
        };
        let request_mac = request.signature().map(|s| s.data.mac.clone());
        let signed = |bytes: Vec<u8>| match &request_mac {
            Some(mac) => sign(&self.signer, &bytes, mac, &[], true, now()).0,
            None => bytes,
        };
        let is_axfr = request
            .queries
            .first()
            .is_some_and(|q| q.query_type() == RecordType::AXFR);
        let frame = |bytes: Vec<u8>| Reply {
            frames: vec![Frame::Message(bytes)],
            close: false,
        };
        let action = match action {
            // A transfer's own faults; a mutation hits its first message.
            Action::Stream(stream) if is_axfr && tcp => {
                return self.transfer(&request, request_mac.as_deref(), stream);
            }
            Action::Answer(mutations) if is_axfr && tcp => {
                let mutate = (!mutations.is_empty()).then_some((0, mutations));
                let stream = Stream {
                    split: vec![],
                    fault: StreamFault::None,
                    mutate,
                    sign_all: true,
                };
                return self.transfer(&request, request_mac.as_deref(), stream);
            }
            other => other,
        };
        match action {
            Action::Answer(mutations) => {
                let mut bytes = self.answer_to(&request);
                self.mutate(&mut bytes, &mutations);
                set_id(&mut bytes, request.id);
                frame(signed(bytes))
            }
            Action::WrongId => {
                let mut bytes = signed(self.answer_to(&request));
                set_id(&mut bytes, request.id.wrapping_add(1));
                frame(bytes)
            }
            Action::Tc => {
                let mut bytes = self.answer_to(&request);
                if bytes.len() > 2 {
                    bytes[2] |= 0x02;
                }
                frame(signed(bytes))
            }
            Action::Cut(at) => {
                let mut bytes = signed(self.answer_to(&request));
                bytes.truncate(at % (bytes.len() + 1));
                frame(bytes)
            }
            Action::Garbage(mut bytes) => {
                set_id(&mut bytes, request.id);
                frame(bytes)
            }
            Action::Silent => Reply::default(),
            Action::BadLength(len) if tcp => Reply {
                frames: vec![Frame::Raw(
                    [len.to_be_bytes().to_vec(), signed(self.answer_to(&request))].concat(),
                )],
                close: true,
            },
            Action::Close if tcp => Reply {
                frames: vec![],
                close: true,
            },
            Action::Other(i) => {
                let mut bytes = self.list[i % self.list.len()].clone();
                set_id(&mut bytes, request.id);
                frame(signed(bytes))
            }
            // Over UDP (or for another question), the TCP-only faults answer correctly.
            _ => frame(signed(self.answer_to(&request))),
        }
    }

    /// A zone transfer: SOA, the zone's records, SOA, over one or more messages.
    fn transfer(&self, request: &Message, request_mac: Option<&[u8]>, stream: Stream) -> Reply {
        let question = request.queries[0].clone();
        let build = |records: Vec<Record>, id: u16| {
            let mut m = Message::new(id, MessageType::Response, OpCode::Query);
            m.metadata.authoritative = true;
            m.add_query(question.clone());
            for r in records {
                m.add_answer(r);
            }
            m
        };
        match stream.fault {
            StreamFault::Refused | StreamFault::NotAuth => {
                let mut m = build(vec![], request.id);
                let refused = matches!(stream.fault, StreamFault::Refused);
                m.metadata.response_code = if refused {
                    ResponseCode::Refused
                } else {
                    ResponseCode::NotAuth
                };
                let bytes = m.to_vec().unwrap();
                let bytes = match (request_mac, refused) {
                    (Some(mac), true) => sign(&self.signer, &bytes, mac, &[], true, now()).0,
                    (Some(_), false) => tsig_error(&bytes, 17),
                    (None, _) => bytes,
                };
                return Reply {
                    frames: vec![Frame::Message(bytes)],
                    close: false,
                };
            }
            _ => {}
        }
        let serial = 2026120501;
        let mut records = self.zone.clone();
        let soa_name = if matches!(stream.fault, StreamFault::OtherSoaName) {
            "other.test."
        } else {
            ZONE
        };
        let mut opening = soa(serial);
        opening.name = wire(soa_name);
        let closing = opening.clone();
        if !matches!(stream.fault, StreamFault::NoOpeningSoa) {
            records.insert(0, opening);
        }
        if !matches!(stream.fault, StreamFault::NoClosingSoa) {
            records.push(closing);
        }
        if matches!(stream.fault, StreamFault::RecordsAfterSoa) {
            records.push(self.zone[0].clone());
        }
        // Split into messages.
        let mut messages = Vec::new();
        let mut rest = records.as_slice();
        for n in &stream.split {
            if rest.is_empty() {
                break;
            }
            let n = (*n).min(rest.len());
            messages.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        messages.push(rest.to_vec());
        let mut frames = Vec::new();
        let mut previous_mac = request_mac.map(<[u8]>::to_vec);
        let mut unsigned = Vec::new();
        let last = messages.len() - 1;
        for (i, records) in messages.into_iter().enumerate() {
            let id = if matches!(stream.fault, StreamFault::WrongId) && i == 1 {
                request.id.wrapping_add(7)
            } else {
                request.id
            };
            let mut bytes = build(records, id).to_vec().unwrap();
            if let Some((at, mutations)) = &stream.mutate
                && *at == i
            {
                self.mutate(&mut bytes, mutations);
                set_id(&mut bytes, id);
            }
            if let Some(mac) = &previous_mac {
                if stream.sign_all || i == 0 || i == last {
                    let signer = if matches!(stream.fault, StreamFault::OtherKey) && i == last {
                        &self.other_signer
                    } else {
                        &self.signer
                    };
                    let time = match stream.fault {
                        StreamFault::SignedAt(t) => t,
                        _ => now(),
                    };
                    let (signed, new_mac) = sign(signer, &bytes, mac, &unsigned, i == 0, time);
                    bytes = signed;
                    previous_mac = Some(new_mac);
                    unsigned.clear();
                } else {
                    unsigned.extend_from_slice(&bytes);
                }
            }
            frames.push(Frame::Message(bytes));
            if let StreamFault::CutAfter(n) = stream.fault
                && i + 1 >= n
            {
                return Reply {
                    frames,
                    close: true,
                };
            }
        }
        let close = matches!(stream.fault, StreamFault::NoClosingSoa);
        Reply { frames, close }
    }
}

#[derive(Debug, Default)]
struct Reply {
    frames: Vec<Frame>,
    /// Close a TCP connection after the frames.
    close: bool,
}

#[derive(Debug)]
enum Frame {
    /// A message (over TCP with its length prefix).
    Message(Vec<u8>),
    /// Bytes written as they are (TCP).
    Raw(Vec<u8>),
}

async fn serve_udp(socket: UdpSocket, server: Arc<Server>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let action = server.next_action();
        let reply = server.respond(&buf[..n], action, false);
        for frame in reply.frames {
            let (Frame::Message(bytes) | Frame::Raw(bytes)) = frame;
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

async fn serve_tcp_connection(mut stream: TcpStream, server: Arc<Server>) {
    loop {
        let Ok(len) = stream.read_u16().await else {
            return;
        };
        let mut raw = vec![0u8; usize::from(len)];
        if stream.read_exact(&mut raw).await.is_err() {
            return;
        }
        let action = server.next_action();
        let reply = server.respond(&raw, action, true);
        for frame in reply.frames {
            let bytes = match frame {
                Frame::Message(bytes) => {
                    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
                    [len.to_be_bytes().to_vec(), bytes].concat()
                }
                Frame::Raw(bytes) => bytes,
            };
            if stream.write_all(&bytes).await.is_err() {
                return;
            }
        }
        if reply.close {
            return;
        }
    }
}

async fn serve_tcp(listener: TcpListener, server: Arc<Server>) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_tcp_connection(stream, Arc::clone(&server)));
        }
    }
}

/// A UDP socket and a TCP listener on the same ephemeral loopback port.
async fn bind() -> (UdpSocket, TcpListener, SocketAddr) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp, addr);
        }
    }
    panic!("no free loopback port for both UDP and TCP");
}

fn tsig_config() -> TsigConfig {
    TsigConfig {
        key_name: KEY_NAME.into(),
        algorithm: TsigAlgorithm::HmacSha256,
        secret: KEY_SECRET.to_vec().into(),
    }
}

/// What the provider reads record by record when the transfer is refused.
fn wanted() -> Vec<(Name, RrType)> {
    let n = |s: &str| Name::owner(s).unwrap();
    vec![
        (n("example.test"), RrType::Mx),
        (n("example.test"), RrType::Txt),
        (n("mail.example.test"), RrType::A),
        (n("_25._tcp.mail.example.test"), RrType::Tlsa),
        (n("example.test"), RrType::Caa),
    ]
}

/// The question of a corpus answer, as mailzone's types.
fn question_of(bytes: &[u8]) -> Option<(Name, String)> {
    let m = Message::from_vec(bytes).ok()?;
    let q = m.queries.first()?;
    let name = Name::owner(&q.name().to_ascii()).ok()?;
    Some((name, q.query_type().to_string()))
}

async fn run_call(addr: SocketAddr, call: &Call, answers: &[Vec<u8>]) -> Outcome {
    let zone = Name::owner("example.test").unwrap();
    match call {
        Call::Serial => Outcome::from(&query_serial(addr, &zone, TIMEOUT).await),
        Call::Rrset(i) | Call::Lookup(i) => {
            let Some((name, rtype)) = question_of(&answers[i % answers.len()]) else {
                return Outcome::Refused;
            };
            if matches!(call, Call::Rrset(_)) {
                Outcome::from(&query_rrset(addr, &name, &rtype, TIMEOUT).await)
            } else {
                Outcome::from(&lookup(addr, &name, &rtype, TIMEOUT).await)
            }
        }
        Call::ReadZone { protocol, tsig } => {
            let provider = Rfc2136Provider::new(Rfc2136Config {
                server: addr,
                protocol: *protocol,
                tsig: tsig.then(tsig_config),
                timeout: TIMEOUT,
            });
            Outcome::from(&provider.read_zone(&zone, &wanted()).await)
        }
    }
}

#[test]
fn network_answers_never_panic_or_hang() {
    let runtime = runtime();
    let (server, addr, answers) = start_server(&runtime);
    let n = answers.len();
    let call = prop_oneof![
        2 => Just(Call::Serial),
        2 => (0..n).prop_map(Call::Rrset),
        2 => (0..n).prop_map(Call::Lookup),
        4 => (prop_oneof![Just(Transport::Tcp), Just(Transport::Udp)], any::<bool>())
            .prop_map(|(protocol, tsig)| Call::ReadZone { protocol, tsig }),
    ];
    let strategy = (call, vec(action(n), 0..4)).prop_map(|(call, actions)| Case { call, actions });
    fuzz("dns-network", cases(400), strategy, |case| {
        *server.actions.lock().unwrap() = case.actions.iter().cloned().collect();
        runtime.block_on(async {
            match tokio::time::timeout(CALL_LIMIT, run_call(addr, &case.call, &answers)).await {
                Ok(outcome) => outcome,
                Err(_) => panic!("{:?} did not return within {CALL_LIMIT:?}", case.call),
            }
        })
    });
}

/// A server with the corpus and the TSIG key, on loopback, in `runtime`.
fn start_server(runtime: &tokio::runtime::Runtime) -> (Arc<Server>, SocketAddr, Vec<Vec<u8>>) {
    let entries = corpus("dns");
    let answers: Vec<Vec<u8>> = entries
        .iter()
        .filter(|e| e.name.starts_with("answer-"))
        .map(|e| e.bytes.clone())
        .collect();
    let mut by_question = HashMap::new();
    for bytes in &answers {
        if let Ok(m) = Message::from_vec(bytes)
            && let Some(q) = m.queries.first()
        {
            by_question.insert(
                (q.name().to_ascii().to_ascii_lowercase(), q.query_type()),
                bytes.clone(),
            );
        }
    }
    let axfr = entries
        .iter()
        .find(|e| e.name == "axfr.bin")
        .expect("corpus/dns/axfr.bin");
    let mut zone = Message::from_vec(&axfr.bytes).unwrap().answers;
    zone.retain(|r| r.record_type() != RecordType::SOA);
    let key_name = WireName::from_ascii(KEY_NAME).unwrap();
    let server = Arc::new(Server {
        answers: by_question,
        list: answers.clone(),
        tokens: inputs().tokens.to_vec(),
        donors: entries,
        zone,
        signer: TSigner::new(
            KEY_SECRET.to_vec(),
            WireTsigAlgorithm::HmacSha256,
            key_name.clone(),
            300,
        )
        .unwrap(),
        other_signer: TSigner::new(
            b"another-secret".to_vec(),
            WireTsigAlgorithm::HmacSha256,
            key_name,
            300,
        )
        .unwrap(),
        actions: Mutex::new(VecDeque::new()),
    });
    let addr = runtime.block_on(async {
        let (udp, tcp, addr) = bind().await;
        tokio::spawn(serve_udp(udp, Arc::clone(&server)));
        tokio::spawn(serve_tcp(tcp, Arc::clone(&server)));
        addr
    });
    (server, addr, answers)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The timeout of the scenario tests, whose answers must not turn into timeouts on a
/// busy machine.
const PATIENT: Duration = Duration::from_secs(5);

fn read_zone(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    tsig: bool,
) -> Result<mailzone_dns::ZoneSnapshot, mailzone_dns::DnsError> {
    let provider = Rfc2136Provider::new(Rfc2136Config {
        server: addr,
        protocol: Transport::Tcp,
        tsig: tsig.then(tsig_config),
        timeout: PATIENT,
    });
    runtime.block_on(provider.read_zone(&Name::owner("example.test").unwrap(), &wanted()))
}

/// The harness itself: without faults, the server's answers are what mailzone accepts
/// (so the fuzzing above reaches past the first check), signed transfers included.
#[test]
fn the_server_answers_correctly_without_faults() {
    let runtime = runtime();
    let (server, addr, _) = start_server(&runtime);
    let zone = Name::owner("example.test").unwrap();
    let serial = runtime
        .block_on(query_serial(addr, &zone, PATIENT))
        .unwrap();
    assert_eq!(serial, 2026120501);
    let txt = runtime
        .block_on(query_rrset(addr, &zone, "TXT", PATIENT))
        .unwrap();
    assert_eq!(txt.len(), 2);
    for (split, sign_all) in [
        (vec![], true),
        (vec![1, 3, 2], true),
        (vec![2, 2, 2], false),
    ] {
        for tsig in [false, true] {
            *server.actions.lock().unwrap() = VecDeque::from([Action::Stream(Stream {
                split: split.clone(),
                fault: StreamFault::None,
                mutate: None,
                sign_all,
            })]);
            let snapshot = read_zone(&runtime, addr, tsig)
                .unwrap_or_else(|e| panic!("{split:?} tsig {tsig} sign_all {sign_all}: {e}"));
            assert_eq!(snapshot.serial, 2026120501);
            assert_eq!(snapshot.method, mailzone_dns::ReadMethod::Transfer);
            assert!(snapshot.records.len() > 10, "{}", snapshot.records.len());
        }
    }
    // Refused: read record by record, signed answers verified.
    *server.actions.lock().unwrap() = VecDeque::from([Action::Stream(Stream {
        split: vec![],
        fault: StreamFault::Refused,
        mutate: None,
        sign_all: true,
    })]);
    let snapshot = read_zone(&runtime, addr, true).unwrap();
    assert_eq!(snapshot.method, mailzone_dns::ReadMethod::Queries);
}

/// Regression (found by this target): a transfer signed with the right key but dated
/// within the fudge of 1970 panicked in hickory's verifier; it is an error now.
#[test]
fn a_transfer_signed_in_1970_is_an_error_not_a_panic() {
    let runtime = runtime();
    let (server, addr, _) = start_server(&runtime);
    for time in [0, 299, (1 << 48) - 1] {
        *server.actions.lock().unwrap() = VecDeque::from([Action::Stream(Stream {
            split: vec![],
            fault: StreamFault::SignedAt(time),
            mutate: None,
            sign_all: true,
        })]);
        let e = read_zone(&runtime, addr, true).unwrap_err();
        assert!(e.to_string().contains("away from our clock"), "{e}");
    }
}
