//! Knot DNS (`knotd`) as a primary: configuration and command line.
//!
//! What matters in the configuration (Knot 3.2):
//! - `database.storage` must be an existing directory, or every UPDATE is SERVFAIL (the
//!   journal cannot be opened).
//! - Restarts must keep dynamic updates. `zonefile-load: whole` +
//!   `journal-content: changes` + `zonefile-sync: -1`: the zone file written by the kit is
//!   never rewritten, and at start Knot parses it (serial 1) and replays the journal on top
//!   of it. (`zonefile-load: difference-no-serial` with `journal-content: all` looks like
//!   the answer but is not: at start it diffs the journal's zone against the *unchanged*
//!   zone file and applies that difference, i.e. reverts every update, bumping the serial.)
//! - Knot denies an ACL miss with NOTAUTH (TSIG error BADKEY when the request was signed),
//!   never REFUSED, whatever `deny: on` rules say: `allow_transfer: false` makes AXFR fail
//!   with NOTAUTH/BADKEY, `allow_update: false` makes UPDATE fail with NOTAUTH.
//! - With `ServerOptions::dnssec`, `dnssec-signing: on` signs at load (before the zone is
//!   served) and again after every UPDATE; the serial is bumped by the signing (a zone file
//!   with serial 1 is served as 2).

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ServerOptions, TsigKey, ZoneSpec, tools, zone_file_name};

/// Writes `knot.conf` (and the `db` directory) into `dir`; returns the config path.
/// The zone files are written by the caller.
pub(crate) fn write_config(
    dir: &Path,
    addr: SocketAddr,
    zones: &[ZoneSpec],
    key: &TsigKey,
    options: &ServerOptions,
) -> io::Result<PathBuf> {
    let db = dir.join("db");
    std::fs::create_dir_all(&db)?;
    let mut conf = String::new();
    let dir_s = quote(dir);
    let _ = writeln!(conf, "server:");
    let _ = writeln!(conf, "  rundir: {dir_s}");
    let _ = writeln!(conf, "  listen: {}@{}", addr.ip(), addr.port());
    let _ = writeln!(conf, "log:");
    let _ = writeln!(conf, "  - target: stderr");
    let _ = writeln!(conf, "    any: info");
    let _ = writeln!(conf, "database:");
    let _ = writeln!(conf, "  storage: {}", quote(&db));
    let _ = writeln!(conf, "key:");
    let _ = writeln!(conf, "  - id: {}", key.name);
    let _ = writeln!(conf, "    algorithm: {}", key.algorithm);
    let _ = writeln!(conf, "    secret: \"{}\"", key.secret_base64);

    if !options.notify.is_empty() {
        let _ = writeln!(conf, "remote:");
        for (index, secondary) in options.notify.iter().enumerate() {
            let _ = writeln!(conf, "  - id: secondary{index}");
            let _ = writeln!(conf, "    address: {}@{}", secondary.ip(), secondary.port());
            let _ = writeln!(conf, "    key: {}", key.name);
        }
    }

    let mut acls = Vec::new();
    let mut acl_conf = String::new();
    if options.allow_update {
        acls.push("mailzone_update");
        let _ = writeln!(acl_conf, "  - id: mailzone_update");
        let _ = writeln!(acl_conf, "    key: {}", key.name);
        let _ = writeln!(acl_conf, "    action: update");
    }
    // Secondaries fetch with the same key, so notifying implies allowing transfers
    // (DnsServer::start rejects allow_transfer = false with a notify list).
    if options.allow_transfer || !options.notify.is_empty() {
        acls.push("mailzone_transfer");
        let _ = writeln!(acl_conf, "  - id: mailzone_transfer");
        let _ = writeln!(acl_conf, "    key: {}", key.name);
        let _ = writeln!(acl_conf, "    action: transfer");
    }
    if !acl_conf.is_empty() {
        let _ = writeln!(conf, "acl:");
        conf.push_str(&acl_conf);
    }

    if options.dnssec {
        // Automatic signing (Knot 3.2 `dnssec-signing` with a `policy`): keys are made at
        // the first load, kept in the KASP database under `database.storage`, and the KSK
        // stays in the "ready" state (it signs; Knot waits for a DS it is never told of).
        let _ = writeln!(conf, "policy:");
        let _ = writeln!(conf, "  - id: mailzone");
        let _ = writeln!(conf, "    algorithm: ecdsap256sha256");
        let _ = writeln!(conf, "    nsec3: off");
        let _ = writeln!(conf, "    rrsig-lifetime: 14d");
        let _ = writeln!(conf, "    rrsig-refresh: 7d");
    }

    let _ = writeln!(conf, "template:");
    let _ = writeln!(conf, "  - id: default");
    let _ = writeln!(conf, "    storage: {dir_s}");
    let _ = writeln!(conf, "    zonefile-load: whole");
    let _ = writeln!(conf, "    journal-content: changes");
    let _ = writeln!(conf, "    zonefile-sync: -1");
    let _ = writeln!(conf, "    serial-policy: increment");
    if options.dnssec {
        let _ = writeln!(conf, "    dnssec-signing: on");
        let _ = writeln!(conf, "    dnssec-policy: mailzone");
    }
    if !acls.is_empty() {
        let _ = writeln!(conf, "    acl: [{}]", acls.join(", "));
    }
    if !options.notify.is_empty() {
        let ids: Vec<String> = (0..options.notify.len())
            .map(|index| format!("secondary{index}"))
            .collect();
        let _ = writeln!(conf, "    notify: [{}]", ids.join(", "));
    }

    let _ = writeln!(conf, "zone:");
    for zone in zones {
        let _ = writeln!(conf, "  - domain: {}", zone.name.trim_end_matches('.'));
        let _ = writeln!(conf, "    file: {}", zone_file_name(&zone.name));
    }

    let path = dir.join("knot.conf");
    std::fs::write(&path, conf)?;
    Ok(path)
}

/// `knotd -c <config>` (foreground; logs go to stderr).
pub(crate) fn command(config: &Path) -> io::Result<Command> {
    let mut command = Command::new(tools::tool_or_err("knotd")?);
    command.arg("-c").arg(config);
    Ok(command)
}

fn quote(path: &Path) -> String {
    format!("\"{}\"", path.display())
}
