//! `mailzone init`: a commented starter config from a few answers — asked on a terminal,
//! or taken from flags — prefilled from an existing Postfix or Stalwart configuration.
//!
//! The text is validated by the loader every other command uses before it takes the
//! config's name, and it takes it atomically (a temporary file in the same directory,
//! renamed): an existing file is never replaced without `--force`, and a failed run leaves
//! nothing behind.

mod dns_server;
mod postfix;
mod prompt;
mod render;
mod stalwart;

use std::io::{BufRead, IsTerminal as _, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::plural;
use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use mailzone_records::{DkimAlgorithm, Name, dmarc};

use dns_server::DnsServerSpec;
use prompt::Prompt;

/// Where `--from-postfix` reads without a path.
const POSTFIX_MAIN_CF: &str = "/etc/postfix/main.cf";
const DEFAULT_REPORT_ADDRESS: &str = "mailto:postmaster";
const DEFAULT_KEY_NAME: &str = "mailzone";
const DEFAULT_KEY_FILE: &str = "tsig.key";

#[derive(Args)]
pub struct InitArgs {
    /// Where to write the config; an existing file is kept unless --force.
    #[arg(long, short, env = "MAILZONE_CONFIG", default_value = "mailzone.toml")]
    config: PathBuf,
    /// The mail host: the exchanger the MX records name (e.g. mx1.example.org).
    #[arg(long, value_parser = parse_host)]
    hostname: Option<String>,
    /// A public IPv4 address of the mail host (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    ipv4: Vec<Ipv4Addr>,
    /// A public IPv6 address of the mail host (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    ipv6: Vec<Ipv6Addr>,
    /// A mail domain (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_domain)]
    domain: Vec<String>,
    /// Let mailzone publish through this DNS server (without it: DNS managed by hand).
    /// Comma-separated keys as in the config's [dnsServer.<name>]: kind=rfc2136 and
    /// host=HOST, then optionally port=PORT, keyName=NAME, keyFile=PATH or keyEnv=VAR,
    /// algorithm=hmac-sha256, protocol=tcp, name=primary. The TSIG secret stays in
    /// keyFile (or keyEnv), never in the config.
    #[arg(long, value_name = "kind=rfc2136,host=...")]
    dns_server: Option<String>,
    /// DKIM key algorithms, comma-separated (default: ed25519-sha256,rsa-sha256).
    #[arg(long, value_delimiter = ',', value_parser = parse_algorithm)]
    dkim_algorithms: Vec<DkimAlgorithm>,
    /// Where DMARC, TLS-RPT and CAA iodef reports go (default: mailto:postmaster).
    #[arg(long, value_parser = parse_report_address)]
    report_address: Option<String>,
    /// Prefill from Postfix's main.cf (myhostname, mydestination, virtual_mailbox_domains,
    /// virtual_alias_domains, mydomain).
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = POSTFIX_MAIN_CF)]
    from_postfix: Option<PathBuf>,
    /// Prefill from Stalwart's config.toml (server.hostname, domains, DKIM signatures).
    #[arg(long, value_name = "PATH")]
    from_stalwart: Option<PathBuf>,
    /// Ask nothing: every answer comes from the flags and importers; a missing one is an
    /// error naming its flag. Also the behaviour when stdin is not a terminal.
    #[arg(long, short = 'y', visible_alias = "yes")]
    non_interactive: bool,
    /// Replace an existing config file.
    #[arg(long)]
    force: bool,
}

/// What an importer read from a mail server's configuration.
#[derive(Debug, Default)]
pub struct Imported {
    pub hostname: Option<String>,
    pub domains: Vec<String>,
    pub dkim_algorithms: Vec<DkimAlgorithm>,
    pub dkim_keys: Vec<ImportedDkimKey>,
    /// What was found but could not be used, for the person to act on.
    pub notes: Vec<String>,
}

impl Imported {
    fn add_domain(&mut self, domain: &str) {
        if !self.domains.iter().any(|d| d == domain) {
            self.domains.push(domain.to_string());
        }
    }

    fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// `other`'s answers after this one's.
    fn merge(&mut self, other: Imported) {
        if self.hostname.is_none() {
            self.hostname = other.hostname;
        }
        for domain in other.domains {
            self.add_domain(&domain);
        }
        for algorithm in other.dkim_algorithms {
            if !self.dkim_algorithms.contains(&algorithm) {
                self.dkim_algorithms.push(algorithm);
            }
        }
        self.dkim_keys.extend(other.dkim_keys);
        self.notes.extend(other.notes);
    }
}

