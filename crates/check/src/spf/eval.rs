//! SPF evaluation: `check_host()` (RFC 7208 §4) with its lookup limits (§4.6.4), and the
//! walk that visits every term a client can reach.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;

use mailzone_records::{Name, RData};

use crate::lookup::{Answer, Lookup, Rcode};

use super::*;

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

/// One of the two counters RFC 7208 §4.6.4 limits, as the trace and problems name it.
struct Limit {
    counted: &'static str,
    max: u32,
    kind: ProblemKind,
    outcome: &'static str,
}

const LOOKUP_LIMIT: Limit = Limit {
    counted: "DNS-querying term",
    max: MAX_LOOKUPS,
    kind: ProblemKind::TooManyLookups,
    outcome: "permerror: over the 10-lookup limit",
};

const VOID_LIMIT: Limit = Limit {
    counted: "void lookup",
    max: MAX_VOID_LOOKUPS,
    kind: ProblemKind::TooManyVoidLookups,
    outcome: "permerror: over the 2-void-lookup limit",
};

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

pub(crate) type Step<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) struct Evaluator<'l> {
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
pub(crate) type TermResult = Result<bool, SpfResult>;

impl<'l> Evaluator<'l> {
    pub(crate) fn new(
        lookup: &'l dyn Lookup,
        ip: IpAddr,
        sender: &str,
        walk: bool,
    ) -> Evaluator<'l> {
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
            self.over_limit(domain, term, &LOOKUP_LIMIT, self.lookups)?;
        }
        Ok(())
    }

    /// Counts a void lookup (§4.6.4).
    fn count_void(&mut self, domain: &Name, term: &str) -> Result<(), SpfResult> {
        self.void_lookups += 1;
        if self.void_lookups > MAX_VOID_LOOKUPS && !self.over_void_limit {
            self.over_void_limit = true;
            self.over_limit(domain, term, &VOID_LIMIT, self.void_lookups)?;
        }
        Ok(())
    }

    /// Notes that `term` took a counter past its limit (the first time only): a
    /// `permerror` (§4.6.4).
    fn over_limit(
        &mut self,
        domain: &Name,
        term: &str,
        limit: &Limit,
        count: u32,
    ) -> Result<(), SpfResult> {
        let detail = format!(
            "`{term}` at {} is {} number {count}; RFC 7208 §4.6.4 allows {}",
            domain.as_str(),
            limit.counted,
            limit.max
        );
        self.step(domain, term, limit.outcome);
        self.problem(limit.kind, domain, detail, SpfResult::PermError)?;
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
        let records = super::parse::spf_texts(&answer.records);
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

    pub(crate) fn expand(&self, domain: &Name, spec: &DomainSpec) -> String {
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
                let rtype = self.address_type();
                let Some((target, answer)) = self
                    .query_target(domain, term, spec.as_ref(), rtype)
                    .await?
                else {
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
                let Some((target, answer)) =
                    self.query_target(domain, term, spec.as_ref(), "MX").await?
                else {
                    return Ok(false);
                };
                let mut exchangers = crate::support::exchangers(&answer.records);
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
    /// The answer to `rtype` at the term's target (the current domain when the term names
    /// none), with the target; `None` when there is no target or no usable answer.
    async fn query_target(
        &mut self,
        domain: &Name,
        term: &str,
        spec: Option<&DomainSpec>,
        rtype: &str,
    ) -> Result<Option<(Name, Answer)>, SpfResult> {
        let Some(target) = self.target_or_current(domain, term, spec)? else {
            return Ok(None);
        };
        let answer = self.query(domain, term, &target, rtype).await?;
        Ok(answer.map(|answer| (target, answer)))
    }

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
        let reverse = crate::ptr::reverse_name(self.ip);
        let Some(answer) = self.query(domain, term, &reverse, "PTR").await? else {
            return Ok(false);
        };
        let mut names = crate::support::ptr_names(&answer.records);
        names.truncate(MAX_NAMES_PER_TERM);
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

pub(crate) fn addresses(answer: &Answer) -> Vec<IpAddr> {
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

pub(crate) fn in_v4(ip: Ipv4Addr, network: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    u32::from(ip) & mask == u32::from(network) & mask
}

pub(crate) fn in_v6(ip: Ipv6Addr, network: Ipv6Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    u128::from(ip) & mask == u128::from(network) & mask
}

/// The 32 nibbles of an IPv6 address, most significant first (§7.3 `i` for IPv6).
pub(crate) fn nibbles(ip: Ipv6Addr) -> Vec<String> {
    ip.octets()
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .map(|n| format!("{n:x}"))
        .collect()
}

/// URL escaping of an uppercase macro (RFC 7208 §7.3, RFC 3986 unreserved characters kept).
pub(crate) fn url_escape(text: &str) -> String {
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
