//! Property-based fuzzing of mailzone on the stable toolchain: proptest generates the inputs,
//! [`fuzz`] runs a target over them and counts what happened.
//!
//! Each target (one file in `tests/`) has a committed corpus in `corpus/<target>/`: real
//! inputs (example configs, zone files, DNS answers, records) and every input that once
//! crashed mailzone. Inputs are corpus entries changed by a few byte- and line-level
//! [`Mutation`]s (insert, delete, flip, splice with another entry, duplicate a line,
//! truncate, …), corpus entries as they are (so every past crash is replayed on every run),
//! and fully random bytes or runs of the target's dictionary tokens.
//!
//! A target's check returns whether mailzone accepted or refused the input; a panic is the
//! only failure. proptest then shrinks the input to a small one, which is printed so that
//! it can be added to the corpus beside a unit test of the fix.
//!
//! Environment:
//! - `MAILZONE_FUZZ_CASES`: cases per target (each target has a default sized so that all
//!   of them together stay within about a minute of CI on two cores);
//! - `MAILZONE_FUZZ_SEED`: a number, or `random`; by default each target has a fixed seed,
//!   so a CI run is repeatable.

use std::cell::Cell;
use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// The number of cases per target, overriding each target's default.
pub const CASES_ENV: &str = "MAILZONE_FUZZ_CASES";
/// The seed: a number, or `random`.
pub const SEED_ENV: &str = "MAILZONE_FUZZ_SEED";

/// The cases to run: `MAILZONE_FUZZ_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    match std::env::var(CASES_ENV) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{CASES_ENV}={text} is not a number of cases")),
        Err(_) => default,
    }
}

/// One corpus file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The directory of a target's corpus.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// Every file of `corpus/<target>/`, by name. An empty or missing corpus is a mistake in
/// the fuzz crate, not a finding: it panics.
pub fn corpus(target: &str) -> Vec<Entry> {
    let dir = corpus_dir(target);
    let mut entries: Vec<Entry> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("a readable corpus directory").path())
        .filter(|p| p.is_file())
        .map(|path| Entry {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        })
        .collect();
    assert!(!entries.is_empty(), "corpus {} is empty", dir.display());
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// A change to an input. Positions are taken modulo the input's length when applied, so a
/// mutation fits any input and shrinks toward the start.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Random bytes inserted.
    Insert { at: usize, bytes: Vec<u8> },
    /// One of the target's dictionary tokens inserted.
    InsertToken { at: usize, token: usize },
    /// One of the target's dictionary tokens written over the input.
    OverwriteToken { at: usize, token: usize },
    /// Bytes removed.
    Delete { at: usize, len: usize },
    /// One bit flipped.
    Flip { at: usize, bit: u8 },
    /// One byte set to an interesting value.
    SetByte { at: usize, byte: u8 },
    /// A piece of another corpus entry inserted.
    Splice {
        at: usize,
        donor: usize,
        from: usize,
        len: usize,
    },
    /// A line repeated right after itself.
    DuplicateLine { line: usize },
    /// A line removed.
    DeleteLine { line: usize },
    /// Everything from a position on removed.
    Truncate { at: usize },
}

/// Bytes that make parsers take their rare branches.
const INTERESTING_BYTES: [u8; 16] = [
    0x00, 0x01, 0x7f, 0x80, 0xff, b'\n', b'\r', b'\t', b' ', b'"', b'\\', b'=', b';', b'.', b'[',
    b'0',
];

/// Dictionary tokens every target gets: numbers at the edges of integer types, quoting,
/// escapes and long runs.
pub const COMMON_TOKENS: &[&str] = &[
    "0",
    "-1",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1e308",
    "NaN",
    "\"",
    "\\",
    "\\\"",
    "\\255",
    "\\999",
    "\\0",
    "\u{0}",
    "é",
    "\u{1F600}",
    "xn--",
    "xn--zz",
    ".",
    "..",
    "*",
    "@",
    "\n",
    "\r\n",
    ";",
    "=",
    " ",
    "\t",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
];