/// A DKIM key a mail server signs with already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedDkimKey {
    pub domain: String,
    pub selector: String,
    pub private_key_file: Option<String>,
}

/// Everything the starter config says.
#[derive(Debug)]
pub struct Answers {
    pub hostname: String,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    pub domains: Vec<String>,
    /// `None`: DNS managed by hand.
    pub dns_server: Option<DnsServerSpec>,
    pub dkim_algorithms: Vec<DkimAlgorithm>,
    pub report_address: String,
    /// Keys the imported mail server signs with (shown as a commented alternative).
    pub dkim_keys: Vec<ImportedDkimKey>,
    /// Where answers were prefilled from ("Postfix /etc/postfix/main.cf").
    pub sources: Vec<String>,
}

/// What the machine itself offers as defaults, read without any network traffic.
#[derive(Debug, Default)]
pub struct Machine {
    pub hostname: Option<String>,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
}

impl Machine {
    /// The host name the kernel holds and the addresses of the network interfaces
    /// (getifaddrs), loopback and link-local ones left out.
    fn read() -> Machine {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| parse_host(h).is_ok());
        let mut machine = Machine {
            hostname,
            ..Machine::default()
        };
        for interface in if_addrs::get_if_addrs().unwrap_or_default() {
            match interface.ip() {
                IpAddr::V4(ip) if offered_v4(ip) && !machine.ipv4.contains(&ip) => {
                    machine.ipv4.push(ip)
                }
                IpAddr::V6(ip) if offered_v6(ip) && !machine.ipv6.contains(&ip) => {
                    machine.ipv6.push(ip)
                }
                _ => {}
            }
        }
        machine
    }
}

/// An interface address worth offering as a public address of the mail host.
fn offered_v4(ip: Ipv4Addr) -> bool {
    !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified()
}

fn offered_v6(ip: Ipv6Addr) -> bool {
    !ip.is_loopback() && !ip.is_unicast_link_local() && !ip.is_unspecified()
}

pub async fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    refuse_existing(&args.config, args.force)?;
    let dns_server = args
        .dns_server
        .as_deref()
        .map(dns_server::parse)
        .transpose()
        .map_err(|e| anyhow!("--dns-server: {e}"))?;
    let (imported, sources) = import(&args)?;
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    let machine = Machine::read();
    let answers = if args.non_interactive || !std::io::stdin().is_terminal() {
        let why = if args.non_interactive {
            "--non-interactive"
        } else {
            "stdin is not a terminal"
        };
        from_flags(&args, dns_server, imported, &machine, why)?
    } else {
        ask(&args, dns_server, imported, &machine, &mut Prompt::stdio())?
    };
    let answers = Answers { sources, ..answers };
    let text = render::render(&answers);
    write_validated(&args.config, &text, args.force)?;
    print_next_steps(&args.config, &answers);
    Ok(ExitCode::SUCCESS)
}

fn refuse_existing(path: &Path, force: bool) -> anyhow::Result<()> {
    if !force && path.symlink_metadata().is_ok() {
        bail!(exists_message(path));
    }
    Ok(())
}

fn exists_message(path: &Path) -> String {
    format!(
        "{} exists already and is left as it is (--force replaces it)",
        path.display()
    )
}

/// The importers named by the flags, merged in flag order, and what they read.
fn import(args: &InitArgs) -> anyhow::Result<(Imported, Vec<String>)> {
    let mut imported = Imported::default();
    let mut sources = Vec::new();
    if let Some(path) = &args.from_postfix {
        let text = read_source(path, "--from-postfix")?;
        imported.merge(postfix::import(&text));
        sources.push(format!("Postfix {}", path.display()));
    }
    if let Some(path) = &args.from_stalwart {
        let text = read_source(path, "--from-stalwart")?;
        let stalwart = stalwart::import(&text)
            .map_err(|e| anyhow!("--from-stalwart {}: {e}", path.display()))?;
        imported.merge(stalwart);
        sources.push(format!("Stalwart {}", path.display()));
    }
    if let Some(host) = imported.hostname.take() {
        match parse_host(&host) {
            Ok(host) => imported.hostname = Some(host),
            Err(e) => imported.note(format!("the mail host name read is left out: {e}")),
        }
    }
    Ok((imported, sources))
}

fn read_source(path: &Path, flag: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        // "No such file or directory", without the "(os error 2)" that means nothing here.
        let reason = e.to_string();
        let reason = reason.split(" (os error").next().unwrap_or_default();
        anyhow!("{flag}: cannot read {}: {reason}", path.display())
    })
}

