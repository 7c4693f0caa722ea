//! Cross-check with checkdmarc (a tool nobody here wrote): a dozen mail domains, each with
//! one SPF or DMARC particularity, served by a real Knot; checkdmarc's Python API
//! (`check_domains(..., nameservers=[Do53Nameserver("127.0.0.1", port)])`) and mailzone
//! must agree on whether the SPF and DMARC records are valid and on the number of SPF DNS
//! lookups (RFC 7208 §4.6.4).
//!
//! The Python comes from `MAILZONE_TEST_PYTHON`, else `<repo>/.venv-test/bin/python`
//! (made by scripts/test with checkdmarc 6.0.4). Without it the test is skipped, or fails
//! under `MAILZONE_REQUIRE_TOOLS=1`.
//!
//! mailzone's "valid": SPF has none of the findings that make receivers' evaluation a
//! `permerror`/`none` (missing, several, syntax, more than 10 lookups, more than 2 void
//! lookups, include target without record); DMARC has none of `dmarc-missing`,
//! `dmarc-multiple`, `dmarc-syntax`. The lookup count is mailzone's walk (every reachable
//! term), which is what checkdmarc counts statically.
//!
//! The zones carry no `_mta-sts` record: with one, checkdmarc would fetch the policy over
//! HTTPS through the system resolver, off loopback.

mod spf_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mailzone_check::finding::Finding;
use mailzone_check::{DnsLookup, dmarc, spf};
use mailzone_records::Name;
use mailzone_testkit::ZoneSpec;
use serde_json::Value;
use spf_support::{Case, knot};

/// (zone, lines removed from the correct zone, lines added).
const DOMAINS: &[(&str, &[&str], &str)] = &[
    ("xc-good.test", &[], ""),
    (
        "xc-two-spf.test",
        &[],
        "@ 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n",
    ),
    (
        "xc-eleven.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx include:_a.xc-eleven.test include:_b.xc-eleven.test -all\"\n\
         _a 300 IN TXT \"v=spf1 a:mail.xc-eleven.test include:_a1.xc-eleven.test include:_a2.xc-eleven.test include:_a3.xc-eleven.test -all\"\n\
         _b 300 IN TXT \"v=spf1 include:_b1.xc-eleven.test include:_b2.xc-eleven.test include:_b3.xc-eleven.test include:_b4.xc-eleven.test -all\"\n\
         _a1 300 IN TXT \"v=spf1 ip4:198.51.100.1 -all\"\n\
         _a2 300 IN TXT \"v=spf1 ip4:198.51.100.2 -all\"\n\
         _a3 300 IN TXT \"v=spf1 ip4:198.51.100.3 -all\"\n\
         _b1 300 IN TXT \"v=spf1 ip4:198.51.100.5 -all\"\n\
         _b2 300 IN TXT \"v=spf1 ip4:198.51.100.6 -all\"\n\
         _b3 300 IN TXT \"v=spf1 ip4:198.51.100.7 -all\"\n\
         _b4 300 IN TXT \"v=spf1 ip4:198.51.100.8 -all\"\n",
    ),
    (
        "xc-ten.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx a include:_a.xc-ten.test redirect=_r.xc-ten.test\"\n\
         @ 300 IN A 192.0.2.10\n\
         _a 300 IN TXT \"v=spf1 include:_a1.xc-ten.test include:_a2.xc-ten.test -all\"\n\
         _a1 300 IN TXT \"v=spf1 ip4:198.51.100.1 -all\"\n\
         _a2 300 IN TXT \"v=spf1 ip4:198.51.100.2 -all\"\n\
         _r 300 IN TXT \"v=spf1 mx:xc-ten.test a:mail.xc-ten.test include:_a1.xc-ten.test ~all\"\n",
    ),
    (
        "xc-void.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx a:nx1.xc-void.test a:nx2.xc-void.test mx:nx3.xc-void.test -all\"\n",
    ),
    (
        "xc-include.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx include:_missing.xc-include.test -all\"\n",
    ),
    (
        "xc-syntax.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx ip4:192.0.2.0/33 -all\"\n",
    ),
    (
        "xc-dmarc-none.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@xc-dmarc-none.test\"\n",
    ),
    (
        "xc-dmarc-two.test",
        &[],
        "_dmarc 300 IN TXT \"v=DMARC1; p=none\"\n",
    ),
    (
        "xc-dmarc-syntax.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; p=block\"\n",
    ),
    (
        "xc-extrua.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@reports.test\"\n",
    ),
    ("xc-no-dmarc.test", &["v=DMARC1"], ""),
    // RFC 9989 §4.7: no `p` means p=none (mailzone said "syntax error" until this
    // cross-check showed that RFC 9989 made `p` optional).
    (
        "xc-nop.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; rua=mailto:postmaster@xc-nop.test\"\n",
    ),
    (
        "xc-dup.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 include:_a.xc-dup.test include:_b.xc-dup.test mx -all\"\n\
         _a 300 IN TXT \"v=spf1 include:_c.xc-dup.test -all\"\n\
         _b 300 IN TXT \"v=spf1 include:_c.xc-dup.test -all\"\n\
         _c 300 IN TXT \"v=spf1 a:mail.xc-dup.test mx:xc-dup.test -all\"\n",
    ),
    (
        "xc-ptr.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 ptr:nowhere.xc-ptr.test mx -all\"\n",
    ),
    // `P=reject`: RFC 7489's ABNF strings are case-insensitive (mailzone called it a syntax
    // error until this cross-check; now it is `dmarc-tag-case`, information).
    (
        "xc-case.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; P=reject\"\n",
    ),
    (
        "xc-allredirect.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx -all redirect=_nothing.xc-allredirect.test\"\n",
    ),
];

