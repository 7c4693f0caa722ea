//! Where the DNSSEC check gets its raw records (RRSIG, DNSKEY, DS and the RRsets they
//! sign): [`NetworkSource`] asks the servers the checks use, [`RecordsSource`] answers from
//! records in memory (unit tests).
//!
//! Why not [`crate::lookup::Lookup`]: it returns the records mailzone models, not RRSIG,
//! DNSKEY and DS. hickory-proto builds and parses the messages (RFC 1035 §4.1, EDNS(0) of
//! RFC 6891 with the DO bit of RFC 3225, which asks the server for the RRSIGs) and
//! `mailzone-dns` exchanges them ([`mailzone_dns::query::exchange_tcp`], which checks that
//! the answer matches the question). TCP only: DNSKEY RRsets with their signatures often
//! exceed a UDP answer, and RFC 7766 §5 requires every authoritative server to answer over
//! TCP. RD is set so that the same question works against a recursive resolver given with
//! `--nameserver` (an authoritative server ignores it), and CD (RFC 4035 §3.2.2) so that a
//! validating resolver hands over data that fails its validation, for mailzone to say why.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name as WireName, RData, Record, RecordType};

/// One answer, as far as validation cares.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub rcode: ResponseCode,
    /// The answer section (the RRset asked for, CNAMEs, and their RRSIGs).
    pub answers: Vec<Record>,
    /// The authority section (the SOA of a negative answer, with its RRSIG).
    pub authorities: Vec<Record>,
}

impl RawAnswer {
    /// The owner of the SOA in the authority section: the zone that answered a negative
    /// answer (RFC 2308 §3).
    pub fn negative_soa_owner(&self) -> Option<&WireName> {
        self.authorities
            .iter()
            .find(|r| r.record_type() == RecordType::SOA)
            .map(|r| &r.name)
    }
}

/// Asks DNS for raw records.
#[async_trait]
pub trait RawSource: Send + Sync {
    async fn ask(&self, name: &WireName, rtype: RecordType) -> Result<RawAnswer, String>;
}

/// Asks the given servers over TCP with the DO bit, the next one when one fails.
pub struct NetworkSource {
    pub servers: Vec<SocketAddr>,
    pub timeout: Duration,
}

#[async_trait]
impl RawSource for NetworkSource {
    async fn ask(&self, name: &WireName, rtype: RecordType) -> Result<RawAnswer, String> {
        let mut errors = Vec::new();
        for server in &self.servers {
            match ask_tcp(*server, name, rtype, self.timeout).await {
                Ok(answer)
                    if matches!(
                        answer.rcode,
                        ResponseCode::ServFail | ResponseCode::Refused | ResponseCode::NotAuth
                    ) && self.servers.len() > 1 =>
                {
                    errors.push(format!("{server}: {}", answer.rcode));
                }
                Ok(answer) => return Ok(answer),
                // The error names the server already.
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            return Err("no server to ask".into());
        }
        Err(errors.join("; "))
    }
}

/// One question over TCP.
async fn ask_tcp(
    server: SocketAddr,
    name: &WireName,
    rtype: RecordType,
    timeout: Duration,
) -> Result<RawAnswer, String> {
    let mut request = Message::query();
    request.add_query(Query::query(name.clone(), rtype));
    request.metadata.recursion_desired = true;
    request.metadata.checking_disabled = true;
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true);
    edns.set_max_payload(1232);
    request.set_edns(edns);
    let message = mailzone_dns::query::exchange_tcp(server, &request, timeout)
        .await
        .map_err(|e| format!("{name} {rtype}: {e}"))?;
    Ok(RawAnswer {
        rcode: message.metadata.response_code,
        answers: message.answers.clone(),
        authorities: message.authorities.clone(),
    })
}

/// Answers from records in memory, as an authoritative server for the zones whose SOA is
/// among them would: the RRset and its RRSIGs; a name with nothing of the type gets NODATA
/// (or NXDOMAIN when nothing exists at or below it) with the SOA of the closest enclosing
/// zone and its RRSIG; a name outside every zone gets REFUSED. No CNAME following.
#[derive(Debug, Clone, Default)]
pub struct RecordsSource {
    pub records: Vec<Record>,
}

#[async_trait]
impl RawSource for RecordsSource {
    async fn ask(&self, name: &WireName, rtype: RecordType) -> Result<RawAnswer, String> {
        let covers = |r: &Record, t: RecordType| match &r.data {
            RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(sig)) => {
                sig.input().type_covered == t
            }
            _ => false,
        };
        let answers: Vec<Record> = self
            .records
            .iter()
            .filter(|r| &r.name == name && (r.record_type() == rtype || covers(r, rtype)))
            .cloned()
            .collect();
        let has_data = answers.iter().any(|r| r.record_type() == rtype);
        // DS lives in the parent (RFC 4034 §5): the enclosing zone of a DS question is the
        // one above the name.
        let enclosing = self
            .records
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .filter(|r| r.name.zone_of(name) && !(rtype == RecordType::DS && &r.name == name))
            .max_by_key(|r| r.name.num_labels())
            .map(|r| r.name.clone());
        let Some(zone) = enclosing else {
            return Ok(RawAnswer {
                rcode: ResponseCode::Refused,
                answers: Vec::new(),
                authorities: Vec::new(),
            });
        };
        if has_data {
            return Ok(RawAnswer {
                rcode: ResponseCode::NoError,
                answers,
                authorities: Vec::new(),
            });
        }
        let exists = self.records.iter().any(|r| name.zone_of(&r.name));
        let authorities = self
            .records
            .iter()
            .filter(|r| {
                r.name == zone && (r.record_type() == RecordType::SOA || covers(r, RecordType::SOA))
            })
            .cloned()
            .collect();
        Ok(RawAnswer {
            rcode: if exists {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            },
            answers: Vec::new(),
            authorities,
        })
    }
}