/// The answers without asking: flags first, then what the importers read, then defaults;
/// what is still missing is an error naming its flag.
fn from_flags(
    args: &InitArgs,
    dns_server: Option<DnsServerSpec>,
    imported: Imported,
    machine: &Machine,
    why: &str,
) -> anyhow::Result<Answers> {
    let hostname = args.hostname.clone().or(imported.hostname.clone());
    let domains = if args.domain.is_empty() {
        imported.domains.clone()
    } else {
        dedup(args.domain.clone())
    };
    let mut missing = Vec::new();
    if hostname.is_none() {
        missing.push("--hostname (the mail host, e.g. mx1.example.org)".to_string());
    }
    if args.ipv4.is_empty() && args.ipv6.is_empty() {
        let own: Vec<String> = machine
            .ipv4
            .iter()
            .map(|ip| ip.to_string())
            .chain(machine.ipv6.iter().map(|ip| ip.to_string()))
            .collect();
        let hint = if own.is_empty() {
            String::new()
        } else {
            format!("; this machine has {}", own.join(", "))
        };
        missing.push(format!(
            "--ipv4 or --ipv6 (the mail host's public addresses{hint})"
        ));
    }
    if domains.is_empty() {
        missing.push("--domain (a mail domain; repeat it for more)".to_string());
    }
    if !missing.is_empty() {
        bail!(
            "missing {}: mailzone init asks no questions when {why}",
            missing.join(", ")
        );
    }
    Ok(Answers {
        hostname: hostname.unwrap_or_default(),
        ipv4: args.ipv4.clone(),
        ipv6: args.ipv6.clone(),
        domains,
        dns_server,
        dkim_algorithms: dkim_algorithms(args, &imported),
        report_address: args
            .report_address
            .clone()
            .unwrap_or_else(|| DEFAULT_REPORT_ADDRESS.into()),
        dkim_keys: imported.dkim_keys,
        sources: Vec::new(),
    })
}

fn dkim_algorithms(args: &InitArgs, imported: &Imported) -> Vec<DkimAlgorithm> {
    if !args.dkim_algorithms.is_empty() {
        return dedup(args.dkim_algorithms.clone());
    }
    if !imported.dkim_algorithms.is_empty() {
        return imported.dkim_algorithms.clone();
    }
    vec![DkimAlgorithm::Ed25519Sha256, DkimAlgorithm::RsaSha256]
}

