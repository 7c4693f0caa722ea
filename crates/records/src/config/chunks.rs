//! A big config file parsed a piece at a time, in bounded memory.
//!
//! The `toml` crate parses a document in one go: it first lexes the whole text into one
//! vector of tokens (about eight times the size of the text) and then keeps a span for
//! every key and value. A config of 100,000 domains (tens of MB of TOML) would need about
//! a gigabyte of memory for a moment, only to be read. So a file larger than
//! [`CHUNK_BYTES`] is cut at top-level table headers into chunks of about that size, each
//! chunk is parsed and deserialized on its own, and the parts are merged in file order:
//! the memory of a parse is then that of one chunk (of two: two threads take the chunks
//! in turn).
//!
//! The cut points come from a hand-written scan over the tokens of `toml_parser`'s lexer
//! (the lexer `toml` itself uses, run as a streaming iterator so that no token vector is
//! kept). A scan of its own is needed because neither `toml` nor `toml_parser` says where
//! a top-level statement ends without building the whole document; the lexer already
//! makes strings (multi-line ones too) single tokens, so the scan only has to follow
//! bracket depth and line starts: a `[` that starts a line outside any array or inline
//! table starts a table header. Because every cut is at the start of a line that starts
//! a token, each chunk lexes to exactly the tokens the whole file has there.
//!
//! The chunked result must be exactly the whole-document result. Each chunk that parses
//! is a run of complete TOML statements, so the file is their concatenation; what a
//! chunk alone cannot see is a table defined twice across chunks. The scan notes the
//! top-level table every statement belongs to and the merge refuses anything it cannot
//! prove harmless: `server`, `serve` and `notify` in more than one chunk, a `domain` or
//! `dnsServer` name in more than one chunk, `[domain]` itself defined in two chunks or
//! next to root-level `domain.…` keys, a chunk that does not parse or deserialize, no
//! `server` at all. [`parse_chunked`] then returns `None` and the caller parses the
//! whole document as for any small file, so every error keeps its message, line and
//! column.
//!
//! One `[domain]` (or `[dnsServer]`) table with many inline entries has no headers to cut
//! at: it is cut between its entries, and each chunk after the cut starts with a copy of
//! the table's header line.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use indexmap::IndexMap;
use serde::Deserialize as _;
use toml_parser::Source;
use toml_parser::lexer::{Lexer, Token, TokenKind};

use super::raw::{RawConfig, RawConfigPart};

/// Files smaller than this are parsed whole; larger ones in chunks of about this size.
/// Small chunks keep each parse's token vector (eight times its text) in memory the
/// allocator hands out again, instead of growing fresh pages: a 1,000-domain config
/// (573 kB) loaded in 24 ms of wall and 26 ms of CPU with 32 kB chunks, 28–30 ms and
/// 35–41 ms with 256 kB ones; 10,000 domains in 136 ms instead of 154.
pub(super) const CHUNK_BYTES: usize = 32 * 1024;

/// The tables that may be spread over several chunks: maps whose entries are merged.
const MAPS: [&str; 2] = ["domain", "dnsServer"];

/// Whether a document has nothing but whitespace and comments (an empty table when it is
/// valid TOML), told from its tokens without a second parse.
pub(super) fn is_blank(text: &str) -> bool {
    Source::new(text).lex().all(|token| {
        matches!(
            token.kind(),
            TokenKind::Whitespace | TokenKind::Comment | TokenKind::Newline | TokenKind::Eof
        )
    })
}

/// The config of a big file parsed chunk by chunk, or `None` when the file is small or
/// the chunks cannot prove they give what a parse of the whole file gives (then the
/// caller parses the whole file, which also reports any error).
///
/// With it, the spans of the chunks holding a table other than `domain`: all that a later
/// parse of the same text needs to read for everything but the domains
/// ([`parse_all_but_domains`]).
pub(super) fn parse_chunked(text: &str) -> Option<(RawConfig, Vec<ChunkSpan>)> {
    if text.len() < CHUNK_BYTES {
        return None;
    }
    let chunks = split(text, CHUNK_BYTES)?;
    if chunks.len() < 2 || !tables_are_disjoint(&chunks) {
        return None;
    }
    let others = chunks
        .iter()
        .filter(|chunk| chunk.tables.iter().any(|table| table.name != "domain"))
        .map(Chunk::span)
        .collect();
    let raw = merge_parts(parse_parts(text, &chunks)?)?;
    #[cfg(test)]
    tests::CHUNKED_PARSES.with(|n| n.set(n.get() + 1));
    Some((raw, others))
}

