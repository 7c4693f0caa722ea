//! Questions asked straight to an authoritative server (RFC 1035 §4.1, non-recursive: RD
//! clear), over UDP with a retry over TCP when the answer is truncated (RFC 7766 §5).
//! The propagation watcher uses them to see what each server serves, with no cache in
//! between. [`lookup`] is the checker's question: RD set (so it also works against a
//! resolver), DO and AD set (RFC 4035 §3.2, RFC 6840 §5.7: a validating resolver reports
//! the AD bit), every RCODE returned as an answer and CNAMEs included.
//!
//! Also home of the RCODE interpretation shared with the RFC 2136 provider: which answers
//! are conflicts (RFC 2136 §3.2 prerequisites), which are permanent, which are worth a
//! retry. The RCODE travels in the error as an [`Rcode`], never only in its message.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, Query};
use hickory_proto::rr::{DNSClass, RData as WireRData, RecordType};
use mailzone_records::diff::LiveRecord;
use mailzone_records::{Name, Transport};

use crate::convert::{from_wire, record_type, to_wire_name};
use crate::error::Cause;
use crate::transport::{Endpoint, TcpConn, edns};
use crate::tsig::Verified;
use crate::{DnsError, Rcode};

/// The answer RRs of type `rtype` at `name`, as `server` serves them: empty when the name
/// or the RRset does not exist (NXDOMAIN, NODATA). `rtype` is one of the types mailzone
/// models (`A`, `AAAA`, `MX`, `TXT`, `CNAME`, `SRV`, `CAA`, `TLSA`). Records at names
/// mailzone cannot represent are left out (see [`crate::convert`]).
pub async fn query_rrset(
    server: SocketAddr,
    name: &Name,
    rtype: &str,
    timeout: Duration,
) -> Result<Vec<LiveRecord>, DnsError> {
    rrset(&direct(server, timeout, None), &mut None, name, rtype).await
}

/// [`query_rrset`], adding every message it sends to `sent` (UDP tries and a TCP retry
/// alike): the propagation watcher reports its queries in the run's DNS message count.
pub async fn query_rrset_counted(
    server: SocketAddr,
    name: &Name,
    rtype: &str,
    timeout: Duration,
    sent: &AtomicU64,
) -> Result<Vec<LiveRecord>, DnsError> {
    rrset(&direct(server, timeout, Some(sent)), &mut None, name, rtype).await
}

/// An unsigned UDP endpoint (TCP when truncated) for questions asked directly.
fn direct(server: SocketAddr, timeout: Duration, counter: Option<&AtomicU64>) -> Endpoint<'_> {
    Endpoint {
        server,
        timeout,
        protocol: Transport::Udp,
        signer: None,
        counter,
        udp_sockets: None,
        opening: None,
    }
}

/// The SOA serial of `zone` as `server` serves it (RFC 1035 §3.3.13).
pub async fn query_serial(
    server: SocketAddr,
    zone: &Name,
    timeout: Duration,
) -> Result<u32, DnsError> {
    serial(&direct(server, timeout, None), &mut None, zone).await
}

/// [`query_serial`], adding every message it sends to `sent`.
pub async fn query_serial_counted(
    server: SocketAddr,
    zone: &Name,
    timeout: Duration,
    sent: &AtomicU64,
) -> Result<u32, DnsError> {
    serial(&direct(server, timeout, Some(sent)), &mut None, zone).await
}

/// A DNS answer as the checker sees it: the RCODE, every answer RR mailzone can represent
/// (CNAMEs included, in the order served) and the AD bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The RCODE mnemonic: `NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, …
    pub rcode: String,
    /// The answer section's records of the types mailzone models, plus PTR and NS.
    pub answers: Vec<LiveRecord>,
    /// The AD bit (RFC 4035 §3.2.3): a validating resolver vouches for the answer.
    pub authenticated_data: bool,
    /// The AA bit (RFC 1035 §4.1.1): the server is authoritative for the answer.
    pub authoritative: bool,
}

