//! Cross-checks of `mailzone records` against tools nobody here wrote.
//!
//! Every test runs the real binary on `examples/example.org.toml` (fresh state directory)
//! and checks its output with an independent implementation:
//!
//! - BIND's `named-checkzone` loads each domain's zone output (under an SOA/NS header) with
//!   every check set to `fail` and reports no error and no diagnostic at all;
//! - TLSA `3 1 1` / `2 1 1` data equals the SHA-256 that `openssl` computes over the SPKI
//!   of the leaf / issuer of `examples/certs/mail.example.org.pem`;
//! - DKIM `p=` equals what `openssl pkey -pubout` derives from the manual keys;
//! - DKIM TXT values verify a message signed with the private key by `dkimpy`
//!   (`scripts/xcheck/dkim_verify.py`), for manual keys and for the automatic keys read
//!   from the state database, and do not verify with the wrong key;
//! - `dnspython` parses the zone output into exactly the records of the JSON output, and
//!   gives back the very bytes of 300 pseudo-random tricky TXT values rendered by
//!   `mailzone_records::zonefile::record_line`.
//!
//! External tools come from `scripts/test`. A missing tool skips the test, or fails it when
//! `MAILZONE_REQUIRE_TOOLS=1` (as `scripts/test` sets).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mailzone_records::zonefile::record_line;
use mailzone_records::{Name, RData, Record};
use serde_json::Value;

use tools::tool;

/// The path of an external tool, or return from the test (see [`tools::tool`]).
macro_rules! need {
    ($name:expr) => {
        match tool($name) {
            Some(path) => path,
            None => return,
        }
    };
}

/// Finding the external tools; a missing one skips the test, or fails it when required.
mod tools {
    use std::path::PathBuf;