/// Domains where checkdmarc departs from RFC 7208, with what each side says. The test
/// below asserts these exact disagreements, so that a change on either side is noticed.
const DISAGREE: &[(&str, &[&str], &str)] = &[
    // RFC 7208 §4.6.4: a void lookup is a term whose DNS query gets no records or
    // NXDOMAIN; `exists` is such a term (its A query). checkdmarc never queries `exists`
    // (it counts the lookup but not the void), so it sees 2 void lookups where receivers
    // see 3 and return permerror.
    (
        "xc-exists.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx a:nx1.xc-exists.test a:nx2.xc-exists.test exists:nx3.xc-exists.test -all\"\n",
    ),
    // RFC 7208 §7.1 (ABNF `domain-end` / `toplabel`): a domain-spec must end in a top
    // label that is not all digits, so `a:192.0.2.10` is a syntax error, a permerror for
    // receivers (the RFC 7208 test suite: `a-numeric`, `a-numeric-toplabel` → permerror).
    // checkdmarc only warns and counts the term.
    (
        "xc-toplabel.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx a:192.0.2.10 -all\"\n",
    ),
];

const SPF_INVALID: [&str; 8] = [
    "spf-missing",
    "spf-multiple",
    "spf-syntax",
    "spf-too-many-lookups",
    "spf-too-many-void-lookups",
    "spf-include-invalid",
    "spf-mx-too-many",
    "spf-temperror",
];
const DMARC_INVALID: [&str; 3] = ["dmarc-missing", "dmarc-multiple", "dmarc-syntax"];

/// Runs checkdmarc on every domain; prints one JSON object per domain.
const PYTHON: &str = r#"
import json, sys, logging
logging.disable(logging.CRITICAL)
import checkdmarc, dns.nameserver
port = int(sys.argv[1])
domains = sys.argv[2:]
ns = [dns.nameserver.Do53Nameserver("127.0.0.1", port)]
results = checkdmarc.check_domains(domains, nameservers=ns, timeout=2.0, retries=0)
if isinstance(results, dict):
    results = [results]
out = {}
for r in results:
    spf, dmarc = r["spf"], r["dmarc"]
    out[r["domain"]] = {
        "spf_valid": spf["valid"],
        "spf_lookups": spf.get("dns_lookups"),
        "spf_void_lookups": spf.get("void_dns_lookups"),
        "spf_error": spf.get("error"),
        "dmarc_valid": dmarc["valid"],
        "dmarc_error": dmarc.get("error"),
        "dmarc_warnings": dmarc.get("warnings", []),
    }
print(json.dumps(out))
"#;

/// The Python of the venv with checkdmarc, or `None` (skip) when there is none.
fn python() -> Option<PathBuf> {
    mailzone_testkit::test_python(&["checkdmarc", "dns.nameserver"])
}

/// What mailzone says about one domain.
#[derive(Debug, PartialEq)]
struct Verdict {
    spf_valid: bool,
    dmarc_valid: bool,
    spf_lookups: u32,
    spf_void_lookups: u32,
}

/// One domain: mailzone's verdict, its findings and walk trace, and checkdmarc's JSON.
struct Compared {
    zone: &'static str,
    ours: Verdict,
    codes: Vec<&'static str>,
    trace: String,
    theirs: Value,
}

impl Compared {
    fn agrees(&self) -> bool {
        let t = &self.theirs;
        t["spf_valid"].as_bool() == Some(self.ours.spf_valid)
            && t["dmarc_valid"].as_bool() == Some(self.ours.dmarc_valid)
            // checkdmarc gives no count when it stops at an error other than the limit
            && t["spf_lookups"]
                .as_u64()
                .is_none_or(|n| n == u64::from(self.ours.spf_lookups))
    }

    fn describe(&self) -> String {
        format!(
            "{}: mailzone {:?}, findings {:?}; checkdmarc {}\nmailzone's walk:\n{}",
            self.zone, self.ours, self.codes, self.theirs, self.trace
        )
    }
}

fn has_any(findings: &[Finding], codes: &[&str]) -> bool {
    findings.iter().any(|f| codes.contains(&f.code))
}