impl Mutation {
    /// Applies the mutation to `input`; `donors` are the corpus entries (for splices) and
    /// `tokens` the target's dictionary.
    pub fn apply(&self, input: &mut Vec<u8>, donors: &[Entry], tokens: &[Vec<u8>]) {
        let len = input.len();
        let pos = |at: usize| at % (len + 1);
        match self {
            Mutation::Insert { at, bytes } => {
                let at = pos(*at);
                input.splice(at..at, bytes.iter().copied());
            }
            Mutation::InsertToken { at, token } => {
                let at = pos(*at);
                let token = &tokens[token % tokens.len()];
                input.splice(at..at, token.iter().copied());
            }
            Mutation::OverwriteToken { at, token } => {
                let at = pos(*at);
                let token = &tokens[token % tokens.len()];
                let end = (at + token.len()).min(len);
                input.splice(at..end, token.iter().copied());
            }
            Mutation::Delete { at, len: n } => {
                let at = pos(*at);
                let end = (at + n).min(len);
                input.drain(at..end);
            }
            Mutation::Flip { at, bit } => {
                if len > 0 {
                    input[at % len] ^= 1 << (bit % 8);
                }
            }
            Mutation::SetByte { at, byte } => {
                if len > 0 {
                    input[at % len] = *byte;
                }
            }
            Mutation::Splice {
                at,
                donor,
                from,
                len: n,
            } => {
                let donor = &donors[donor % donors.len()].bytes;
                let from = from % (donor.len() + 1);
                let end = (from + n).min(donor.len());
                let at = pos(*at);
                input.splice(at..at, donor[from..end].iter().copied());
            }
            Mutation::DuplicateLine { line } => {
                if let Some(range) = line_range(input, *line) {
                    let copy = input[range.clone()].to_vec();
                    input.splice(range.end..range.end, copy);
                }
            }
            Mutation::DeleteLine { line } => {
                if let Some(range) = line_range(input, *line) {
                    input.drain(range);
                }
            }
            Mutation::Truncate { at } => input.truncate(pos(*at)),
        }
    }
}

