//! SPF records: selection (RFC 7208 §4.5) and syntax (§4.6, §12), macros (§7.1).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

/// RFC 7208 §4.5: an SPF record starts with exactly `v=spf1` (case-insensitive, RFC 5234
/// §2.3) followed by a space or the end of the record.
pub fn is_spf_record(text: &[u8]) -> bool {
    text.len() >= 6
        && text[..6].eq_ignore_ascii_case(b"v=spf1")
        && (text.len() == 6 || text[6] == b' ')
}

/// The texts of the SPF records among `records` (RFC 7208 §4.5: other TXT records are
/// discarded).
pub fn spf_texts(records: &[mailzone_records::diff::LiveRecord]) -> Vec<String> {
    let mut texts = crate::support::texts(records);
    texts.retain(|text| is_spf_record(text.as_bytes()));
    texts
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
    pub(crate) fn result(self) -> SpfResult {
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
    pub(crate) fn has_macros(&self) -> bool {
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
pub(crate) fn modifier(term: &str) -> Option<(&str, &str)> {
    let end = term.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))?;
    let name = &term[..end];
    (term[end..].starts_with('=') && name.starts_with(|c: char| c.is_ascii_alphabetic()))
        .then(|| (name, &term[end + 1..]))
}

pub(crate) fn directive(term: &str) -> Result<Directive, String> {
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
                let (network, len) = network::<Ipv4Addr>(term, address, len, "IPv4", 32)?;
                Mechanism::Ip4 { network, len }
            } else {
                let (network, len) = network::<Ipv6Addr>(term, address, len, "IPv6", 128)?;
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
pub(crate) fn dual_cidr(args: &str) -> Result<(&str, u8, u8), String> {
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

/// The network and prefix length of an `ip4` or `ip6` term (§5.6): `address` of the
/// `family` and an optional CIDR length up to `max`, the whole address without one.
fn network<A: std::str::FromStr>(
    term: &str,
    address: &str,
    len: Option<&str>,
    family: &str,
    max: u8,
) -> Result<(A, u8), String> {
    let network = address
        .parse()
        .map_err(|_| format!("`{term}`: `{address}` is not an {family} address"))?;
    let len = match len {
        Some(l) => cidr(l, max).map_err(|e| format!("`{term}`: {e}"))?,
        None => max,
    };
    Ok((network, len))
}

/// A CIDR length: `"0" / %x31-39 *DIGIT`, at most `max` (RFC 7208 §12).
pub(crate) fn cidr(digits: &str, max: u8) -> Result<u8, String> {
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
pub(crate) fn domain_spec(text: &str, term: &str) -> Result<DomainSpec, String> {
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
pub(crate) fn is_toplabel(label: &str) -> bool {
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
pub(crate) fn macro_string(text: &str, explanation: bool) -> Result<Vec<MacroPart>, String> {
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
pub(crate) fn macro_expand(body: &str, explanation: bool) -> Result<MacroPart, String> {
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