/// Serves `domains` from Knot (with the reverse zones of the server's addresses, the
/// parent zone `test` and the report domain `reports.test`) and runs both checkers.
/// `None`: skipped (no Python with checkdmarc, or no Knot).
async fn compare(
    domains: &'static [(&'static str, &'static [&'static str], &'static str)],
) -> Option<Vec<Compared>> {
    let python = python()?;
    let mut zones: Vec<ZoneSpec> = domains
        .iter()
        .map(|(zone, remove, add)| {
            let mut remove = remove.to_vec();
            remove.push("v=STSv1"); // see the module documentation
            Case::new(zone, "").zone_spec(&remove, add)
        })
        .collect();
    // checkdmarc walks up to `_dmarc.test` (RFC 9989 tree walk): an empty parent zone
    // answers NXDOMAIN instead of REFUSED.
    zones.push(ZoneSpec::new("test", ""));
    zones.push(ZoneSpec::new(
        "reports.test",
        "@ 300 IN MX 10 mail.reports.test.\nmail 300 IN A 192.0.2.20\n",
    ));
    // `ptr` terms ask the reverse zones (checkdmarc does not: it asks the A records of the
    // ptr target).
    zones.push(ZoneSpec::new(
        "2.0.192.in-addr.arpa",
        "10 300 IN PTR mail.xc-ptr.test.\n",
    ));
    zones.push(ZoneSpec::new(
        "8.b.d.0.1.0.0.2.ip6.arpa",
        "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 300 IN PTR mail.xc-ptr.test.\n",
    ));
    let server = knot(&zones)?;

    let names: Vec<&str> = domains.iter().map(|(zone, _, _)| *zone).collect();
    let output = Command::new(&python)
        .arg("-c")
        .arg(PYTHON)
        .arg(server.addr.port().to_string())
        .args(&names)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "checkdmarc failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Value = serde_json::from_slice(&output.stdout).expect("JSON from checkdmarc");

    let lookup = DnsLookup::with_servers(vec![server.addr], Duration::from_secs(5));
    let mut out = Vec::new();
    for (zone, _, _) in domains {
        let case = Case::new(zone, "");
        let ctx = case.ctx(&lookup);
        let (spf_findings, dmarc_findings) = tokio::join!(spf::check(&ctx), dmarc::check(&ctx));
        let domain = Name::host(zone).unwrap();
        let walk = spf::walk(
            &lookup,
            &domain,
            "192.0.2.10".parse().unwrap(),
            &format!("postmaster@{zone}"),
        )
        .await;
        let compared = Compared {
            zone,
            ours: Verdict {
                spf_valid: !has_any(&spf_findings, &SPF_INVALID),
                dmarc_valid: !has_any(&dmarc_findings, &DMARC_INVALID),
                spf_lookups: walk.lookups,
                spf_void_lookups: walk.void_lookups,
            },
            codes: spf_findings
                .iter()
                .chain(&dmarc_findings)
                .map(|f| f.code)
                .collect(),
            trace: walk.trace_text(),
            theirs: theirs[*zone].clone(),
        };
        eprintln!(
            "{zone}: mailzone {:?}; checkdmarc {}",
            compared.ours, compared.theirs
        );
        out.push(compared);
    }
    Some(out)
}

#[tokio::test]
async fn checkdmarc_agrees_on_validity_and_lookup_counts() {
    let Some(compared) = compare(DOMAINS).await else {
        return;
    };
    let disagreements: Vec<String> = compared
        .iter()
        .filter(|c| !c.agrees())
        .map(Compared::describe)
        .collect();
    assert!(
        disagreements.is_empty(),
        "mailzone and checkdmarc disagree:\n{}",
        disagreements.join("\n\n")
    );
}

/// The two cases of `DISAGREE`: mailzone follows RFC 7208 (see the comments there).
#[tokio::test]
async fn checkdmarc_departs_from_rfc_7208_on_exists_voids_and_numeric_toplabels() {
    let Some(compared) = compare(DISAGREE).await else {
        return;
    };
    for c in &compared {
        assert!(!c.agrees(), "checkdmarc now agrees: {}", c.describe());
        let t = &c.theirs;
        assert_eq!(t["spf_valid"].as_bool(), Some(true), "{}", c.describe());
        assert!(!c.ours.spf_valid, "{}", c.describe());
        match c.zone {
            "xc-exists.test" => {
                assert_eq!(t["spf_void_lookups"].as_u64(), Some(2), "{}", c.describe());
                assert_eq!(c.ours.spf_void_lookups, 3, "{}", c.describe());
                assert_eq!(c.codes, ["spf-too-many-void-lookups"], "{}", c.describe());
            }
            "xc-toplabel.test" => {
                assert_eq!(c.codes, ["spf-syntax"], "{}", c.describe());
            }
            other => panic!("unexpected {other}"),
        }
    }
}
