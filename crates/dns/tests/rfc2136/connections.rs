//! Kept connections: a transfer and an UPDATE reuse the connection of the message before,
//! and one the server closed meanwhile is replaced without losing the request.

use super::*;

/// The connection kept after a transfer is reused by the UPDATE; when the server closed it
/// meanwhile (here: restarted), the UPDATE goes out on a new one and still lands once.
pub(crate) async fn update_survives_a_closed_kept_connection(kind: ServerKind) {
    let Some(server) = start(kind, PREFILLED, &ServerOptions::default()) else {
        return;
    };
    let p = provider(&server);
    let records = desired_records();
    let changes = plan(&p, &records).await; // AXFR: its connection is kept
    server.restart().expect("the server restarts");
    let report = p
        .apply(&changes)
        .await
        .expect("the update is sent again on a new connection");
    assert_eq!(report.messages, 1);
    assert_eq!(report.serial, Some(server.serial(ZONE)));
    assert!(
        plan(&p, &records).await.is_empty(),
        "the zone is in sync after one UPDATE"
    );
}

/// Client connections to `server` in the ESTABLISHED state, from the kernel's table
/// (`/proc/net/tcp`: the remote address as `HEX_IP:HEX_PORT`, the state `01`).
pub(crate) fn connections_to(server: SocketAddr) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp is readable");
    let port = format!(":{:04X}", server.port());
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[2].ends_with(&port) && fields[3] == "01"
        })
        .count()
}

/// A zone transfer goes over the connection kept from the message before (no new
/// connection per zone read); when the server closed it meanwhile (here: restarted), the
/// transfer is asked again on a new one.
pub(crate) async fn transfer_reuses_a_kept_connection(kind: ServerKind) {
    let Some(server) = start(kind, PREFILLED, &ServerOptions::default()) else {
        return;
    };
    let p = provider(&server);
    let records = desired_records();
    let changes = plan(&p, &records).await;
    assert_eq!(
        connections_to(server.addr),
        1,
        "the transfer's connection is kept"
    );
    p.apply(&changes).await.expect("the update lands");
    assert!(plan(&p, &records).await.is_empty());
    assert_eq!(
        connections_to(server.addr),
        1,
        "the update and the second transfer reused the first transfer's connection"
    );
    let sent = p.messages_sent();
    server.restart().expect("the server restarts");
    let snapshot = p
        .read_zone(&zone(), &wanted(&records))
        .await
        .expect("the transfer is asked again on a new connection");
    assert_eq!(snapshot.method, ReadMethod::Transfer);
    assert_eq!(snapshot.serial, server.serial(ZONE));
    assert_eq!(
        p.messages_sent(),
        sent + 2,
        "the request sent on the closed connection counts"
    );
}
