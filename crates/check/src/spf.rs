//! SPF checks (RFC 7208): the record a domain publishes, evaluated the way a receiver
//! evaluates it, for every IP address of the server.
//!
//! The rules, each with the section it comes from:
//! - RFC 7208 §4.5: exactly one `v=spf1` TXT record at a name; none → `none`, several →
//!   `permerror` (`spf-missing`, `spf-multiple`).
//! - RFC 7208 §4.6, §12 (ABNF): the record's syntax — mechanisms and their qualifiers,
//!   modifiers (`redirect=` and `exp=` at most once, §6), CIDR lengths (`ip4` 0–32, `ip6`
//!   0–128, no leading zeros), domain-specs ending in a top label or a macro, macros (§7.1)
//!   parsed and checked; an unknown mechanism is a `permerror` (`spf-syntax`).
//! - RFC 7208 §4 `check_host()`: a full evaluation for each server IP with the sender
//!   `postmaster@<domain>` (§4.3: the local part `postmaster` when none is known) must give
//!   `pass` (`spf-not-pass`). Mechanisms: `include` (§5.2: a `none` from the included
//!   domain is a `permerror`), `redirect` (§6.1: ignored when the record has `all`; a target
//!   without a record is a `permerror`), `a` (§5.3), `mx` (§5.4), `ptr` (§5.5), `ip4`/`ip6`
//!   with CIDR (§5.6), `exists` (§5.7, always an `A` query), `all` (§5.1). Addresses are
//!   fetched as `A` for an IPv4 client and `AAAA` for an IPv6 one (§5); an IPv4-mapped IPv6
//!   address is evaluated as IPv4. NXDOMAIN counts as an empty answer (§5); any
//!   other DNS failure is a `temperror` (§4.4, §5).
//! - RFC 7208 §4.6.4: at most 10 DNS-querying terms (`include`, `a`, `mx`, `ptr`, `exists`,
//!   `redirect`) per evaluation (`spf-too-many-lookups`); at most 2 void lookups, i.e. term
//!   queries answered NXDOMAIN or with no records (`spf-too-many-void-lookups`); an `mx`
//!   term whose name has more than 10 exchangers is a `permerror` (`spf-mx-too-many`); of
//!   the names a `ptr` term finds, only the first 10 are looked at.
//! - RFC 7208 §5.5: `ptr` SHOULD NOT be used (`spf-ptr`, a warning).
//! - RFC 7208 §5.1, §4.7: `+all` passes every host on the Internet (`spf-pass-all`,
//!   warning); `?all` and a record ending without `all` or `redirect=` give `neutral` to
//!   everyone else, which is no protection (`spf-neutral-all`, `spf-no-all`, information).
//! - RFC 7208 §2.3: receivers check the HELO name too, and bounces (empty MAIL FROM) are
//!   judged by it alone, so each exchanger host inside the zone needs its own record
//!   (mailzone plans `v=spf1 a -all`) that passes for every server IP (`spf-host-missing`,
//!   `spf-host-not-pass`).
//!
//! Counting lookups: a single evaluation stops at the first matching mechanism, so the
//! number of lookups depends on the client. The limit checks therefore use a *walk*
//! ([`walk`]): an evaluation in which no mechanism matches, which visits every term a real
//! evaluation can reach (not those after `all`, nor a `redirect=` beside `all`) — the most
//! lookups any client can cause. That is also what checkdmarc counts.
//!
//! Choices where RFC 7208 leaves room: the `p` macro expands to `unknown` (§7.3 allows it
//! when the name cannot be validated; it is discouraged and costs PTR queries); `h` (the
//! HELO name) expands to the sender's domain; a macro expansion that is not a valid DNS
//! name is treated as a void lookup; the address lookups of the exchangers found by an `mx`
//! term are not counted as void lookups (only the term's own query is).
//!
//! Why hand-written: `mail-auth` (the SPF implementation in Rust, 0.13.3 used by dkim.rs,
//! and 0.15.1 the latest, which needs rustc 1.98 anyway) evaluates SPF, but its
//! `SpfOutput` exposes only the result, domain, explanation and report address — neither
//! the number of DNS lookups nor the void lookups (it has no void-lookup limit at all) nor
//! a per-term trace — and it resolves through its own hickory resolver (or a cache filled
//! in advance), not through a [`Lookup`], so it could neither ask the zone's authoritative
//! servers nor run against the test double.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;

use mailzone_records::{DnsRecordType, Name, RData};

use crate::codes::Code;
use crate::context::DomainContext;
use crate::finding::{Finding, Severity};
use crate::lookup::{Answer, Lookup, Rcode};

/// RFC 7208 §4.6.4: at most 10 DNS-querying terms per evaluation.
pub const MAX_LOOKUPS: u32 = 10;
/// RFC 7208 §4.6.4: at most 2 void lookups per evaluation.
pub const MAX_VOID_LOOKUPS: u32 = 2;
/// RFC 7208 §4.6.4: an `mx` term may look at most 10 exchangers, a `ptr` term 10 names.
pub const MAX_NAMES_PER_TERM: usize = 10;
/// A walk stops here whatever happens (include loops, absurd records).
const WALK_HARD_CAP: u32 = 100;

pub const MISSING: &Code = &Code {
    id: "spf-missing",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Spf),
    summary: "the domain has no `v=spf1` record: receivers get `none` for every sender",
};

pub const MULTIPLE: &Code = &Code {
    id: "spf-multiple",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Spf),
    summary: "more than one `v=spf1` record at one name: `permerror` (RFC 7208 §4.5)",
};

pub const SYNTAX: &Code = &Code {
    id: "spf-syntax",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Spf),
    summary: "an SPF record does not follow the grammar of RFC 7208 §12: `permerror`",
};

pub const NOT_PASS: &Code = &Code {
    id: "spf-not-pass",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Spf),
    summary: "the domain's SPF policy does not give `pass` for one of the server's IP addresses",
};

pub const TOO_MANY_LOOKUPS: &Code = &Code {
    id: "spf-too-many-lookups",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Spf),
    summary: "evaluating the policy needs more than 10 DNS-querying terms: `permerror`",
};

pub const TOO_MANY_VOID_LOOKUPS: &Code = &Code {
    id: "spf-too-many-void-lookups",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Spf),
    summary: "evaluating the policy meets more than 2 empty or NXDOMAIN answers: `permerror`",
};

pub const INCLUDE_INVALID: &Code = &Code {
    id: "spf-include-invalid",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Spf),
    summary: "an `include:` or `redirect=` target has no SPF record: `permerror`",
};

pub const MX_TOO_MANY: &Code = &Code {
    id: "spf-mx-too-many",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Spf),
    summary: "an `mx` term names a domain with more than 10 exchangers: `permerror`",
};

pub const TEMPERROR: &Code = &Code {
    id: "spf-temperror",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Spf),
    summary: "a DNS question of the SPF evaluation failed: receivers get `temperror`",
};

pub const PTR: &Code = &Code {
    id: "spf-ptr",
    severity: Severity::Warning,
    record_type: Some(DnsRecordType::Spf),
    summary: "the policy uses the `ptr` mechanism, which RFC 7208 §5.5 says not to use",
};

pub const PASS_ALL: &Code = &Code {
    id: "spf-pass-all",
    severity: Severity::Warning,
    record_type: Some(DnsRecordType::Spf),
    summary: "the record ends in `+all`: every host on the Internet passes",
};

pub const NEUTRAL_ALL: &Code = &Code {
    id: "spf-neutral-all",
    severity: Severity::Info,
    record_type: Some(DnsRecordType::Spf),
    summary: "the record ends in `?all`: other hosts get `neutral`, no protection",
};

pub const NO_ALL: &Code = &Code {
    id: "spf-no-all",
    severity: Severity::Info,
    record_type: Some(DnsRecordType::Spf),
    summary: "the record has neither `all` nor `redirect=`: other hosts get `neutral`",
};

pub const HOST_MISSING: &Code = &Code {
    id: "spf-host-missing",
    severity: Severity::Warning,
    record_type: Some(DnsRecordType::Spf),
    summary: "an exchanger host inside the zone has no SPF record for its HELO name",
};

pub const HOST_NOT_PASS: &Code = &Code {
    id: "spf-host-not-pass",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Spf),
    summary: "an exchanger host's own SPF record does not pass the server's IP addresses",
};

pub const CODES: &[&Code] = &[
    MISSING,
    MULTIPLE,
    SYNTAX,
    NOT_PASS,
    TOO_MANY_LOOKUPS,
    TOO_MANY_VOID_LOOKUPS,
    INCLUDE_INVALID,
    MX_TOO_MANY,
    TEMPERROR,
    PTR,
    PASS_ALL,
    NEUTRAL_ALL,
    NO_ALL,
    HOST_MISSING,
    HOST_NOT_PASS,
];

// ---------------------------------------------------------------------------------------
// Records: selection (§4.5) and syntax (§4.6, §12)
// ---------------------------------------------------------------------------------------

/// RFC 7208 §4.5: an SPF record starts with exactly `v=spf1` (case-insensitive, RFC 5234
/// §2.3) followed by a space or the end of the record.
pub fn is_spf_record(text: &[u8]) -> bool {
    text.len() >= 6
        && text[..6].eq_ignore_ascii_case(b"v=spf1")
        && (text.len() == 6 || text[6] == b' ')
}

/// A qualifier (RFC 7208 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    fn result(self) -> SpfResult {
        match self {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }
}

/// One part of a macro-string (RFC 7208 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacroPart {
    Literal(String),
    Expand {
        /// The macro letter, lowercase.
        letter: char,
        /// An uppercase letter asks for URL escaping (§7.3).
        escape: bool,
        /// Keep this many right-hand parts (never 0).
        keep: Option<usize>,
        reverse: bool,
        /// The delimiters to split on (`.` when none is given).
        delimiters: String,
    },
}

/// A domain-spec (RFC 7208 §7.1): a macro-string ending in a top label or a macro.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    pub text: String,
    pub parts: Vec<MacroPart>,
}

impl DomainSpec {
    fn has_macros(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, MacroPart::Expand { .. }))
    }
}

/// A mechanism (RFC 7208 §5) with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(DomainSpec),
    A {
        domain: Option<DomainSpec>,
        cidr4: u8,
        cidr6: u8,
    },
    Mx {
        domain: Option<DomainSpec>,
        cidr4: u8,
        cidr6: u8,
    },
    Ptr(Option<DomainSpec>),
    Ip4 {
        network: Ipv4Addr,
        len: u8,
    },
    Ip6 {
        network: Ipv6Addr,
        len: u8,
    },
    Exists(DomainSpec),
}

impl Mechanism {
    /// Whether evaluating this mechanism is a DNS-querying term (§4.6.4).
    pub fn queries_dns(&self) -> bool {
        !matches!(
            self,
            Mechanism::All | Mechanism::Ip4 { .. } | Mechanism::Ip6 { .. }
        )
    }
}