/// The tables other than the domains of a text that [`parse_chunked`] read before, from
/// the chunks it named (`spans`); the domains these chunks hold are dropped. `None` when a
/// span is not in the text or a chunk does not parse.
pub(super) fn parse_all_but_domains(text: &str, spans: &[ChunkSpan]) -> Option<RawConfig> {
    let parts = spans
        .iter()
        .map(|span| parse_chunk(&span.text(text)?))
        .collect::<Option<Vec<_>>>()?;
    let mut raw = merge_parts(parts)?;
    raw.domain_chunks = Vec::new();
    Some(raw)
}

/// The parts of the chunks merged in file order, refusing what [`tables_are_disjoint`]
/// cannot see: a singleton table or a domain or DNS server name in two chunks.
fn merge_parts(parts: Vec<RawConfigPart>) -> Option<RawConfig> {
    let mut server = None;
    let mut serve = None;
    let mut notify = None;
    let mut domain_chunks = Vec::with_capacity(parts.len());
    let mut domain_names = DomainNames::default();
    let mut dns_server = IndexMap::new();
    for part in parts {
        once(&mut server, part.server)?;
        once(&mut serve, part.serve)?;
        once(&mut notify, part.notify)?;
        domain_names.add_new(&part.domain)?;
        domain_chunks.push(part.domain);
        merge(&mut dns_server, part.dns_server)?;
    }
    let server = server?;
    dns_server.shrink_to_fit();
    Some(RawConfig {
        server,
        domain: IndexMap::new(),
        domain_chunks,
        dns_server,
        serve: serve.unwrap_or_default(),
        notify: notify.unwrap_or_default(),
    })
}

/// Each chunk parsed and deserialized, the parts in file order (two threads take the
/// chunks in turn). `None` when a chunk does not parse.
fn parse_parts(text: &str, chunks: &[Chunk]) -> Option<Vec<RawConfigPart>> {
    in_turn(chunks, |chunk| parse_chunk(&chunk.text(text)))
}

/// `work` done on every item by two threads (this one and one of its own), each taking
/// the next item not yet taken, so that neither waits for the other while work is left;
/// the results in the items' order. `None` as soon as one item's work gives `None` (no
/// later item is kept). A single item is worked on this thread alone.
fn in_turn<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> Option<R> + Sync) -> Option<Vec<R>> {
    let mut done = Vec::with_capacity(items.len());
    in_turn_merged(
        items.len(),
        |index| work(&items[index]),
        |result| result.map(|r| done.push(r)).ok_or(()),
    )
    .ok()?;
    Some(done)
}

