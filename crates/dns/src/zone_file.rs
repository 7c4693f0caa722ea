//! Zone files on disk as a provider, for zones kept in git, on NixOS or by hand and loaded
//! by BIND, NSD or Knot.
//!
//! Two layouts:
//! - **zone** (the default): the zone's whole master file (RFC 1035 §5). mailzone writes
//!   its records between two marker comments at the end of the file and bumps the SOA
//!   serial; every other byte of the file, foreign records and comments included, is kept
//!   as it was.
//! - **include**: a file of mailzone's own that the zone `$INCLUDE`s; rewritten whole.
//!   With `zoneFile`, the including zone file is read too (its records are live records,
//!   so a foreign SPF beside mailzone's is seen) and its SOA serial is bumped.
//!
//! Every write goes to a temporary file in the same directory, synced and renamed over the
//! old one, so a reader sees the old file or the new one, never a part. Then the reload
//! command runs (argv, no shell); when it fails, the previous file is put back.
//! The serial read is compared with the file's just before writing (someone edited it
//! meanwhile: a conflict, re-planned).
//!
//! Records are read with hickory's master-file parser. The SOA serial is found by a small
//! tokenizer here because the edit needs its byte position in the text, which the parser
//! does not give, and every other byte must stay as it was.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hickory_proto::rr::Name as WireName;
use hickory_proto::serialize::txt::Parser;
use mailzone_records::diff::{ChangeSet, LiveRecord};
use mailzone_records::{Name, Record, RrType, zonefile};

use crate::convert::from_wire;
use crate::provider::{Capabilities, Conditional, ReadScope};
use crate::{ApplyReport, Cause, DnsError, Provider, ReadMethod, ZoneSnapshot};

/// The first and last line of mailzone's records in a whole zone file.
pub const BLOCK_BEGIN: &str = "; BEGIN mailzone: records below are managed by mailzone";
pub const BLOCK_END: &str = "; END mailzone";

/// Which file mailzone writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The zone's whole master file.
    Zone,
    /// A file of mailzone's own, `$INCLUDE`d by the zone.
    Include,
}

/// Where the files are: `{zone}` in a path or argument stands for the zone's name
/// (`example.org`), `{file}` in an argument for the file written.
#[derive(Debug, Clone)]
pub struct ZoneFileConfig {
    pub path: String,
    pub layout: Layout,
    /// With [`Layout::Include`]: the zone file that includes mailzone's file.
    pub zone_file: Option<String>,
    /// Run after each write; a failure puts the previous file back.
    pub reload: Option<Vec<String>>,
    pub timeout: Duration,
}

/// Zone files as a provider.
pub struct ZoneFileProvider {
    config: ZoneFileConfig,
    writes: AtomicU64,
}

/// Errors name the file, never a server: the address is a placeholder.
const NO_SERVER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

fn failed(cause: Cause, message: String) -> DnsError {
    DnsError::permanent(NO_SERVER, cause, message)
}

fn expand(template: &str, zone: &Name, file: Option<&Path>) -> String {
    let mut out = template.replace("{zone}", zone.as_str());
    if let Some(file) = file {
        out = out.replace("{file}", &file.to_string_lossy());
    }
    out
}