/// A directive: a qualifier and a mechanism, with the text it was written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
    pub text: String,
}

/// A parsed SPF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfRecord {
    pub directives: Vec<Directive>,
    pub redirect: Option<DomainSpec>,
    pub exp: Option<DomainSpec>,
    /// Modifiers RFC 7208 does not define (§6: ignored), as written.
    pub unknown_modifiers: Vec<String>,
}

impl SpfRecord {
    /// The `all` directive, if any (the first one: evaluation never gets past it).
    pub fn all(&self) -> Option<&Directive> {
        self.directives
            .iter()
            .find(|d| d.mechanism == Mechanism::All)
    }
}

/// Parses an SPF record (RFC 7208 §4.6, ABNF in §12). Returns why it is not valid.
pub fn parse_record(text: &str) -> Result<SpfRecord, String> {
    if !is_spf_record(text.as_bytes()) {
        return Err("the record does not start with `v=spf1`".into());
    }
    if let Some(c) = text.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!(
            "the record contains {c:?}; only printable ASCII and spaces are allowed (RFC 7208 §12)"
        ));
    }
    let mut record = SpfRecord {
        directives: Vec::new(),
        redirect: None,
        exp: None,
        unknown_modifiers: Vec::new(),
    };
    for term in text[6..].split(' ').filter(|t| !t.is_empty()) {
        if let Some((name, value)) = modifier(term) {
            match name.to_ascii_lowercase().as_str() {
                "redirect" => {
                    if record.redirect.is_some() {
                        return Err("`redirect=` appears more than once (RFC 7208 §6)".into());
                    }
                    record.redirect = Some(domain_spec(value, term)?);
                }
                "exp" => {
                    if record.exp.is_some() {
                        return Err("`exp=` appears more than once (RFC 7208 §6)".into());
                    }
                    record.exp = Some(domain_spec(value, term)?);
                }
                _ => {
                    macro_string(value, true).map_err(|e| format!("`{term}`: {e}"))?;
                    record.unknown_modifiers.push(term.to_string());
                }
            }
        } else {
            record.directives.push(directive(term)?);
        }
    }
    Ok(record)
}

/// `name=value` when `term` is a modifier: `name = ALPHA *( ALPHA / DIGIT / "-" / "_" /
/// "." )` followed by `=` (RFC 7208 §12).
fn modifier(term: &str) -> Option<(&str, &str)> {
    let end = term.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))?;
    let name = &term[..end];
    (term[end..].starts_with('=') && name.starts_with(|c: char| c.is_ascii_alphabetic()))
        .then(|| (name, &term[end + 1..]))
}

fn directive(term: &str) -> Result<Directive, String> {
    let (qualifier, rest) = match term.as_bytes()[0] {
        b'+' => (Qualifier::Pass, &term[1..]),
        b'-' => (Qualifier::Fail, &term[1..]),
        b'~' => (Qualifier::SoftFail, &term[1..]),
        b'?' => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let name_end = rest.find([':', '/']).unwrap_or(rest.len());
    let name = rest[..name_end].to_ascii_lowercase();
    let args = &rest[name_end..];
    let bad = |why: &str| Err(format!("`{term}`: {why}"));
    let mechanism = match name.as_str() {
        "all" => {
            if !args.is_empty() {
                return bad("`all` takes no argument");
            }
            Mechanism::All
        }
        "include" | "exists" => {
            let Some(spec) = args.strip_prefix(':') else {
                return bad(&format!("`{name}` needs `:domain`"));
            };
            let spec = domain_spec(spec, term)?;
            if name == "include" {
                Mechanism::Include(spec)
            } else {
                Mechanism::Exists(spec)
            }
        }
        "a" | "mx" => {
            let (head, cidr4, cidr6) = dual_cidr(args).map_err(|e| format!("`{term}`: {e}"))?;
            let domain = match head.strip_prefix(':') {
                Some(spec) => Some(domain_spec(spec, term)?),
                None if head.is_empty() => None,
                None => return bad("expected `:domain` or a CIDR length"),
            };
            if name == "a" {
                Mechanism::A {
                    domain,
                    cidr4,
                    cidr6,
                }
            } else {
                Mechanism::Mx {
                    domain,
                    cidr4,
                    cidr6,
                }
            }
        }
        "ptr" => match args.strip_prefix(':') {
            Some(spec) => Mechanism::Ptr(Some(domain_spec(spec, term)?)),
            None if args.is_empty() => Mechanism::Ptr(None),
            None => return bad("`ptr` takes `:domain` and no CIDR length"),
        },
        "ip4" | "ip6" => {
            let Some(value) = args.strip_prefix(':') else {
                return bad(&format!("`{name}` needs `:address`"));
            };
            let (address, len) = match value.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (value, None),
            };
            if name == "ip4" {
                let network: Ipv4Addr = address
                    .parse()
                    .map_err(|_| format!("`{term}`: `{address}` is not an IPv4 address"))?;
                let len = match len {
                    Some(l) => cidr(l, 32).map_err(|e| format!("`{term}`: {e}"))?,
                    None => 32,
                };
                Mechanism::Ip4 { network, len }
            } else {
                let network: Ipv6Addr = address
                    .parse()
                    .map_err(|_| format!("`{term}`: `{address}` is not an IPv6 address"))?;
                let len = match len {
                    Some(l) => cidr(l, 128).map_err(|e| format!("`{term}`: {e}"))?,
                    None => 128,
                };
                Mechanism::Ip6 { network, len }
            }
        }
        "" => return bad("a qualifier without a mechanism"),
        other => {
            return bad(&format!(
                "`{other}` is not a mechanism (all, include, a, mx, ptr, ip4, ip6, exists): permerror (RFC 7208 §5)"
            ));
        }
    };
    Ok(Directive {
        qualifier,
        mechanism,
        text: term.to_string(),
    })
}

/// Splits `[":" domain-spec] [ip4-cidr-length] ["/" ip6-cidr-length]` into the domain part
/// and the two lengths (RFC 7208 §12 `dual-cidr-length`).
fn dual_cidr(args: &str) -> Result<(&str, u8, u8), String> {
    let mut head = args;
    let mut cidr6 = 128;
    let mut cidr4 = 32;
    if let Some(i) = head.rfind("//") {
        let digits = &head[i + 2..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            cidr6 = cidr(digits, 128)?;
            head = &head[..i];
        }
    }
    if let Some(i) = head.rfind('/') {
        let digits = &head[i + 1..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            cidr4 = cidr(digits, 32)?;
            head = &head[..i];
        }
    }
    if head.contains('/') && !head.starts_with(':') {
        return Err("a CIDR length must be a number (`/24`, `//64`)".into());
    }
    Ok((head, cidr4, cidr6))
}

/// A CIDR length: `"0" / %x31-39 *DIGIT`, at most `max` (RFC 7208 §12).
fn cidr(digits: &str, max: u8) -> Result<u8, String> {
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u8>() {
        Ok(n) if ok && n <= max => Ok(n),
        _ => Err(format!(
            "`/{digits}` is not a CIDR length from 0 to {max} (RFC 7208 §5.6)"
        )),
    }
}

/// A domain-spec: a macro-string whose end is `"." toplabel ["."]` or a macro (§7.1).
fn domain_spec(text: &str, term: &str) -> Result<DomainSpec, String> {
    if text.is_empty() {
        return Err(format!("`{term}`: the domain is empty"));
    }
    let parts = macro_string(text, false).map_err(|e| format!("`{term}`: {e}"))?;
    let ends_in_macro = matches!(parts.last(), Some(MacroPart::Expand { .. }))
        || text.ends_with("%%")
        || text.ends_with("%_")
        || text.ends_with("%-");
    if !ends_in_macro {
        let Some(MacroPart::Literal(tail)) = parts.last() else {
            return Err(format!("`{term}`: the domain is empty"));
        };
        let tail = tail.strip_suffix('.').unwrap_or(tail);
        let top = match tail.rsplit_once('.') {
            Some((_, top)) => top,
            None if parts.len() > 1 => "",
            None => {
                return Err(format!(
                    "`{term}`: `{text}` is not a domain name with at least two labels (RFC 7208 §7.1 domain-end)"
                ));
            }
        };
        if !is_toplabel(top) {
            return Err(format!(
                "`{term}`: `{text}` does not end in a valid top-level label (RFC 7208 §7.1 toplabel); an IP address belongs in `ip4:`/`ip6:`"
            ));
        }
    }
    Ok(DomainSpec {
        text: text.to_string(),
        parts,
    })
}

/// RFC 7208 §7.1 `toplabel`: letters and digits with at least one letter, or a label with a
/// hyphen inside.
fn is_toplabel(label: &str) -> bool {
    let b = label.as_bytes();
    if b.is_empty() || !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
        return false;
    }
    if label.contains('-') {
        b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric()
    } else {
        b.iter().any(u8::is_ascii_alphabetic)
    }
}

/// Parses a macro-string (RFC 7208 §7.1). `explanation` allows the letters `c`, `r`, `t`,
/// which only explanation strings may use.
fn macro_string(text: &str, explanation: bool) -> Result<Vec<MacroPart>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            if !('!'..='~').contains(&c) {
                return Err(format!("{c:?} is not allowed in a macro-string"));
            }
            literal.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => literal.push('%'),
            Some('_') => literal.push(' '),
            Some('-') => literal.push_str("%20"),
            Some('{') => {
                let mut body = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => body.push(c),
                        None => return Err(format!("unterminated macro `%{{{body}`")),
                    }
                }
                if !literal.is_empty() {
                    parts.push(MacroPart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(macro_expand(&body, explanation)?);
            }
            Some(other) => {
                return Err(format!(
                    "`%{other}` is not a macro; write `%%` for a percent sign (RFC 7208 §7.1)"
                ));
            }
            None => return Err("a lone `%` at the end; write `%%`".into()),
        }
    }
    if !literal.is_empty() {
        parts.push(MacroPart::Literal(literal));
    }
    Ok(parts)
}