/// Work on items `0..count` done by two threads taking turns (this one and one of its
/// own), and `merge` given the results in the items' order on this thread as soon as each
/// is next. A handful of results wait at a time (not every result beside what `merge`
/// builds): past [`WAITING`] this thread waits for the other instead of taking more items,
/// and the other waits on a one-result channel. Stops at the first `merge` error. A panic
/// in `work` on the other thread is raised here once it has ended.
pub(super) fn in_turn_merged<R: Send, E>(
    count: usize,
    work: impl Fn(usize) -> R + Sync,
    mut merge: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E> {
    if count < 2 {
        return (0..count).try_for_each(|index| merge(work(index)));
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let take = || {
        let index = next.fetch_add(1, Ordering::Relaxed);
        (index < count && !stop.load(Ordering::Relaxed)).then_some(index)
    };
    std::thread::scope(|scope| {
        let (sender, results) = std::sync::mpsc::sync_channel(1);
        let (take_theirs, work_theirs) = (&take, &work);
        // Without a second thread (spawning failed, the sender dropped with the closure)
        // this one takes every item.
        let other = std::thread::Builder::new()
            .name("mailzone-config".into())
            .spawn_scoped(scope, move || {
                while let Some(index) = take_theirs() {
                    if sender.send((index, work_theirs(index))).is_err() {
                        break;
                    }
                }
            });
        let mut waiting = std::collections::BTreeMap::new();
        let mut wanted = 0;
        let merged = loop {
            // One at a time: draining the channel while the other thread keeps filling it
            // would gather every result here.
            if let Ok((index, result)) = results.try_recv() {
                waiting.insert(index, result);
            }
            if let Some(result) = waiting.remove(&wanted) {
                if let Err(e) = merge(result) {
                    break Err(e);
                }
                wanted += 1;
                if wanted == count {
                    break Ok(());
                }
            } else if let Some(index) = (waiting.len() < WAITING).then(&take).flatten() {
                waiting.insert(index, work(index));
            } else if let Ok((index, result)) = results.recv() {
                // The item wanted was taken (items are taken in order, and those waiting
                // come after it) and not by this thread: the other one sends it.
                waiting.insert(index, result);
            } else {
                // The other thread ended without the item this one waits for: it panicked.
                break Ok(());
            }
        };
        stop.store(true, Ordering::Relaxed);
        drop(results);
        if let Ok(other) = other {
            other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
        merged
    })
}

/// How many results of [`in_turn_merged`] may wait for an earlier one before this thread
/// stops taking items.
const WAITING: usize = 2;

/// One chunk parsed and deserialized; `None` when it does not parse.
fn parse_chunk(chunk_text: &str) -> Option<RawConfigPart> {
    let deserializer = toml::Deserializer::parse(chunk_text).ok()?;
    // No key path tracked (`serde_path_to_error` keeps a string per key): a chunk that
    // does not deserialize sends the file to the whole-document parse, which names the key.
    RawConfigPart::deserialize(deserializer).ok()
}

/// The domain names of the chunks so far, as 64-bit hashes: a name in two chunks (or, once
/// in 2^64, two names with one hash) sends the file to the whole-document parse, which
/// then reports the duplicate as it always has.
#[derive(Default)]
struct DomainNames {
    hasher: std::hash::RandomState,
    seen: std::collections::HashSet<u64>,
}

impl DomainNames {
    fn add_new<V>(&mut self, part: &IndexMap<String, V>) -> Option<()> {
        use std::hash::BuildHasher as _;
        for name in part.keys() {
            if !self.seen.insert(self.hasher.hash_one(name)) {
                return None;
            }
        }
        Some(())
    }
}

/// A singleton table taken from at most one chunk.
fn once<T>(merged: &mut Option<T>, part: Option<T>) -> Option<()> {
    match (merged.is_some(), part) {
        (true, Some(_)) => None,
        (_, None) => Some(()),
        (false, part) => {
            *merged = part;
            Some(())
        }
    }
}

/// A map's entries appended in file order; a name already taken by an earlier chunk
/// fails.
fn merge<V>(merged: &mut IndexMap<String, V>, part: IndexMap<String, V>) -> Option<()> {
    for (name, value) in part {
        if merged.contains_key(&name) {
            return None;
        }
        merged.insert(name, value);
    }
    Some(())
}

/// A piece of the file: `range` of the text, after a copy of the header line `header`
/// when the chunk continues a table cut between its entries.
#[derive(Debug)]
struct Chunk {
    header: Option<Range<usize>>,
    range: Range<usize>,
    tables: Vec<Table>,
}

/// Where a chunk is in the text: the header line copied before it, if any, then its own
/// range (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkSpan {
    header: Option<Range<usize>>,
    range: Range<usize>,
}

impl ChunkSpan {
    /// The chunk's text, `None` when the span is not in `text` (not the text it was made
    /// from).
    fn text<'t>(&self, text: &'t str) -> Option<Cow<'t, str>> {
        let own = text.get(self.range.clone())?;
        match &self.header {
            None => Some(Cow::Borrowed(own)),
            Some(header) => Some(Cow::Owned(format!("{}{own}", text.get(header.clone())?))),
        }
    }
}

impl Chunk {
    fn span(&self) -> ChunkSpan {
        ChunkSpan {
            header: self.header.clone(),
            range: self.range.clone(),
        }
    }

    /// A table the chunk writes to, unless it is the one written just before (10,000
    /// `[domain."…"]` headers make one entry).
    fn add(&mut self, table: Table) {
        if self.tables.last() != Some(&table) {
            self.tables.push(table);
        }
    }

    fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.span()
            .text(text)
            .expect("a chunk is cut from the text at token starts")
    }
}

/// A top-level table a chunk writes to: `name`, and whether the statement defines the
/// table itself (`[domain]`, `[[domain]]`, a root-level `domain… =`) rather than a table
/// under it (`[domain."example.org"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    name: String,
    defines: bool,
    root: bool,
}

/// Where the scan is within the current line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Only whitespace and comments so far.
    LineStart,
    /// In a table header line, after its first key.
    Header,
    /// In a key/value statement, which ends at a newline outside brackets.
    Statement,
}