/// The byte range of line `line` (modulo the number of lines), newline included.
fn line_range(input: &[u8], line: usize) -> Option<std::ops::Range<usize>> {
    let mut starts = vec![0];
    starts.extend(
        input
            .iter()
            .enumerate()
            .filter(|(i, b)| **b == b'\n' && i + 1 < input.len())
            .map(|(i, _)| i + 1),
    );
    if input.is_empty() {
        return None;
    }
    let start = starts[line % starts.len()];
    let end = input[start..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(input.len(), |p| start + p + 1);
    Some(start..end)
}

/// A mutation with positions up to `reach` bytes.
pub fn mutation(reach: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (0..reach, vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        3 => (0..reach, any::<usize>()).prop_map(|(at, token)| Mutation::InsertToken { at, token }),
        2 => (0..reach, any::<usize>()).prop_map(|(at, token)| Mutation::OverwriteToken { at, token }),
        3 => (0..reach, 1usize..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
        3 => (0..reach, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        2 => (0..reach, proptest::sample::select(INTERESTING_BYTES.to_vec()))
            .prop_map(|(at, byte)| Mutation::SetByte { at, byte }),
        2 => (0..reach, any::<usize>(), 0..reach, 1usize..64)
            .prop_map(|(at, donor, from, len)| Mutation::Splice { at, donor, from, len }),
        2 => (0usize..256).prop_map(|line| Mutation::DuplicateLine { line }),
        2 => (0usize..256).prop_map(|line| Mutation::DeleteLine { line }),
        1 => (0..reach).prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// A target's inputs: its corpus and dictionary.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub entries: Arc<Vec<Entry>>,
    pub tokens: Arc<Vec<Vec<u8>>>,
}

impl Inputs {
    /// The corpus of `target`, and its dictionary: `tokens` plus [`COMMON_TOKENS`].
    pub fn new(target: &str, tokens: &[&str]) -> Inputs {
        Inputs::from_entries(corpus(target), tokens)
    }

    /// Inputs from entries made in memory (a corpus generated by the test itself).
    pub fn from_entries(entries: Vec<Entry>, tokens: &[&str]) -> Inputs {
        assert!(!entries.is_empty(), "no corpus entries");
        let tokens = tokens
            .iter()
            .chain(COMMON_TOKENS)
            .map(|t| t.as_bytes().to_vec())
            .collect();
        Inputs {
            entries: Arc::new(entries),
            tokens: Arc::new(tokens),
        }
    }

    /// Corpus entry `index` with `mutations` applied.
    pub fn mutate(&self, index: usize, mutations: &[Mutation]) -> Vec<u8> {
        let mut bytes = self.entries[index % self.entries.len()].bytes.clone();
        for m in mutations {
            m.apply(&mut bytes, &self.entries, &self.tokens);
        }
        bytes
    }

    /// A corpus entry with 1 to 6 mutations.
    pub fn mutated(&self) -> impl Strategy<Value = Vec<u8>> + use<> {
        let reach = self
            .entries
            .iter()
            .map(|e| e.bytes.len() + 1)
            .max()
            .unwrap_or(1);
        let inputs = self.clone();
        (0..self.entries.len(), vec(mutation(reach), 1..6))
            .prop_map(move |(index, mutations)| inputs.mutate(index, &mutations))
    }

    /// The byte inputs: mostly mutated corpus entries, some entries as they are, random
    /// bytes and random runs of dictionary tokens.
    pub fn bytes(&self) -> BoxedStrategy<Vec<u8>> {
        let entries = Arc::clone(&self.entries);
        let tokens = Arc::clone(&self.tokens);
        let n_tokens = tokens.len();
        prop_oneof![
            12 => self.mutated(),
            1 => (0..self.entries.len()).prop_map(move |i| entries[i].bytes.clone()),
            2 => vec(any::<u8>(), 0..512),
            2 => vec(0..n_tokens, 0..48)
                .prop_map(move |picks| picks.iter().flat_map(|i| tokens[*i].clone()).collect()),
        ]
        .boxed()
    }

    /// [`Inputs::bytes`] as text (invalid UTF-8 replaced), for parsers taking `&str`.
    pub fn text(&self) -> BoxedStrategy<String> {
        self.bytes()
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
            .boxed()
    }
}

/// What a target did with one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Parsed, answered, loaded.
    Accepted,
    /// Refused with an error.
    Refused,
}

impl<T, E> From<&Result<T, E>> for Outcome {
    fn from(r: &Result<T, E>) -> Outcome {
        if r.is_ok() {
            Outcome::Accepted
        } else {
            Outcome::Refused
        }
    }
}

/// What a run did, printed as one line.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: String,
    pub seed: String,
    pub executions: u64,
    pub accepted: u64,
    pub refused: u64,
    pub panics: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fuzz {}: {} executions ({} accepted, {} refused), panics {}, {:.1} s, seed {}",
            self.target,
            self.executions,
            self.accepted,
            self.refused,
            self.panics,
            self.elapsed.as_secs_f64(),
            self.seed
        )
    }
}

/// The RNG for `target`: `MAILZONE_FUZZ_SEED`, or a fixed seed derived from the name.
fn rng(target: &str) -> (TestRng, String) {
    let seed: u64 = match std::env::var(SEED_ENV).as_deref() {
        Ok("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={text} is neither a number nor `random`")),
        // FNV-1a of the name: fixed per target, different between targets.
        Err(_) => target.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        }),
    };
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&seed.wrapping_add(i as u64).to_le_bytes());
    }
    (
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
        seed.to_string(),
    )
}