/// The inside of `%{…}`: `macro-letter transformers *delimiter` (RFC 7208 §7.1).
fn macro_expand(body: &str, explanation: bool) -> Result<MacroPart, String> {
    let mut chars = body.chars();
    let Some(first) = chars.next() else {
        return Err("empty macro `%{}`".into());
    };
    let letter = first.to_ascii_lowercase();
    let allowed = "slodiphv";
    if !(allowed.contains(letter) || (explanation && "crt".contains(letter))) {
        return Err(if "crt".contains(letter) {
            format!("the macro letter `{first}` is only allowed in `exp` text (RFC 7208 §7.2)")
        } else {
            format!("`{first}` is not a macro letter (RFC 7208 §7.2)")
        });
    }
    let rest: String = chars.collect();
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let keep = if digits_end > 0 {
        match rest[..digits_end].parse::<usize>() {
            Ok(0) | Err(_) => {
                return Err(format!(
                    "`%{{{body}}}`: the number of parts to keep must be at least 1 (RFC 7208 §7.3)"
                ));
            }
            Ok(n) => Some(n),
        }
    } else {
        None
    };
    let mut rest = &rest[digits_end..];
    let reverse = rest.starts_with(['r', 'R']);
    if reverse {
        rest = &rest[1..];
    }
    if let Some(c) = rest
        .chars()
        .find(|c| !matches!(c, '.' | '-' | '+' | ',' | '/' | '_' | '='))
    {
        return Err(format!(
            "`%{{{body}}}`: {c:?} is not a macro delimiter (. - + , / _ =)"
        ));
    }
    Ok(MacroPart::Expand {
        letter,
        escape: first.is_ascii_uppercase(),
        keep,
        reverse,
        delimiters: if rest.is_empty() {
            ".".into()
        } else {
            rest.to_string()
        },
    })
}

// ---------------------------------------------------------------------------------------
// Evaluation: check_host() (§4)
// ---------------------------------------------------------------------------------------

/// The result of `check_host()` (RFC 7208 §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError,
    PermError,
}

impl SpfResult {
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

impl fmt::Display for SpfResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong during an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// An `include:`/`redirect=` target (or the domain) has no SPF record (§5.2, §6.1).
    NoRecord,
    /// Several SPF records at one name (§4.5).
    MultipleRecords,
    /// A record that does not parse (§4.6).
    Syntax,
    /// More than 10 DNS-querying terms, or an include loop (§4.6.4).
    TooManyLookups,
    /// More than 2 void lookups (§4.6.4).
    TooManyVoidLookups,
    /// An `mx` term with more than 10 exchangers (§4.6.4).
    TooManyMxNames,
    /// A DNS question without a usable answer (§4.4, §5).
    Dns,
}

/// A problem met during an evaluation, at the name whose record caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfProblem {
    pub kind: ProblemKind,
    pub name: Name,
    pub detail: String,
}

/// One step of an evaluation: a term of the record at `domain` and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep {
    /// 0 for the evaluated domain, 1 inside its includes, …
    pub depth: usize,
    pub domain: Name,
    pub term: String,
    pub outcome: String,
}

impl fmt::Display for TraceStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:indent$}{}: {} → {}",
            "",
            self.domain.as_str(),
            self.term,
            self.outcome,
            indent = self.depth * 2
        )
    }
}

/// The outcome of an evaluation: the result, the counts the limits of §4.6.4 apply to, the
/// trace of every term evaluated, and the problems met (for `permerror`/`temperror`, the
/// one that decided it; a [`walk`] collects all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfOutcome {
    pub result: SpfResult,
    /// DNS-querying terms evaluated (`include`, `a`, `mx`, `ptr`, `exists`, `redirect`).
    pub lookups: u32,
    /// Term queries answered NXDOMAIN or with no records.
    pub void_lookups: u32,
    pub trace: Vec<TraceStep>,
    pub problems: Vec<SpfProblem>,
}

impl SpfOutcome {
    /// The trace as text, one step per line.
    pub fn trace_text(&self) -> String {
        self.trace
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// RFC 7208 §4 `check_host(ip, domain, sender)`: evaluates `domain`'s SPF policy for a
/// client at `ip` sending as `sender` (`local@domain`; a sender without `@` is taken as a
/// domain with the local part `postmaster`, §4.3).
pub async fn evaluate(lookup: &dyn Lookup, domain: &Name, ip: IpAddr, sender: &str) -> SpfOutcome {
    Evaluator::new(lookup, ip, sender, false).run(domain).await
}

/// Evaluates `domain`'s policy as for a client at `ip` that no mechanism matches, so that
/// every term a real evaluation can reach is visited: the largest lookup and void-lookup
/// counts any client of that address family can cause (RFC 7208 §4.6.4). Unlike
/// [`evaluate`], it does not stop at the first problem: it notes each and goes on (an
/// include whose evaluation fails counts as not matching), so `lookups` is the full count
/// even above the limit. The result is `permerror` or `temperror` when a problem was met,
/// `none` when the domain has no record, else `neutral`.
pub async fn walk(lookup: &dyn Lookup, domain: &Name, ip: IpAddr, sender: &str) -> SpfOutcome {
    Evaluator::new(lookup, ip, sender, true).run(domain).await
}

type Step<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

struct Evaluator<'l> {
    lookup: &'l dyn Lookup,
    ip: IpAddr,
    local: String,
    sender_domain: String,
    walk: bool,
    lookups: u32,
    void_lookups: u32,
    trace: Vec<TraceStep>,
    problems: Vec<SpfProblem>,
    /// The domains being evaluated, outermost first (for loops and the trace depth).
    stack: Vec<Name>,
    over_lookup_limit: bool,
    over_void_limit: bool,
}

/// A term's evaluation either matched or not, or ended the evaluation with a result.
type TermResult = Result<bool, SpfResult>;

impl<'l> Evaluator<'l> {
    fn new(lookup: &'l dyn Lookup, ip: IpAddr, sender: &str, walk: bool) -> Evaluator<'l> {
        // RFC 7208 §5 (RFC 4291 §2.5.5.2): an IPv4-mapped IPv6 address is an IPv4 client.
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        let (local, sender_domain) = match sender.rsplit_once('@') {
            Some((l, d)) if !l.is_empty() => (l.to_string(), d.to_string()),
            Some((_, d)) => ("postmaster".to_string(), d.to_string()),
            None => ("postmaster".to_string(), sender.to_string()),
        };
        Evaluator {
            lookup,
            ip,
            local,
            sender_domain: sender_domain.trim_end_matches('.').to_ascii_lowercase(),
            walk,
            lookups: 0,
            void_lookups: 0,
            trace: Vec::new(),
            problems: Vec::new(),
            stack: Vec::new(),
            over_lookup_limit: false,
            over_void_limit: false,
        }
    }

    async fn run(mut self, domain: &Name) -> SpfOutcome {
        let mut result = self.check_host(domain.clone()).await;
        if self.walk {
            result = if result == SpfResult::None {
                SpfResult::None
            } else if self.problems.iter().any(|p| p.kind != ProblemKind::Dns) {
                SpfResult::PermError
            } else if !self.problems.is_empty() {
                SpfResult::TempError
            } else {
                SpfResult::Neutral
            };
        }
        SpfOutcome {
            result,
            lookups: self.lookups,
            void_lookups: self.void_lookups,
            trace: self.trace,
            problems: self.problems,
        }
    }

    fn step(&mut self, domain: &Name, term: &str, outcome: impl Into<String>) {
        self.trace.push(TraceStep {
            depth: self.stack.len().saturating_sub(1),
            domain: domain.clone(),
            term: term.to_string(),
            outcome: outcome.into(),
        });
    }

    /// Notes a problem. Evaluating, it ends the evaluation with `result`; walking, the term
    /// counts as not matching and the walk goes on.
    fn problem(
        &mut self,
        kind: ProblemKind,
        name: &Name,
        detail: String,
        result: SpfResult,
    ) -> TermResult {
        self.problems.push(SpfProblem {
            kind,
            name: name.clone(),
            detail,
        });
        if self.walk { Ok(false) } else { Err(result) }
    }

    /// Counts a DNS-querying term (§4.6.4).
    fn count_lookup(&mut self, domain: &Name, term: &str) -> Result<(), SpfResult> {
        self.lookups += 1;
        if self.walk && self.lookups > WALK_HARD_CAP {
            return Err(SpfResult::PermError);
        }
        if self.lookups > MAX_LOOKUPS && !self.over_lookup_limit {
            self.over_lookup_limit = true;
            let detail = format!(
                "`{term}` at {} is DNS-querying term number {}; RFC 7208 §4.6.4 allows {MAX_LOOKUPS}",
                domain.as_str(),
                self.lookups
            );
            self.step(domain, term, "permerror: over the 10-lookup limit");
            self.problem(
                ProblemKind::TooManyLookups,
                domain,
                detail,
                SpfResult::PermError,
            )?;
        }
        Ok(())
    }

    /// Counts a void lookup (§4.6.4).
    fn count_void(&mut self, domain: &Name, term: &str) -> Result<(), SpfResult> {
        self.void_lookups += 1;
        if self.void_lookups > MAX_VOID_LOOKUPS && !self.over_void_limit {
            self.over_void_limit = true;
            let detail = format!(
                "`{term}` at {} is void lookup number {}; RFC 7208 §4.6.4 allows {MAX_VOID_LOOKUPS}",
                domain.as_str(),
                self.void_lookups
            );
            self.step(domain, term, "permerror: over the 2-void-lookup limit");
            self.problem(
                ProblemKind::TooManyVoidLookups,
                domain,
                detail,
                SpfResult::PermError,
            )?;
        }
        Ok(())
    }

    /// Asks DNS; NXDOMAIN is an empty answer (§5), anything else unusable a `temperror`.
    async fn query(
        &mut self,
        domain: &Name,
        term: &str,
        name: &Name,
        rtype: &str,
    ) -> Result<Option<Answer>, SpfResult> {
        let why = match self.lookup.query(name, rtype).await {
            Ok(answer) => match &answer.rcode {
                Rcode::NoError | Rcode::NxDomain => return Ok(Some(answer)),
                Rcode::ServFail => "SERVFAIL".to_string(),
                Rcode::Refused => "REFUSED".to_string(),
                Rcode::Other(code) => code.clone(),
            },
            Err(e) => e.0,
        };
        self.step(domain, term, format!("temperror: {name} {rtype}: {why}"));
        let detail = format!("the question {name} {rtype} got no usable answer ({why})");
        self.problem(ProblemKind::Dns, name, detail, SpfResult::TempError)
            .map(|_| None)
    }

    fn check_host(&mut self, domain: Name) -> Step<'_, SpfResult> {
        Box::pin(async move {
            self.stack.push(domain.clone());
            let result = self.check_host_inner(&domain).await;
            self.stack.pop();
            result
        })
    }

