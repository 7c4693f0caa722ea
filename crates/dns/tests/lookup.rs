//! `mailzone_dns::lookup` (the checker's question: RD and DO set, every RCODE returned,
//! CNAMEs included) against a real Knot, the way `mailzone check --nameserver` uses it.
//! Skipped when Knot is not installed (fails instead under `MAILZONE_REQUIRE_TOOLS=1`).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use mailzone_dns::lookup;
use mailzone_records::{Name, RData};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const RECORDS: &str = r#"
mail            300 IN A     192.0.2.10
mta-sts         300 IN CNAME mail
@               300 IN MX    10 mail
@               300 IN TXT   "v=spf1 mx -all"
big             300 IN TXT   "{a}" "{b}"
"#;

fn name(s: &str) -> Name {
    Name::owner(s).unwrap()
}

fn start() -> Option<DnsServer> {
    if !ServerKind::Knot.available() {
        return None;
    }
    let long = "x".repeat(250);
    // Enough TXT data to overflow a 1232-byte UDP answer: the question goes again over TCP.
    let mut records = RECORDS.replace("{a}", &long).replace("{b}", &long);
    for i in 0..8 {
        records.push_str(&format!("big 300 IN TXT \"{i}{long}\"\n"));
    }
    let zones = [
        ZoneSpec::new("lookup.test", &records),
        ZoneSpec::new("2.0.192.in-addr.arpa", "10 300 IN PTR mail.lookup.test.\n"),
    ];
    let key = TsigKey::generate("mailzone-key");
    Some(
        DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default())
            .unwrap_or_else(|e| panic!("Knot does not start: {e}")),
    )
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn lookup_returns_answers_cnames_and_rcodes() {
    let Some(server) = start() else { return };
    let addr = server.addr;

    let a = lookup(addr, &name("mail.lookup.test"), "A", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(a.rcode, "NOERROR");
    assert!(a.authoritative);
    assert!(
        !a.authenticated_data,
        "an unsigned zone is not authenticated"
    );
    assert_eq!(a.answers.len(), 1);
    assert_eq!(
        a.answers[0].record.data,
        RData::A(Ipv4Addr::new(192, 0, 2, 10))
    );

    // An alias: the CNAME and (in-zone) its target's records.
    let alias = lookup(addr, &name("mta-sts.lookup.test"), "A", TIMEOUT)
        .await
        .unwrap();
    let types: Vec<&str> = alias
        .answers
        .iter()
        .map(|l| l.record.data.rtype().as_str())
        .collect();
    assert_eq!(types, ["CNAME", "A"], "{alias:?}");

    let nx = lookup(addr, &name("nope.lookup.test"), "TXT", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(nx.rcode, "NXDOMAIN");
    assert!(nx.answers.is_empty());

    let nodata = lookup(addr, &name("mail.lookup.test"), "MX", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(nodata.rcode, "NOERROR");
    assert!(nodata.answers.is_empty());

    // A zone the server does not serve: an answer (REFUSED), not an error.
    let refused = lookup(addr, &name("example.invalid"), "A", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(refused.rcode, "REFUSED");

    let ptr = lookup(addr, &name("10.2.0.192.in-addr.arpa"), "PTR", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        ptr.answers[0].record.data,
        RData::Ptr(name("mail.lookup.test"))
    );
    let ns = lookup(addr, &name("lookup.test"), "NS", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        ns.answers[0].record.data,
        RData::Ns(name("ns1.lookup.test"))
    );
}

#[tokio::test]
async fn lookup_retries_truncated_answers_over_tcp() {
    let Some(server) = start() else { return };
    let big = lookup(server.addr, &name("big.lookup.test"), "TXT", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(big.answers.len(), 9, "every TXT record, over TCP");
}

#[tokio::test]
async fn lookup_of_a_silent_server_is_an_error() {
    // A port nobody listens on (UDP: no answer, or ICMP refused).
    let port = mailzone_testkit::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let e = lookup(addr, &name("example.test"), "A", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("127.0.0.1"), "{e}");
}

/// A server that ignores the UDP size mailzone advertises: its 5,000-byte UDP answer does
/// not fit the receive buffer and is cut by the kernel, so the question is asked again over
/// TCP (relayed to Knot here), instead of decoding what was left.
#[tokio::test]
async fn an_oversized_udp_answer_is_asked_again_over_tcp() {
    let Some(server) = start() else { return };
    let knot = server.addr;
    let (udp, tcp, addr) = udp_and_tcp_on_one_port().await;
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let mut answer = buf[..n].to_vec();
            answer[2] |= 0x80; // QR: a response with the question's ID
            answer.resize(5000, 0);
            let _ = udp.send_to(&answer, from).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut client, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let mut upstream = tokio::net::TcpStream::connect(knot).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    let big = lookup(addr, &name("big.lookup.test"), "TXT", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(big.answers.len(), 9, "Knot's answer, over TCP");
    drop(server);
}

/// A UDP socket and a TCP listener on the same free loopback port (another port is tried
/// when the TCP side of the one the system gave for UDP is taken).
async fn udp_and_tcp_on_one_port() -> (tokio::net::UdpSocket, tokio::net::TcpListener, SocketAddr) {
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            return (udp, tcp, addr);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}