/// A file's text, or `None` when it does not exist.
fn read_text(path: &Path) -> Result<Option<String>, DnsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(failed(
            Cause::Request,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// The records of a master file (`$INCLUDE` lines left out: the included file is read on
/// its own), those of the types mailzone models, and the SOA serial if there is one.
fn parse_master(
    text: &str,
    zone: &Name,
    path: &Path,
) -> Result<(Vec<LiveRecord>, Option<u32>), DnsError> {
    let without_includes: String = text
        .lines()
        .filter(|l| !l.trim_start().to_ascii_uppercase().starts_with("$INCLUDE"))
        .map(|l| format!("{l}\n"))
        .collect();
    let origin = WireName::from_ascii(zone.to_absolute())
        .map_err(|e| failed(Cause::Request, format!("zone name {zone}: {e}")))?;
    let (_, sets) = Parser::new(without_includes, Some(path.to_path_buf()), Some(origin))
        .parse()
        .map_err(|e| {
            failed(
                Cause::Malformed,
                format!("{} is not a valid zone file: {e}", path.display()),
            )
        })?;
    let mut records = Vec::new();
    let mut serial = None;
    for set in sets.values() {
        for record in set.records_without_rrsigs() {
            if let hickory_proto::rr::RData::SOA(soa) = &record.data {
                serial = Some(soa.serial);
                continue;
            }
            if let Ok(Some(live)) = from_wire(record) {
                records.push(live);
            }
        }
    }
    Ok((records, serial))
}

/// The byte range of the SOA serial in a master file: the third field after the `SOA`
/// type token, parentheses and comments skipped.
fn soa_serial_span(text: &str) -> Option<(usize, usize)> {
    let mut after_soa: Option<u32> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let code = line.split(';').next().unwrap_or("");
        let mut index = 0;
        let bytes = code.as_bytes();
        while index < bytes.len() {
            if bytes[index].is_ascii_whitespace() || bytes[index] == b'(' || bytes[index] == b')' {
                index += 1;
                continue;
            }
            let start = index;
            while index < bytes.len()
                && !bytes[index].is_ascii_whitespace()
                && bytes[index] != b'('
                && bytes[index] != b')'
            {
                index += 1;
            }
            let token = &code[start..index];
            match after_soa {
                None if token.eq_ignore_ascii_case("SOA") => after_soa = Some(0),
                None => {}
                Some(2) => return Some((offset + start, offset + index)),
                Some(n) => after_soa = Some(n + 1),
            }
        }
        offset += line.len();
    }
    None
}

/// The next serial (RFC 1982 serial arithmetic: adding 1 wraps past 2^32 − 1).
fn next_serial(serial: u32) -> u32 {
    serial.wrapping_add(1).max(1)
}

/// `text` with its SOA serial replaced by the next one; `None` without an SOA.
fn bump_serial(text: &str) -> Option<(String, u32)> {
    let (start, end) = soa_serial_span(text)?;
    let old: u32 = text[start..end].parse().ok()?;
    let new = next_serial(old);
    Some((format!("{}{new}{}", &text[..start], &text[end..]), new))
}

/// The lines between the markers (exclusive), and the text before and after the block.
fn split_block(text: &str) -> (&str, &str, &str) {
    let Some(begin) = text.find(BLOCK_BEGIN) else {
        return (text, "", "");
    };
    let body_start = text[begin..]
        .find('\n')
        .map(|n| begin + n + 1)
        .unwrap_or(text.len());
    let end = text[body_start..]
        .find(BLOCK_END)
        .map(|n| body_start + n)
        .unwrap_or(text.len());
    let after = text[end..]
        .find('\n')
        .map(|n| end + n + 1)
        .unwrap_or(text.len());
    (&text[..begin], &text[body_start..end], &text[after..])
}

fn render_lines(records: &[Record]) -> String {
    let mut out = String::new();
    for record in records {
        out.push_str(&zonefile::record_line(record, 0));
        out.push('\n');
    }
    out
}

/// Writes `text` to `path` through a synced temporary file renamed over it, keeping the
/// old file's permissions.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".mailzone-")
        .tempfile_in(dir)?;
    temp.write_all(text.as_bytes())?;
    temp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        temp.as_file().set_permissions(meta.permissions())?;
    }
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl ZoneFileProvider {
    pub fn new(config: ZoneFileConfig) -> ZoneFileProvider {
        ZoneFileProvider {
            config,
            writes: AtomicU64::new(0),
        }
    }

    fn path(&self, zone: &Name) -> PathBuf {
        PathBuf::from(expand(&self.config.path, zone, None))
    }

    fn zone_file(&self, zone: &Name) -> Option<PathBuf> {
        self.config
            .zone_file
            .as_deref()
            .map(|t| PathBuf::from(expand(t, zone, None)))
    }

    /// mailzone's records (the block or the include file) and every live record.
    fn read(&self, zone: &Name) -> Result<Snapshot, DnsError> {
        let path = self.path(zone);
        let text = read_text(&path)?;
        match self.config.layout {
            Layout::Zone => {
                let text = text.ok_or_else(|| {
                    failed(
                        Cause::NotServed,
                        format!(
                            "the zone file {} of zone {zone} does not exist",
                            path.display()
                        ),
                    )
                })?;
                let (live, serial) = parse_master(&text, zone, &path)?;
                let serial = serial.ok_or_else(|| {
                    failed(
                        Cause::NotServed,
                        format!("{} has no SOA record for {zone}", path.display()),
                    )
                })?;
                let (_, block, _) = split_block(&text);
                let (own, _) = parse_master(block, zone, &path)?;
                Ok(Snapshot {
                    serial,
                    live,
                    own,
                    text: Some(text),
                })
            }
            Layout::Include => {
                let text = text.unwrap_or_default();
                let (own, _) = parse_master(&text, zone, &path)?;
                let mut live = own.clone();
                let mut serial = None;
                if let Some(zone_path) = self.zone_file(zone) {
                    let zone_text = read_text(&zone_path)?.ok_or_else(|| {
                        failed(
                            Cause::NotServed,
                            format!(
                                "the zone file {} of zone {zone} does not exist",
                                zone_path.display()
                            ),
                        )
                    })?;
                    let (foreign, zone_serial) = parse_master(&zone_text, zone, &zone_path)?;
                    live.extend(foreign);
                    serial = zone_serial;
                }
                // Without a zone file there is no serial to read or to wait for: 0, and
                // the capabilities say so (every run reads the file).
                let serial = serial.unwrap_or(0);
                Ok(Snapshot {
                    serial,
                    live,
                    own,
                    text: Some(text),
                })
            }
        }
    }

    /// Runs the reload command within the timeout; its failure is the error to report.
    async fn reload(&self, zone: &Name, file: &Path) -> Result<(), DnsError> {
        let Some(argv) = &self.config.reload else {
            return Ok(());
        };
        let args: Vec<String> = argv.iter().map(|a| expand(a, zone, Some(file))).collect();
        let command = args.join(" ");
        let fail = |what: String| DnsError::Transient {
            server: NO_SERVER,
            cause: Cause::Unreachable,
            message: format!(
                "the reload command `{command}` {what}; the previous {} was put back",
                file.display()
            ),
        };
        let run = tokio::process::Command::new(&args[0])
            .args(&args[1..])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = match tokio::time::timeout(self.config.timeout, run).await {
            Err(_) => {
                return Err(fail(format!(
                    "did not finish within {:?}",
                    self.config.timeout
                )));
            }
            Ok(Err(e)) => return Err(fail(format!("cannot run: {e}"))),
            Ok(Ok(output)) => output,
        };
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let said = if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        };
        Err(fail(format!(
            "failed ({}): {}",
            output.status,
            said.trim().chars().take(300).collect::<String>()
        )))
    }
}