    async fn check_host_inner(&mut self, domain: &Name) -> SpfResult {
        // §4.3: the domain must be a multi-label name; else `none`.
        if !domain.as_str().contains('.') {
            self.step(
                domain,
                "(domain)",
                "none: not a fully qualified domain name",
            );
            return SpfResult::None;
        }
        // §4.4: the TXT lookup.
        let answer = match self.query(domain, "(record)", domain, "TXT").await {
            Ok(Some(answer)) => answer,
            Ok(None) => return SpfResult::TempError,
            Err(result) => return result,
        };
        let records: Vec<String> = answer
            .records
            .iter()
            .filter_map(|r| match &r.record.data {
                RData::Txt(bytes) if is_spf_record(bytes) => {
                    Some(String::from_utf8_lossy(bytes).into_owned())
                }
                _ => None,
            })
            .collect();
        // §4.5: none → `none`, several → `permerror`.
        let text = match records.as_slice() {
            [] => {
                self.step(domain, "(record)", "none: no v=spf1 record");
                return SpfResult::None;
            }
            [one] => one.clone(),
            several => {
                self.step(
                    domain,
                    "(record)",
                    format!("permerror: {} v=spf1 records", several.len()),
                );
                let detail = format!(
                    "{} has {} v=spf1 records: {}",
                    domain.as_str(),
                    several.len(),
                    several.join(" | ")
                );
                self.problems.push(SpfProblem {
                    kind: ProblemKind::MultipleRecords,
                    name: domain.clone(),
                    detail,
                });
                return SpfResult::PermError;
            }
        };
        // §4.6: a syntax error anywhere is a `permerror` before anything is evaluated.
        let record = match parse_record(&text) {
            Ok(record) => record,
            Err(why) => {
                self.step(domain, &text, format!("permerror: {why}"));
                self.problems.push(SpfProblem {
                    kind: ProblemKind::Syntax,
                    name: domain.clone(),
                    detail: why,
                });
                return SpfResult::PermError;
            }
        };
        // §4.6.2: the directives in order; the first match decides.
        for directive in &record.directives {
            if self.walk && directive.mechanism == Mechanism::All {
                self.step(domain, &directive.text, "(walk) evaluation ends here");
                return SpfResult::Neutral;
            }
            match self.mechanism(domain, directive).await {
                Ok(true) => {
                    let result = directive.qualifier.result();
                    self.step(domain, &directive.text, format!("match → {result}"));
                    return result;
                }
                Ok(false) => {}
                Err(result) => return result,
            }
        }
        // §6.1: `redirect=` when nothing matched and the record has no `all`.
        if let Some(target) = &record.redirect
            && record.all().is_none()
        {
            let term = format!("redirect={}", target.text);
            if let Err(result) = self.count_lookup(domain, &term) {
                return result;
            }
            let Some(target_name) = self.target(domain, &term, target) else {
                self.step(domain, &term, "permerror: the target is not a valid name");
                let detail = format!("`{term}`: the target is not a valid domain name");
                return self
                    .problem(ProblemKind::NoRecord, domain, detail, SpfResult::PermError)
                    .map_or_else(|r| r, |_| SpfResult::PermError);
            };
            if self.walk && self.stack.contains(&target_name) {
                return self.loop_problem(domain, &term, &target_name);
            }
            self.step(
                domain,
                &term,
                format!("evaluating {}", target_name.as_str()),
            );
            let result = self.check_host(target_name.clone()).await;
            if result == SpfResult::None {
                let detail = format!(
                    "`{term}` at {}: {} has no SPF record, which makes the redirect a permerror (RFC 7208 §6.1)",
                    domain.as_str(),
                    target_name.as_str()
                );
                self.problems.push(SpfProblem {
                    kind: ProblemKind::NoRecord,
                    name: target_name,
                    detail,
                });
                return SpfResult::PermError;
            }
            return result;
        }
        self.step(domain, "(end)", "no match → neutral");
        SpfResult::Neutral
    }

    fn loop_problem(&mut self, domain: &Name, term: &str, target: &Name) -> SpfResult {
        let path: Vec<&str> = self
            .stack
            .iter()
            .map(Name::as_str)
            .chain([target.as_str()])
            .collect();
        let detail = format!(
            "`{term}` at {} makes a loop ({}): every evaluation reaching it ends in the 10-lookup limit",
            domain.as_str(),
            path.join(" → ")
        );
        self.step(domain, term, "permerror: loop");
        self.problems.push(SpfProblem {
            kind: ProblemKind::TooManyLookups,
            name: domain.clone(),
            detail,
        });
        SpfResult::PermError
    }

    /// Expands a domain-spec (§7) for the record at `domain`, truncated on the left to 253
    /// characters (§7.3). `None` when the result is not a valid DNS name.
    fn target(&mut self, domain: &Name, term: &str, spec: &DomainSpec) -> Option<Name> {
        let mut text = self.expand(domain, spec);
        while text.trim_end_matches('.').len() > 253 {
            match text.split_once('.') {
                Some((_, rest)) => text = rest.to_string(),
                None => break,
            }
        }
        let name = Name::owner(&text).ok();
        if spec.has_macros() {
            let shown = name.as_ref().map_or(text.as_str(), Name::as_str);
            self.step(domain, term, format!("expands to {shown}"));
        }
        name
    }

    fn expand(&self, domain: &Name, spec: &DomainSpec) -> String {
        let mut out = String::new();
        for part in &spec.parts {
            match part {
                MacroPart::Literal(text) => out.push_str(text),
                MacroPart::Expand {
                    letter,
                    escape,
                    keep,
                    reverse,
                    delimiters,
                } => {
                    let value = self.macro_value(*letter, domain);
                    let mut pieces: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
                    if *reverse {
                        pieces.reverse();
                    }
                    if let Some(n) = keep
                        && *n < pieces.len()
                    {
                        pieces.drain(..pieces.len() - n);
                    }
                    let joined = pieces.join(".");
                    if *escape {
                        out.push_str(&url_escape(&joined));
                    } else {
                        out.push_str(&joined);
                    }
                }
            }
        }
        out
    }

    /// RFC 7208 §7.2 macro letters.
    fn macro_value(&self, letter: char, domain: &Name) -> String {
        match letter {
            's' => format!("{}@{}", self.local, self.sender_domain),
            'l' => self.local.clone(),
            'o' => self.sender_domain.clone(),
            'd' => domain.as_str().to_string(),
            'i' => match self.ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => nibbles(v6).join("."),
            },
            'v' => match self.ip {
                IpAddr::V4(_) => "in-addr".into(),
                IpAddr::V6(_) => "ip6".into(),
            },
            'h' => self.sender_domain.clone(),
            // `p`: the validated name is not looked up (discouraged by §7.2; §7.3 allows
            // `unknown`).
            _ => "unknown".into(),
        }
    }

    /// The address type of the client's family (§5).
    fn address_type(&self) -> &'static str {
        match self.ip {
            IpAddr::V4(_) => "A",
            IpAddr::V6(_) => "AAAA",
        }
    }

    async fn mechanism(&mut self, domain: &Name, directive: &Directive) -> TermResult {
        let term = directive.text.as_str();
        if directive.mechanism.queries_dns() {
            self.count_lookup(domain, term)?;
        }
        let matched = match &directive.mechanism {
            Mechanism::All => true,
            Mechanism::Ip4 { network, len } => match self.ip {
                IpAddr::V4(ip) => in_v4(ip, *network, *len),
                IpAddr::V6(_) => false,
            },
            Mechanism::Ip6 { network, len } => match self.ip {
                IpAddr::V6(ip) => in_v6(ip, *network, *len),
                IpAddr::V4(_) => false,
            },
            Mechanism::Include(spec) => return self.include(domain, term, spec).await,
            Mechanism::A {
                domain: spec,
                cidr4,
                cidr6,
            } => {
                let Some(target) = self.target_or_current(domain, term, spec.as_ref())? else {
                    return Ok(false);
                };
                let rtype = self.address_type();
                let Some(answer) = self.query(domain, term, &target, rtype).await? else {
                    return Ok(false);
                };
                let addresses = addresses(&answer);
                if addresses.is_empty() {
                    self.step(domain, term, format!("void: {target} has no {rtype}"));
                    self.count_void(domain, term)?;
                    return Ok(false);
                }
                self.matches_any(&addresses, *cidr4, *cidr6)
            }
            Mechanism::Mx {
                domain: spec,
                cidr4,
                cidr6,
            } => {
                let Some(target) = self.target_or_current(domain, term, spec.as_ref())? else {
                    return Ok(false);
                };
                let Some(answer) = self.query(domain, term, &target, "MX").await? else {
                    return Ok(false);
                };
                let mut exchangers: Vec<(u16, Name)> = answer
                    .records
                    .iter()
                    .filter_map(|r| match &r.record.data {
                        RData::Mx {
                            preference,
                            exchange,
                        } => Some((*preference, exchange.clone())),
                        _ => None,
                    })
                    .collect();
                if exchangers.is_empty() {
                    self.step(domain, term, format!("void: {target} has no MX"));
                    self.count_void(domain, term)?;
                    return Ok(false);
                }
                if exchangers.len() > MAX_NAMES_PER_TERM {
                    self.step(
                        domain,
                        term,
                        format!("permerror: {} MX records", exchangers.len()),
                    );
                    let detail = format!(
                        "`{term}` at {}: {target} has {} MX records; RFC 7208 §4.6.4 allows an mx term to look at {MAX_NAMES_PER_TERM}",
                        domain.as_str(),
                        exchangers.len()
                    );
                    return self.problem(
                        ProblemKind::TooManyMxNames,
                        &target,
                        detail,
                        SpfResult::PermError,
                    );
                }
                exchangers.sort();
                let rtype = self.address_type();
                let mut all = Vec::new();
                for (_, exchange) in exchangers {
                    if exchange.is_root() {
                        continue; // a null MX (RFC 7505) has no address
                    }
                    if let Some(answer) = self.query(domain, term, &exchange, rtype).await? {
                        all.extend(addresses(&answer));
                    }
                }
                self.matches_any(&all, *cidr4, *cidr6)
            }
            Mechanism::Ptr(spec) => {
                let Some(target) = self.target_or_current(domain, term, spec.as_ref())? else {
                    return Ok(false);
                };
                self.ptr(domain, term, &target).await?
            }
            Mechanism::Exists(spec) => {
                let Some(target) = self.target(domain, term, spec) else {
                    self.step(domain, term, "void: the expansion is not a valid name");
                    self.count_void(domain, term)?;
                    return Ok(false);
                };
                // §5.7: always an A query, whatever the client's family.
                let Some(answer) = self.query(domain, term, &target, "A").await? else {
                    return Ok(false);
                };
                if answer.records.is_empty() {
                    self.step(domain, term, format!("void: {target} has no A"));
                    self.count_void(domain, term)?;
                    return Ok(false);
                }
                true
            }
        };
        if self.walk {
            if directive.mechanism.queries_dns() {
                self.step(domain, term, "(walk) not matched");
            }
            return Ok(false);
        }
        if !matched {
            self.step(domain, term, "no match");
        }
        Ok(matched)
    }

    /// The target of `a`, `mx` or `ptr`: the expanded domain-spec or the current domain.
    /// `Ok(None)` when the expansion is not a valid name (counted as a void lookup).
    fn target_or_current(
        &mut self,
        domain: &Name,
        term: &str,
        spec: Option<&DomainSpec>,
    ) -> Result<Option<Name>, SpfResult> {
        let Some(spec) = spec else {
            return Ok(Some(domain.clone()));
        };
        match self.target(domain, term, spec) {
            Some(name) => Ok(Some(name)),
            None => {
                self.step(domain, term, "void: the expansion is not a valid name");
                self.count_void(domain, term)?;
                Ok(None)
            }
        }
    }

    fn matches_any(&self, addresses: &[IpAddr], cidr4: u8, cidr6: u8) -> bool {
        addresses.iter().any(|a| match (a, self.ip) {
            (IpAddr::V4(a), IpAddr::V4(ip)) => in_v4(ip, *a, cidr4),
            (IpAddr::V6(a), IpAddr::V6(ip)) => in_v6(ip, *a, cidr6),
            _ => false,
        })
    }

    /// §5.2: `include` matches when the included domain's evaluation gives `pass`.
    async fn include(&mut self, domain: &Name, term: &str, spec: &DomainSpec) -> TermResult {
        let Some(target) = self.target(domain, term, spec) else {
            self.step(domain, term, "permerror: the target is not a valid name");
            let detail = format!(
                "`{term}` at {}: the target is not a valid domain name",
                domain.as_str()
            );
            return self.problem(ProblemKind::NoRecord, domain, detail, SpfResult::PermError);
        };
        if self.walk && self.stack.contains(&target) {
            self.loop_problem(domain, term, &target);
            return Ok(false);
        }
        self.step(domain, term, format!("evaluating {}", target.as_str()));
        let result = self.check_host(target.clone()).await;
        match result {
            SpfResult::Pass => {
                if self.walk {
                    return Ok(false);
                }
                Ok(true)
            }
            SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => {
                self.step(
                    domain,
                    term,
                    format!("{} gives {result}: no match", target.as_str()),
                );
                Ok(false)
            }
            SpfResult::None => {
                // Walking, the nested evaluation returned `none` only for a missing record.
                self.void_for_missing_include(domain, term)?;
                let detail = format!(
                    "`{term}` at {}: {} has no SPF record, which makes the include a permerror (RFC 7208 §5.2)",
                    domain.as_str(),
                    target.as_str()
                );
                self.step(
                    domain,
                    term,
                    format!("permerror: {} has no SPF record", target.as_str()),
                );
                self.problem(ProblemKind::NoRecord, &target, detail, SpfResult::PermError)
            }
            SpfResult::TempError | SpfResult::PermError => {
                if self.walk {
                    Ok(false)
                } else {
                    Err(result)
                }
            }
        }
    }

    /// An include whose target has no record: its TXT query was void (§4.6.4). Evaluating,
    /// the `permerror` of §5.2 comes first anyway; walking, it is counted like checkdmarc
    /// does.
    fn void_for_missing_include(&mut self, domain: &Name, term: &str) -> Result<(), SpfResult> {
        if self.walk {
            self.count_void(domain, term)?;
        }
        Ok(())
    }

    /// §5.5: `ptr` matches when a validated name of the client (a PTR name whose addresses
    /// include the client) is the target or below it. Only the first 10 names count.
    async fn ptr(&mut self, domain: &Name, term: &str, target: &Name) -> TermResult {
        let reverse = match Name::owner(&reverse_name(self.ip)) {
            Ok(name) => name,
            Err(_) => return Ok(false),
        };
        let Some(answer) = self.query(domain, term, &reverse, "PTR").await? else {
            return Ok(false);
        };
        let names: Vec<Name> = answer
            .records
            .iter()
            .filter_map(|r| match &r.record.data {
                RData::Ptr(name) => Some(name.clone()),
                _ => None,
            })
            .take(MAX_NAMES_PER_TERM)
            .collect();
        if names.is_empty() {
            self.step(domain, term, format!("void: {reverse} has no PTR"));
            self.count_void(domain, term)?;
            return Ok(false);
        }
        let rtype = self.address_type();
        for name in names {
            if !name.is_within(target) {
                continue;
            }
            if let Some(answer) = self.query(domain, term, &name, rtype).await?
                && addresses(&answer).contains(&self.ip)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn addresses(answer: &Answer) -> Vec<IpAddr> {
    answer
        .records
        .iter()
        .filter_map(|r| match r.record.data {
            RData::A(ip) => Some(IpAddr::V4(ip)),
            RData::Aaaa(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        })
        .collect()
}

fn in_v4(ip: Ipv4Addr, network: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    u32::from(ip) & mask == u32::from(network) & mask
}

fn in_v6(ip: Ipv6Addr, network: Ipv6Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    u128::from(ip) & mask == u128::from(network) & mask
}

/// The 32 nibbles of an IPv6 address, most significant first (§7.3 `i` for IPv6).
fn nibbles(ip: Ipv6Addr) -> Vec<String> {
    ip.octets()
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .map(|n| format!("{n:x}"))
        .collect()
}

/// The reverse-mapping name of an address (RFC 1035 §3.5, RFC 3596 §2.5).
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut n = nibbles(v6);
            n.reverse();
            format!("{}.ip6.arpa", n.join("."))
        }
    }
}