/// Asks `server` for `rtype` records at `name` with RD set, so the same question works
/// against a recursive resolver and an authoritative server (which ignores RD); DO and AD
/// are set so a validating resolver reports whether the answer validated (RFC 6840 §5.7).
/// UDP, again over TCP when the answer is truncated (RFC 7766 §5).
///
/// Every RCODE is returned in [`Response::rcode`] (NXDOMAIN, SERVFAIL and REFUSED are
/// answers too); only network trouble and malformed answers are errors.
pub async fn lookup(
    server: SocketAddr,
    name: &Name,
    rtype: &str,
    timeout: Duration,
) -> Result<Response, DnsError> {
    let wire_type = record_type(rtype)
        .or_else(|| rtype.to_ascii_uppercase().parse::<RecordType>().ok())
        .ok_or_else(|| {
            DnsError::permanent(
                server,
                Cause::Request,
                format!("unknown record type {rtype} (asked for {name})"),
            )
        })?;
    let endpoint = Endpoint {
        server,
        timeout,
        protocol: Transport::Udp,
        signer: None,
        counter: None,
        udp_sockets: None,
        opening: None,
    };
    let mut request = query_message(name, wire_type);
    request.metadata.recursion_desired = true;
    request.metadata.authentic_data = true;
    let mut edns = edns();
    edns.set_dnssec_ok(true);
    request.set_edns(edns);
    let answer = endpoint.exchange(&mut None, &request).await?;
    let message = answer.message;
    let mut answers = Vec::new();
    for record in &message.answers {
        match lookup_record(record) {
            Ok(Some(live)) => answers.push(live),
            Ok(None) => {}
            Err(e) => tracing::debug!(%server, "skipping a record mailzone cannot represent: {e}"),
        }
    }
    Ok(Response {
        rcode: Rcode::from(message.response_code).to_string(),
        answers,
        authenticated_data: message.authentic_data,
        authoritative: message.authoritative,
    })
}

/// Sends `request` as it is (flags, EDNS, question) to `server` over TCP and returns the
/// answer, checked to answer it (RFC 5452 §4.3: ID and question). For the records
/// mailzone does not model, such as the DNSSEC check's RRSIG, DNSKEY and DS.
pub async fn exchange_tcp(
    server: SocketAddr,
    request: &Message,
    timeout: Duration,
) -> Result<Message, DnsError> {
    let endpoint = Endpoint {
        server,
        timeout,
        protocol: Transport::Tcp,
        signer: None,
        counter: None,
        udp_sockets: None,
        opening: None,
    };
    Ok(endpoint.exchange(&mut None, request).await?.message)
}

/// [`from_wire`], plus the PTR and NS records the checker reads.
fn lookup_record(
    record: &hickory_proto::rr::Record,
) -> Result<Option<LiveRecord>, crate::convert::Unrepresentable> {
    let target = match &record.data {
        WireRData::PTR(p) => Some((&p.0, true)),
        WireRData::NS(n) => Some((&n.0, false)),
        _ => None,
    };
    let Some((target, is_ptr)) = target else {
        return from_wire(record);
    };
    let fail = |reason: String| crate::convert::Unrepresentable {
        owner: record.name.to_ascii(),
        rtype: record.record_type().to_string(),
        reason,
    };
    let owner = crate::convert::from_wire_name(&record.name).map_err(fail)?;
    let target = crate::convert::from_wire_name(target).map_err(fail)?;
    let data = if is_ptr {
        mailzone_records::RData::Ptr(target)
    } else {
        mailzone_records::RData::Ns(target)
    };
    Ok(Some(LiveRecord::from_record(mailzone_records::Record {
        name: owner,
        ttl: record.ttl,
        data,
    })))
}