/// A comma-separated answer of at least one item (`missing` says which), duplicates
/// dropped.
fn parse_some<T: PartialEq>(
    answer: &str,
    parse: impl Fn(&str) -> Result<T, String>,
    missing: &str,
) -> Result<Vec<T>, String> {
    let items = parse_list(answer, parse)?;
    if items.is_empty() {
        return Err(missing.into());
    }
    Ok(dedup(items))
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The answers from questions, each one skipped when its flag gave it; defaults from the
/// importers and the machine.
fn ask<R: BufRead, W: Write>(
    args: &InitArgs,
    dns_server: Option<DnsServerSpec>,
    imported: Imported,
    machine: &Machine,
    prompt: &mut Prompt<R, W>,
) -> anyhow::Result<Answers> {
    prompt.say(&format!(
        "mailzone init: a few questions for {}. Enter takes the answer in [brackets].",
        args.config.display()
    ))?;
    let hostname = match &args.hostname {
        Some(h) => h.clone(),
        None => prompt.ask(
            "Mail host name (the MX target, e.g. mx1.example.org)",
            imported.hostname.as_deref().or(machine.hostname.as_deref()),
            parse_host,
        )?,
    };
    let (ipv4, ipv6) = if args.ipv4.is_empty() && args.ipv6.is_empty() {
        (
            ask_addresses(prompt, "IPv4", &machine.ipv4)?,
            ask_addresses(prompt, "IPv6", &machine.ipv6)?,
        )
    } else {
        (args.ipv4.clone(), args.ipv6.clone())
    };
    let domains = if args.domain.is_empty() {
        let default = if imported.domains.is_empty() {
            parent_domain(&hostname).unwrap_or_default()
        } else {
            imported.domains.join(", ")
        };
        prompt.ask(
            "Mail domains, comma-separated",
            Some(&default).filter(|d| !d.is_empty()).map(String::as_str),
            |answer| parse_some(answer, parse_domain, "at least one mail domain is needed"),
        )?
    } else {
        dedup(args.domain.clone())
    };
    let dns_server = match dns_server {
        Some(server) => Some(server),
        None => ask_dns_server(prompt)?,
    };
    let dkim_algorithms = if args.dkim_algorithms.is_empty() {
        let default: Vec<&str> = dkim_algorithms(args, &imported)
            .iter()
            .map(|a| a.as_str())
            .collect();
        prompt.ask(
            "DKIM key algorithms, comma-separated (ed25519-sha256, rsa-sha256)",
            Some(&default.join(", ")),
            |answer| parse_some(answer, parse_algorithm, "at least one algorithm is needed"),
        )?
    } else {
        dedup(args.dkim_algorithms.clone())
    };
    let report_address = match &args.report_address {
        Some(address) => address.clone(),
        None => prompt.ask(
            "Where DMARC and TLS-RPT reports go (a mailto: without @ gets @<domain>)",
            Some(DEFAULT_REPORT_ADDRESS),
            parse_report_address,
        )?,
    };
    Ok(Answers {
        hostname,
        ipv4,
        ipv6,
        domains,
        dns_server,
        dkim_algorithms,
        report_address,
        dkim_keys: imported.dkim_keys,
        sources: Vec::new(),
    })
}

/// Manual DNS, or an RFC 2136 server and where its TSIG secret lives.
fn ask_dns_server<R: BufRead, W: Write>(
    prompt: &mut Prompt<R, W>,
) -> anyhow::Result<Option<DnsServerSpec>> {
    let kind = prompt.ask(
        "DNS management: \"manual\" (you publish what `mailzone records` prints) or \"rfc2136\" (mailzone sends signed dynamic updates to your DNS server)",
        Some("manual"),
        |answer| match answer {
            "manual" | "rfc2136" => Ok(answer.to_string()),
            other => Err(format!("{other:?}: answer manual or rfc2136")),
        },
    )?;
    if kind == "manual" {
        return Ok(None);
    }
    let host = prompt.ask("Primary DNS server (IP address or host name)", None, |h| {
        dns_server::host(h).map(|_| h.to_string())
    })?;
    let mut server = DnsServerSpec::rfc2136(&host);
    server.port = Some(prompt.ask("Its port", Some("53"), dns_server::port)?);
    let key_name = prompt.ask(
        "TSIG key name, as the DNS server knows it (\"none\" for no key)",
        Some(DEFAULT_KEY_NAME),
        |k| {
            if k == "none" {
                return Ok(None);
            }
            dns_server::key_name(k).map(|_| Some(k.to_string()))
        },
    )?;
    if let Some(key_name) = key_name {
        server.key_name = Some(key_name);
        server.key_file = Some(prompt.ask(
            "File holding the TSIG secret (relative to the config; the secret never goes into the config)",
            Some(DEFAULT_KEY_FILE),
            |f| Ok(f.to_string()),
        )?);
        server.algorithm = Some(prompt.ask(
            "TSIG algorithm",
            Some(dns_server::TSIG_ALGORITHMS[0]),
            |a| dns_server::tsig_algorithm(a).map(|_| a.to_string()),
        )?);
    }
    dns_server::validate(&server).map_err(|e| anyhow!(e))?;
    Ok(Some(server))
}

/// Asks for the mail host's public addresses of one `family` (`IPv4`, `IPv6`), those of
/// the machine's interfaces as the default.
fn ask_addresses<A, R: BufRead, W: Write>(
    prompt: &mut Prompt<R, W>,
    family: &str,
    detected: &[A],
) -> anyhow::Result<Vec<A>>
where
    A: std::str::FromStr + ToString,
{
    prompt.ask(
        &format!("Public {family} addresses of the mail host, comma-separated (\"none\" for none)"),
        Some(&address_default(detected)),
        |answer| {
            parse_list(answer, |s| {
                s.parse::<A>()
                    .map_err(|_| format!("{s:?} is not an {family} address"))
            })
        },
    )
}

fn address_default<T: ToString>(addresses: &[T]) -> String {
    if addresses.is_empty() {
        "none".into()
    } else {
        let list: Vec<String> = addresses.iter().map(T::to_string).collect();
        list.join(", ")
    }
}

/// A comma- and/or space-separated answer; `none` is the empty list.
fn parse_list<T>(
    answer: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    if answer.trim() == "none" {
        return Ok(Vec::new());
    }
    answer
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(parse)
        .collect()
}

/// `mx1.example.org` → `example.org`: the likely mail domain of a mail host.
fn parent_domain(hostname: &str) -> Option<String> {
    let (_, parent) = hostname.split_once('.')?;
    parse_domain(parent).ok()
}

/// A fully qualified host name, in the form the config stores (lowercase A-labels).
pub fn parse_host(text: &str) -> Result<String, String> {
    let name = Name::host(text.trim()).map_err(|e| format!("{text:?} is not a host name: {e}"))?;
    if !name.as_str().contains('.') {
        return Err(format!(
            "{text:?} is not fully qualified: write the whole name, e.g. mx1.example.org"
        ));
    }
    Ok(name.as_str().to_string())
}

/// A mail domain: a fully qualified name, like a host name.
pub fn parse_domain(text: &str) -> Result<String, String> {
    let name =
        Name::host(text.trim()).map_err(|e| format!("{text:?} is not a domain name: {e}"))?;
    if !name.as_str().contains('.') {
        return Err(format!(
            "{text:?} is not a mail domain: write the whole name, e.g. example.org"
        ));
    }
    Ok(name.as_str().to_string())
}

fn parse_algorithm(text: &str) -> Result<DkimAlgorithm, String> {
    DkimAlgorithm::parse(text.trim())
        .ok_or_else(|| format!("{text:?}: use ed25519-sha256 or rsa-sha256"))
}

/// A report address as the config takes it (`mailto:postmaster`, `mailto:dmarc@example.org`).
fn parse_report_address(text: &str) -> Result<String, String> {
    let text = text.trim();
    dmarc::validate_report_uri(&dmarc::complete_report_uri(text, "example.invalid"))
        .map(|_| text.to_string())
        .map_err(|e| format!("{text:?}: {e}"))
}

/// Writes `text` to `path` atomically once the config loader accepts it: a temporary file
/// beside `path` (relative file names in it resolve as they will), loaded, then renamed
/// over `path` — without replacing an existing file unless `force`.
fn write_validated(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".mailzone-init-")
        .suffix(".toml")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    file.write_all(text.as_bytes())?;
    // No secret is in it (keyFile/keyEnv name where the TSIG secret lives).
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.as_file().sync_all()?;
    if let Err(e) = mailzone_engine::load_config(file.path()) {
        let reason = e.to_string().replace(
            &file.path().display().to_string(),
            &path.display().to_string(),
        );
        bail!("the config does not load, nothing was written: {reason}");
    }
    let persisted = if force {
        file.persist(path)
    } else {
        file.persist_noclobber(path)
    };
    persisted.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow!(exists_message(path))
        } else {
            anyhow!("cannot write {}: {}", path.display(), e.error)
        }
    })?;
    // The rename is durable once the directory is.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    Ok(())
}

