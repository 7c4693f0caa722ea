//! Independent clients: `kdig` (queries, AXFR) and `knsupdate` (RFC 2136 updates) from
//! knot-dnsutils. Tests check the servers with these rather than with mailzone's own DNS
//! code, so a bug shared by the writer and the reader cannot hide.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

use crate::TsigKey;
use crate::tools::tool_or_err;

/// One answer as `kdig` saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The response code as kdig names it: `NOERROR`, `NXDOMAIN`, `REFUSED`, `SERVFAIL`, …
    pub rcode: String,
    /// The AA flag.
    pub authoritative: bool,
    /// The RDATA of the answer records whose owner is the query name and whose type is the
    /// query type, in presentation form as kdig prints it (TXT with its quotes), sorted.
    pub rdata: Vec<String>,
}

/// One record line of kdig's output, split into its fields.
struct Line<'a> {
    owner: &'a str,
    ttl: &'a str,
    class: &'a str,
    rtype: &'a str,
    rdata: &'a str,
}

fn parse_line(line: &str) -> Option<Line<'_>> {
    if line.starts_with(';') || line.trim().is_empty() {
        return None;
    }
    // kdig separates owner, TTL, class, type and RDATA with tabs (the owner padded with
    // spaces); fall back to whitespace for safety.
    let mut parts = line.splitn(5, '\t').map(str::trim);
    let (owner, ttl, class, rtype, rdata) = match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(o), Some(t), Some(c), Some(r), Some(d)) => (o, t, c, r, d),
        _ => {
            let mut words = line.split_whitespace();
            let owner = words.next()?;
            let ttl = words.next()?;
            let class = words.next()?;
            let rtype = words.next()?;
            let start = line.find(rtype)? + rtype.len();
            (owner, ttl, class, rtype, line[start..].trim())
        }
    };
    Some(Line {
        owner,
        ttl,
        class,
        rtype,
        rdata,
    })
}

fn absolute_lower(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

fn kdig_base(addr: SocketAddr) -> io::Result<Command> {
    let mut command = Command::new(tool_or_err("kdig")?);
    command
        .arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["+tcp", "+norec", "+time=3", "+retry=0", "+noidn"])
        .stdin(Stdio::null());
    Ok(command)
}

fn output_text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text.trim_end().to_owned()
}

/// Queries `name` `rtype` at `addr` with kdig over TCP (no recursion desired). `Err` when
/// kdig cannot reach the server (or is not installed); any response code is `Ok`.
pub fn query_at(addr: SocketAddr, name: &str, rtype: &str) -> io::Result<Answer> {
    let output = kdig_base(addr)?
        .args(["+noall", "+header", "+answer"])
        .arg(name)
        .arg(rtype)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rcode = stdout
        .lines()
        .find_map(|line| line.split("status: ").nth(1))
        .map(|rest| rest.split(';').next().unwrap_or(rest).trim().to_owned());
    let Some(rcode) = rcode.filter(|_| output.status.success()) else {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("kdig {name} {rtype} @{addr}: {}", output_text(&output)),
        ));
    };
    let authoritative = stdout
        .lines()
        .find(|line| line.starts_with(";; Flags:"))
        .is_some_and(|line| {
            line.trim_start_matches(";; Flags:")
                .split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .any(|flag| flag == "aa")
        });
    let qname = absolute_lower(name);
    let any = rtype.eq_ignore_ascii_case("ANY");
    let mut rdata: Vec<String> = stdout
        .lines()
        .filter_map(parse_line)
        .filter(|line| absolute_lower(line.owner) == qname)
        .filter(|line| any || line.rtype.eq_ignore_ascii_case(rtype))
        .map(|line| line.rdata.to_owned())
        .collect();
    rdata.sort();
    Ok(Answer {
        rcode,
        authoritative,
        rdata,
    })
}

