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
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::PrimarySetup;
use crate::{tools, zone_file_name};

/// Writes `knot.conf` (and the `db` directory) into the primary's directory; returns the
/// config path. The zone files are written by the caller.
pub(crate) fn write_config(primary: &PrimarySetup) -> io::Result<PathBuf> {
    let db = primary.dir.join("db");
    std::fs::create_dir_all(&db)?;
    let dir_s = quote(primary.dir);
    let mut conf = format!(
        r#"server:
  rundir: {dir_s}
  listen: {ip}@{port}
log:
  - target: stderr
    any: info
database:
  storage: {db}
key:
  - id: {name}
    algorithm: {algorithm}
    secret: "{secret}"
"#,
        name = primary.key.name,
        algorithm = primary.key.algorithm,
        secret = primary.key.secret_base64,
        db = quote(&db),
        ip = primary.addr.ip(),
        port = primary.addr.port(),
    );

    if !primary.options.notify.is_empty() {
        let _ = writeln!(conf, "remote:");
        for (index, secondary) in primary.options.notify.iter().enumerate() {
            let _ = writeln!(conf, "  - id: secondary{index}");
            let _ = writeln!(conf, "    address: {}@{}", secondary.ip(), secondary.port());
            let _ = writeln!(conf, "    key: {}", primary.key.name);
            // NOTIFY from the address the secondary knows as its primary.
            let _ = writeln!(conf, "    via: {}", primary.addr.ip());
        }
    }

    let mut acls = Vec::new();
    let mut acl_conf = String::new();
    if primary.options.allow_update {
        acls.push("mailzone_update");
        let _ = writeln!(acl_conf, "  - id: mailzone_update");
        let _ = writeln!(acl_conf, "    key: {}", primary.key.name);
        let _ = writeln!(acl_conf, "    action: update");
    }
    // Secondaries fetch with the same key, so notifying implies allowing transfers
    // (DnsServer::start rejects allow_transfer = false with a notify list).
    if primary.options.allow_transfer || !primary.options.notify.is_empty() {
        acls.push("mailzone_transfer");
        let _ = writeln!(acl_conf, "  - id: mailzone_transfer");
        let _ = writeln!(acl_conf, "    key: {}", primary.key.name);
        let _ = writeln!(acl_conf, "    action: transfer");
    }
    if !acl_conf.is_empty() {
        let _ = writeln!(conf, "acl:");
        conf.push_str(&acl_conf);
    }

    if primary.options.dnssec {
        // Automatic signing (Knot 3.2 `dnssec-signing` with a `policy`): keys are made at
        // the first load, kept in the KASP database under `database.storage`, and the KSK
        // stays in the "ready" state (it signs; Knot waits for a DS it is never told of).
        conf.push_str(SIGNING_POLICY);
    }

    let _ = write!(
        conf,
        "template:
  - id: default
    storage: {dir_s}
    zonefile-load: whole
    journal-content: changes
    zonefile-sync: -1
    serial-policy: increment
"
    );
    if primary.options.dnssec {
        let _ = writeln!(conf, "    dnssec-signing: on");
        let _ = writeln!(conf, "    dnssec-policy: mailzone");
    }
    if !acls.is_empty() {
        let _ = writeln!(conf, "    acl: [{}]", acls.join(", "));
    }
    if !primary.options.notify.is_empty() {
        let ids: Vec<String> = (0..primary.options.notify.len())
            .map(|index| format!("secondary{index}"))
            .collect();
        let _ = writeln!(conf, "    notify: [{}]", ids.join(", "));
    }

    let _ = writeln!(conf, "zone:");
    for zone in primary.zones {
        let _ = writeln!(conf, "  - domain: {}", zone.name.trim_end_matches('.'));
        let _ = writeln!(conf, "    file: {}", zone_file_name(&zone.name));
    }

    let path = primary.dir.join("knot.conf");
    std::fs::write(&path, conf)?;
    Ok(path)
}

/// `knotd -c <config>` (foreground; logs go to stderr).
pub(crate) fn command(config: &Path) -> io::Result<Command> {
    let mut command = Command::new(tools::tool_or_err("knotd")?);
    command.arg("-c").arg(config);
    Ok(command)
}

/// The `mailzone` signing policy: ECDSA P-256, NSEC, signatures valid 14 days and
/// refreshed after 7.
const SIGNING_POLICY: &str = "policy:
  - id: mailzone
    algorithm: ecdsap256sha256
    nsec3: off
    rrsig-lifetime: 14d
    rrsig-refresh: 7d
";

fn quote(path: &Path) -> String {
    format!("\"{}\"", path.display())
}
