//! TSIG (RFC 8945): signing requests and verifying answers, including multi-message zone
//! transfers, with errors a person can act on.
//!
//! hickory's `TSigVerifier` (used inside hickory-net's exchanges) verifies an answer before
//! anything looks at its TSIG error field. A server that rejects our key answers with an
//! *unsigned* TSIG record carrying BADSIG/BADKEY (RFC 8945 §5.3.2: MAC size 0), and the
//! verifier then fails with "…support truncated HMACs…", hiding the real cause. So the error
//! field is read first here, and only a TSIG record without an error is verified.
//! The verifier also requires every message of a transfer to be signed, while
//! RFC 8945 §5.3.1 lets a server leave up to 99 messages in a row unsigned; both cases are
//! handled here.
//!
//! Requests are signed and answers verified on their bytes as sent and received: hickory's
//! `sign_message` encodes the message once more to sign it, and `verify_message_byte`
//! decodes every record of an answer once more to find where its TSIG record starts. Here
//! the MAC input (RFC 8945 §4.3.3) is built from the bytes at hand, with hickory's own
//! encoders for the TSIG variables and record, and its HMAC; only the walk past the
//! records before the TSIG record ([`tsig_start`]) is written here.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigError, make_tsig_record};
use hickory_proto::rr::{Name as WireName, Record as WireRecord, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::DnsError;
use crate::rfc2136::TsigConfig;

/// RFC 8945 §10: 300 seconds is the recommended fudge.
pub(crate) const FUDGE: u16 = 300;

/// RFC 8945 §5.3.1: at most 99 messages in a row may be unsigned in a transfer.
const MAX_UNSIGNED_IN_A_ROW: usize = 99;

/// A configured key, ready to sign.
pub(crate) struct Signer {
    signer: TSigner,
    key_name: String,
    algorithm: &'static str,
}

impl Signer {
    pub(crate) fn new(config: &TsigConfig, server: SocketAddr) -> Result<Signer, DnsError> {
        let name = WireName::from_ascii(config.key_name.trim_end_matches('.')).map_err(|e| {
            DnsError::tsig(
                server,
                format!(
                    "the TSIG key name `{}` is not a domain name: {e}",
                    config.key_name
                ),
            )
        })?;
        // hickory keeps its own copy of the secret (a plain `Vec<u8>`, not zeroized on drop):
        // one copy per provider, for the provider's lifetime.
        let signer = TSigner::new(
            config.secret.to_vec(),
            crate::rfc2136::wire_algorithm(config.algorithm),
            name,
            FUDGE,
        )
        .map_err(|e| {
            DnsError::tsig(
                server,
                format!("cannot use TSIG algorithm {}: {e}", config.algorithm),
            )
        })?;
        Ok(Signer {
            signer,
            key_name: config.key_name.trim_end_matches('.').to_string(),
            algorithm: config.algorithm.name(),
        })
    }

    pub(crate) fn key_name(&self) -> &str {
        &self.key_name
    }

    /// Signs a request encoded without a TSIG record (RFC 8945 §4.3): appends the record
    /// and returns the verifier of its answer(s).
    pub(crate) fn sign(
        &self,
        bytes: &mut Vec<u8>,
        server: SocketAddr,
    ) -> Result<AnswerVerifier<'_>, DnsError> {
        let request_mac = self.sign_at(bytes, unix_now()).map_err(|e| {
            DnsError::tsig(server, format!("cannot sign the request with TSIG: {e}"))
        })?;
        Ok(AnswerVerifier {
            signer: self,
            server,
            mac_len: request_mac.len(),
            previous_mac: request_mac,
            first: true,
            unsigned: Vec::new(),
            unsigned_count: 0,
            last_time: 0,
        })
    }

    /// [`Signer::sign`] at a given time; returns the request's MAC. The record's owner (the
    /// key name) is written uncompressed, where hickory's encoder would point into an
    /// earlier name sharing a suffix: a few bytes more, the same MAC (RFC 8945 §4.3.3
    /// covers the name in canonical form).
    fn sign_at(&self, bytes: &mut Vec<u8>, now: u64) -> Result<Vec<u8>, String> {
        let header = |i: usize| {
            bytes
                .get(i..i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let (Some(id), Some(additionals)) = (header(0), header(10)) else {
            return Err("the request is shorter than a DNS header".into());
        };
        let additionals = additionals
            .checked_add(1)
            .ok_or("the request has no room for one more additional record")?;
        let stub = TSIG::new(
            self.signer.algorithm().clone(),
            now,
            FUDGE,
            Vec::new(),
            id,
            None,
            Vec::new(),
        );
        // RFC 8945 §4.3.3: the MAC covers the message as sent, then the TSIG variables.
        let mut tbs = bytes.clone();
        tbs.extend_from_slice(&encoded(|e| {
            stub.emit_tsig_for_mac(e, self.signer.signer_name())
        })?);
        let mac = self.signer.sign(&tbs).map_err(|e| e.to_string())?;
        let record: WireRecord<TSIG> =
            make_tsig_record(self.signer.signer_name().clone(), stub.set_mac(mac.clone()));
        bytes.extend_from_slice(&encoded(|e| record.emit(e))?);
        bytes[10..12].copy_from_slice(&additionals.to_be_bytes());
        Ok(mac)
    }

    /// The message for a TSIG error the server reported.
    pub(crate) fn rejected(&self, server: SocketAddr, error: TsigError, other: &[u8]) -> String {
        let key = &self.key_name;
        match error {
            TsigError::BadSig => format!(
                "the server {server} rejected the TSIG key `{key}` (BADSIG): check keyName, the secret and the algorithm ({})",
                self.algorithm
            ),
            TsigError::BadKey => format!(
                "the server {server} rejected the TSIG key `{key}` (BADKEY): it does not know a key of that name with algorithm {}, or (Knot) its ACL does not allow this key here; check keyName, the algorithm and the server's ACL",
                self.algorithm
            ),
            TsigError::BadTime => {
                let skew = server_time(other)
                    .map(|t| {
                        format!(
                            " (its clock differs from ours by {} s)",
                            t.abs_diff(unix_now())
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "the server {server} rejected the TSIG key `{key}` (BADTIME): the clocks differ by more than {FUDGE} s{skew}; check NTP on both sides"
                )
            }
            TsigError::BadTrunc => format!(
                "the server {server} rejected the TSIG key `{key}` (BADTRUNC): truncated MACs are not accepted"
            ),
            TsigError::Unknown(code) => format!(
                "the server {server} rejected the TSIG key `{key}` (TSIG error {code}): check keyName, the secret and the algorithm"
            ),
        }
    }
}

/// Verifies the answer (or the answers of a transfer) to one signed request.
pub(crate) struct AnswerVerifier<'a> {
    signer: &'a Signer,
    server: SocketAddr,
    previous_mac: Vec<u8>,
    first: bool,
    /// Unsigned messages since the last signed one (RFC 8945 §5.3.1), as received.
    unsigned: Vec<u8>,
    unsigned_count: usize,
    last_time: u64,
    /// The length of an untruncated MAC of the key's algorithm.
    mac_len: usize,
}

/// What a received message says about TSIG.
#[derive(Debug)]
pub(crate) enum Verified {
    /// Signed with our key and the MAC verifies.
    Signed,
    /// No TSIG record (allowed only inside a transfer; the caller decides).
    Unsigned,
    /// The server reported a TSIG error, and the message to show.
    Rejected(TsigError, String),
}

impl AnswerVerifier<'_> {
    /// Verifies one received message. `bytes` is the message as received, `message` its
    /// decoded form.
    pub(crate) fn verify(&mut self, bytes: &[u8], message: &Message) -> Result<Verified, DnsError> {
        let server = self.server;
        let key = self.signer.key_name.clone();
        let Some(tsig) = message.signature() else {
            if self.first {
                // Still `first`: the caller refuses an unsigned first answer (unless its
                // RCODE says why), so no later message is verified after it.
                return Ok(Verified::Unsigned);
            }
            self.unsigned.extend_from_slice(bytes);
            self.unsigned_count += 1;
            if self.unsigned_count > MAX_UNSIGNED_IN_A_ROW {
                return Err(DnsError::tsig(
                    server,
                    format!(
                        "{server} sent more than {MAX_UNSIGNED_IN_A_ROW} transfer messages in a row without a TSIG signature (RFC 8945 §5.3.1): the transfer cannot be trusted"
                    ),
                ));
            }
            return Ok(Verified::Unsigned);
        };
        if let Some(error) = tsig.data.error {
            return Ok(Verified::Rejected(
                error,
                self.signer.rejected(server, error, &tsig.data.other),
            ));
        }
        let answer_key = tsig.name.to_ascii().to_ascii_lowercase();
        if answer_key.trim_end_matches('.') != key.to_ascii_lowercase() {
            return Err(DnsError::tsig(
                server,
                format!(
                    "{server} signed its answer with the TSIG key `{}`, not `{key}`: the answer cannot be trusted",
                    tsig.name
                ),
            ));
        }
        if tsig.data.algorithm != *self.signer.signer.algorithm() {
            return Err(DnsError::tsig(
                server,
                format!(
                    "{server} signed its answer with {}, not {}: the answer cannot be trusted",
                    tsig.data.algorithm, self.signer.algorithm
                ),
            ));
        }
        let bad_mac = |detail: String| {
            DnsError::tsig(
                server,
                format!(
                    "the TSIG signature of the answer from {server} does not verify with the key `{key}` ({detail}): the answer cannot be trusted"
                ),
            )
        };
        // RFC 8945 §5.2.3: the time signed must lie within the fudge of our clock. An answer
        // dated within `fudge` seconds of 1970 is refused here, before hickory's verifier
        // computes `time - fudge` (an arithmetic overflow, a panic where overflow checks
        // are on) for an answer whose MAC verifies.
        if tsig.data.time < u64::from(tsig.data.fudge) {
            return Err(too_far(server, tsig.data.time));
        }
        // hickory's verifier refuses truncated MACs (RFC 8945 §5.2.2.1 allows them); so
        // does this one. The algorithm is ours (checked above): the request's MAC has the
        // full length.
        if tsig.data.mac.len() < self.mac_len {
            return Err(bad_mac(format!(
                "the MAC is truncated to {} bytes",
                tsig.data.mac.len()
            )));
        }
        let tbv = self
            .to_be_verified(bytes, tsig)
            .ok_or_else(|| bad_mac("the answer's records end before its TSIG record".into()))?;
        self.signer
            .signer
            .verify(&tbv, &tsig.data.mac)
            .map_err(|e| bad_mac(e.to_string()))?;
        self.previous_mac = tsig.data.mac.clone();
        self.unsigned.clear();
        self.unsigned_count = 0;
        let time = tsig.data.time;
        // RFC 8945 §5.4.3 (client side of §5.2.3): the answer must be signed within the
        // fudge of our clock, and signatures of a transfer must not go back in time.
        if time.abs_diff(unix_now()) > u64::from(FUDGE) || time < self.last_time {
            return Err(too_far(server, time));
        }
        self.last_time = time;
        self.first = false;
        Ok(Verified::Signed)
    }

    /// What the MAC of a signed answer covers (RFC 8945 §4.3.3, §5.3.1): the previous MAC
    /// (the request's, or the last signed message's of a transfer), the unsigned messages
    /// since, this message without its TSIG record (and with its original ID), then the
    /// TSIG variables (the first answer) or only its timers (later messages of a transfer).
    fn to_be_verified(&self, bytes: &[u8], tsig: &WireRecord<TSIG>) -> Option<Vec<u8>> {
        let end = tsig_start(bytes)?;
        let additionals = u16::from_be_bytes([bytes[10], bytes[11]]).checked_sub(1)?;
        let mut tbv =
            Vec::with_capacity(2 + self.previous_mac.len() + self.unsigned.len() + end + 64);
        tbv.extend_from_slice(&(self.previous_mac.len() as u16).to_be_bytes());
        tbv.extend_from_slice(&self.previous_mac);
        tbv.extend_from_slice(&self.unsigned);
        tbv.extend_from_slice(&tsig.data.oid.to_be_bytes());
        tbv.extend_from_slice(&bytes[2..10]);
        tbv.extend_from_slice(&additionals.to_be_bytes());
        tbv.extend_from_slice(&bytes[12..end]);
        if self.first {
            tbv.extend_from_slice(&encoded(|e| tsig.data.emit_tsig_for_mac(e, &tsig.name)).ok()?);
        } else {
            tbv.extend_from_slice(&((tsig.data.time >> 32) as u16).to_be_bytes());
            tbv.extend_from_slice(&(tsig.data.time as u32).to_be_bytes());
            tbv.extend_from_slice(&tsig.data.fudge.to_be_bytes());
        }
        Some(tbv)
    }

    /// RFC 8945 §5.3.1: the last message of a transfer must be signed.
    pub(crate) fn finish(&self) -> Result<(), DnsError> {
        if self.unsigned_count > 0 {
            let server = self.server;
            return Err(DnsError::tsig(
                server,
                format!(
                    "the last message of the transfer from {server} is not signed with TSIG (RFC 8945 §5.3.1): the transfer cannot be trusted"
                ),
            ));
        }
        Ok(())
    }
}

/// The error of an answer signed too far from our clock (RFC 8945 §5.2.3).
fn too_far(server: SocketAddr, time: u64) -> DnsError {
    DnsError::tsig(
        server,
        format!(
            "the TSIG signature of the answer from {server} is dated {} s away from our clock (more than {FUDGE} s): check NTP on both sides",
            time.abs_diff(unix_now())
        ),
    )
}

/// What hickory's encoder writes with `emit`, as bytes of their own.
fn encoded(
    emit: impl FnOnce(&mut BinEncoder<'_>) -> Result<(), hickory_proto::ProtoError>,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    emit(&mut BinEncoder::new(&mut bytes)).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Where the last record of a message (its TSIG record, RFC 8945 §5.2) starts: past the
/// header, the questions and every other record. `None` if the message ends early.
fn tsig_start(bytes: &[u8]) -> Option<usize> {
    let count = |i: usize| {
        bytes
            .get(i..i + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let questions = count(4)?;
    let records = (count(6)? + count(8)? + count(10)?).checked_sub(1)?;
    let mut at = 12;
    for _ in 0..questions {
        at = past_name(bytes, at)? + 4;
    }
    for _ in 0..records {
        // RFC 1035 §4.1.3: owner, TYPE, CLASS, TTL, RDLENGTH, then RDLENGTH bytes.
        at = past_name(bytes, at)? + 8;
        at += 2 + count(at)?;
    }
    (at < bytes.len()).then_some(at)
}

/// Past a (possibly compressed) name starting at `at` (RFC 1035 §4.1.4): its labels up to
/// the root label, or up to and including a pointer.
fn past_name(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *bytes.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l if l & 0xC0 == 0 => at += 1 + usize::from(l),
            // 0x40 and 0x80 prefixes are not label types a message may use (RFC 6891 §5).
            _ => return None,
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 8945 §5.2.3: with BADTIME, "Other Data" holds the server's time (48 bits).
fn server_time(other: &[u8]) -> Option<u64> {
    (other.len() == 6).then(|| other.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfc2136::{TsigAlgorithm, TsigConfig};
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{RecordType, TSigResponseContext};

    fn server() -> SocketAddr {
        "127.0.0.1:5300".parse().unwrap()
    }

    fn signer(secret: &str) -> Signer {
        let config =
            TsigConfig::from_base64("update-key", TsigAlgorithm::HmacSha256, secret).unwrap();
        Signer::new(&config, server()).unwrap()
    }

    fn request() -> Message {
        let mut m = Message::query();
        m.add_query(Query::query(
            WireName::from_ascii("example.test.").unwrap(),
            RecordType::SOA,
        ));
        m.metadata.op_code = OpCode::Update;
        m
    }

    /// A request signed with `key`, and the verifier of its answers.
    fn signed_request(key: &Signer) -> (Message, AnswerVerifier<'_>) {
        let mut bytes = request().to_vec().unwrap();
        let verifier = key.sign(&mut bytes, server()).unwrap();
        (Message::from_vec(&bytes).unwrap(), verifier)
    }

    /// What `verifier` makes of an answer as it came off the wire.
    fn verify(verifier: &mut AnswerVerifier<'_>, bytes: &[u8]) -> Result<Verified, DnsError> {
        verifier.verify(bytes, &Message::from_vec(bytes).unwrap())
    }

    /// The server's side: a response to `request` signed (or not) the way a server does.
    fn response(request: &Message, key: &Signer, error: Option<TsigError>, sign: bool) -> Vec<u8> {
        let mut response = Message::new(request.id, MessageType::Response, OpCode::Update);
        response.add_queries(request.queries.clone());
        if sign {
            let request_mac = request.signature().unwrap().data.mac.clone();
            let context = match error {
                Some(TsigError::BadSig) => {
                    TSigResponseContext::bad_signature(request.id, unix_now(), key.signer.clone())
                }
                _ => TSigResponseContext::new(
                    request.id,
                    unix_now(),
                    key.signer.clone(),
                    request_mac,
                    error,
                ),
            };
            let tsig = context.sign(&response.to_vec().unwrap()).unwrap();
            response.set_signature(tsig);
        }
        response.to_vec().unwrap()
    }

    #[test]
    fn a_signed_answer_verifies() {
        let ours = signer("c2VjcmV0LTE=");
        let (req, mut verifier) = signed_request(&ours);
        let bytes = response(&req, &ours, None, true);
        assert!(matches!(
            verify(&mut verifier, &bytes).unwrap(),
            Verified::Signed
        ));
        verifier.finish().unwrap();
    }

    #[test]
    fn an_answer_signed_with_another_secret_is_rejected() {
        let ours = signer("c2VjcmV0LTE=");
        let theirs = signer("b3RoZXItc2VjcmV0");
        let (req, mut verifier) = signed_request(&ours);
        let bytes = response(&req, &theirs, None, true);
        let e = verify(&mut verifier, &bytes).unwrap_err();
        assert!(matches!(e, DnsError::Permanent { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("does not verify with the key `update-key`"),
            "{e}"
        );
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
    }

    #[test]
    fn badsig_is_read_before_verifying() {
        // hickory's own verifier reports this answer (an unsigned TSIG record, MAC size 0)
        // as a "truncated HMAC"; the error field says what happened.
        let ours = signer("c2VjcmV0LTE=");
        let (req, mut verifier) = signed_request(&ours);
        let bytes = response(&req, &ours, Some(TsigError::BadSig), true);
        match verify(&mut verifier, &bytes).unwrap() {
            Verified::Rejected(TsigError::BadSig, text) => {
                assert!(
                    text.contains("(BADSIG): check keyName, the secret and the algorithm"),
                    "{text}"
                );
                assert!(!text.to_lowercase().contains("truncated"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        // hickory's verifier on the same bytes, for the record.
        let hickory =
            ours.signer
                .verify_message_byte(&bytes, Some(&req.signature().unwrap().data.mac), true);
        assert!(hickory.unwrap_err().to_string().contains("truncated"));
    }

    // Found by fuzzing (fuzz/tests/dns.rs, a transfer signed at time 0): hickory's verifier
    // subtracted the fudge from the time signed and panicked on the overflow.
    #[test]
    fn an_answer_signed_in_1970_is_refused_not_a_panic() {
        let ours = signer("c2VjcmV0LTE=");
        for time in [0, u64::from(FUDGE) - 1] {
            let (req, mut verifier) = signed_request(&ours);
            let mut response = Message::new(req.id, MessageType::Response, OpCode::Update);
            response.add_queries(req.queries.clone());
            let request_mac = req.signature().unwrap().data.mac.clone();
            let tsig =
                TSigResponseContext::new(req.id, time, ours.signer.clone(), request_mac, None)
                    .sign(&response.to_vec().unwrap())
                    .unwrap();
            response.set_signature(tsig);
            let bytes = response.to_vec().unwrap();
            let e = verify(&mut verifier, &bytes).unwrap_err();
            assert!(matches!(e, DnsError::Permanent { .. }), "{e:?}");
            assert!(e.to_string().contains("away from our clock"), "{e}");
        }
    }

    #[test]
    fn badtime_tells_the_clock_skew() {
        let text =
            signer("c2VjcmV0LTE=").rejected(server(), TsigError::BadTime, &[0, 0, 0, 0, 0, 1]);
        assert!(
            text.contains("(BADTIME)") && text.contains("NTP") && text.contains("clock differs"),
            "{text}"
        );
    }

    #[test]
    fn unsigned_answers_are_reported_and_a_transfer_must_end_signed() {
        let ours = signer("c2VjcmV0LTE=");
        let (req, mut verifier) = signed_request(&ours);
        let unsigned = response(&req, &ours, None, false);
        // First message unsigned: the caller decides (an error unless the RCODE is one).
        assert!(matches!(
            verify(&mut verifier, &unsigned).unwrap(),
            Verified::Unsigned
        ));

        // A signed first message, then an unsigned one: allowed in a transfer, but not last.
        let (req, mut verifier) = signed_request(&ours);
        let signed = response(&req, &ours, None, true);
        assert!(matches!(
            verify(&mut verifier, &signed).unwrap(),
            Verified::Signed
        ));
        let unsigned = response(&req, &ours, None, false);
        assert!(matches!(
            verify(&mut verifier, &unsigned).unwrap(),
            Verified::Unsigned
        ));
        let e = verifier.finish().unwrap_err();
        assert!(e.to_string().contains("not signed"), "{e}");
    }

    /// An answer with records whose names hickory compresses, signed as a server signs it.
    fn answer_with_records(request: &Message, key: &Signer) -> Vec<u8> {
        use hickory_proto::rr::rdata::{A, MX};
        use hickory_proto::rr::{RData, Record};
        let mut response = Message::new(request.id, MessageType::Response, OpCode::Query);
        response.add_queries(request.queries.clone());
        let zone = WireName::from_ascii("example.test.").unwrap();
        let mail = WireName::from_ascii("mail.example.test.").unwrap();
        response.add_answer(Record::from_rdata(
            zone.clone(),
            3600,
            RData::MX(MX::new(10, mail.clone())),
        ));
        response.add_answer(Record::from_rdata(
            mail,
            3600,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        let request_mac = request.signature().unwrap().data.mac.clone();
        let tsig = TSigResponseContext::new(
            request.id,
            unix_now(),
            key.signer.clone(),
            request_mac,
            None,
        )
        .sign(&response.to_vec().unwrap())
        .unwrap();
        response.set_signature(tsig);
        response.to_vec().unwrap()
    }

    /// `update` signed by `key` at one time, here and by hickory's `sign_message`: the
    /// bytes of each, after checking that both computed one MAC.
    fn signed_both_ways(key: &Signer, update: &Message) -> (Vec<u8>, Vec<u8>) {
        let now = 1_765_000_000;
        let mut bytes = update.to_vec().unwrap();
        let mac = key.sign_at(&mut bytes, now).unwrap();
        let mut theirs = update.clone();
        let (tsig, _) = key.signer.sign_message(&theirs, now).unwrap();
        assert_eq!(mac, tsig.data.mac);
        theirs.set_signature(tsig);
        (bytes, theirs.to_vec().unwrap())
    }

    #[test]
    fn a_signed_request_is_byte_for_byte_what_hickory_signs() {
        let mut update = request();
        update.add_additional(hickory_proto::rr::Record::from_rdata(
            WireName::from_ascii("www.example.test.").unwrap(),
            300,
            hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 7)),
        ));
        let (ours, theirs) = signed_both_ways(&signer("c2VjcmV0LTE="), &update);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_key_named_under_the_zone_signs_with_hickory_s_mac_its_owner_uncompressed() {
        let config = TsigConfig::from_base64(
            "update.example.test",
            TsigAlgorithm::HmacSha256,
            "c2VjcmV0LTE=",
        )
        .unwrap();
        let key = Signer::new(&config, server()).unwrap();
        let (bytes, theirs) = signed_both_ways(&key, &request());
        // hickory points the key name into the question's `example.test.`.
        assert!(
            theirs.len() < bytes.len(),
            "{} {}",
            theirs.len(),
            bytes.len()
        );
        let (ours, theirs) = (
            Message::from_vec(&bytes).unwrap(),
            Message::from_vec(&theirs).unwrap(),
        );
        assert_eq!(ours.signature(), theirs.signature());
        assert_eq!(ours.queries, theirs.queries);
    }

    #[test]
    fn what_the_mac_of_an_answer_covers_is_what_hickory_computes() {
        use hickory_proto::rr::rdata::tsig::signed_bitmessage_to_buf;
        let ours = signer("c2VjcmV0LTE=");
        let (req, mut verifier) = signed_request(&ours);
        let bytes = answer_with_records(&req, &ours);
        let decoded = Message::from_vec(&bytes).unwrap();
        let tsig = decoded.signature().unwrap();
        let request_mac = req.signature().unwrap().data.mac.clone();

        // The first answer: the request's MAC, the message, every TSIG variable.
        let (theirs, _) = signed_bitmessage_to_buf(&bytes, Some(&request_mac), true).unwrap();
        assert_eq!(verifier.to_be_verified(&bytes, tsig).unwrap(), theirs);

        // A later message of a transfer after two unsigned ones: the previous MAC, the
        // unsigned messages, then this one with only its timers.
        verifier.first = false;
        verifier.unsigned = b"two unsigned messages".to_vec();
        let (this, _) = signed_bitmessage_to_buf(&bytes, None, false).unwrap();
        let mut theirs = (request_mac.len() as u16).to_be_bytes().to_vec();
        theirs.extend_from_slice(&request_mac);
        theirs.extend_from_slice(b"two unsigned messages");
        theirs.extend_from_slice(&this);
        assert_eq!(verifier.to_be_verified(&bytes, tsig).unwrap(), theirs);
    }

    #[test]
    fn an_answer_changed_after_signing_does_not_verify_and_a_cut_one_is_refused() {
        let ours = signer("c2VjcmV0LTE=");
        let (req, mut verifier) = signed_request(&ours);
        let bytes = answer_with_records(&req, &ours);
        let mut changed = bytes.clone();
        let at = changed
            .windows(4)
            .position(|w| w == [192, 0, 2, 1])
            .unwrap();
        changed[at + 3] = 2;
        let e = verify(&mut verifier, &changed).unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
        assert!(matches!(
            verify(&mut verifier, &bytes).unwrap(),
            Verified::Signed
        ));
        // Counts promising more records than the bytes hold: no TSIG record to find.
        assert_eq!(tsig_start(&bytes[..40]), None);
        let mut more = bytes.clone();
        more[7] += 5;
        assert_eq!(tsig_start(&more), None);
    }
}