/// The file cut into chunks of about `size` bytes, at table headers and between the
/// entries of a `[domain]` or `[dnsServer]` table; `None` when the scan meets something
/// it does not follow (the whole-file parse then decides).
fn split(text: &str, size: usize) -> Option<Vec<Chunk>> {
    let mut chunks = Vec::new();
    let mut chunk = Chunk {
        header: None,
        range: 0..0,
        tables: Vec::new(),
    };
    // The top-level table and the entry under it (`domain`, `"x"`) of the last header.
    let mut last_header: Option<(String, Option<String>)> = None;
    // The first key of the last statement in a table that may be cut between entries.
    let mut last_entry: Option<String> = None;
    // The header line of the current table when it may be cut between its entries.
    let mut cuttable: Option<Range<usize>> = None;
    let mut line_start = 0;
    let mut depth = 0usize;
    let mut state = State::LineStart;
    let mut tokens = Source::new(text).lex();
    while let Some(token) = tokens.next() {
        let span = token.span();
        match (state, token.kind()) {
            (_, TokenKind::Eof) => break,
            (State::LineStart, TokenKind::Whitespace | TokenKind::Comment) => {}
            (State::LineStart, TokenKind::Newline) => line_start = span.end(),
            (State::LineStart, TokenKind::LeftSquareBracket) => {
                let Header {
                    table,
                    array,
                    entry,
                } = header(&mut tokens, text)?;
                // Never between two headers of one singleton table, nor between the
                // sub-tables of one domain (`[domain."x"]`, `[domain."x".dmarc]`).
                let apart = match &last_header {
                    None => true,
                    Some((name, _)) if *name != table.name => true,
                    Some((_, last)) => {
                        MAPS.contains(&table.name.as_str())
                            && entry.is_some()
                            && last.is_some()
                            && *last != entry
                    }
                };
                if apart && line_start - chunk.range.start >= size {
                    chunks.push(cut(&mut chunk, line_start, None));
                }
                last_header = Some((table.name.clone(), entry));
                cuttable = None;
                last_entry = None;
                if table.defines && !array && MAPS.contains(&table.name.as_str()) {
                    // Its end is set at the newline that ends it.
                    cuttable = Some(line_start..line_start);
                }
                chunk.add(table);
                state = State::Header;
            }
            (State::LineStart, _) => {
                if let Some(header) = &cuttable {
                    // Never between two dotted keys of one entry (`"x".dmarc.policy = …`).
                    let entry = key(text, token.kind(), span.start()..span.end());
                    let apart = entry.is_some() && entry != last_entry;
                    last_entry = entry;
                    if apart && line_start - chunk.range.start >= size {
                        let name = chunk.tables.last().map(|t| t.name.clone())?;
                        chunks.push(cut(&mut chunk, line_start, Some(header.clone())));
                        chunk.add(Table {
                            name,
                            defines: false,
                            root: false,
                        });
                    }
                } else if last_header.is_none() {
                    chunk.add(Table {
                        name: key(text, token.kind(), span.start()..span.end())?,
                        defines: true,
                        root: true,
                    });
                }
                state = State::Statement;
                depth = 0;
            }
            (State::Header, TokenKind::Newline) => {
                line_start = span.end();
                if let Some(header) = &mut cuttable
                    && header.start == header.end
                {
                    header.end = line_start;
                }
                state = State::LineStart;
            }
            (State::Header, _) => {}
            (State::Statement, TokenKind::Newline) if depth == 0 => {
                line_start = span.end();
                state = State::LineStart;
            }
            (State::Statement, TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket) => {
                depth += 1
            }
            (State::Statement, TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket) => {
                depth = depth.checked_sub(1)?
            }
            (State::Statement, _) => {}
        }
    }
    chunk.range.end = text.len();
    chunks.push(chunk);
    Some(chunks)
}

/// The current chunk ended at `at`, and the next one started there.
fn cut(chunk: &mut Chunk, at: usize, header: Option<Range<usize>>) -> Chunk {
    let next = Chunk {
        header,
        range: at..at,
        tables: Vec::new(),
    };
    let mut done = std::mem::replace(chunk, next);
    done.range.end = at;
    done
}

/// A table header line, as far as the scan needs it.
struct Header {
    table: Table,
    /// An array of tables (`[[…]]`).
    array: bool,
    /// The key after the top-level one (`"x"` in `[domain."x".dmarc]`), when readable.
    entry: Option<String>,
}