/// The whole zone by AXFR at `addr`, signed with `key`: one line per record,
/// `owner TTL class type rdata` single-spaced (the RDATA as kdig prints it), in the order
/// of the transfer, without the closing SOA and without the TSIG record. `Err` (with
/// kdig's message, e.g. `server replied with error 'REFUSED'`) when the transfer fails.
pub fn axfr_at(addr: SocketAddr, zone: &str, key: &TsigKey) -> io::Result<Vec<String>> {
    let output = kdig_base(addr)?
        .arg("-y")
        .arg(key.kdig_spec())
        .args(["+noall", "+answer"])
        .arg("AXFR")
        .arg(zone)
        .output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "kdig AXFR {zone} @{addr}: {}",
            output_text(&output)
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut records: Vec<String> = stdout
        .lines()
        .filter_map(parse_line)
        .filter(|line| !line.rtype.eq_ignore_ascii_case("TSIG"))
        .map(|line| {
            format!(
                "{} {} {} {} {}",
                line.owner, line.ttl, line.class, line.rtype, line.rdata
            )
        })
        .collect();
    if records.is_empty() {
        return Err(io::Error::other(format!(
            "kdig AXFR {zone} @{addr}: no records: {}",
            output_text(&output)
        )));
    }
    let closing_soa = records.len() > 1
        && records.first() == records.last()
        && records
            .last()
            .is_some_and(|r| r.split(' ').nth(3) == Some("SOA"));
    if closing_soa {
        records.pop();
    }
    Ok(records)
}

/// Sends an RFC 2136 update for `zone` to `addr` with `knsupdate` over TCP, signed with
/// `key`. `commands` are knsupdate lines (`update add www.example.test. 300 A 192.0.2.1`,
/// `update delete …`, `prereq …`); a final `send` is added unless the last line is one.
/// Returns knsupdate's output; `Err` with that output when the update is not applied
/// (e.g. `update failed with error 'REFUSED'` / `'NOTAUTH'`).
pub fn nsupdate_at(
    addr: SocketAddr,
    zone: &str,
    key: &TsigKey,
    commands: &[&str],
) -> io::Result<String> {
    let zone_abs = if zone.ends_with('.') {
        zone.to_owned()
    } else {
        format!("{zone}.")
    };
    let mut script = format!(
        "server {} {}\nzone {zone_abs}\norigin {zone_abs}\n",
        addr.ip(),
        addr.port()
    );
    for command in commands {
        script.push_str(command.trim());
        script.push('\n');
    }
    if commands.last().is_none_or(|last| last.trim() != "send") {
        script.push_str("send\n");
    }
    let mut child = Command::new(tool_or_err("knsupdate")?)
        .arg("-v") // TCP
        .args(["-t", "5", "-r", "0"])
        .arg("-y")
        .arg(key.kdig_spec())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("knsupdate stdin is piped")
        .write_all(script.as_bytes())?;
    let output = child.wait_with_output()?;
    let text = output_text(&output);
    if output.status.success() {
        Ok(text)
    } else {
        Err(io::Error::other(format!(
            "knsupdate to {addr} for zone {zone_abs} failed: {text}\n--- commands ---\n{}",
            commands.join("\n")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kdig_lines() {
        let line = parse_line("example.test.       \t300\tIN\tCAA\t0 issue \"letsencrypt.org\" ")
            .expect("a record line");
        assert_eq!(line.owner, "example.test.");
        assert_eq!(line.ttl, "300");
        assert_eq!(line.class, "IN");
        assert_eq!(line.rtype, "CAA");
        assert_eq!(line.rdata, "0 issue \"letsencrypt.org\"");
        assert!(parse_line(";; ->>HEADER<<- opcode: QUERY; status: NOERROR").is_none());
        let spaced = parse_line("www.example.test. 300 IN A 192.0.2.1").expect("spaces");
        assert_eq!((spaced.rtype, spaced.rdata), ("A", "192.0.2.1"));
    }
}