struct Snapshot {
    serial: u32,
    live: Vec<LiveRecord>,
    own: Vec<LiveRecord>,
    text: Option<String>,
}

/// What zone files can do: with a serial (a whole zone file, or an include file with its
/// zone file) a write is guarded by it and an unchanged zone is seen from it.
pub fn capabilities(serial: bool) -> Capabilities {
    Capabilities {
        read: ReadScope::WholeZone,
        atomic: true,
        conditional: if serial {
            Conditional::Serial
        } else {
            Conditional::No
        },
        serial,
        txt_strings_kept: true,
        ttl_read: true,
        min_ttl: 0,
    }
}

#[async_trait]
impl Provider for ZoneFileProvider {
    fn capabilities(&self) -> Capabilities {
        // An include file without its zone file has no serial.
        capabilities(self.config.layout == Layout::Zone || self.config.zone_file.is_some())
    }

    async fn read_zone(
        &self,
        zone: &Name,
        _wanted: &[(Name, RrType)],
    ) -> Result<ZoneSnapshot, DnsError> {
        let snapshot = self.read(zone)?;
        Ok(ZoneSnapshot {
            zone: zone.clone(),
            serial: snapshot.serial,
            records: snapshot.live,
            method: ReadMethod::File,
            ns_records: None,
        })
    }