/// A table header after its first `[`, up to its second key: the rest of the line is left
/// to the caller.
fn header(tokens: &mut Lexer<'_>, text: &str) -> Option<Header> {
    let mut array = false;
    let mut token = tokens.next()?;
    if token.kind() == TokenKind::LeftSquareBracket {
        array = true;
        token = tokens.next()?;
    }
    let token = skip_whitespace(tokens, token)?;
    let span = token.span();
    let name = key(text, token.kind(), span.start()..span.end())?;
    let next = tokens.next()?;
    let token = skip_whitespace(tokens, next)?;
    let defines = match token.kind() {
        TokenKind::RightSquareBracket => true,
        TokenKind::Dot => false,
        _ => return None,
    };
    let mut entry = None;
    if !defines {
        let next = tokens.next()?;
        let token = skip_whitespace(tokens, next)?;
        let span = token.span();
        entry = key(text, token.kind(), span.start()..span.end());
    }
    Some(Header {
        table: Table {
            name,
            defines,
            root: false,
        },
        array,
        entry,
    })
}

/// The first token from `token` on that is not whitespace.
fn skip_whitespace(tokens: &mut Lexer<'_>, mut token: Token) -> Option<Token> {
    while token.kind() == TokenKind::Whitespace {
        token = tokens.next()?;
    }
    Some(token)
}

/// A key as written: bare, or quoted without escapes (anything else is left to the
/// whole-file parse).
fn key(text: &str, kind: TokenKind, span: Range<usize>) -> Option<String> {
    let raw = &text[span];
    match kind {
        TokenKind::Atom => Some(raw.to_string()),
        TokenKind::BasicString => raw
            .strip_prefix('"')?
            .strip_suffix('"')
            .filter(|key| !key.contains('\\'))
            .map(str::to_string),
        TokenKind::LiteralString => raw
            .strip_prefix('\'')?
            .strip_suffix('\'')
            .map(str::to_string),
        _ => None,
    }
}

