//! Unit-test fixtures: a configured domain, its desired records, a zone served from text
//! (the desired records, edited per test) and a [`DomainContext`] over it.

pub mod web;

use std::path::Path;

use mailzone_records::{Config, DesiredRecord, PlanInput};

use crate::context::{CheckOptions, DomainContext};
use crate::finding::{Finding, Severity};
use crate::lookup::{Lookup, ZoneLookup};

/// The server and `example.org` as in examples/example.org.toml, without files (automatic
/// DKIM, no certificate); `domain_extra` is added to the domain's table.
pub fn config(domain_extra: &str) -> Config {
    let text = format!(
        r#"
[server]
hostname = "mail.example.org"
ipv4 = ["192.0.2.10"]
ipv6 = ["2001:db8::10"]

[[server.mailExchangers]]
hostname = "mail.example.org"
priority = 10

[server.services]
imap = {{ cleartext = false }}
submission = {{ cleartext = true }}
jmap = {{}}

[domain."example.org"]
dmarc = {{ policy = "reject" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"] }} }}
{domain_extra}
"#
    );
    mailzone_records::config::parse(&text, Path::new("."))
        .unwrap_or_else(|e| panic!("bad test config: {e}"))
}

pub struct Fixture {
    pub config: Config,
    pub desired: Vec<DesiredRecord>,
    pub options: CheckOptions,
}

impl Fixture {
    pub fn new(domain_extra: &str) -> Fixture {
        Fixture::from_config(config(domain_extra))
    }

    pub fn from_config(config: Config) -> Fixture {
        let desired = mailzone_records::plan(PlanInput {
            server: &config.server,
            domain: &config.domains[0],
            dkim_keys: &[],
            tlsa: None,
        })
        .unwrap();
        Fixture {
            config,
            desired,
            options: CheckOptions {
                fetch_mta_sts: false,
                ..CheckOptions::default()
            },
        }
    }

    /// The desired records as zone-file lines (what a correct zone serves), plus the
    /// address of the server host and the PTR records of its addresses.
    pub fn correct_zone(&self) -> String {
        let mut text = String::new();
        for d in &self.desired {
            text.push_str(&crate::support::line(&d.record));
            text.push('\n');
        }
        text.push_str(
            "10.2.0.192.in-addr.arpa. 300 IN PTR mail.example.org.\n\
             0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR mail.example.org.\n",
        );
        text
    }

    /// The correct zone with every line containing one of `remove` dropped (starting with it,
    /// for a pattern starting with `^`) and `add` appended.
    pub fn zone_with(&self, remove: &[&str], add: &str) -> ZoneLookup {
        let text: String = self
            .correct_zone()
            .lines()
            .filter(|l| {
                !remove.iter().any(|r| match r.strip_prefix('^') {
                    Some(prefix) => l.starts_with(prefix),
                    None => l.contains(r),
                })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        ZoneLookup::new(&format!("{text}{add}"))
    }

    pub fn ctx<'a>(&'a self, lookup: &'a dyn Lookup) -> DomainContext<'a> {
        DomainContext {
            server: &self.config.server,
            domain: &self.config.domains[0],
            desired: &self.desired,
            dkim_keys: &[],
            tlsa: None,
            lookup,
            options: &self.options,
        }
    }
}

/// The findings with `code`, as (severity, name).
pub fn with_code(findings: &[Finding], code: &str) -> Vec<(Severity, String)> {
    findings
        .iter()
        .filter(|f| f.code == code)
        .map(|f| (f.severity, f.name.clone()))
        .collect()
}

/// One row of a check's unit-test table: a zone (the correct one, edited) and what the
/// check must report for it. Every assertion names the row, so a failing table says which
/// case broke.
pub struct Case {
    name: String,
    remove: Vec<&'static str>,
    add: String,
    whole_zone: Option<String>,
    expectations: Vec<Expect>,
}

/// What a [`Case`] requires of the findings.
enum Expect {
    /// No findings at all.
    Quiet,
    /// Exactly these (severity, name) findings with the code.
    Fires(&'static str, Vec<(Severity, String)>),
    /// This many findings with the code.
    Count(&'static str, usize),
    /// No finding with any other code than those the case fires or counts.
    Alone,
    /// A field of the finding at this index.
    Field(usize, Field, Match, String),
    /// The record type of the first finding.
    RecordType(Option<mailzone_records::RecordPurpose>),
}

#[derive(Debug, Clone, Copy)]
pub enum Field {
    Message,
    Seen,
    Expected,
    Fix,
}

#[derive(Debug, Clone, Copy)]
pub enum Match {
    Is,
    Contains,
    StartsWith,
}

/// A case named `name`, over the correct zone until edited.
pub fn case(name: impl Into<String>) -> Case {
    Case {
        name: name.into(),
        remove: Vec::new(),
        add: String::new(),
        whole_zone: None,
        expectations: Vec::new(),
    }
}

impl Case {
    /// Drops the correct zone's lines matching any of `patterns` (see [`Fixture::zone_with`]).
    pub fn remove(mut self, patterns: &[&'static str]) -> Case {
        self.remove.extend_from_slice(patterns);
        self
    }

    /// Appends zone-file lines.
    pub fn add(mut self, lines: impl AsRef<str>) -> Case {
        self.add.push_str(lines.as_ref());
        self
    }

    /// Serves exactly `text` instead of the (edited) correct zone.
    pub fn zone(mut self, text: impl Into<String>) -> Case {
        self.whole_zone = Some(text.into());
        self
    }

    pub fn quiet(self) -> Case {
        self.expect(Expect::Quiet)
    }

    /// One finding with `code`, at `name`.
    pub fn fires(self, code: &'static str, severity: Severity, name: &str) -> Case {
        self.fires_at(code, severity, &[name])
    }

    /// One finding with `code` at each of `names`, in that order.
    pub fn fires_at(self, code: &'static str, severity: Severity, names: &[&str]) -> Case {
        let found = names.iter().map(|n| (severity, n.to_string())).collect();
        self.expect(Expect::Fires(code, found))
    }

    pub fn count(self, code: &'static str, n: usize) -> Case {
        self.expect(Expect::Count(code, n))
    }

    /// No finding with `code`.
    pub fn silent(self, code: &'static str) -> Case {
        self.count(code, 0)
    }

    /// Nothing but the codes the case fires or counts.
    pub fn alone(self) -> Case {
        self.expect(Expect::Alone)
    }

    /// A field of the first finding.
    pub fn first(self, field: Field, how: Match, text: impl Into<String>) -> Case {
        self.nth(0, field, how, text)
    }

    /// A field of the finding at `index` (the checks report in a fixed order).
    pub fn nth(self, index: usize, field: Field, how: Match, text: impl Into<String>) -> Case {
        self.expect(Expect::Field(index, field, how, text.into()))
    }

    pub fn seen(self, text: &str) -> Case {
        self.first(Field::Seen, Match::Is, text)
    }

    pub fn expected(self, text: &str) -> Case {
        self.first(Field::Expected, Match::Is, text)
    }

    pub fn fix(self, text: &str) -> Case {
        self.first(Field::Fix, Match::Is, text)
    }

    pub fn purpose(self, purpose: mailzone_records::RecordPurpose) -> Case {
        self.expect(Expect::RecordType(Some(purpose)))
    }

    fn expect(mut self, expectation: Expect) -> Case {
        self.expectations.push(expectation);
        self
    }

    /// The zone the case serves.
    pub fn lookup(&self, fixture: &Fixture) -> ZoneLookup {
        match &self.whole_zone {
            Some(text) => ZoneLookup::new(text),
            None => fixture.zone_with(&self.remove, &self.add),
        }
    }

    /// Asserts the case's expectations of `findings`.
    pub fn assert(&self, findings: &[Finding]) {
        let name = self.name.as_str();
        for expectation in &self.expectations {
            match expectation {
                Expect::Quiet => {
                    assert!(
                        findings.is_empty(),
                        "{name}: unexpected findings: {findings:#?}"
                    )
                }
                Expect::Fires(code, found) => {
                    assert_eq!(&with_code(findings, code), found, "{name}: {findings:#?}")
                }
                Expect::Count(code, n) => {
                    assert_eq!(with_code(findings, code).len(), *n, "{name}: {findings:#?}")
                }
                Expect::Alone => self.assert_alone(findings),
                Expect::Field(index, field, how, text) => {
                    assert_field(name, nth(name, findings, *index), *field, *how, text)
                }
                Expect::RecordType(purpose) => {
                    assert_eq!(&nth(name, findings, 0).purpose, purpose, "{name}")
                }
            }
        }
    }

    fn assert_alone(&self, findings: &[Finding]) {
        let fired: Vec<&str> = self
            .expectations
            .iter()
            .filter_map(|e| match e {
                Expect::Fires(code, _) | Expect::Count(code, _) => Some(*code),
                _ => None,
            })
            .collect();
        let other: Vec<_> = findings
            .iter()
            .filter(|f| !fired.contains(&f.code))
            .collect();
        assert!(
            other.is_empty(),
            "{}: unexpected other findings: {other:#?}",
            self.name
        );
    }
}

fn nth<'f>(case: &str, findings: &'f [Finding], index: usize) -> &'f Finding {
    findings
        .get(index)
        .unwrap_or_else(|| panic!("{case}: no finding {index} in {findings:#?}"))
}

fn assert_field(case: &str, finding: &Finding, field: Field, how: Match, text: &str) {
    let value = match field {
        Field::Message => Some(finding.message.as_str()),
        Field::Seen => finding.seen.as_deref(),
        Field::Expected => finding.expected.as_deref(),
        Field::Fix => finding.fix.as_deref(),
    };
    let holds = value.is_some_and(|v| match how {
        Match::Is => v == text,
        Match::Contains => v.contains(text),
        Match::StartsWith => v.starts_with(text),
    });
    assert!(
        holds,
        "{case}: {field:?} {value:?} does not {how:?} {text:?}"
    );
}

/// Runs `check` on each case's zone and asserts the case's expectations.
pub async fn assert_cases(
    check: impl AsyncFn(&DomainContext<'_>) -> Vec<Finding>,
    fixture: &Fixture,
    cases: impl IntoIterator<Item = &Case>,
) {
    for case in cases {
        let lookup = case.lookup(fixture);
        case.assert(&check(&fixture.ctx(&lookup)).await);
    }
}

/// Runs `check` over the standard fixture: on the correct zone, which must give no finding
/// at all, then on each case.
pub async fn assert_table(check: impl AsyncFn(&DomainContext<'_>) -> Vec<Finding>, cases: &[Case]) {
    let correct = case("the correct zone").quiet();
    assert_cases(
        check,
        &Fixture::new(""),
        std::iter::once(&correct).chain(cases),
    )
    .await;
}

/// Declares the unit test `$test`: [`assert_table`] with the module's `check` and `$cases`
/// (an array or a `Vec` of [`Case`]s).
macro_rules! check_cases {
    ($test:ident, $cases:expr) => {
        #[tokio::test]
        async fn $test() {
            $crate::testutil::assert_table(check, &$cases).await;
        }
    };
}
pub(crate) use check_cases;
