//! Failures: a wrong key, a refused update, a stopped or silent server, an unknown zone,
//! each of the class (transient or permanent) a caller retries by, and free of secrets.

use super::*;

pub(crate) async fn wrong_tsig_secret_is_permanent_and_secret_free(kind: ServerKind) {
    let Some(server) = start(kind, PREFILLED, &ServerOptions::default()) else {
        return;
    };
    let zone_before = server.axfr(ZONE);
    let wrong = TsigKey::generate(&server.key.name); // same name, another secret
    let p = provider_with(server.addr, Some(&wrong), Transport::Tcp);
    let secrets = [
        wrong.secret_base64.clone(),
        server.key.secret_base64.clone(),
    ];
    let check = |e: DnsError| {
        assert_permanent(&e, &["TSIG"]);
        let text = format!("{e} {e:?}");
        assert!(text.contains("BADSIG"), "{text}");
        assert!(text.contains("mailzone-key"), "names the key: {text}");
        assert!(
            !text.contains("truncated"),
            "hickory's message is not shown: {text}"
        );
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "the secret leaked: {text}");
        }
    };
    check(
        p.read_zone(&zone(), &wanted(&desired_records()))
            .await
            .unwrap_err(),
    );
    check(p.serial(&zone()).await.unwrap_err());
    let good = provider(&server);
    let changes = plan(&good, &desired_records()).await;
    check(p.apply(&changes).await.unwrap_err());
    assert_eq!(server.axfr(ZONE), zone_before, "nothing was changed");

    // A key the server does not know at all: BADKEY.
    let unknown = TsigKey::generate("no-such-key");
    let p = provider_with(server.addr, Some(&unknown), Transport::Udp);
    let e = p.apply(&changes).await.unwrap_err();
    assert_permanent(&e, &["BADKEY"]);
    assert!(!e.to_string().contains(&unknown.secret_base64));
    assert_eq!(server.axfr(ZONE), zone_before, "nothing was changed");
}

pub(crate) async fn update_not_allowed_is_permanent(kind: ServerKind) {
    let options = ServerOptions {
        allow_update: false,
        ..ServerOptions::default()
    };
    let Some(server) = start(kind, PREFILLED, &options) else {
        return;
    };
    let zone_before = server.axfr(ZONE);
    let p = provider(&server);
    let changes = plan(&p, &desired_records()).await;
    let e = p.apply(&changes).await.unwrap_err();
    match kind {
        // BIND: REFUSED. Knot: NOTAUTH with TSIG error BADKEY (the key is not in the ACL).
        ServerKind::Bind => {
            assert_permanent(&e, &["(REFUSED): is the key allowed to update this zone?"])
        }
        ServerKind::Knot => assert_permanent(&e, &["NOTAUTH", "BADKEY"]),
    }
    assert!(!e.to_string().contains(&server.key.secret_base64));
    assert_eq!(server.axfr(ZONE), zone_before, "nothing was changed");

    // Without any key: refused too.
    let p = provider_with(server.addr, None, Transport::Tcp);
    let e = p.apply(&changes).await.unwrap_err();
    assert_permanent(&e, &["REFUSED", "NOTAUTH"]);
}

pub(crate) async fn stopped_server_is_transient(kind: ServerKind) {
    let Some(server) = start(kind, PREFILLED, &ServerOptions::default()) else {
        return;
    };
    let p = provider(&server);
    let changes = plan(&p, &desired_records()).await;
    server.stop();
    let addr = server.addr.to_string();
    let check = |e: DnsError| {
        eprintln!("transient: {e}");
        assert_eq!(e.class(), ErrorClass::Transient, "{e:?}");
        assert!(matches!(e, DnsError::Transient { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&addr), "{text}");
        assert!(
            text.contains("connection refused") && text.contains("is the server running?"),
            "{text}"
        );
    };
    check(p.read_zone(&zone(), &[]).await.unwrap_err());
    check(p.serial(&zone()).await.unwrap_err());
    check(p.apply(&changes).await.unwrap_err());
    let udp = provider_with(server.addr, Some(&server.key), Transport::Udp);
    check(udp.serial(&zone()).await.unwrap_err());
    check(
        query_serial(server.addr, &zone(), Duration::from_secs(1))
            .await
            .unwrap_err(),
    );
}

pub(crate) async fn unknown_zone_is_permanent(kind: ServerKind) {
    let Some(server) = start(kind, PREFILLED, &ServerOptions::default()) else {
        return;
    };
    let p = provider(&server);
    let other = name("example.org");
    let e = p
        .read_zone(&other, &[(name("example.org"), RrType::Mx)])
        .await
        .unwrap_err();
    assert_permanent(&e, &["example.org"]);
    let changes = ChangeSet {
        zone: Some(other.clone()),
        adds: vec![txt("example.org", RecordPurpose::Spf, b"v=spf1 -all")],
        ..ChangeSet::default()
    };
    let e = p.apply(&changes).await.unwrap_err();
    assert_permanent(&e, &["NOTAUTH", "REFUSED", "NOTZONE"]);
}

/// A server that takes the request and never answers: a timeout, worded with the server
/// and the wait.
#[tokio::test]
async fn silent_server_is_a_transient_timeout() {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(); // never answers
    let addr = udp.local_addr().unwrap();
    let e = query_serial(addr, &zone(), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(e.to_string(), format!("no answer from {addr} within 300ms"));
}

#[tokio::test]
async fn silent_tcp_server_times_out_too() {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = tcp.accept().await {
            held.push(conn);
        }
    });
    let p = Rfc2136Provider::new(Rfc2136Config {
        server: addr,
        protocol: Transport::Tcp,
        tsig: None,
        timeout: Duration::from_secs(1),
    });
    let e = p.read_zone(&zone(), &[]).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(e.to_string(), format!("no answer from {addr} within 1s"));
    keep.abort();
}

#[tokio::test]
async fn bad_key_name_fails_every_request_clearly() {
    let p = Rfc2136Provider::new(Rfc2136Config {
        server: "127.0.0.1:9".parse().unwrap(),
        protocol: Transport::Tcp,
        tsig: Some(
            TsigConfig::from_base64("bad key..name", TsigAlgorithm::HmacSha256, "c2VjcmV0")
                .unwrap(),
        ),
        timeout: Duration::from_secs(1),
    });
    let e = p.serial(&zone()).await.unwrap_err();
    assert_permanent(&e, &["bad key..name"]);
    assert_eq!(p.messages_sent(), 0);
}