    async fn serial(&self, zone: &Name) -> Result<u32, DnsError> {
        Ok(self.read(zone)?.serial)
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<ApplyReport, DnsError> {
        let zone = changes
            .zone
            .clone()
            .ok_or_else(|| failed(Cause::Request, "a change set without its zone".to_string()))?;
        let snapshot = self.read(&zone)?;
        if let Some(read) = changes.read_serial.filter(|r| *r != snapshot.serial) {
            return Err(DnsError::SerialMoved {
                server: NO_SERVER,
                read,
                now: snapshot.serial,
            });
        }
        let path = self.path(&zone);
        let mut own: Vec<Record> = snapshot.own.iter().map(|l| l.record.clone()).collect();
        for (_, live) in &changes.deletes {
            let before = own.len();
            own.retain(|r| !(r.name == live.record.name && r.data == live.record.data));
            if own.len() == before {
                return Err(failed(
                    Cause::Request,
                    format!(
                        "{} {} is not among mailzone's records in {}: remove it by hand",
                        live.record.name,
                        live.record.data.rtype(),
                        path.display()
                    ),
                ));
            }
        }
        let added: BTreeSet<(Name, String)> = changes
            .adds
            .iter()
            .map(|a| {
                (
                    a.record.name.clone(),
                    zonefile::rdata_presentation(&a.record.data),
                )
            })
            .collect();
        own.retain(|r| !added.contains(&(r.name.clone(), zonefile::rdata_presentation(&r.data))));
        own.extend(changes.adds.iter().map(|a| a.record.clone()));
        own.sort_by(|a, b| {
            (
                a.name.as_str(),
                a.data.rtype(),
                zonefile::rdata_presentation(&a.data),
            )
                .cmp(&(
                    b.name.as_str(),
                    b.data.rtype(),
                    zonefile::rdata_presentation(&b.data),
                ))
        });
        let old_text = snapshot.text.unwrap_or_default();
        let (new_text, serial) = match self.config.layout {
            Layout::Zone => {
                let (before, _, after) = split_block(&old_text);
                let mut text = before.to_string();
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(BLOCK_BEGIN);
                text.push('\n');
                text.push_str(&render_lines(&own));
                text.push_str(BLOCK_END);
                text.push('\n');
                text.push_str(after);
                bump_serial(&text).ok_or_else(|| {
                    failed(
                        Cause::NotServed,
                        format!("{} has no SOA serial to bump", path.display()),
                    )
                })?
            }
            Layout::Include => {
                let text = format!(
                    "; mailzone's records of zone {zone}: this file is rewritten at each change.\n{}",
                    render_lines(&own)
                );
                (text, 0)
            }
        };
        let io = |p: &Path, e: std::io::Error| {
            failed(Cause::Request, format!("cannot write {}: {e}", p.display()))
        };
        write_atomically(&path, &new_text).map_err(|e| io(&path, e))?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        // With an including zone file, its SOA serial moves so the server reloads.
        let mut serial = serial;
        let mut zone_file_before = None;
        if let (Layout::Include, Some(zone_path)) = (self.config.layout, self.zone_file(&zone)) {
            let zone_text = read_text(&zone_path)?.unwrap_or_default();
            if let Some((bumped, new_serial)) = bump_serial(&zone_text) {
                write_atomically(&zone_path, &bumped).map_err(|e| io(&zone_path, e))?;
                zone_file_before = Some((zone_path, zone_text));
                serial = new_serial;
            }
        }
        if let Err(e) = self.reload(&zone, &path).await {
            // Put the previous files back, so the server loads what it had.
            write_atomically(&path, &old_text).map_err(|e| io(&path, e))?;
            if let Some((zone_path, text)) = zone_file_before {
                write_atomically(&zone_path, &text).map_err(|e| io(&zone_path, e))?;
            }
            return Err(e);
        }
        Ok(ApplyReport {
            messages: 1,
            serial: Some(serial),
        })
    }

    fn messages_sent(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serial_is_found_across_parentheses_and_comments() {
        let text = "$TTL 3600\n@ IN SOA ns1 hostmaster ( ; primary\n   2024010101 ; serial\n   3600 900 604800 300 )\n";
        let (bumped, serial) = bump_serial(text).unwrap();
        assert_eq!(serial, 2024010102);
        assert_eq!(bumped, text.replace("2024010101", "2024010102"));
    }

    #[test]
    fn the_serial_wraps_by_serial_arithmetic() {
        assert_eq!(next_serial(u32::MAX), 1);
        assert_eq!(next_serial(7), 8);
    }

    #[test]
    fn the_block_is_found_between_its_markers() {
        let text = format!("a\n{BLOCK_BEGIN}\nrecord\n{BLOCK_END}\nb\n");
        assert_eq!(split_block(&text), ("a\n", "record\n", "b\n"));
        assert_eq!(split_block("no block\n"), ("no block\n", "", ""));
    }
}
