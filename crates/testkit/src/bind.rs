//! BIND 9 (`named`) as a primary or as a secondary: configuration and command line.
//!
//! What matters in the configuration (BIND 9.18):
//! - `controls { };` or named opens the rndc port 953 with `/etc/bind/rndc.key`;
//!   `listen-on-v6 { none; }` and `-4` keep it on 127.0.0.1; `session-keyfile`,
//!   `pid-file` and `managed-keys-directory` point into the temporary directory.
//! - `notify explicit;` + `also-notify { 127.0.0.1 port N key "…"; };` notifies exactly the
//!   given secondaries (not the zone's NS), and `notify-delay 0;` sends each NOTIFY at
//!   once: the default (5 s) holds back the NOTIFY of a second update in a row.
//! - A secondary: `type secondary; primaries { 127.0.0.1 port P key "…"; };`, the zone
//!   file kept as text, `notify no;`. It serves the zone once the first transfer is done
//!   (SERVFAIL before); after a NOTIFY BIND waits ≈ 0.5 s before the IXFR.
//! - `allow-transfer { none; }` / `allow-update { none; }` answer REFUSED.
//! - BIND refuses an UPDATE adding an MX whose in-zone target has no address record.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::PrimarySetup;
use crate::{TsigKey, tools, zone_file_name};

/// Writes `named.conf` for a primary into its directory; returns its path.
pub(crate) fn write_primary_config(primary: &PrimarySetup) -> io::Result<PathBuf> {
    let mut conf = common(
        primary.dir,
        primary.addr,
        primary.key,
        "notify explicit;\n  notify-delay 0;",
    );
    let key_ref = format!("key \"{}\";", primary.key.name);
    let update = if primary.options.allow_update {
        key_ref.as_str()
    } else {
        "none;"
    };
    // Secondaries fetch with the same key, so notifying implies allowing transfers
    // (DnsServer::start rejects allow_transfer = false with a notify list).
    let transfer = if primary.options.allow_transfer || !primary.options.notify.is_empty() {
        key_ref.as_str()
    } else {
        "none;"
    };
    let also_notify: String = primary
        .options
        .notify
        .iter()
        .map(|secondary| {
            format!(
                " {} port {} key \"{}\";",
                secondary.ip(),
                secondary.port(),
                primary.key.name
            )
        })
        .collect();
    for zone in primary.zones {
        let name = zone.name.trim_end_matches('.');
        let _ = writeln!(conf, "zone \"{name}\" {{");
        let _ = writeln!(conf, "  type primary;");
        let _ = writeln!(conf, "  file \"{}\";", zone_file_name(name));
        let _ = writeln!(conf, "  allow-update {{ {update} }};");
        let _ = writeln!(conf, "  allow-transfer {{ {transfer} }};");
        if !also_notify.is_empty() {
            let _ = writeln!(conf, "  also-notify {{{also_notify} }};");
        }
        let _ = writeln!(conf, "}};");
    }
    let path = primary.dir.join("named.conf");
    std::fs::write(&path, conf)?;
    Ok(path)
}

/// Writes `named.conf` for a secondary of `zones`, transferring from `primary` with `key`.
pub(crate) fn write_secondary_config(
    dir: &Path,
    addr: SocketAddr,
    primary: SocketAddr,
    zones: &[String],
    key: &TsigKey,
) -> io::Result<PathBuf> {
    let mut conf = common(dir, addr, key, "notify no;");
    for zone in zones {
        let name = zone.trim_end_matches('.');
        let _ = writeln!(conf, "zone \"{name}\" {{");
        let _ = writeln!(conf, "  type secondary;");
        let _ = writeln!(conf, "  file \"{}\";", zone_file_name(name));
        let _ = writeln!(conf, "  masterfile-format text;");
        let _ = writeln!(
            conf,
            "  primaries {{ {} port {} key \"{}\"; }};",
            primary.ip(),
            primary.port(),
            key.name
        );
        let _ = writeln!(conf, "  allow-transfer {{ key \"{}\"; }};", key.name);
        let _ = writeln!(conf, "}};");
    }
    let path = dir.join("named.conf");
    std::fs::write(&path, conf)?;
    Ok(path)
}

fn common(dir: &Path, addr: SocketAddr, key: &TsigKey, notify: &str) -> String {
    let d = dir.display();
    format!(
        r#"options {{
  directory "{d}";
  pid-file "{d}/named.pid";
  session-keyfile "{d}/session.key";
  managed-keys-directory "{d}";
  listen-on port {port} {{ {ip}; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  {notify}
}};
controls {{ }};
key "{name}" {{
  algorithm {algorithm};
  secret "{secret}";
}};
"#,
        port = addr.port(),
        ip = addr.ip(),
        name = key.name,
        algorithm = key.algorithm,
        secret = key.secret_base64,
    )
}

/// `named -g -4 -c <config>` (foreground, logs to stderr).
pub(crate) fn command(config: &Path) -> io::Result<Command> {
    let mut command = Command::new(tools::tool_or_err("named")?);
    command.arg("-g").arg("-4").arg("-c").arg(config);
    Ok(command)
}