/// URL escaping of an uppercase macro (RFC 7208 §7.3, RFC 3986 unreserved characters kept).
fn url_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The checks of a domain
// ---------------------------------------------------------------------------------------

/// The sender the evaluations use for a domain (§4.3: `postmaster` when there is no local
/// part, as for a bounce checked against the HELO name).
fn postmaster(name: &Name) -> String {
    format!("postmaster@{}", name.as_str())
}

/// The SPF records the planner wants at `name`, as zone-file lines.
fn desired_lines(ctx: &DomainContext<'_>, name: &Name) -> Vec<String> {
    ctx.desired
        .iter()
        .filter(|d| d.record_type == DnsRecordType::Spf && &d.record.name == name)
        .map(|d| crate::support::line(&d.record))
        .collect()
}

/// The SPF value wanted at `name`: the planner's, or mailzone's standard one.
fn desired_value(ctx: &DomainContext<'_>, name: &Name, host: bool) -> String {
    ctx.desired
        .iter()
        .find(|d| d.record_type == DnsRecordType::Spf && &d.record.name == name)
        .map(|d| d.record.data.value())
        .unwrap_or_else(|| {
            if host {
                mailzone_records::spf::host_value(&ctx.domain.spf)
            } else {
                mailzone_records::spf::domain_value(&ctx.domain.spf)
            }
        })
}

fn publish_fix(ctx: &DomainContext<'_>, name: &Name, host: bool) -> String {
    let lines = desired_lines(ctx, name);
    if lines.is_empty() {
        format!("publish {name} TXT \"{}\"", desired_value(ctx, name, host))
    } else {
        format!("publish {}", lines.join("; "))
    }
}

/// The `v=spf1` TXT values at `name`, or the finding for a failed question.
async fn spf_values(ctx: &DomainContext<'_>, name: &Name) -> Result<Vec<String>, Finding> {
    let answer = crate::support::query(ctx, name, "TXT").await?;
    Ok(answer
        .records
        .iter()
        .filter_map(|r| match &r.record.data {
            RData::Txt(bytes) if is_spf_record(bytes) => {
                Some(String::from_utf8_lossy(bytes).into_owned())
            }
            _ => None,
        })
        .collect())
}

/// Every SPF finding for the domain (see the module documentation for the rules).
pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let domain = &ctx.domain.name;
    let values = match spf_values(ctx, domain).await {
        Ok(values) => values,
        Err(finding) => return vec![finding],
    };
    match values.as_slice() {
        [] => {
            findings.push(
                Finding::new(
                    MISSING,
                    domain.to_string(),
                    format!(
                        "{domain} publishes no `v=spf1` TXT record, so receivers get `none` for mail from it and cannot tell forged mail apart (RFC 7208 §4.5)"
                    ),
                )
                .seen("no v=spf1 record")
                .expected(desired_value(ctx, domain, false))
                .fix(publish_fix(ctx, domain, false)),
            );
            return findings;
        }
        [_] => {}
        several => {
            findings.push(
                Finding::new(
                    MULTIPLE,
                    domain.to_string(),
                    format!(
                        "{domain} has {} `v=spf1` records; with more than one, every evaluation is a permerror (RFC 7208 §4.5)",
                        several.len()
                    ),
                )
                .seen(several.join(" | "))
                .expected(format!("exactly one: {}", desired_value(ctx, domain, false)))
                .fix(format!(
                    "keep one record and remove the others: {}",
                    publish_fix(ctx, domain, false)
                )),
            );
            return findings;
        }
    }
    let text = &values[0];
    let record = match parse_record(text) {
        Ok(record) => record,
        Err(why) => {
            findings.push(
                Finding::new(
                    SYNTAX,
                    domain.to_string(),
                    format!("the SPF record of {domain} is not valid: {why}; every evaluation is a permerror (RFC 7208 §4.6)"),
                )
                .seen(text.clone())
                .expected(desired_value(ctx, domain, false))
                .fix(publish_fix(ctx, domain, false)),
            );
            return findings;
        }
    };
    findings.extend(record_warnings(domain, text, &record));

    let ips = crate::support::server_ips(ctx);
    // The walks: one per address family the server uses (the void lookups of `a` and `mx`
    // depend on it), IPv4 when it has no address at all.
    let mut samples: Vec<IpAddr> = Vec::new();
    for ip in &ips {
        if !samples.iter().any(|s| s.is_ipv4() == ip.is_ipv4()) {
            samples.push(*ip);
        }
    }
    if samples.is_empty() {
        samples.push(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)));
    }
    let sender = postmaster(domain);
    for sample in samples {
        let outcome = walk(ctx.lookup, domain, sample, &sender).await;
        findings.extend(walk_findings(domain, &outcome));
    }

    for ip in &ips {
        let outcome = evaluate(ctx.lookup, domain, *ip, &sender).await;
        if outcome.result != SpfResult::Pass {
            let reason = outcome
                .problems
                .first()
                .map(|p| format!(" ({})", p.detail))
                .unwrap_or_default();
            let family = if ip.is_ipv4() { "ip4" } else { "ip6" };
            findings.push(
                Finding::new(
                    NOT_PASS,
                    domain.to_string(),
                    format!(
                        "mail from {sender} sent by the server at {ip} gets SPF `{}`{reason}, not `pass`: receivers may reject or junk it (RFC 7208 §4)",
                        outcome.result
                    ),
                )
                .seen(format!(
                    "check_host({ip}, {}, {sender}) = {}; trace:\n{}",
                    domain.as_str(),
                    outcome.result,
                    outcome.trace_text()
                ))
                .expected("pass")
                .fix(format!(
                    "{} (or add `{family}:{ip}` before the `all` of the record)",
                    publish_fix(ctx, domain, false)
                )),
            );
        }
    }

    findings.extend(check_hosts(ctx, &ips).await);
    dedup(findings)
}