/// Whether no table can be defined twice across chunks: a top-level table written by
/// more than one chunk is `domain` or `dnsServer`, defined itself (`[domain]`) at most
/// once and never at the root (`domain."x" = …` before the first header). The names
/// under it are checked by [`merge`].
fn tables_are_disjoint(chunks: &[Chunk]) -> bool {
    #[derive(Default)]
    struct Seen {
        chunks: usize,
        last: Option<usize>,
        defines: usize,
        root: bool,
    }
    let mut seen: HashMap<&str, Seen> = HashMap::new();
    for (index, chunk) in chunks.iter().enumerate() {
        for table in &chunk.tables {
            let entry = seen.entry(table.name.as_str()).or_default();
            if entry.last != Some(index) {
                entry.chunks += 1;
                entry.last = Some(index);
            }
            entry.defines += usize::from(table.defines);
            entry.root |= table.root;
        }
    }
    seen.iter().all(|(name, seen)| {
        seen.chunks < 2 || (MAPS.contains(name) && !seen.root && seen.defines <= 1)
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::fmt::Write as _;
    use std::path::Path;

    use super::*;
    use crate::config::{ConfigError, Validator, parse, parse_whole};
    use crate::model::Config;

    thread_local! {
        /// How many parses took the chunked path on this thread.
        pub(super) static CHUNKED_PARSES: Cell<usize> = const { Cell::new(0) };
    }

    const SERVER: &str = "[server]\nhostname = \"mail.example.org\"\nipv4 = [\"192.0.2.10\"]\n\n[server.services]\nimap = { cleartext = false }\n";

    /// Today's parse: the whole document at once.
    fn whole(text: &str) -> Result<Config, ConfigError> {
        parse_whole(text)
            .and_then(|raw| Validator::new(Path::new("/etc/mailzone")).config(raw, None))
    }

    /// [`parse`] and whether it took the chunked path.
    fn parsed(text: &str) -> (Result<Config, ConfigError>, bool) {
        let before = CHUNKED_PARSES.with(Cell::get);
        let config = parse(text, Path::new("/etc/mailzone"));
        (config, CHUNKED_PARSES.with(Cell::get) > before)
    }

    /// A DNS server table with multi-line strings and arrays holding `[fake.header]`
    /// lines.
    fn files_server(name: &str) -> String {
        format!(
            "\n[dnsServer.\"{name}\"]\nkind = \"zonefile\"\npath = '''\n[fake.header]\n/z/{{zone}}'''\nreloadCommand = [\n\"/usr/sbin/knotc\",\n  \"\"\"\n[fake.header]\n\"\"\",\n  \"{{zone}}\",\n]\n"
        )
    }

    /// `count` domains named `{prefix}{i}.example` as `[domain."x"]` tables with
    /// sub-tables and multi-line arrays, a DNS server every 400 domains.
    fn tables(prefix: &str, count: usize) -> String {
        let mut text = String::new();
        for i in 0..count {
            if i % 400 == 0 {
                text.push_str(&files_server(&format!("{prefix}{i}")));
            }
            write!(
                text,
                "\n[domain.\"{prefix}{i}.example\"]\nspf = {{ mechanisms = [\n\"a\",\n  \"mx\",\n] }}\ncaa = {{ issuers = [\"letsencrypt.org\"] }}\n\n[domain.\"{prefix}{i}.example\".dmarc]\npolicy = \"reject\"\nrua = [\n  \"mailto:dmarc@{prefix}{i}.example\",\n]\n"
            )
            .unwrap();
        }
        text
    }

    /// `count` domains as entries of one `[domain]` table (inline tables across lines).
    fn inline(count: usize) -> String {
        let mut text = "\n[domain]\n".to_string();
        for i in 0..count {
            writeln!(
                text,
                "\"i{i}.example\" = {{ dmarc = {{ policy = \"reject\", rua = [\n\"mailto:dmarc@i{i}.example\",\n] }}, spf = {{ mechanisms = [\"mx\"] }} }}"
            )
            .unwrap();
        }
        text
    }

    fn assert_same_chunked(text: &str) {
        assert!(text.len() > 2 * CHUNK_BYTES, "{} bytes", text.len());
        let chunks = split(text, CHUNK_BYTES).unwrap();
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        let (config, chunked) = parsed(text);
        assert!(chunked, "the chunked path was not taken");
        assert_eq!(config.unwrap(), whole(text).unwrap());
    }

    #[test]
    fn domains_naming_one_key_file_share_the_first_key_s_value() {
        let mut text = SERVER.to_string();
        for i in 0..3000 {
            write!(
                text,
                "\n[domain.\"k{i}.example\"]\ndkimManagement = {{ manual = {{ keys = [{{ selector = \"s1\", privateKeyFile = \"keys/shared.pem\" }}] }} }}\n"
            )
            .unwrap();
        }
        assert_same_chunked(&text);
        let config = parse(&text, Path::new("/etc/mailzone")).unwrap();
        let files: Vec<_> = config
            .domains
            .iter()
            .map(|d| match &d.dkim_management {
                crate::model::DkimManagement::Manual { keys } => keys[0].private_key_file.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(files.iter().all(|f| std::sync::Arc::ptr_eq(f, &files[0])));
        assert_eq!(
            files[0].key_path,
            "domain.\"k0.example\".dkimManagement.manual.keys[0].privateKeyFile"
        );
    }

    #[test]
    fn the_first_mistake_in_the_file_is_reported_from_any_chunk() {
        let bad_rua = |text: String, domain: &str| {
            text.replace(
                &format!("\"mailto:dmarc@{domain}\""),
                &format!("\"ftp://{domain}\""),
            )
        };
        let text = bad_rua(
            bad_rua(format!("{SERVER}{}", tables("d", 3000)), "d2900.example"),
            "d100.example",
        );
        let error = chunked_error(&text);
        assert!(error.key.contains("d100.example"), "{error}");
    }

    /// The error of a file that parses in chunks but does not validate: the whole parse's.
    fn chunked_error(text: &str) -> ConfigError {
        let (config, chunked) = parsed(text);
        assert!(
            chunked,
            "a mistake found when validating keeps the chunked parse"
        );
        let error = config.unwrap_err();
        assert_eq!(error, whole(text).unwrap_err());
        error
    }

    #[test]
    fn one_domain_spelled_twice_in_two_chunks_is_configured_twice() {
        let text = format!(
            "{SERVER}\n[domain.\"bücher.example\"]\n{}\n[domain.\"xn--bcher-kva.example\"]\n",
            tables("d", 3000)
        );
        let error = chunked_error(&text);
        assert!(error.message.contains("configured twice"), "{error}");
    }

    #[test]
    fn merged_results_come_in_order_and_the_first_error_in_order_wins() {
        let mut merged = Vec::new();
        let worked = AtomicUsize::new(0);
        let done: Result<(), String> = in_turn_merged(
            500,
            |i| {
                worked.fetch_add(1, Ordering::Relaxed);
                i * 2
            },
            |r| {
                merged.push(r);
                Ok(())
            },
        );
        assert_eq!(done, Ok(()));
        assert_eq!(merged, (0..500).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(worked.into_inner(), 500);

        // Item 0's work is slow: the others' results do not pile up meanwhile. At most: two
        // waiting here and one just received, one in the channel, one finished on the
        // other thread and not sent yet, one just finished on this thread.
        let (produced, consumed, most) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        let bounded: Result<(), ()> = in_turn_merged(
            200,
            |i| {
                if i == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                let ahead =
                    produced.fetch_add(1, Ordering::SeqCst) + 1 - consumed.load(Ordering::SeqCst);
                most.fetch_max(ahead, Ordering::SeqCst);
            },
            |()| {
                consumed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        );
        assert_eq!(bounded, Ok(()));
        assert_eq!(consumed.into_inner(), 200);
        let most = most.into_inner();
        assert!(most <= WAITING + 4, "{most} results waited");

        // Item 40's work is slow and fails; item 300's fails at once: 40's error is the one.
        let failing = in_turn_merged(
            400,
            |i| {
                if i == 40 {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                i
            },
            |i| if i == 40 || i == 300 { Err(i) } else { Ok(()) },
        );
        assert_eq!(failing, Err(40));

        let mut none = Vec::new();
        let nothing: Result<(), ()> = in_turn_merged(
            0,
            |i| i,
            |i| {
                none.push(i);
                Ok(())
            },
        );
        assert_eq!(nothing, Ok(()));
        assert!(none.is_empty());
        assert_eq!(
            in_turn_merged(1, |i| i + 7, |i| if i == 7 { Err("one") } else { Ok(()) }),
            Err("one")
        );
    }

    #[test]
    fn every_item_is_worked_once_and_given_back_in_order() {
        let worked = AtomicUsize::new(0);
        let numbers: Vec<u64> = (0..1000).collect();
        let squares = in_turn(&numbers, |i| {
            worked.fetch_add(1, Ordering::Relaxed);
            Some(i * i)
        });
        assert_eq!(squares, Some((0..1000u64).map(|i| i * i).collect()));
        assert_eq!(worked.into_inner(), 1000);
        assert_eq!(in_turn(&[1, 2, 3, 4], |&i| (i != 3).then_some(i)), None);
        assert_eq!(in_turn(&[] as &[u8], |&i| Some(i)), Some(Vec::new()));
    }

    #[test]
    fn domain_tables_in_chunks_equal_the_whole_parse() {
        assert_same_chunked(&format!("{SERVER}{}", tables("d", 3000)));
    }

    #[test]
    fn entries_of_one_domain_table_in_chunks_equal_the_whole_parse() {
        let text = format!("{SERVER}{}", inline(5000));
        assert_same_chunked(&text);
        let chunks = split(&text, CHUNK_BYTES).unwrap();
        assert_eq!(
            chunks[1].header.clone().map(|h| &text[h]),
            Some("[domain]\n")
        );
    }

    #[test]
    fn entries_tables_and_dns_servers_mixed_equal_the_whole_parse() {
        let text = format!(
            "{}{SERVER}{}{}{}",
            files_server("first"),
            tables("a", 1200),
            inline(2500),
            tables("b", 1200)
        );
        let config = whole(&text).unwrap();
        assert_eq!(config.domains.len(), 4900);
        assert_same_chunked(&text);
    }

    #[test]
    fn crlf_lines_in_chunks_equal_the_whole_parse() {
        let text = format!("{SERVER}{}", tables("d", 3000)).replace('\n', "\r\n");
        assert_same_chunked(&text);
    }

    #[test]
    fn dotted_keys_of_one_entry_stay_in_one_chunk() {
        let mut text = format!("{SERVER}\n[domain]\n");
        for i in 0..6000 {
            write!(
                text,
                "\"x{i}.example\".dmarc.policy = \"reject\"\n\"x{i}.example\".spf.mechanisms = [\"mx\"]\n\"x{i}.example\".caa.issuers = [\"letsencrypt.org\"]\n"
            )
            .unwrap();
        }
        assert_same_chunked(&text);
    }

    #[test]
    fn cuts_are_at_real_headers_only() {
        let text = format!("{SERVER}{}", tables("d", 3000));
        for chunk in split(&text, CHUNK_BYTES).unwrap().iter().skip(1) {
            let start = &text[chunk.range.clone()];
            assert!(start.starts_with("[domain.\"d") || start.starts_with("[dnsServer."));
        }
        // A `[` starting a line inside an array, a multi-line string or an inline table
        // is no header.
        let text = "a = [\n[1],\n]\nb = \"\"\"\n[x]\n\"\"\"\nc = {\n[y] = 1 }\n[t]\n";
        let chunks = split(text, 1).unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(&text[chunks[1].range.clone()], "[t]\n");
    }

    /// The same error as the whole-document parse, and no chunked result.
    fn assert_fallback(text: &str) -> ConfigError {
        assert!(text.len() > CHUNK_BYTES);
        let (config, chunked) = parsed(text);
        assert!(!chunked);
        let error = config.unwrap_err();
        assert_eq!(error, whole(text).unwrap_err());
        error
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text[..text.find(needle).unwrap()].matches('\n').count() + 1
    }

    #[test]
    fn a_syntax_error_in_a_late_chunk_names_its_line() {
        let text = format!("{SERVER}{}", tables("d", 3000)).replace(
            "[domain.\"d1500.example\"]\n",
            "[domain.\"d1500.example\"]\nbroken = = 1\n",
        );
        let error = assert_fallback(&text);
        let line = line_of(&text, "broken = = 1");
        assert!(
            error.key.starts_with(&format!("line {line}, column ")),
            "{error}"
        );
    }

    #[test]
    fn a_shape_error_in_a_late_chunk_names_its_line() {
        let text = format!("{SERVER}{}", tables("d", 3000)).replace(
            "[domain.\"d1500.example\".dmarc]\n",
            "[domain.\"d1500.example\".dmarc]\npolicyy = \"none\"\n",
        );
        let error = assert_fallback(&text);
        let line = line_of(&text, "policyy");
        assert!(error.message.contains(&format!("line {line}")), "{error}");
    }

    #[test]
    fn a_domain_defined_in_two_chunks_is_toml_s_duplicate_error() {
        let text = format!(
            "{SERVER}{}\n[domain.\"d5.example\"]\ncaa = {{ issuers = [\"x.org\"] }}\n",
            tables("d", 3000)
        );
        let error = assert_fallback(&text);
        assert!(error.message.contains("duplicate"), "{error}");
    }

    #[test]
    fn a_server_in_two_chunks_is_toml_s_duplicate_error() {
        let text = format!("{SERVER}{}\n{SERVER}", tables("d", 3000));
        let error = assert_fallback(&text);
        assert!(error.message.contains("duplicate"), "{error}");
    }

    #[test]
    fn a_domain_table_defined_twice_is_an_error_though_its_names_differ() {
        let text = format!(
            "{SERVER}{}\n[domain]\n\"other.example\" = {{}}\n",
            inline(5000)
        );
        assert_fallback(&text);
        // Root keys before the first header define the table too.
        let text = format!("domain.\"root.example\" = {{}}\n{SERVER}{}", inline(5000));
        assert_fallback(&text);
    }

    #[test]
    fn sub_tables_of_a_domain_in_two_chunks_take_the_whole_parse() {
        let text = format!(
            "{SERVER}{}\n[domain.\"d5.example\".mtaSts]\nmode = \"testing\"\n",
            tables("d", 3000)
        );
        let (config, chunked) = parsed(&text);
        assert!(!chunked);
        assert_eq!(config.unwrap(), whole(&text).unwrap());
        // Defining the `[domain]` table after its sub-tables is valid TOML.
        let text = format!(
            "{SERVER}{}\n[domain]\n\"late.example\" = {{}}\n",
            tables("d", 3000)
        );
        let (config, chunked) = parsed(&text);
        assert!(chunked);
        assert_eq!(config.unwrap(), whole(&text).unwrap());
    }

    #[test]
    fn no_server_is_the_missing_table() {
        let error = assert_fallback(&tables("d", 3000));
        assert_eq!(error.key, "server");
    }

    #[test]
    fn blank_means_whitespace_and_comments_only() {
        assert!(is_blank(""));
        assert!(is_blank("\u{feff}  \n# comment\r\n\t# more"));
        assert!(!is_blank("[a]"));
        assert!(!is_blank("# c\na = 1"));
        let big = "# a comment\n".repeat(CHUNK_BYTES / 8);
        let error = assert_fallback(&big);
        assert_eq!(error.key, "(top level)");
        assert!(error.message.contains("empty"));
    }
}