    /// The path of `name` ("python" means the test venv's Python with its modules), or
    /// `None` after printing a skip notice. Panics instead when `MAILZONE_REQUIRE_TOOLS=1`.
    pub fn tool(name: &str) -> Option<PathBuf> {
        if name == "python" {
            return mailzone_testkit::test_python(&["dns.zone", "dkim", "nacl", "cryptography"]);
        }
        let found = mailzone_testkit::tool_path(name);
        if found.is_none() {
            mailzone_testkit::missing(name);
        }
        found
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example(path: &str) -> PathBuf {
    repo().join("examples").join(path)
}

/// Runs a command with `input` on stdin and returns its output, whatever its status.
fn run(cmd: &mut Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    cmd.stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    // A writer thread, so that a child writing before it has read everything cannot block.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for the child");
    writer.join().expect("stdin writer");
    output
}

/// What a command printed, stdout then stderr.
fn said(output: &Output) -> String {
    let (out, err) = (&output.stdout, &output.stderr);
    String::from_utf8_lossy(out).into_owned() + &String::from_utf8_lossy(err)
}

/// Runs a command that must succeed and returns its stdout.
fn ok(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let output = run(cmd, input);
    let status = output.status;
    assert!(status.success(), "{cmd:?}: {status}\n{}", said(&output));
    output.stdout
}

/// `mailzone records --config examples/example.org.toml --state-dir STATE ARGS...`.
fn records(state: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailzone"));
    cmd.arg("records")
        .arg("--config")
        .arg(example("example.org.toml"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env_remove("MAILZONE_CONFIG")
        .env_remove("MAILZONE_STATE_DIR");
    String::from_utf8(ok(&mut cmd, b"")).expect("mailzone prints UTF-8")
}

/// One record of the JSON output.
#[derive(Debug, Clone)]
struct Rec {
    name: String,
    rtype: String,
    ttl: u64,
    value: String,
}

fn records_json(state: &Path, args: &[&str]) -> Vec<Rec> {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let parsed: Value = serde_json::from_str(&records(state, &all)).expect("JSON output");
    let field = |r: &Value, k: &str| r[k].as_str().unwrap_or_else(|| panic!("{k} in {r}")).into();
    parsed
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| Rec {
            name: field(r, "name"),
            rtype: field(r, "type"),
            ttl: r["ttl"].as_u64().expect("numeric ttl"),
            value: field(r, "value"),
        })
        .collect()
}

/// The JSON record of `rtype` at `name`; exactly one must exist.
fn only<'a>(recs: &'a [Rec], name: &str, rtype: &str) -> &'a Rec {
    let found: Vec<_> = recs
        .iter()
        .filter(|r| r.name == name && r.rtype == rtype)
        .collect();
    assert_eq!(found.len(), 1, "one {rtype} at {name} expected: {recs:#?}");
    found[0]
}

const DOMAINS: [&str; 2] = ["example.org", "example.net"];

/// The SOA/NS header that makes a domain's record lines a loadable zone.
fn zone_header(zone: &str) -> String {
    format!(
        "$ORIGIN {zone}.\n$TTL 3600\n@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 604800 300\n\
         @ IN NS ns1.{zone}.\nns1 IN A 192.0.2.53\n"
    )
}

fn trimmed(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("UTF-8").trim().to_string()
}

// --- 1. named-checkzone ---------------------------------------------------------------

#[test]
fn named_checkzone_accepts_every_domain() {
    let checkzone = need!("named-checkzone");
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for zone in DOMAINS {
        let text = zone_header(zone) + &records(state.path(), &[zone]);
        let file = dir.path().join(format!("{zone}.zone"));
        std::fs::write(&file, &text).unwrap();
        // `-i full` also resolves MX/SRV targets outside the zone through the host's
        // resolver: example.net's exchanger is mail.example.org, which is in another zone
        // and has no address in public DNS, so `full` would complain (or depend on the
        // network). Those zones get `-i local`: the same checks for every in-zone target,
        // none for the others (they are checked in their own zone, example.org).
        let integrity = if targets_in_zone(&records_json(state.path(), &[zone]), zone) {
            "full"
        } else {
            "local"
        };
        let mut cmd = Command::new(&checkzone);
        cmd.args(["-k", "fail", "-n", "fail", "-m", "fail", "-M", "fail"])
            .args(["-S", "fail", "-i", integrity, zone])
            .arg(&file);
        let output = run(&mut cmd, b"");
        let said = said(&output);
        let context = format!("{cmd:?} said:\n{said}\nzone:\n{text}");
        assert!(output.status.success(), "{context}");
        assert!(!said.to_lowercase().contains("warning"), "{context}");
        assert_eq!(said.lines().last(), Some("OK"), "{context}");
        // Stricter than "no warning": any line but the load summary is a diagnostic.
        let mut diagnostics = said.lines().filter(|l| !l.contains("loaded serial"));
        assert!(diagnostics.all(|l| l == "OK"), "{context}");
    }
}

/// True when every MX and SRV target of the records is `.` or inside `zone`.
fn targets_in_zone(recs: &[Rec], zone: &str) -> bool {
    recs.iter()
        .filter(|r| r.rtype == "MX" || r.rtype == "SRV")
        .filter_map(|r| r.value.split_whitespace().last())
        .all(|t| t == "." || t == format!("{zone}.") || t.ends_with(&format!(".{zone}.")))
}

// --- 2. TLSA against openssl ----------------------------------------------------------

#[test]
fn tlsa_digests_match_openssl() {
    let bin = need!("openssl");
    let chain = std::fs::read_to_string(example("certs/mail.example.org.pem")).unwrap();
    let certs = split_pem_chain(&chain);
    assert!(certs.len() >= 2, "the chain has a leaf and an issuer");
    let (leaf, issuer) = (spki_sha256(&bin, &certs[0]), spki_sha256(&bin, &certs[1]));
    assert_ne!(leaf, issuer);

    let state = tempfile::tempdir().unwrap();
    let tlsa = records_json(state.path(), &["--types", "tlsa"]);
    assert!(!tlsa.is_empty(), "the example has TLSA records");
    for r in &tlsa {
        assert_eq!(r.rtype, "TLSA", "{r:?}");
        let fields: Vec<_> = r.value.split_whitespace().collect();
        let (params, data) = (fields[..3].join(" "), fields[3..].concat());
        match params.as_str() {
            "3 1 1" => assert_eq!(data, leaf, "leaf SPKI digest of {r:?}"),
            "2 1 1" => assert_eq!(data, issuer, "issuer SPKI digest of {r:?}"),
            _ => panic!("unexpected TLSA parameters in {r:?}"),
        }
    }
    let at_25 = values_at(&tlsa, "_25._tcp.mail.example.org.");
    assert!(at_25.contains(&format!("3 1 1 {leaf}")), "{at_25:?}");
    assert!(at_25.contains(&format!("2 1 1 {issuer}")), "{at_25:?}");
}

/// The values of the records at `name`.
fn values_at(recs: &[Rec], name: &str) -> Vec<String> {
    let at = recs.iter().filter(|r| r.name == name);
    at.map(|r| r.value.clone()).collect()
}

/// The certificates of a PEM chain, in order, each as its own PEM block.
fn split_pem_chain(chain: &str) -> Vec<String> {
    let blocks = chain.split_inclusive("-----END CERTIFICATE-----");
    let pem = |b: &str| {
        Some(format!(
            "{}\n",
            &b[b.find("-----BEGIN CERTIFICATE-----")?..]
        ))
    };
    blocks.filter_map(pem).collect()
}

/// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r`.
fn spki_sha256(bin: &Path, cert_pem: &str) -> String {
    let pubkey = openssl(bin, &["x509", "-pubkey", "-noout"], cert_pem.as_bytes());
    let der = openssl(bin, &["pkey", "-pubin", "-outform", "DER"], &pubkey);
    let digest = trimmed(openssl(bin, &["dgst", "-sha256", "-r"], &der));
    let hex = digest.split(' ').next().unwrap_or_default().to_string();
    assert_eq!(hex.len(), 64, "a SHA-256 digest: {digest}");
    hex
}

/// `openssl ARGS...` with `input` on stdin; it must succeed.
fn openssl(bin: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    ok(Command::new(bin).args(args), input)
}

// --- 3. DKIM p= against openssl -------------------------------------------------------

#[test]
fn dkim_p_matches_openssl() {
    let bin = need!("openssl");
    let state = tempfile::tempdir().unwrap();
    let recs = records_json(state.path(), &["example.org", "--types", "dkim"]);
    for (selector, k) in [("202611r", "rsa"), ("202611e", "ed25519")] {
        let key = example(&format!("keys/{selector}.pem"));
        let key = key.to_str().expect("a UTF-8 path");
        let der = openssl(
            &bin,
            &["pkey", "-pubout", "-outform", "DER", "-in", key],
            b"",
        );
        let raw = if k == "ed25519" {
            // RFC 8463 §4.2: p= is the raw 32-byte key, the end of the 44-byte SPKI.
            assert_eq!(der.len(), 44, "an Ed25519 SPKI");
            der[der.len() - 32..].to_vec()
        } else {
            der
        };
        let expected = trimmed(openssl(&bin, &["base64", "-A"], &raw));
        let name = format!("{selector}._domainkey.example.org.");
        let tags = dkim_tags(&only(&recs, &name, "TXT").value);
        assert_eq!(tags.get("p"), Some(&expected), "p= of {name}");
        assert_eq!(tags.get("k").map(String::as_str), Some(k), "k= of {name}");
        assert_eq!(tags.get("v").map(String::as_str), Some("DKIM1"), "{name}");
    }
}

/// The tag=value pairs of a DKIM key record (RFC 6376 §3.2).
fn dkim_tags(value: &str) -> BTreeMap<String, String> {
    let tags = value.split(';').filter_map(|t| t.split_once('='));
    tags.map(|(k, v)| (k.trim().into(), v.trim().into()))
        .collect()
}

// --- 4. DKIM round trip through dkimpy ------------------------------------------------

#[test]
fn dkim_records_verify_with_dkimpy() {
    let python = need!("python");
    let state = tempfile::tempdir().unwrap();
    let recs = records_json(state.path(), &["--types", "dkim"]);

    // example.org: the manual keys, as files in examples/keys.
    let manual: Vec<_> = ["202611e", "202611r"]
        .map(|s| (s.to_string(), example(&format!("keys/{s}.pem"))))
        .into();
    check_dkim_keys(&python, &recs, "example.org", &manual);

    // example.net: the automatic keys are kept in the state directory, and only there.
    let net_dkim = |state: &Path| records(state, &["example.net", "--types", "dkim"]);
    let first = net_dkim(state.path());
    assert!(first.contains("_domainkey.example.net."), "{first}");
    assert_eq!(first, net_dkim(state.path()), "same state dir, same keys");
    let other = tempfile::tempdir().unwrap();
    let p_values = |recs: &[Rec]| -> Vec<String> {
        let p = recs.iter().filter_map(|r| dkim_tags(&r.value).remove("p"));
        p.collect()
    };
    let net_p = |state: &Path| p_values(&records_json(state, &["example.net", "--types", "dkim"]));
    let (kept, fresh) = (net_p(state.path()), net_p(other.path()));
    assert_eq!((kept.len(), fresh.len()), (2, 2), "{kept:?} {fresh:?}");
    for p in &kept {
        assert!(!fresh.contains(p), "a new state dir reuses key {p}");
    }

    // ... and their private keys, read from the database into 0600 files, sign messages
    // that verify against the published TXT values.
    let keys_dir = tempfile::tempdir().unwrap();
    let automatic: Vec<_> = stored_keys(&python, state.path(), "example.net")
        .into_iter()
        .map(|(selector, pem)| {
            let file = keys_dir.path().join(format!("{selector}.pem"));
            write_private(&file, &pem);
            (selector, file)
        })
        .collect();
    check_dkim_keys(&python, &recs, "example.net", &automatic);
}

/// Each key verifies against its own selector's TXT value and not against another's.
fn check_dkim_keys(python: &Path, recs: &[Rec], domain: &str, keys: &[(String, PathBuf)]) {
    let suffix = format!("._domainkey.{domain}.");
    let published = recs.iter().filter(|r| r.name.ends_with(&suffix)).count();
    assert_eq!(published, 2, "two DKIM records for {domain}: {recs:#?}");
    assert_eq!(
        keys.len(),
        published,
        "one private key per record of {domain}"
    );
    for (i, (selector, key)) in keys.iter().enumerate() {
        let txt = |s: &str| only(recs, &format!("{s}{suffix}"), "TXT").value.clone();
        let (code, said) = dkim_verify(python, key, [selector, domain, &txt(selector)]);
        assert_eq!(code, Some(0), "{selector}@{domain} must verify: {said}");
        let other = &keys[(i + 1) % keys.len()].0;
        let (code, said) = dkim_verify(python, key, [selector, domain, &txt(other)]);
        assert_eq!(
            code,
            Some(1),
            "{selector} with {other}'s TXT must fail: {said}"
        );
    }
}

/// `scripts/xcheck/dkim_verify.py`: its exit code and what it printed.
/// `args` are the selector, the domain and the TXT value.
fn dkim_verify(python: &Path, key: &Path, args: [&str; 3]) -> (Option<i32>, String) {
    let [sel, dom, txt] = args;
    let mut cmd = Command::new(python);
    cmd.arg(repo().join("scripts/xcheck/dkim_verify.py"))
        .arg("--private-key")
        .arg(key)
        .args(["--selector", sel, "--domain", dom, "--txt", txt]);
    let output = run(&mut cmd, b"");
    (output.status.code(), format!("{cmd:?}: {}", said(&output)))
}

/// Reads the keys straight from the database and opens the sealed private keys with
/// Python's `cryptography` (ChaCha20-Poly1305 of RFC 8439, associated data = the row):
/// an implementation nobody here wrote agrees with the store's sealing format.
const READ_KEYS_PY: &str = r#"
import base64, json, pathlib, sqlite3, sys
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
db = pathlib.Path(sys.argv[1]).resolve()
key = base64.b64decode((db.parent / "mailzone.key").read_text().strip())
con = sqlite3.connect(db.as_uri() + "?mode=ro", uri=True)
rows = con.execute(
    "SELECT selector, private_key_pem FROM dkim_keys WHERE domain = ? ORDER BY selector",
    (sys.argv[2],),
).fetchall()
out = []
for selector, stored in rows:
    assert stored.startswith("sealed:v1:"), "a private key is stored unsealed"
    raw = base64.b64decode(stored[len("sealed:v1:"):])
    aad = f"dkim_keys/{sys.argv[2]}/{selector}".encode()
    out.append([selector, ChaCha20Poly1305(key).decrypt(raw[:12], raw[12:], aad).decode()])
json.dump(out, sys.stdout)
"#;

/// (selector, private key PEM) of the domain's keys in `<state>/mailzone.db`.
fn stored_keys(python: &Path, state: &Path, domain: &str) -> Vec<(String, String)> {
    let mut cmd = Command::new(python);
    cmd.args(["-c", READ_KEYS_PY])
        .arg(state.join("mailzone.db"))
        .arg(domain);
    serde_json::from_slice(&ok(&mut cmd, b"")).expect("rows as JSON")
}

fn write_private(path: &Path, text: &str) {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = options.open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

// --- 5. dnspython ---------------------------------------------------------------------

const DUMP_ZONE_PY: &str = r#"
import json, sys
import dns.rdatatype, dns.zone
text = sys.stdin.buffer.read().decode("utf-8")
zone = dns.zone.from_text(text, origin=sys.argv[1], relativize=False, check_origin=True)
out = []
for name, rdataset in zone.iterate_rdatasets():
    for rdata in rdataset:
        item = {"name": name.to_text(), "type": dns.rdatatype.to_text(rdataset.rdtype),
                "ttl": rdataset.ttl}
        if rdataset.rdtype == dns.rdatatype.TXT:
            item["hex"] = b"".join(rdata.strings).hex()
            item["lens"] = [len(s) for s in rdata.strings]
        else:
            item["text"] = rdata.to_text()
        out.append(item)
json.dump(out, sys.stdout)
"#;

/// The records dnspython reads from `text` (the zone `origin`), as JSON objects.
fn dnspython_records(python: &Path, origin: &str, text: &str) -> Vec<Value> {
    let mut cmd = Command::new(python);
    cmd.args(["-c", DUMP_ZONE_PY, origin]);
    let out = ok(&mut cmd, text.as_bytes());
    serde_json::from_slice::<Value>(&out)
        .expect("JSON from dnspython")
        .as_array()
        .expect("an array")
        .clone()
}

/// (name, type, ttl, data) with TXT data as the hex of the joined bytes.
type Row = (String, String, u64, String);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn zone_text_parses_identically_in_dnspython() {
    let python = need!("python");
    example_zones_match_json(&python);
    tricky_txt_values_round_trip(&python);
}

/// dnspython reads the example's zone output as exactly the records of its JSON output.
fn example_zones_match_json(python: &Path) {
    let state = tempfile::tempdir().unwrap();
    for zone in DOMAINS {
        let text = zone_header(zone) + &records(state.path(), &[zone]);
        let header = [format!("{zone}."), format!("ns1.{zone}.")];
        let mut parsed: Vec<Row> = dnspython_records(python, zone, &text)
            .iter()
            .filter(|v| !(header.contains(&str_of(v, "name")) && is_header_type(v)))
            .map(|v| {
                let data = str_of(
                    v,
                    if v.get("hex").is_some() {
                        "hex"
                    } else {
                        "text"
                    },
                );
                let ttl = v["ttl"].as_u64().unwrap();
                (str_of(v, "name"), str_of(v, "type"), ttl, data)
            })
            .collect();
        let mut expected: Vec<Row> = records_json(state.path(), &[zone])
            .into_iter()
            .map(|r| {
                let data = match r.rtype.as_str() {
                    "TXT" => hex(r.value.as_bytes()),
                    _ => r.value,
                };
                (r.name, r.rtype, r.ttl, data)
            })
            .collect();
        parsed.sort();
        expected.sort();
        assert_eq!(
            parsed, expected,
            "dnspython (left) vs mailzone JSON (right), {zone}"
        );
    }
}

fn str_of(v: &Value, key: &str) -> String {
    let text = v[key].as_str();
    text.unwrap_or_else(|| panic!("{key} in {v}")).to_string()
}

/// The SOA, NS and glue A of [`zone_header`] (mailzone makes none of these at those names).
fn is_header_type(v: &Value) -> bool {
    matches!(v["type"].as_str(), Some("SOA" | "NS")) || str_of(v, "name").starts_with("ns1.")
}

/// 300 pseudo-random tricky TXT values rendered by `record_line` come back from dnspython
/// byte for byte, in character-strings of at most 255 bytes.
fn tricky_txt_values_round_trip(python: &Path) {
    let zone = "synthetic.example";
    let mut rng = SplitMix64(0x6d61_696c_7a6f_6e65); // "mailzone"
    let records: Vec<Record> = (0..300)
        .map(|i| Record {
            name: Name::owner(&format!("t{i:03}.{zone}")).unwrap(),
            ttl: 300 + i,
            data: RData::Txt(tricky_value(&mut rng, i as usize)),
        })
        .collect();
    let width = records.iter().map(|r| r.name.to_string().len()).max();
    let width = width.unwrap_or(0);
    let mut text = zone_header(zone);
    for r in &records {
        text.push_str(&record_line(r, width));
        text.push('\n');
    }
    let parsed: BTreeMap<String, Value> = dnspython_records(python, zone, &text)
        .into_iter()
        .filter(|v| v["type"] == "TXT")
        .map(|v| (str_of(&v, "name"), v))
        .collect();
    assert_eq!(parsed.len(), records.len(), "every TXT record is read back");
    for r in &records {
        let RData::Txt(bytes) = &r.data else {
            unreachable!()
        };
        let name = r.name.to_string();
        let line = record_line(r, 0);
        let got = parsed
            .get(&name)
            .unwrap_or_else(|| panic!("{name} lost: {line}"));
        assert_eq!(str_of(got, "hex"), hex(bytes), "bytes of {line}");
        assert_eq!(got["ttl"].as_u64(), Some(u64::from(r.ttl)), "TTL of {line}");
        let lens: Vec<u64> = serde_json::from_value(got["lens"].clone()).unwrap();
        assert!(lens.iter().all(|&l| l <= 255), "strings {lens:?} of {line}");
    }
}

/// A small deterministic generator (SplitMix64), so that a failure reproduces.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces that zone-file quoting must get right (RFC 1035 §5.1 escapes, comments,
/// parentheses, directives, `\DDD` look-alikes, non-ASCII, control bytes).
#[rustfmt::skip]
const PIECES: &[&[u8]] = &[
    b"\"", b"\\", b";", b"(", b")", b"\t", b" ", b"\r", b"\n", b"\0", b"\x7f", b"\x1b",
    b"\\065", b"\\\"", b"$ORIGIN .", b"@", b"v=DKIM1; k=rsa; p=", b"\"\"", b"caf\xc3\xa9",
    "日本語".as_bytes(), "🦀".as_bytes(), b"\xff\xfe", b"a", b"Z9", b"=",
];

/// Lengths at and around the 255-byte string boundary come first, then random ones.
const EDGE_LENGTHS: [usize; 12] = [0, 1, 2, 254, 255, 256, 509, 510, 511, 765, 766, 1500];

/// A value of 0..=1500 bytes mixing tricky pieces and random bytes.
fn tricky_value(rng: &mut SplitMix64, i: usize) -> Vec<u8> {
    let len = EDGE_LENGTHS
        .get(i)
        .copied()
        .unwrap_or_else(|| rng.below(1501));
    let mut value = Vec::with_capacity(len + 8);
    while value.len() < len {
        if rng.below(3) == 0 {
            value.push(rng.next() as u8);
        } else {
            value.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        }
    }
    value.truncate(len);
    value
}