/// Warnings read from the domain's own record: `ptr`, `+all`, `?all`, no `all`.
fn record_warnings(domain: &Name, text: &str, record: &SpfRecord) -> Vec<Finding> {
    let mut findings = Vec::new();
    match record.all().map(|d| d.qualifier) {
        Some(Qualifier::Pass) => findings.push(
            Finding::new(
                PASS_ALL,
                domain.to_string(),
                format!(
                    "the SPF record of {domain} ends in `+all`: every host on the Internet passes for {domain} (RFC 7208 §5.1)"
                ),
            )
            .seen(text.to_string())
            .expected("`-all` or `~all`")
            .fix("end the record in `-all` (or `~all` while testing)"),
        ),
        Some(Qualifier::Neutral) => findings.push(
            Finding::new(
                NEUTRAL_ALL,
                domain.to_string(),
                format!(
                    "the SPF record of {domain} ends in `?all`: hosts it does not list get `neutral`, which protects nothing (RFC 7208 §8.2)"
                ),
            )
            .seen(text.to_string())
            .expected("`-all` or `~all`")
            .fix("end the record in `-all` (or `~all`) once every sending host is listed"),
        ),
        Some(_) => {}
        None if record.redirect.is_none() => findings.push(
            Finding::new(
                NO_ALL,
                domain.to_string(),
                format!(
                    "the SPF record of {domain} has neither `all` nor `redirect=`: hosts it does not list get `neutral` (RFC 7208 §4.7)"
                ),
            )
            .seen(text.to_string())
            .expected("a record ending in `-all` or `~all`")
            .fix("end the record in `-all`"),
        ),
        None => {}
    }
    findings
}

/// Findings from a walk: the limits, and the problems of the records it reached.
fn walk_findings(domain: &Name, outcome: &SpfOutcome) -> Vec<Finding> {
    let mut findings = Vec::new();
    for step in &outcome.trace {
        let mechanism = step
            .term
            .trim_start_matches(['+', '-', '~', '?'])
            .to_ascii_lowercase();
        if mechanism == "ptr" || mechanism.starts_with("ptr:") {
            findings.push(
                Finding::new(
                    PTR,
                    step.domain.to_string(),
                    format!(
                        "the SPF record of {} uses `{}`: `ptr` is slow, unreliable and SHOULD NOT be used (RFC 7208 §5.5); some receivers ignore it",
                        step.domain.as_str(),
                        step.term
                    ),
                )
                .seen(step.term.clone())
                .expected("`a`, `mx`, `ip4:` or `ip6:` instead")
                .fix(format!(
                    "replace `{}` with the addresses of the hosts it was meant to match (`ip4:`/`ip6:` or `a:`)",
                    step.term
                )),
            );
        }
    }
    let trace = outcome.trace_text();
    for problem in &outcome.problems {
        let name = problem.name.to_string();
        let finding = match problem.kind {
            ProblemKind::TooManyLookups => Finding::new(
                TOO_MANY_LOOKUPS,
                domain.to_string(),
                format!(
                    "evaluating the SPF policy of {domain} can take {} DNS-querying terms (include, a, mx, ptr, exists, redirect); RFC 7208 §4.6.4 allows 10, so receivers get permerror: {}",
                    outcome.lookups, problem.detail
                ),
            )
            .seen(format!("{} lookups; trace:\n{trace}", outcome.lookups))
            .expected("at most 10 DNS-querying terms")
            .fix("replace includes that are not needed, or flatten them into `ip4:`/`ip6:` ranges, until at most 10 terms query DNS"),
            ProblemKind::TooManyVoidLookups => {
                let voids: Vec<String> = outcome
                    .trace
                    .iter()
                    .filter(|s| s.outcome.starts_with("void"))
                    .map(|s| format!("{}: {} ({})", s.domain.as_str(), s.term, s.outcome))
                    .collect();
                Finding::new(
                    TOO_MANY_VOID_LOOKUPS,
                    domain.to_string(),
                    format!(
                        "evaluating the SPF policy of {domain} meets {} DNS answers that are empty or NXDOMAIN; RFC 7208 §4.6.4 allows 2, so receivers get permerror",
                        outcome.void_lookups
                    ),
                )
                .seen(voids.join("; "))
                .expected("at most 2 void lookups")
                .fix("remove the terms whose names have no records (listed above), or publish the records they expect")
            }
            ProblemKind::Syntax => Finding::new(
                SYNTAX,
                name.clone(),
                format!(
                    "the SPF record of {} (reached from {domain}) is not valid: {}; the evaluation is a permerror (RFC 7208 §4.6)",
                    problem.name.as_str(),
                    problem.detail
                ),
            )
            .expected("a record following RFC 7208 §12")
            .fix(format!("correct the record at {name}, or stop referring to it from {domain}")),
            ProblemKind::MultipleRecords => Finding::new(
                MULTIPLE,
                name.clone(),
                format!(
                    "{} (reached from {domain}) has several `v=spf1` records: the evaluation is a permerror (RFC 7208 §4.5)",
                    problem.name.as_str()
                ),
            )
            .seen(problem.detail.clone())
            .expected("exactly one v=spf1 record")
            .fix(format!("keep one v=spf1 record at {name}")),
            ProblemKind::NoRecord => Finding::new(
                INCLUDE_INVALID,
                name.clone(),
                format!("{}; receivers evaluating {domain} get permerror", problem.detail),
            )
            .seen(format!("no v=spf1 record at {name}"))
            .expected("a v=spf1 record at every include:/redirect= target")
            .fix(format!(
                "remove the include:/redirect= of {} from the SPF policy of {domain}, or publish an SPF record there",
                problem.name.as_str()
            )),
            ProblemKind::TooManyMxNames => Finding::new(
                MX_TOO_MANY,
                name.clone(),
                format!("{}; receivers get permerror", problem.detail),
            )
            .expected("at most 10 MX records at a name an mx term refers to")
            .fix("use `ip4:`/`ip6:` or `a:` terms for those hosts instead of `mx`"),
            ProblemKind::Dns => Finding::new(
                TEMPERROR,
                name.clone(),
                format!(
                    "while evaluating the SPF policy of {domain}, {}: receivers get temperror and defer or accept the mail unchecked",
                    problem.detail
                ),
            )
            .expected("an answer (NOERROR or NXDOMAIN)")
            .fix(format!("make sure the name servers of {name} answer")),
        };
        findings.push(finding);
    }
    findings
}

/// RFC 7208 §2.3: each exchanger host inside the zone has its own record, passing every
/// server IP for the HELO identity (sender `postmaster@<host>`).
async fn check_hosts(ctx: &DomainContext<'_>, ips: &[IpAddr]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut hosts: Vec<&Name> = ctx
        .server
        .mail_exchangers
        .iter()
        .map(|mx| &mx.hostname)
        .filter(|h| h.is_within(&ctx.domain.zone) && *h != &ctx.domain.name)
        .collect();
    hosts.sort();
    hosts.dedup();
    for host in hosts {
        let values = match spf_values(ctx, host).await {
            Ok(values) => values,
            Err(finding) => {
                findings.push(finding);
                continue;
            }
        };
        if values.is_empty() {
            findings.push(
                Finding::new(
                    HOST_MISSING,
                    host.to_string(),
                    format!(
                        "the exchanger {host} has no SPF record: receivers that check the HELO name {host} (and every bounce, which is judged by it alone) get `none` (RFC 7208 §2.3)"
                    ),
                )
                .seen("no v=spf1 record")
                .expected(desired_value(ctx, host, true))
                .fix(publish_fix(ctx, host, true)),
            );
            continue;
        }
        let sender = postmaster(host);
        for ip in ips {
            let outcome = evaluate(ctx.lookup, host, *ip, &sender).await;
            if outcome.result != SpfResult::Pass {
                let reason = outcome
                    .problems
                    .first()
                    .map(|p| format!(" ({})", p.detail))
                    .unwrap_or_default();
                findings.push(
                    Finding::new(
                        HOST_NOT_PASS,
                        host.to_string(),
                        format!(
                            "the server at {ip} saying HELO {host} gets SPF `{}`{reason}, not `pass`: bounces and HELO checks fail (RFC 7208 §2.3)",
                            outcome.result
                        ),
                    )
                    .seen(format!(
                        "{}; trace:\n{}",
                        values.join(" | "),
                        outcome.trace_text()
                    ))
                    .expected(desired_value(ctx, host, true))
                    .fix(publish_fix(ctx, host, true)),
                );
            }
        }
    }
    findings
}

