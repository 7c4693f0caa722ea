//! The starter config as TOML text, every key with a comment saying what it does (the
//! keys and defaults of docs/configuration.md). Pure.

use std::fmt::Write as _;

use super::Answers;
use super::dns_server::DnsServerSpec;

/// The config file `mailzone init` writes for `answers`.
pub fn render(answers: &Answers) -> String {
    let mut out = String::new();
    header(&mut out, answers);
    server(&mut out, answers);
    if let Some(dns) = &answers.dns_server {
        dns_server(&mut out, dns);
    }
    for domain in &answers.domains {
        self::domain(&mut out, answers, domain);
    }
    out
}

fn header(out: &mut String, answers: &Answers) {
    out.push_str(
        "# mailzone configuration: the facts every DNS record of the mail domains below is\n\
         # derived from. Written by `mailzone init`; edit it freely. Every key is described in\n\
         # docs/configuration.md; unknown keys are errors, so a typo never goes unnoticed.\n",
    );
    for source in &answers.sources {
        let _ = writeln!(out, "# Prefilled from {source}.");
    }
    out.push('\n');
}

fn server(out: &mut String, answers: &Answers) {
    let ipv4: Vec<String> = answers.ipv4.iter().map(|ip| ip.to_string()).collect();
    let ipv6: Vec<String> = answers.ipv6.iter().map(|ip| ip.to_string()).collect();
    let _ = write!(
        out,
        r#"[server]
# The mail host: the exchanger each domain's MX record names, and the host of the
# MTA-STS policy and of the mail client services.
hostname = {hostname}
# The mail host's public addresses: its A and AAAA records, written in the zone that
# holds the host name (no zone gets address records of a host outside it).
ipv4 = {ipv4}
ipv6 = {ipv6}
# Where DMARC aggregate reports, TLS-RPT reports and CAA iodef reports go. A mailto:
# without @ gets @<domain> for each domain ("mailto:postmaster" -> postmaster@<domain>).
reportAddress = {report}
# TTL of every record, in seconds.
ttl = 3600

# The services mail clients use, announced by SRV records (RFC 6186, 8314, 6764, 8620).
# A family listed is offered; the others are published as "not offered", so clients
# never probe for them. Uncomment the ones the mail server runs:
#[server.services]
#imap = {{}}                          # IMAP, implicit TLS on 993 (cleartext = true adds 143)
#submission = {{ cleartext = true }}  # submission on 465 (TLS) and 587 (STARTTLS)
#jmap = {{}}                          # JMAP over HTTPS on 443

# The mail host's certificate (PEM chain, leaf first) gives the TLSA (DANE) records of
# port 25 and of the services:
#[server.tls]
#certificate = "/etc/ssl/mail.pem"

"#,
        hostname = string(&answers.hostname),
        ipv4 = array(&ipv4),
        ipv6 = array(&ipv6),
        report = string(&answers.report_address),
    );
}

fn dns_server(out: &mut String, dns: &DnsServerSpec) {
    let _ = writeln!(
        out,
        "# How mailzone publishes: dynamic updates (RFC 2136) sent to the zones' primary DNS\n\
         # server, signed with a TSIG key (RFC 8945). `mailzone plan` shows the changes,\n\
         # `mailzone apply` makes them.\n\
         [dnsServer.{}]\n\
         kind = {}\n\
         # The primary server: IP address or host name, and port.\n\
         host = {}\n\
         port = {}",
        dns.name,
        string(&dns.kind),
        string(&dns.host),
        dns.port.unwrap_or(53),
    );
    if let Some(protocol) = &dns.protocol {
        let _ = writeln!(
            out,
            "# tcp, or udp (TCP again when an answer is truncated).\nprotocol = {}",
            string(protocol)
        );
    }
    if let Some(key_name) = &dns.key_name {
        let _ = writeln!(
            out,
            "# The TSIG key: its name as the DNS server knows it, and its algorithm.\n\
             keyName = {}\n\
             algorithm = {}",
            string(key_name),
            string(dns.algorithm.as_deref().unwrap_or("hmac-sha256")),
        );
    }
    if let Some(file) = &dns.key_file {
        let _ = writeln!(
            out,
            "# The file holding the TSIG secret (base64, or the key file tsig-keygen writes),\n\
             # relative to this file. The secret itself never goes into this config: keep the\n\
             # file 0600, readable by mailzone only.\n\
             keyFile = {}",
            string(file)
        );
    }
    if let Some(env) = &dns.key_env {
        let _ = writeln!(
            out,
            "# The environment variable holding the TSIG secret (base64); the secret itself\n\
             # never goes into this config.\n\
             keyEnv = {}",
            string(env)
        );
    }
    out.push('\n');
}

