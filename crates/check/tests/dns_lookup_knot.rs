//! [`DnsLookup`] against real Knot servers: CNAME chains across zones, the next server on a
//! network error or REFUSED, loops, and the authoritative-discovery mode with the Knot
//! standing in for the system resolver (NS of the zone, then the NS host's address, asked
//! on the Knot's port instead of 53: the real mode needs the Internet's root).

use std::net::SocketAddr;
use std::time::Duration;

use mailzone_check::DnsLookup;
use mailzone_check::lookup::{Lookup, Rcode};
use mailzone_records::{Name, RData};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

fn name(s: &str) -> Name {
    Name::owner(s).unwrap()
}

fn start(zones: &[ZoneSpec]) -> DnsServer {
    DnsServer::start(
        ServerKind::Knot,
        zones,
        &TsigKey::generate("mailzone-key"),
        &ServerOptions::default(),
    )
    .unwrap_or_else(|e| panic!("Knot does not start: {e}"))
}

fn zones() -> Vec<ZoneSpec> {
    vec![
        ZoneSpec::new(
            "disc.test",
            "www 300 IN CNAME web.other.test.\n\
             alias 300 IN CNAME www\n\
             loop1 300 IN CNAME loop2\n\
             loop2 300 IN CNAME loop1\n\
             @ 300 IN TXT \"v=spf1 -all\"\n",
        ),
        ZoneSpec::new("other.test", "web 300 IN A 192.0.2.5\n"),
    ]
}

const TIMEOUT: Duration = Duration::from_secs(3);

async fn assert_resolves(lookup: &DnsLookup) {
    let a = lookup.query(&name("alias.disc.test"), "A").await.unwrap();
    assert_eq!(a.rcode, Rcode::NoError);
    assert_eq!(a.records.len(), 1, "{a:?}");
    assert_eq!(
        a.records[0].record.data,
        RData::A("192.0.2.5".parse().unwrap())
    );
    assert_eq!(a.records[0].record.name, name("web.other.test"));
    assert_eq!(
        a.cname_chain,
        [name("www.disc.test"), name("web.other.test")]
    );

    let cname = lookup.query(&name("www.disc.test"), "CNAME").await.unwrap();
    assert_eq!(cname.records.len(), 1);
    assert!(cname.cname_chain.is_empty());

    let nx = lookup
        .query(&name("_dmarc.deep.disc.test"), "TXT")
        .await
        .unwrap();
    assert_eq!(nx.rcode, Rcode::NxDomain);
    assert!(nx.records.is_empty());

    let txt = lookup.query(&name("disc.test"), "TXT").await.unwrap();
    assert_eq!(txt.records.len(), 1);

    let looped = lookup
        .query(&name("loop1.disc.test"), "A")
        .await
        .unwrap_err();
    assert!(looped.0.contains("CNAME loop"), "{looped}");
}

#[tokio::test]
async fn given_servers_follow_chains_and_fail_over() {
    if !ServerKind::Knot.available() {
        return;
    }
    let knot = start(&zones());
    let unrelated = start(&[ZoneSpec::empty("unrelated.test")]);
    let dead: SocketAddr = format!("127.0.0.1:{}", mailzone_testkit::free_port())
        .parse()
        .unwrap();
    // A silent server and one that REFUSES (does not serve the zones) come first.
    let lookup = DnsLookup::with_servers(
        vec![dead, unrelated.addr, knot.addr],
        Duration::from_millis(500),
    );
    assert_resolves(&lookup).await;
    assert_eq!(lookup.servers(), [dead, unrelated.addr, knot.addr]);

    // Only servers that refuse: REFUSED is returned, not an error.
    let refused = DnsLookup::with_servers(vec![unrelated.addr], TIMEOUT)
        .query(&name("disc.test"), "TXT")
        .await
        .unwrap();
    assert_eq!(refused.rcode, Rcode::Refused);
    // Only a silent server: an error naming it.
    let e = DnsLookup::with_servers(vec![dead], Duration::from_millis(300))
        .query(&name("disc.test"), "TXT")
        .await
        .unwrap_err();
    assert!(e.0.contains(&dead.to_string()), "{e}");
}

#[tokio::test]
async fn authoritative_mode_finds_each_zones_servers() {
    if !ServerKind::Knot.available() {
        return;
    }
    let knot = start(&zones());
    // The kit's zones delegate to ns1.<zone> at 127.0.0.1: with the Knot's port, the
    // discovered servers are the Knot itself.
    let lookup = DnsLookup::authoritative_on_port(vec![knot.addr], knot.addr.port(), TIMEOUT);
    assert_resolves(&lookup).await;
    // A name under no served zone: no zone found (the Knot refuses `test.` and `invalid.`).
    let e = lookup
        .query(&name("www.example.invalid"), "A")
        .await
        .unwrap_err();
    assert!(
        e.0.contains("found no zone holding www.example.invalid."),
        "{e}"
    );
}