/// One finding per (code, name, message): the walks of the two families often agree.
fn dedup(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for finding in findings {
        let same = |f: &Finding| {
            f.code == finding.code
                && f.name == finding.name
                && (f.code != NOT_PASS.id && f.code != HOST_NOT_PASS.id
                    || f.message == finding.message)
        };
        if !out.iter().any(same) {
            out.push(finding);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::lookup::{LookupError, ZoneLookup};
    use crate::testutil::{Fixture, assert_quiet, with_code};

    const DOMAIN_SPF: &str = "example.org. 3600 IN TXT \"v=spf1 mx -all\"";

    fn name(s: &str) -> Name {
        Name::owner(s).unwrap()
    }

    /// The SPF findings for the correct zone with the domain's SPF record replaced by
    /// `spf` (when given) and `add` appended.
    async fn findings_with(spf: Option<&str>, add: &str) -> Vec<Finding> {
        let fixture = Fixture::new("");
        let mut extra = String::new();
        if let Some(spf) = spf {
            extra.push_str(&format!("example.org. 300 IN TXT \"{spf}\"\n"));
        }
        extra.push_str(add);
        let lookup = fixture.zone_with(&["\"v=spf1 mx"], &extra);
        check(&fixture.ctx(&lookup)).await
    }

    async fn findings(spf: &str, add: &str) -> Vec<Finding> {
        findings_with(Some(spf), add).await
    }

    fn only(findings: &[Finding], code: &str) -> Vec<(Severity, String)> {
        let other: Vec<_> = findings.iter().filter(|f| f.code != code).collect();
        assert!(other.is_empty(), "unexpected other findings: {other:#?}");
        with_code(findings, code)
    }

    /// Include targets `_i<n>.example.org`, each `v=spf1 ip4:198.51.100.<n> -all`.
    fn include_targets(n: usize) -> (String, String) {
        let terms: Vec<String> = (1..=n)
            .map(|i| format!("include:_i{i}.example.org"))
            .collect();
        let zone: String = (1..=n)
            .map(|i| format!("_i{i}.example.org. 300 IN TXT \"v=spf1 ip4:198.51.100.{i} -all\"\n"))
            .collect();
        (terms.join(" "), zone)
    }

    #[tokio::test]
    async fn correct_zone_is_quiet() {
        let fixture = Fixture::new("");
        let lookup = ZoneLookup::new(&fixture.correct_zone());
        let findings = check(&fixture.ctx(&lookup)).await;
        assert_quiet(&findings);
        assert!(
            fixture.correct_zone().contains(DOMAIN_SPF),
            "{}",
            fixture.correct_zone()
        );
    }

    #[tokio::test]
    async fn missing_fires() {
        let f = findings_with(None, "").await;
        assert_eq!(
            only(&f, "spf-missing"),
            [(Severity::Error, "example.org.".into())]
        );
        assert_eq!(f[0].expected.as_deref(), Some("v=spf1 mx -all"));
        assert!(f[0].fix.as_deref().unwrap().contains("v=spf1 mx -all"));
    }

    #[tokio::test]
    async fn missing_is_quiet_beside_other_txt() {
        let f = findings("v=spf1 mx -all", "example.org. 300 IN TXT \"v=spf10 nonsense\"\nexample.org. 300 IN TXT \"google-site-verification=x\"\n").await;
        assert_quiet(&f);
    }

    #[tokio::test]
    async fn multiple_fires() {
        let f = findings(
            "v=spf1 mx -all",
            "example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n",
        )
        .await;
        assert_eq!(
            only(&f, "spf-multiple"),
            [(Severity::Error, "example.org.".into())]
        );
    }

    #[tokio::test]
    async fn multiple_fires_for_an_included_name_and_is_quiet_with_one() {
        let f = findings(
            "v=spf1 mx include:_spf.example.org -all",
            "_spf.example.org. 300 IN TXT \"v=spf1 -all\"\n_spf.example.org. 300 IN TXT \"v=spf1 ?all\"\n",
        )
        .await;
        assert_eq!(
            with_code(&f, "spf-multiple"),
            [(Severity::Error, "_spf.example.org.".into())]
        );
        let f = findings(
            "v=spf1 mx include:_spf.example.org -all",
            "_spf.example.org. 300 IN TXT \"v=spf1 -all\"\n",
        )
        .await;
        assert_quiet(&f);
    }

    #[tokio::test]
    async fn syntax_fires() {
        for bad in [
            "v=spf1 mx foo -all",
            "v=spf1 mx ip4:192.0.2.300 -all",
            "v=spf1 mx ip4:192.0.2.0/33 -all",
            "v=spf1 mx ip4:192.0.2.0/024 -all",
            "v=spf1 mx ip6:2001:db8::/129 -all",
            "v=spf1 a:192.0.2.10 mx -all",
            "v=spf1 mx redirect=a.example.org redirect=b.example.org",
            "v=spf1 mx exists:%{x}.example.org -all",
            "v=spf1 mx exists:%{c}.example.org -all",
            "v=spf1 mx exists:%{i0}.example.org -all",
            "v=spf1 mx include -all",
            "v=spf1 mx -all:x",
            "v=spf1 mx 50% -all",
        ] {
            let f = findings(bad, "").await;
            assert_eq!(
                only(&f, "spf-syntax"),
                [(Severity::Error, "example.org.".into())],
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn syntax_is_quiet_for_valid_rarities() {
        let f = findings(
            "V=SPF1  MX/24//64  ip4:192.0.2.0/24 ip6:2001:db8::/32 a:mail.example.org/32 exists:%{ir}.%{v}._spf.%{d2} ?include:_spf.example.org  foo=bar.%{d} exp=explain.%{d} -all ",
            "_spf.example.org. 300 IN TXT \"v=spf1 -all\"\n",
        )
        .await;
        assert_quiet(&f);
    }

    #[tokio::test]
    async fn syntax_fires_for_an_included_record() {
        let f = findings(
            "v=spf1 mx include:_spf.example.org -all",
            "_spf.example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.1/40 -all\"\n",
        )
        .await;
        assert_eq!(
            with_code(&f, "spf-syntax"),
            [(Severity::Error, "_spf.example.org.".into())]
        );
    }

    #[tokio::test]
    async fn not_pass_fires_for_each_address() {
        let f = findings("v=spf1 ip4:192.0.2.99 -all", "").await;
        assert_eq!(
            only(&f, "spf-not-pass"),
            [
                (Severity::Error, "example.org.".into()),
                (Severity::Error, "example.org.".into())
            ]
        );
        assert!(f[0].message.contains("192.0.2.10"), "{}", f[0].message);
        assert!(f[0].message.contains("`fail`"), "{}", f[0].message);
        assert!(f[1].message.contains("2001:db8::10"), "{}", f[1].message);
        assert!(f[0].fix.as_deref().unwrap().contains("ip4:192.0.2.10"));
    }

    #[tokio::test]
    async fn not_pass_is_quiet_with_addresses_listed() {
        let f = findings("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/64 -all", "").await;
        assert_quiet(&f);
    }

    #[tokio::test]
    async fn too_many_lookups_fires_at_eleven() {
        let (terms, zone) = include_targets(10);
        let f = findings(&format!("v=spf1 mx {terms} -all"), &zone).await;
        // The server passes through `mx` (one lookup); other senders need 11.
        assert_eq!(
            only(&f, "spf-too-many-lookups"),
            [(Severity::Error, "example.org.".into())]
        );
        assert!(f[0].seen.as_deref().unwrap().starts_with("11 lookups"));
    }

    #[tokio::test]
    async fn too_many_lookups_is_quiet_at_ten() {
        let (terms, zone) = include_targets(9);
        let f = findings(&format!("v=spf1 mx {terms} -all"), &zone).await;
        assert_quiet(&f);
    }

    #[tokio::test]
    async fn too_many_lookups_fires_for_an_include_loop() {
        let f = findings(
            "v=spf1 mx include:_a.example.org -all",
            "_a.example.org. 300 IN TXT \"v=spf1 include:_b.example.org -all\"\n\
             _b.example.org. 300 IN TXT \"v=spf1 include:_a.example.org -all\"\n",
        )
        .await;
        let codes = with_code(&f, "spf-too-many-lookups");
        assert_eq!(codes, [(Severity::Error, "example.org.".into())], "{f:#?}");
        assert!(f[0].message.contains("loop"), "{}", f[0].message);
    }

    #[tokio::test]
    async fn too_many_void_lookups_fires_at_three() {
        let f = findings(
            "v=spf1 mx a:nx1.example.org a:nx2.example.org a:nx3.example.org -all",
            "",
        )
        .await;
        assert_eq!(
            only(&f, "spf-too-many-void-lookups"),
            [(Severity::Error, "example.org.".into())]
        );
        assert!(f[0].seen.as_deref().unwrap().contains("nx3"), "{f:#?}");
    }

    #[tokio::test]
    async fn too_many_void_lookups_is_quiet_at_two() {
        let f = findings("v=spf1 mx a:nx1.example.org a:nx2.example.org -all", "").await;
        assert_quiet(&f);
    }

    #[tokio::test]
    async fn include_invalid_fires() {
        let f = findings("v=spf1 mx include:_nothing.example.org -all", "").await;
        assert_eq!(
            only(&f, "spf-include-invalid"),
            [(Severity::Error, "_nothing.example.org.".into())]
        );
        let f = findings_with(Some("v=spf1 redirect=_nothing.example.org"), "").await;
        assert_eq!(
            with_code(&f, "spf-include-invalid"),
            [(Severity::Error, "_nothing.example.org.".into())]
        );
        // With the redirect target missing, the server does not pass either.
        assert_eq!(with_code(&f, "spf-not-pass").len(), 2);
    }

    #[tokio::test]
    async fn include_and_redirect_are_quiet_with_records() {
        let f = findings(
            "v=spf1 include:_other.example.org redirect=_spf.example.org",
            "_spf.example.org. 300 IN TXT \"v=spf1 mx:example.org -all\"\n\
             _other.example.org. 300 IN TXT \"v=spf1 ip4:203.0.113.0/24 -all\"\n",
        )
        .await;
        assert_quiet(&f);
    }

    #[tokio::test]
    async fn mx_too_many_fires_at_eleven_and_is_quiet_at_ten() {
        let zone = |n: usize| -> String {
            (1..=n)
                .map(|i| format!("_big.example.org. 300 IN MX {i} mx{i}.example.net.\n"))
                .collect()
        };
        let f = findings("v=spf1 mx mx:_big.example.org -all", &zone(11)).await;
        assert_eq!(
            only(&f, "spf-mx-too-many"),
            [(Severity::Error, "_big.example.org.".into())]
        );
        let f = findings("v=spf1 mx mx:_big.example.org -all", &zone(10)).await;
        assert_quiet(&f);
    }

    /// A [`ZoneLookup`] that answers SERVFAIL for one name.
    struct Failing {
        zone: ZoneLookup,
        broken: Name,
    }

    #[async_trait]
    impl Lookup for Failing {
        async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError> {
            let mut answer = self.zone.query(name, rtype).await?;
            if name == &self.broken {
                answer.rcode = Rcode::ServFail;
                answer.records.clear();
            }
            Ok(answer)
        }
    }

    #[tokio::test]
    async fn temperror_fires_and_is_quiet_when_the_server_answers() {
        let fixture = Fixture::new("");
        let zone = fixture.zone_with(
            &["\"v=spf1 mx"],
            "example.org. 300 IN TXT \"v=spf1 include:_broken.example.org mx -all\"\n\
             _broken.example.org. 300 IN TXT \"v=spf1 -all\"\n",
        );
        let quiet = check(&fixture.ctx(&zone)).await;
        assert_quiet(&quiet);
        let lookup = Failing {
            zone,
            broken: name("_broken.example.org"),
        };
        let f = check(&fixture.ctx(&lookup)).await;
        assert_eq!(
            with_code(&f, "spf-temperror"),
            [(Severity::Error, "_broken.example.org.".into())]
        );
        // The include comes first, so the server's mail gets temperror too.
        assert_eq!(with_code(&f, "spf-not-pass").len(), 2, "{f:#?}");
    }

    #[tokio::test]
    async fn ptr_fires_and_is_quiet_without_it() {
        let f = findings("v=spf1 mx ptr -all", "").await;
        assert_eq!(
            only(&f, "spf-ptr"),
            [(Severity::Warning, "example.org.".into())]
        );
        let f = findings("v=spf1 mx a -all", "example.org. 300 IN A 192.0.2.10\n").await;
        assert_quiet(&f);
    }

    #[tokio::test]
    async fn ptr_matches_a_confirmed_name() {
        // Only `ptr`: the PTR of 192.0.2.10 is mail.example.org, which resolves back.
        let fixture = Fixture::new("");
        let lookup = fixture.zone_with(
            &["\"v=spf1 mx"],
            "example.org. 300 IN TXT \"v=spf1 ptr -all\"\n",
        );
        let outcome = evaluate(
            &lookup,
            &name("example.org"),
            "192.0.2.10".parse().unwrap(),
            "postmaster@example.org",
        )
        .await;
        assert_eq!(outcome.result, SpfResult::Pass, "{}", outcome.trace_text());
        let outcome = evaluate(
            &lookup,
            &name("example.org"),
            "192.0.2.11".parse().unwrap(),
            "postmaster@example.org",
        )
        .await;
        assert_eq!(outcome.result, SpfResult::Fail);
        assert_eq!(outcome.void_lookups, 1, "{}", outcome.trace_text());
    }

    #[tokio::test]
    async fn pass_all_fires_and_is_quiet_with_fail_all() {
        for spf in ["v=spf1 mx +all", "v=spf1 mx all"] {
            let f = findings(spf, "").await;
            assert_eq!(
                only(&f, "spf-pass-all"),
                [(Severity::Warning, "example.org.".into())]
            );
        }
        assert_quiet(&findings("v=spf1 mx -all", "").await);
    }

    #[tokio::test]
    async fn neutral_all_fires_and_is_quiet_with_softfail_all() {
        let f = findings("v=spf1 mx ?all", "").await;
        assert_eq!(
            only(&f, "spf-neutral-all"),
            [(Severity::Info, "example.org.".into())]
        );
        assert_quiet(&findings("v=spf1 mx ~all", "").await);
    }

    #[tokio::test]
    async fn no_all_fires_and_is_quiet_with_redirect() {
        let f = findings("v=spf1 mx", "").await;
        assert_eq!(
            only(&f, "spf-no-all"),
            [(Severity::Info, "example.org.".into())]
        );
        let f = findings(
            "v=spf1 redirect=_spf.example.org",
            "_spf.example.org. 300 IN TXT \"v=spf1 mx:example.org -all\"\n",
        )
        .await;
        assert_quiet(&f);
    }

    #[tokio::test]
    async fn host_missing_fires() {
        let fixture = Fixture::new("");
        let lookup = fixture.zone_with(&["\"v=spf1 a"], "");
        let f = check(&fixture.ctx(&lookup)).await;
        assert_eq!(
            only(&f, "spf-host-missing"),
            [(Severity::Warning, "mail.example.org.".into())]
        );
        assert!(f[0].fix.as_deref().unwrap().contains("v=spf1 a -all"));
    }

    #[tokio::test]
    async fn host_missing_is_quiet_for_an_exchanger_outside_the_zone() {
        let mut config = crate::testutil::config("");
        config.server.mail_exchangers[0].hostname = name("mx.example.net");
        let fixture = Fixture::from_config(config);
        let lookup = fixture.zone_with(
            &["\"v=spf1 a", "\"v=spf1 mx"],
            "example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all\"\n",
        );
        let f = check(&fixture.ctx(&lookup)).await;
        assert_quiet(&f);
    }

    #[tokio::test]
    async fn host_not_pass_fires_and_is_quiet_when_it_passes() {
        let fixture = Fixture::new("");
        let lookup = fixture.zone_with(
            &["\"v=spf1 a"],
            "mail.example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n",
        );
        let f = check(&fixture.ctx(&lookup)).await;
        // The IPv4 address passes; the IPv6 one does not.
        assert_eq!(
            only(&f, "spf-host-not-pass"),
            [(Severity::Error, "mail.example.org.".into())]
        );
        assert!(f[0].message.contains("2001:db8::10"), "{}", f[0].message);
        let lookup = fixture.zone_with(
            &["\"v=spf1 a"],
            "mail.example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all\"\n",
        );
        assert_quiet(&check(&fixture.ctx(&lookup)).await);
    }

    // --- the evaluator ---------------------------------------------------------------

    fn rfc_evaluator(ip: &str) -> Evaluator<'static> {
        static EMPTY: std::sync::OnceLock<ZoneLookup> = std::sync::OnceLock::new();
        let lookup = EMPTY.get_or_init(ZoneLookup::default);
        Evaluator::new(
            lookup,
            ip.parse().unwrap(),
            "strong-bad@email.example.com",
            false,
        )
    }

    fn expand(e: &Evaluator<'_>, spec: &str) -> String {
        let spec = domain_spec(spec, spec).unwrap_or_else(|err| panic!("{spec}: {err}"));
        e.expand(&name("email.example.com"), &spec)
    }

    #[test]
    fn macros_expand_as_in_rfc_7208_section_7_4() {
        let e = rfc_evaluator("192.0.2.3");
        for (spec, expected) in [
            ("%{s}.x.example", "strong-bad@email.example.com.x.example"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            (
                "%{ir}.%{v}._spf.%{d2}",
                "3.2.0.192.in-addr._spf.example.com",
            ),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            (
                "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
                "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
            ),
            (
                "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
                "3.2.0.192.in-addr.strong.lp._spf.example.com",
            ),
            (
                "%{d2}.trusted-domains.example.net",
                "example.com.trusted-domains.example.net",
            ),
            ("%{S}.x.example", "strong-bad%40email.example.com.x.example"),
            ("a%%b%_c%-d.example.com", "a%b c%20d.example.com"),
        ] {
            assert_eq!(expand(&e, spec), expected, "{spec}");
        }
        let e6 = rfc_evaluator("2001:db8::cb01");
        assert_eq!(
            expand(&e6, "%{ir}.%{v}._spf.%{d2}"),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn cidr_matching() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert!(in_v4(ip("192.0.2.77"), ip("192.0.2.0"), 24));
        assert!(!in_v4(ip("192.0.3.1"), ip("192.0.2.0"), 24));
        assert!(in_v4(ip("203.0.113.9"), ip("0.0.0.0"), 0));
        assert!(in_v4(ip("192.0.2.1"), ip("192.0.2.1"), 32));
        let ip6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert!(in_v6(ip6("2001:db8::1"), ip6("2001:db8::"), 32));
        assert!(!in_v6(ip6("2001:db9::1"), ip6("2001:db8::"), 32));
        assert!(in_v6(ip6("::1"), ip6("::"), 0));
    }

    #[test]
    fn records_are_selected_by_version() {
        assert!(is_spf_record(b"v=spf1"));
        assert!(is_spf_record(b"V=Spf1 -all"));
        assert!(!is_spf_record(b"v=spf10 -all"));
        assert!(!is_spf_record(b"v=spf1;-all"));
        assert!(!is_spf_record(b" v=spf1 -all"));
    }

    #[tokio::test]
    async fn evaluation_follows_rfc_7208() {
        let zone = ZoneLookup::new(
            "example.com. 300 IN TXT \"v=spf1 -ip4:192.0.2.66 a/30 mx:mx.example.com include:_inc.example.com redirect=_red.example.com\"\n\
             example.com. 300 IN A 192.0.2.4\n\
             mx.example.com. 300 IN MX 10 smtp.example.net.\n\
             smtp.example.net. 300 IN A 198.51.100.25\n\
             smtp.example.net. 300 IN AAAA 2001:db8:25::1\n\
             _inc.example.com. 300 IN TXT \"v=spf1 ip6:2001:db8:1::/48 ~all\"\n\
             _red.example.com. 300 IN TXT \"v=spf1 exists:%{i}.allow.example.com ~all\"\n\
             203.0.113.5.allow.example.com. 300 IN A 127.0.0.2\n",
        );
        let domain = name("example.com");
        let eval = |ip: &'static str| {
            let zone = &zone;
            let domain = &domain;
            async move { evaluate(zone, domain, ip.parse().unwrap(), "someone@example.com").await }
        };
        let cases = [
            ("192.0.2.66", SpfResult::Fail, 0, 0),
            ("192.0.2.6", SpfResult::Pass, 1, 0),         // a/30
            ("198.51.100.25", SpfResult::Pass, 2, 0),     // mx
            ("2001:db8:25::1", SpfResult::Pass, 2, 1),    // mx (AAAA); `a` has no AAAA: void
            ("2001:db8:1::9", SpfResult::Pass, 3, 1),     // include
            ("203.0.113.5", SpfResult::Pass, 5, 0),       // redirect → exists
            ("203.0.113.6", SpfResult::SoftFail, 5, 1),   // redirect → ~all; exists void
            ("::ffff:192.0.2.6", SpfResult::Pass, 1, 0),  // IPv4-mapped: a/30
            ("2001:db8:2::1", SpfResult::SoftFail, 5, 2), // `a` and `exists` void
        ];
        for (ip, result, lookups, voids) in cases {
            let o = eval(ip).await;
            assert_eq!(
                (o.result, o.lookups, o.void_lookups),
                (result, lookups, voids),
                "{ip}:\n{}",
                o.trace_text()
            );
        }
        // The walk visits every reachable term: a, mx, include, redirect, exists.
        let w = walk(
            &zone,
            &domain,
            "192.0.2.200".parse().unwrap(),
            "x@example.com",
        )
        .await;
        assert_eq!(w.lookups, 5, "{}", w.trace_text());
        assert_eq!(w.result, SpfResult::Neutral);
        assert!(w.problems.is_empty());
    }

    #[tokio::test]
    async fn redirect_is_ignored_beside_all_and_include_none_is_permerror() {
        let zone = ZoneLookup::new(
            "a.example. 300 IN TXT \"v=spf1 -all redirect=b.example\"\n\
             b.example. 300 IN TXT \"v=spf1 +all\"\n\
             c.example. 300 IN TXT \"v=spf1 include:nothing.example +all\"\n\
             d.example. 300 IN TXT \"v=spf1 include:b.example -all\"\n",
        );
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = evaluate(&zone, &name("a.example"), ip, "x@a.example").await;
        assert_eq!((a.result, a.lookups), (SpfResult::Fail, 0));
        let c = evaluate(&zone, &name("c.example"), ip, "x@c.example").await;
        assert_eq!(c.result, SpfResult::PermError);
        assert_eq!(c.problems[0].kind, ProblemKind::NoRecord);
        let d = evaluate(&zone, &name("d.example"), ip, "x@d.example").await;
        assert_eq!((d.result, d.lookups), (SpfResult::Pass, 1));
        let none = evaluate(&zone, &name("nothing.example"), ip, "x@nothing.example").await;
        assert_eq!(none.result, SpfResult::None);
    }

    #[tokio::test]
    async fn the_eleventh_lookup_is_a_permerror_when_evaluating() {
        let (terms, zone) = include_targets(11);
        // Two character-strings: the record is longer than 255 bytes.
        let (first, second) = terms.split_at(terms.len() / 2);
        let zone = ZoneLookup::new(&format!(
            "example.org. 300 IN TXT \"v=spf1 {first}\" \"{second} -all\"\n{zone}"
        ));
        let o = evaluate(
            &zone,
            &name("example.org"),
            "192.0.2.1".parse().unwrap(),
            "x@example.org",
        )
        .await;
        assert_eq!((o.result, o.lookups), (SpfResult::PermError, 11));
        assert_eq!(o.problems[0].kind, ProblemKind::TooManyLookups);
        // The tenth include's address still passes: the limit is not reached.
        let o = evaluate(
            &zone,
            &name("example.org"),
            "198.51.100.10".parse().unwrap(),
            "x@example.org",
        )
        .await;
        assert_eq!((o.result, o.lookups), (SpfResult::Pass, 10));
        // The walk counts them all.
        let w = walk(
            &zone,
            &name("example.org"),
            "192.0.2.1".parse().unwrap(),
            "x@example.org",
        )
        .await;
        assert_eq!((w.result, w.lookups), (SpfResult::PermError, 11));
    }
}
