//! The proof that the kit works: real Knot and BIND servers started, queried, updated,
//! transferred, restarted and stopped, checked with kdig/knsupdate.
//!
//! A missing server skips a test, or fails it under `MAILZONE_REQUIRE_TOOLS=1`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mailzone_testkit::{
    DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec, free_port, poll_until, require_tools,
};

const ZONE: &str = "example.test";

/// Extra records: apex TXT values with spaces, an MX to an in-zone host with its address,
/// a CAA.
const RECORDS: &str = r#"
@ 300 IN TXT "v=spf1 mx -all"
@ 300 IN TXT "google-site-verification=abc def"
@ 300 IN MX 10 mail
mail 300 IN A 192.0.2.10
@ 300 IN CAA 0 issue "letsencrypt.org"
"#;

fn zone() -> ZoneSpec {
    ZoneSpec::new(ZONE, RECORDS)
}

fn start(kind: ServerKind, options: &ServerOptions) -> DnsServer {
    let key = TsigKey::generate("mailzone-test");
    let started = Instant::now();
    let server = DnsServer::start(kind, &[zone()], &key, options)
        .unwrap_or_else(|error| panic!("{kind} did not start: {error}"));
    eprintln!(
        "{kind} started on {} in {:?}",
        server.addr,
        started.elapsed()
    );
    server
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

// --- records, updates, serials -------------------------------------------------------

fn serves_records_and_applies_updates(kind: ServerKind) {
    if !kind.available() {
        return;
    }
    let server = start(kind, &ServerOptions::default());
    assert!(server.is_running());
    assert_eq!(server.zones, [ZONE]);

    assert_eq!(
        server.query(ZONE, "TXT"),
        ["\"google-site-verification=abc def\"", "\"v=spf1 mx -all\""]
    );
    assert_eq!(server.query(ZONE, "MX"), ["10 mail.example.test."]);
    assert_eq!(server.query("mail.example.test", "A"), ["192.0.2.10"]);
    assert_eq!(server.query(ZONE, "CAA"), ["0 issue \"letsencrypt.org\""]);
    assert_eq!(server.query("ns1.example.test.", "A"), ["127.0.0.1"]);
    assert_eq!(server.query(ZONE, "NS"), ["ns1.example.test."]);
    // NXDOMAIN and NODATA are empty.
    assert!(server.query("nope.example.test", "A").is_empty());
    assert!(server.query("mail.example.test", "AAAA").is_empty());
    let answer = server.try_query(ZONE, "SOA").expect("answered");
    assert_eq!(answer.rcode, "NOERROR");
    assert!(answer.authoritative);
    assert_eq!(
        answer.rdata,
        ["ns1.example.test. hostmaster.example.test. 1 3600 600 604800 300"]
    );
    // A zone it does not serve.
    assert_eq!(
        server
            .try_query("other.test", "SOA")
            .expect("answered")
            .rcode,
        "REFUSED"
    );
    assert_eq!(server.serial(ZONE), 1);

    server.nsupdate(
        ZONE,
        &[
            "update add www.example.test. 300 A 192.0.2.1",
            "update add _acme-challenge 60 TXT \"token with spaces\"",
        ],
    );
    assert_eq!(server.query("www.example.test", "A"), ["192.0.2.1"]);
    assert_eq!(
        server.query("_acme-challenge.example.test", "TXT"),
        ["\"token with spaces\""]
    );
    assert_eq!(server.serial(ZONE), 2);

    let zone = server.axfr(ZONE);
    assert!(
        zone[0].starts_with("example.test. 3600 IN SOA ns1.example.test. "),
        "{zone:?}"
    );
    for line in [
        "www.example.test. 300 IN A 192.0.2.1",
        "example.test. 300 IN MX 10 mail.example.test.",
        "example.test. 300 IN TXT \"google-site-verification=abc def\"",
        "example.test. 300 IN CAA 0 issue \"letsencrypt.org\"",
        "_acme-challenge.example.test. 60 IN TXT \"token with spaces\"",
    ] {
        assert!(zone.iter().any(|l| l == line), "{line} not in {zone:#?}");
    }
    assert_eq!(zone.iter().filter(|l| l.contains(" SOA ")).count(), 1);
    assert_eq!(zone.len(), 10, "{zone:#?}");

    // /proc counts CPU time in 10 ms ticks: a few queries may not add up to one, so ask
    // until the server has used some (a broken reading stays at zero however long).
    let mut queries = 0;
    let mut cpu = server.cpu_time();
    while cpu == Duration::ZERO && queries < 2_000 {
        for _ in 0..50 {
            server.query(ZONE, "TXT");
        }
        queries += 50;
        cpu = server.cpu_time();
    }
    eprintln!("{kind} cpu time after start and {queries} queries: {cpu:?}");
    assert!(cpu > Duration::ZERO);
}

#[test]
fn knot_serves_records_and_applies_updates() {
    serves_records_and_applies_updates(ServerKind::Knot);
}

#[test]
fn bind_serves_records_and_applies_updates() {
    serves_records_and_applies_updates(ServerKind::Bind);
}

// --- refusals ---------------------------------------------------------------------------

fn refuses_transfer_and_update(kind: ServerKind, expected_rcodes: &[&str]) {
    if !kind.available() {
        return;
    }
    let server = start(
        kind,
        &ServerOptions {
            allow_transfer: false,
            allow_update: false,
            ..ServerOptions::default()
        },
    );
    let error = server.try_axfr(ZONE).expect_err("AXFR must be refused");
    let message = error.to_string();
    assert!(
        expected_rcodes.iter().any(|rcode| message.contains(rcode)),
        "{message}"
    );
    let error = server
        .try_nsupdate(ZONE, &["update add www.example.test. 300 A 192.0.2.1"])
        .expect_err("UPDATE must be refused");
    let message = error.to_string();
    assert!(
        expected_rcodes.iter().any(|rcode| message.contains(rcode)),
        "{message}"
    );
    assert!(server.query("www.example.test", "A").is_empty());
    assert_eq!(server.serial(ZONE), 1);
    // Queries still work: the per-RRset fallback of a refused transfer.
    assert_eq!(server.query(ZONE, "MX"), ["10 mail.example.test."]);
}

#[test]
fn knot_refuses_transfer_and_update_when_not_allowed() {
    // Knot denies an ACL miss with NOTAUTH (TSIG error BADKEY), never REFUSED.
    refuses_transfer_and_update(ServerKind::Knot, &["NOTAUTH", "BADKEY"]);
}

#[test]
fn bind_refuses_transfer_and_update_when_not_allowed() {
    refuses_transfer_and_update(ServerKind::Bind, &["REFUSED"]);
}

#[test]
fn allow_transfer_false_with_secondaries_is_rejected() {
    let key = TsigKey::generate("k");
    let options = ServerOptions {
        allow_transfer: false,
        notify: vec![localhost(free_port())],
        ..ServerOptions::default()
    };
    let error = DnsServer::start(ServerKind::Knot, &[zone()], &key, &options)
        .expect_err("contradictory options");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn wrong_key_is_not_accepted() {
    if !ServerKind::Bind.available() {
        return;
    }
    let server = start(ServerKind::Bind, &ServerOptions::default());
    let wrong = TsigKey::generate(&server.key.name);
    let error = mailzone_testkit::nsupdate_at(
        server.addr,
        ZONE,
        &wrong,
        &["update add www.example.test. 300 A 192.0.2.1"],
    )
    .expect_err("a wrong secret must fail");
    assert!(error.to_string().contains("BADSIG"), "{error}");
    assert!(server.query("www.example.test", "A").is_empty());
}

// --- restart ---------------------------------------------------------------------------

fn restart_keeps_updates(kind: ServerKind) {
    if !kind.available() {
        return;
    }
    let server = start(kind, &ServerOptions::default());
    server.nsupdate(ZONE, &["update add www.example.test. 300 A 192.0.2.1"]);
    server.nsupdate(
        ZONE,
        &[
            "update delete mail.example.test. A",
            "update add mail.example.test. 300 A 192.0.2.11",
        ],
    );
    assert_eq!(server.serial(ZONE), 3);
    let pid = server.pid().expect("running");

    let started = Instant::now();
    server.restart().expect("restarts");
    eprintln!("{kind} restarted in {:?}", started.elapsed());
    assert_ne!(server.pid(), Some(pid));
    assert_eq!(server.query("www.example.test", "A"), ["192.0.2.1"]);
    assert_eq!(server.query("mail.example.test", "A"), ["192.0.2.11"]);
    assert_eq!(server.serial(ZONE), 3);
    server.nsupdate(ZONE, &["update add www2.example.test. 300 A 192.0.2.2"]);
    assert_eq!(server.serial(ZONE), 4);

    // Stopped, then started again by restart().
    server.stop();
    server.restart().expect("starts again");
    assert_eq!(server.query("www2.example.test", "A"), ["192.0.2.2"]);
}

#[test]
fn knot_restart_keeps_updates() {
    restart_keeps_updates(ServerKind::Knot);
}

#[test]
fn bind_restart_keeps_updates() {
    restart_keeps_updates(ServerKind::Bind);
}

// --- secondaries -----------------------------------------------------------------------

fn secondary_follows(primary_kind: ServerKind) {
    if !primary_kind.available() || !ServerKind::Bind.available() {
        return;
    }
    let key = TsigKey::generate("transfer-key");
    let secondary_port = free_port();
    let options = ServerOptions {
        notify: vec![localhost(secondary_port)],
        ..ServerOptions::default()
    };
    let primary = DnsServer::start(primary_kind, &[zone()], &key, &options).expect("primary");
    let started = Instant::now();
    let secondary = DnsServer::start_secondary_on(secondary_port, primary.addr, &[ZONE], &key)
        .expect("secondary");
    eprintln!(
        "BIND secondary of {primary_kind} ready in {:?}",
        started.elapsed()
    );
    assert_eq!(secondary.addr, localhost(secondary_port));
    assert_eq!(secondary.serial(ZONE), 1);
    assert_eq!(secondary.query(ZONE, "MX"), ["10 mail.example.test."]);
    let sorted = |mut zone: Vec<String>| {
        zone.sort();
        zone
    };
    assert_eq!(sorted(secondary.axfr(ZONE)), sorted(primary.axfr(ZONE)));

    for (round, address) in ["192.0.2.1", "192.0.2.2"].into_iter().enumerate() {
        primary.nsupdate(
            ZONE,
            &[
                "update delete www.example.test. A",
                &format!("update add www.example.test. 300 A {address}"),
            ],
        );
        let sent = Instant::now();
        let arrived = poll_until(Duration::from_secs(3), || {
            secondary.query("www.example.test", "A") == [address]
        });
        assert!(
            arrived,
            "secondary did not receive {address}; its log:\n{}",
            secondary.log_tail(30)
        );
        eprintln!(
            "update {round} reached the secondary of {primary_kind} in {:?}",
            sent.elapsed()
        );
        if sent.elapsed() >= Duration::from_secs(2) {
            eprintln!("secondary log:\n{}", secondary.log_tail(40));
            eprintln!("primary log:\n{}", primary.log_tail(40));
        }
        assert!(sent.elapsed() < Duration::from_secs(2));
        assert_eq!(secondary.serial(ZONE), primary.serial(ZONE));
    }
    assert!(secondary.wait_for_serial(ZONE, 3, Duration::from_secs(1)));

    secondary.stop();
    assert!(secondary.try_query(ZONE, "SOA").is_err());
}

#[test]
fn bind_secondary_of_knot_receives_updates() {
    secondary_follows(ServerKind::Knot);
}

#[test]
fn bind_secondary_of_bind_receives_updates() {
    secondary_follows(ServerKind::Bind);
}

// --- lifecycle -------------------------------------------------------------------------

fn stop_closes_the_port(kind: ServerKind) {
    if !kind.available() {
        return;
    }
    let server = start(kind, &ServerOptions::default());
    assert!(TcpStream::connect(server.addr).is_ok());
    server.stop();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    assert_eq!(server.cpu_time(), Duration::ZERO);
    assert!(TcpStream::connect(server.addr).is_err());
    let error = server.try_query(ZONE, "SOA").expect_err("nothing answers");
    assert!(error.to_string().contains("kdig"), "{error}");
    server.stop(); // idempotent
}

#[test]
fn knot_stop_closes_the_port() {
    stop_closes_the_port(ServerKind::Knot);
}

#[test]
fn bind_stop_closes_the_port() {
    stop_closes_the_port(ServerKind::Bind);
}

#[test]
fn config_errors_carry_the_server_log() {
    for kind in ServerKind::ALL {
        if !kind.available() {
            return;
        }
        let key = TsigKey::generate("k");
        let broken = ZoneSpec::new(ZONE, "www 300 IN A not-an-address\n");
        let error = DnsServer::start(kind, &[broken], &key, &ServerOptions::default())
            .expect_err("a broken zone file must not start");
        let message = error.to_string();
        assert!(message.contains("log:"), "{message}");
        assert!(message.to_ascii_lowercase().contains(ZONE), "{message}");
        eprintln!("{kind}: {message}");
    }
}

#[test]
fn many_servers_start_in_parallel() {
    if !require_tools(&["knotd", "named", "kdig", "knsupdate"]) {
        return;
    }
    let threads: Vec<_> = (0..6)
        .map(|index| {
            std::thread::spawn(move || {
                let kind = ServerKind::ALL[index % 2];
                let key = TsigKey::generate("k");
                let zone = ZoneSpec::new(&format!("z{index}.test"), "www 60 IN A 192.0.2.1");
                let server = DnsServer::start(kind, &[zone], &key, &ServerOptions::default())
                    .expect("starts");
                assert_eq!(
                    server.query(&format!("www.z{index}.test"), "A"),
                    ["192.0.2.1"]
                );
                server.addr
            })
        })
        .collect();
    let mut addrs: Vec<SocketAddr> = threads
        .into_iter()
        .map(|thread| thread.join().expect("thread"))
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 6);
}

#[test]
fn a_server_outlives_the_thread_that_started_it() {
    // PR_SET_PDEATHSIG is per thread: a shared server must survive its starter's exit.
    if !ServerKind::Knot.available() {
        return;
    }
    static SHARED: OnceLock<DnsServer> = OnceLock::new();
    std::thread::spawn(|| {
        SHARED.get_or_init(|| start(ServerKind::Knot, &ServerOptions::default()));
    })
    .join()
    .expect("starter thread");
    std::thread::sleep(Duration::from_millis(200));
    let server = SHARED.get().expect("started");
    assert!(server.is_running());
    assert_eq!(server.query(ZONE, "MX"), ["10 mail.example.test."]);
    // A static is never dropped: stop it here, as a test would not.
    server.stop();
}

#[test]
fn multiple_zones_on_one_server() {
    if !ServerKind::Knot.available() {
        return;
    }
    let key = TsigKey::generate("k");
    let zones: Vec<ZoneSpec> = (0..20)
        .map(|i| ZoneSpec::new(&format!("d{i}.test."), "@ 300 IN MX 10 mx.example.net."))
        .collect();
    let server = DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default())
        .expect("starts");
    assert_eq!(server.zones.len(), 20);
    assert_eq!(server.query("d19.test", "MX"), ["10 mx.example.net."]);
    server.nsupdate("d7.test", &["update add @ 300 TXT \"v=spf1 -all\""]);
    assert_eq!(server.query("d7.test", "TXT"), ["\"v=spf1 -all\""]);
    assert_eq!(server.serial("d7.test"), 2);
    assert_eq!(server.serial("d8.test"), 1);
}

// --- the servers die with the test process ------------------------------------------------

const HELPER_ENV: &str = "MAILZONE_TESTKIT_DEATH_HELPER";

/// Run only as a child of `servers_die_with_the_test_process`: starts Knot, prints its pid
/// and waits to be killed.
#[test]
#[ignore = "helper process of servers_die_with_the_test_process"]
fn death_helper() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let server = start(ServerKind::Knot, &ServerOptions::default());
    println!("PID {}", server.pid().expect("running"));
    std::thread::sleep(Duration::from_secs(60));
}

fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for a reaper counts as gone.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn servers_die_with_the_test_process() {
    if !ServerKind::Knot.available() {
        return;
    }
    let mut helper = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "death_helper", "--ignored", "--nocapture"])
        .env(HELPER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("helper starts");
    let stdout = helper.stdout.take().expect("piped");
    let pid: u32 = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("PID ")?.trim().parse().ok())
        .expect("the helper prints the server's pid");
    assert!(!process_gone(pid));
    helper.kill().expect("kill the helper"); // SIGKILL: no destructor runs
    helper.wait().expect("helper reaped");
    assert!(
        poll_until(Duration::from_secs(3), || process_gone(pid)),
        "knotd {pid} outlived the test process"
    );
}