fn print_next_steps(path: &Path, answers: &Answers) {
    let config = shell_word(&path.display().to_string());
    let publish = match &answers.dns_server {
        Some(server) => format!("publish them through [dnsServer.{}]", server.name),
        None => "publish (DNS is managed by hand: nothing to publish until a [dnsServer] is added)"
            .to_string(),
    };
    println!(
        "wrote {}: mail host {}, {} ({})",
        path.display(),
        answers.hostname,
        plural(answers.domains.len(), "domain"),
        answers.domains.join(", ")
    );
    println!("next:");
    println!("  mailzone records --config {config}    # the records each domain needs");
    println!("  mailzone check --config {config}      # compare them with what DNS serves");
    println!("  mailzone apply --config {config}      # {publish}");
    if let Some(note) = answers
        .dns_server
        .as_ref()
        .and_then(|server| missing_key_file_note(path, server))
    {
        eprintln!("note: {note}");
    }
}

/// How to make the TSIG key file when it does not exist yet.
fn missing_key_file_note(config: &Path, server: &DnsServerSpec) -> Option<String> {
    let file = server.key_file.as_deref()?;
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let resolved = dir.join(file);
    if resolved.exists() {
        return None;
    }
    let key_name = server.key_name.as_deref().unwrap_or(DEFAULT_KEY_NAME);
    let algorithm = server.algorithm.as_deref().unwrap_or("hmac-sha256");
    Some(format!(
        "the TSIG key file {} does not exist yet: make a key with `(umask 077; tsig-keygen -a {algorithm} {key_name} > {})` and give the same key to the DNS server",
        resolved.display(),
        shell_word(&resolved.display().to_string())
    ))
}

/// A path as one shell word: quoted when it holds anything beyond the plain characters.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests;