/// Runs `check` on `cases` inputs of `strategy`. A panic fails the run after proptest has
/// shrunk the input; the summary line is printed either way.
pub fn fuzz<S>(
    target: &str,
    cases: u32,
    strategy: S,
    check: impl Fn(&S::Value) -> Outcome,
) -> Report
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        // Every input is new to the target: none is refused by the strategy.
        max_global_rejects: cases.saturating_mul(4).max(1024),
        ..Config::default()
    };
    let (rng, seed) = rng(target);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let executions = Cell::new(0u64);
    let accepted = Cell::new(0u64);
    let refused = Cell::new(0u64);
    let start = Instant::now();
    let result = runner.run(&strategy, |input| {
        executions.set(executions.get() + 1);
        match quietly(|| catch_unwind(AssertUnwindSafe(|| check(&input)))) {
            Ok(Outcome::Accepted) => accepted.set(accepted.get() + 1),
            Ok(Outcome::Refused) => refused.set(refused.get() + 1),
            Err(payload) => {
                let location = PANIC_LOCATION.with(|l| l.take()).unwrap_or_default();
                return Err(TestCaseError::fail(format!(
                    "{} at {location}",
                    panic_message(&*payload)
                )));
            }
        }
        Ok(())
    });
    let mut report = Report {
        target: target.to_string(),
        seed,
        executions: executions.get(),
        accepted: accepted.get(),
        refused: refused.get(),
        panics: 0,
        elapsed: start.elapsed(),
    };
    match result {
        Ok(()) => {
            println!("{report}");
            report
        }
        Err(TestError::Fail(reason, minimal)) => {
            report.panics = 1;
            println!("{report}");
            panic!(
                "fuzz {target}: a panic ({reason}) on this input (shrunk); add it to {} with a unit test of the fix:\n{minimal:#?}",
                corpus_dir(target).display()
            );
        }
        Err(TestError::Abort(reason)) => panic!("fuzz {target}: proptest aborted: {reason}"),
    }
}

thread_local! {
    /// Set while this thread runs a target: its panics are findings, reported once at the
    /// end, not printed (with a backtrace) for every input proptest tries while shrinking.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Where the last quiet panic happened.
    static PANIC_LOCATION: Cell<Option<String>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's panics recorded instead of printed; other threads' panics
/// are printed as before.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let location = info.location().map(|l| l.to_string());
                PANIC_LOCATION.with(|l| l.set(location));
            } else {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = f();
    QUIET.with(|q| q.set(false));
    result
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> Entry {
        Entry {
            name: "e".into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    fn apply(m: Mutation, text: &str) -> String {
        let mut bytes = text.as_bytes().to_vec();
        let donors = [entry("DONOR")];
        let tokens = vec![b"<tok>".to_vec()];
        m.apply(&mut bytes, &donors, &tokens);
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn mutations_do_what_they_say() {
        let text = "one\ntwo\nthree";
        assert_eq!(
            apply(Mutation::DuplicateLine { line: 1 }, text),
            "one\ntwo\ntwo\nthree"
        );
        assert_eq!(apply(Mutation::DeleteLine { line: 0 }, text), "two\nthree");
        assert_eq!(apply(Mutation::DeleteLine { line: 5 }, text), "one\ntwo\n");
        assert_eq!(apply(Mutation::Truncate { at: 3 }, text), "one");
        assert_eq!(
            apply(Mutation::Delete { at: 0, len: 4 }, text),
            "two\nthree"
        );
        assert_eq!(
            apply(Mutation::InsertToken { at: 3, token: 7 }, text),
            "one<tok>\ntwo\nthree"
        );
        assert_eq!(
            apply(
                Mutation::Splice {
                    at: 0,
                    donor: 0,
                    from: 1,
                    len: 2
                },
                "x"
            ),
            "ONx"
        );
        assert_eq!(apply(Mutation::Flip { at: 0, bit: 5 }, "a"), "A");
        // Positions wrap, so every mutation fits every input, even an empty one.
        assert_eq!(apply(Mutation::Delete { at: 99, len: 1 }, ""), "");
        assert_eq!(apply(Mutation::DuplicateLine { line: 3 }, ""), "");
    }

    #[test]
    fn a_panic_fails_the_run_with_a_shrunk_input() {
        let result = catch_unwind(|| {
            fuzz(
                "selftest-expected-panic",
                200,
                vec(any::<u8>(), 0..64),
                |b| {
                    assert!(!b.contains(&7), "seven");
                    Outcome::Accepted
                },
            )
        });
        let message = panic_message(&*result.unwrap_err());
        assert!(message.contains("seven"), "{message}");
        assert!(message.contains("[\n    7,\n]"), "{message}");
    }

    #[test]
    fn counts_add_up() {
        let report = fuzz("selftest", 50, any::<bool>(), |b| {
            if *b {
                Outcome::Accepted
            } else {
                Outcome::Refused
            }
        });
        assert_eq!(report.executions, 50);
        assert_eq!(report.accepted + report.refused, 50);
        assert_eq!(report.panics, 0);
    }
}