/// What a request was for, to word its errors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op<'a> {
    Query { name: &'a Name, rtype: &'a str },
    Transfer { zone: &'a Name },
    Update { zone: &'a Name },
}

/// A non-recursive query for `name`/`rtype`.
pub(crate) fn query_message(name: &Name, rtype: RecordType) -> Message {
    let mut m = Message::query();
    let mut q = Query::query(to_wire_name(name), rtype);
    q.set_query_class(DNSClass::IN);
    m.add_query(q);
    m.metadata.op_code = OpCode::Query;
    m.metadata.recursion_desired = false;
    m.set_edns(edns());
    m
}

pub(crate) async fn rrset(
    endpoint: &Endpoint<'_>,
    tcp: &mut Option<TcpConn>,
    name: &Name,
    rtype: &str,
) -> Result<Vec<LiveRecord>, DnsError> {
    let server = endpoint.server;
    let wire_type = record_type(rtype)
        .filter(|t| !matches!(t, RecordType::SOA | RecordType::NS))
        .ok_or_else(|| {
            DnsError::permanent(
                server,
                Cause::Request,
                format!("mailzone does not read {rtype} records (asked for {name})"),
            )
        })?;
    let request = query_message(name, wire_type);
    let answer = endpoint.exchange(tcp, &request).await?;
    let op = Op::Query { name, rtype };
    let message = check_answer(server, op, answer, endpoint)?;
    authoritative(server, &message, name)?;
    let wanted = to_wire_name(name);
    let mut out = Vec::new();
    for record in &message.answers {
        if record.record_type() != wire_type || record.name != wanted {
            continue; // a CNAME and what it points to: not this RRset
        }
        match from_wire(record) {
            Ok(Some(live)) => out.push(live),
            Ok(None) => {}
            Err(e) => tracing::debug!(%server, "skipping a record mailzone cannot represent: {e}"),
        }
    }
    Ok(out)
}

pub(crate) async fn serial(
    endpoint: &Endpoint<'_>,
    tcp: &mut Option<TcpConn>,
    zone: &Name,
) -> Result<u32, DnsError> {
    let server = endpoint.server;
    let request = query_message(zone, RecordType::SOA);
    let answer = endpoint.exchange(tcp, &request).await?;
    let op = Op::Query {
        name: zone,
        rtype: "SOA",
    };
    let message = check_answer(server, op, answer, endpoint)?;
    authoritative(server, &message, zone)?;
    let apex = to_wire_name(zone);
    message
        .answers
        .iter()
        .find_map(|r| match &r.data {
            WireRData::SOA(soa) if r.name == apex => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| {
            DnsError::permanent(
                server,
                Cause::NotServed,
                format!("{server} has no SOA record at {zone}: {zone} is not a zone it serves"),
            )
        })
}

/// An authoritative answer has AA set (RFC 1035 §4.1.1); anything else is a referral or a
/// cached answer, neither of which says what this server publishes.
fn authoritative(server: SocketAddr, message: &Message, name: &Name) -> Result<(), DnsError> {
    if message.authoritative {
        return Ok(());
    }
    Err(DnsError::permanent(
        server,
        Cause::NotServed,
        format!(
            "{server} is not authoritative for {name} (its answer has no AA flag): is the zone served there?"
        ),
    ))
}

/// Interprets an answer: TSIG errors first, then the RCODE, then (with a key) whether the
/// answer was signed. Returns the message when it is a usable answer.
pub(crate) fn check_answer(
    server: SocketAddr,
    op: Op<'_>,
    answer: crate::transport::Answer,
    endpoint: &Endpoint<'_>,
) -> Result<Message, DnsError> {
    let rcode = Rcode::from(answer.message.response_code);
    let key = endpoint.signer.map(|s| s.key_name().to_string());
    match &answer.tsig {
        Some(Verified::Rejected(_, message)) => {
            return Err(DnsError::tsig(server, message.clone()));
        }
        Some(Verified::Unsigned) if rcode == Rcode::NoError => {
            return Err(DnsError::tsig(
                server,
                format!(
                    "{server} answered without a TSIG signature although the request was signed with `{}`: the answer cannot be trusted",
                    key.unwrap_or_default()
                ),
            ));
        }
        _ => {}
    }
    let unsigned_note = match answer.tsig {
        Some(Verified::Unsigned) => " (the answer was not signed)",
        _ => "",
    };
    match rcode {
        Rcode::NoError => Ok(answer.message),
        Rcode::NxDomain if matches!(op, Op::Query { .. }) => Ok(answer.message),
        Rcode::YxDomain | Rcode::YxRrset | Rcode::NxRrset | Rcode::NxDomain
            if matches!(op, Op::Update { .. }) =>
        {
            // RFC 2136 §3.2.1–§3.2.3: a prerequisite did not hold.
            Err(DnsError::Conflict { server, rcode })
        }
        _ => {
            // A SERVFAIL says nothing about the key: it is shown without the note.
            let note = if rcode == Rcode::ServFail {
                ""
            } else {
                unsigned_note
            };
            let message = format!("{}{note}", rcode_message(server, op, rcode));
            Err(DnsError::answered(server, rcode, message))
        }
    }
}

/// The message for an error RCODE: what was asked, what the server said, what to check.
fn rcode_message(server: SocketAddr, op: Op<'_>, rcode: Rcode) -> String {
    let what = match op {
        Op::Query { name, rtype } => format!("the query for {name} {rtype}"),
        Op::Transfer { zone } => format!("the transfer of zone {zone}"),
        Op::Update { zone } => format!("the update of zone {zone}"),
    };
    let zone = match op {
        Op::Query { name, .. } => name,
        Op::Transfer { zone } | Op::Update { zone } => zone,
    };
    match rcode {
        Rcode::Refused => match op {
            Op::Update { zone } => format!(
                "the server {server} refused the update for zone {zone} (REFUSED): is the key allowed to update this zone?"
            ),
            Op::Transfer { zone } => format!(
                "the server {server} refused the transfer for zone {zone} (REFUSED): is the key allowed to transfer this zone?"
            ),
            Op::Query { name, .. } => format!(
                "the server {server} refused {what} (REFUSED): does it serve the zone of {name}?"
            ),
        },
        Rcode::NotAuth => format!(
            "the server {server} is not authoritative for {zone} or does not accept this key (NOTAUTH)"
        ),
        Rcode::NotZone => format!(
            "the server {server} says a name in {what} is outside the zone (NOTZONE): check the zone origin"
        ),
        Rcode::ServFail => {
            format!("the server {server} failed to process {what} (SERVFAIL): see its log")
        }
        Rcode::FormErr => format!("the server {server} could not parse {what} (FORMERR)"),
        Rcode::NotImp => format!("the server {server} does not implement {what} (NOTIMP)"),
        other => format!("the server {server} answered {what} with {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfc2136::{TsigAlgorithm, TsigConfig};
    use crate::transport::Answer;
    use crate::tsig::Signer;
    use hickory_proto::op::{MessageType, ResponseCode};

    fn server() -> SocketAddr {
        "127.0.0.1:5300".parse().unwrap()
    }

    fn answer(rcode: ResponseCode, tsig: Option<Verified>) -> Answer {
        let mut message = Message::new(1, MessageType::Response, OpCode::Update);
        message.metadata.response_code = rcode;
        Answer { message, tsig }
    }

    fn check(rcode: ResponseCode, tsig: Option<Verified>, op: Op<'_>) -> Result<Message, DnsError> {
        let config =
            TsigConfig::from_base64("update-key", TsigAlgorithm::HmacSha256, "c2VjcmV0").unwrap();
        let signer = Signer::new(&config, server()).unwrap();
        let endpoint = Endpoint {
            server: server(),
            timeout: Duration::from_secs(5),
            protocol: Transport::Tcp,
            signer: Some(&signer),
            counter: None,
            udp_sockets: None,
            opening: None,
        };
        check_answer(server(), op, answer(rcode, tsig), &endpoint)
    }

    #[test]
    fn rcodes_are_classified() {
        let zone = Name::host("example.test").unwrap();
        let update = Op::Update { zone: &zone };
        for rcode in [
            ResponseCode::YXRRSet,
            ResponseCode::NXRRSet,
            ResponseCode::YXDomain,
            ResponseCode::NXDomain,
        ] {
            let e = check(rcode, Some(Verified::Signed), update).unwrap_err();
            assert!(matches!(e, DnsError::Conflict { .. }), "{e:?}");
            assert_eq!(e.rcode(), Some(Rcode::from(rcode)), "{e:?}");
        }
        let e = check(ResponseCode::Refused, Some(Verified::Signed), update).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the server 127.0.0.1:5300 refused the update for zone example.test. (REFUSED): is the key allowed to update this zone?"
        );
        assert_eq!(e.cause(), Cause::Rcode(Rcode::Refused));
        let e = check(ResponseCode::NotAuth, Some(Verified::Signed), update).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the server 127.0.0.1:5300 is not authoritative for example.test. or does not accept this key (NOTAUTH)"
        );
        assert_eq!(e.rcode(), Some(Rcode::NotAuth));
        let e = check(ResponseCode::NotZone, Some(Verified::Signed), update).unwrap_err();
        assert!(matches!(e, DnsError::Permanent { .. }) && e.to_string().contains("NOTZONE"));
        assert_eq!(e.rcode(), Some(Rcode::NotZone));
        let e = check(ResponseCode::ServFail, Some(Verified::Signed), update).unwrap_err();
        assert!(matches!(e, DnsError::Transient { .. }) && e.to_string().contains("SERVFAIL"));
        assert_eq!(e.rcode(), Some(Rcode::ServFail));
        // An RCODE mailzone has no words for is still carried as a value.
        let e = check(ResponseCode::Unknown(23), Some(Verified::Signed), update).unwrap_err();
        assert_eq!(e.rcode(), Some(Rcode::Other(23)), "{e:?}");
        assert!(e.to_string().ends_with("with RCODE 23"), "{e}");
        // A key the server rejects is a TSIG failure, whatever the RCODE beside it.
        let rejected = Verified::Rejected(
            hickory_proto::rr::rdata::tsig::TsigError::BadSig,
            "the server rejected the TSIG key (BADSIG)".into(),
        );
        let e = check(ResponseCode::NotAuth, Some(rejected), update).unwrap_err();
        assert_eq!(e.cause(), Cause::Tsig, "{e:?}");
        assert_eq!(e.rcode(), None);
        let transfer = Op::Transfer { zone: &zone };
        let e = check(ResponseCode::Refused, None, transfer).unwrap_err();
        assert!(
            e.to_string()
                .contains("is the key allowed to transfer this zone?"),
            "{e}"
        );
        // NXDOMAIN to a query is an empty answer.
        let query = Op::Query {
            name: &zone,
            rtype: "TXT",
        };
        assert!(check(ResponseCode::NXDomain, Some(Verified::Signed), query).is_ok());
    }

    #[test]
    fn unsigned_success_is_not_trusted_with_a_key() {
        let zone = Name::host("example.test").unwrap();
        let e = check(
            ResponseCode::NoError,
            Some(Verified::Unsigned),
            Op::Update { zone: &zone },
        )
        .unwrap_err();
        assert!(matches!(e, DnsError::Permanent { .. }), "{e:?}");
        assert_eq!(e.cause(), Cause::Tsig);
        assert!(e.to_string().contains("without a TSIG signature"), "{e}");
        // An unsigned error answer keeps its RCODE, noting the missing signature.
        let e = check(
            ResponseCode::Refused,
            Some(Verified::Unsigned),
            Op::Update { zone: &zone },
        )
        .unwrap_err();
        assert!(
            e.to_string().ends_with("(the answer was not signed)"),
            "{e}"
        );
    }
}