fn domain(out: &mut String, answers: &Answers, domain: &str) {
    let _ = writeln!(
        out,
        "# A mail domain: its MX, SPF, DKIM, DMARC, TLS-RPT, MTA-STS, SRV, autoconfig and\n\
         # address records are planned from [server] and the keys below.\n\
         [domain.{}]",
        string(domain)
    );
    match &answers.dns_server {
        Some(dns) => {
            let _ = writeln!(
                out,
                "# Published by mailzone through [dnsServer.{name}]; add publishRecords = [...] to\n\
                 # limit the record types it may write, origin = \"<zone>\" when the domain lies\n\
                 # inside a larger zone.\n\
                 dnsManagement = {{ automatic = {{ dnsServer = {quoted} }} }}",
                name = dns.name,
                quoted = string(&dns.name),
            );
        }
        None => out.push_str(
            "# DNS managed by hand: publish what `mailzone records` prints at your DNS provider\n\
             # (add a [dnsServer.<name>] table and dnsManagement = { automatic = { dnsServer =\n\
             # \"<name>\" } } to let mailzone publish).\n\
             dnsManagement = { manual = {} }\n",
        ),
    }
    let algorithms: Vec<String> = answers
        .dkim_algorithms
        .iter()
        .map(|a| a.as_str().to_string())
        .collect();
    let _ = writeln!(
        out,
        "# SPF (RFC 7208): only the domain's MX hosts send its mail, everyone else fails (\"-\").\n\
         spf = {{ qualifier = \"-\", mechanisms = [] }}\n\
         # DMARC (RFC 7489): mail failing both SPF and DKIM alignment is rejected; aggregate\n\
         # reports go to reportAddress. \"quarantine\" or \"none\" are gentler starts.\n\
         dmarc = {{ policy = \"reject\" }}\n\
         # MTA-STS (RFC 8461): senders must use TLS to the MX hosts; \"testing\" only reports.\n\
         mtaSts = {{ mode = \"enforce\" }}\n\
         # DKIM (RFC 6376, 8463): mailzone makes one key per algorithm on first use and keeps\n\
         # it in its state directory; `mailzone dkim export` gives the keys to the MTA.\n\
         dkimManagement = {{ automatic = {{ algorithms = {} }} }}",
        array(&algorithms)
    );
    let keys: Vec<_> = answers
        .dkim_keys
        .iter()
        .filter(|k| k.domain == domain)
        .collect();
    if !keys.is_empty() {
        out.push_str(
            "# The mail server signs this domain with these keys already; to publish them\n\
             # instead of new ones, use this line in place of the one above:\n\
             #dkimManagement = { manual = { keys = [\n",
        );
        for key in keys {
            let file = key
                .private_key_file
                .as_deref()
                .unwrap_or("<the key's PEM file>");
            let _ = writeln!(
                out,
                "#  {{ selector = {}, privateKeyFile = {} }},",
                string(&key.selector),
                string(file)
            );
        }
        out.push_str("#] } }\n");
    }
    out.push('\n');
}

/// A TOML basic string, escaped.
fn string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| string(i)).collect();
    format!("[{}]", quoted.join(", "))
}
