//! `mailzone plan` and `mailzone apply`: show, then send, the changes that bring each zone
//! in line with the desired records.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mailzone_engine::reconcile::DEFAULT_DELETE_LIMIT;
use mailzone_engine::reconcile::{ZoneJson, ZoneOutcome};
use mailzone_engine::{Progress, ReconcileReport, ReconcileRequest, RecordsRequest, clock};
use mailzone_records::diff::PlanEntry;
use mailzone_records::{Name, Record, RecordPurpose, zonefile};
use serde_json::json;

use crate::args::Format;
use crate::records::parse_type;

#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Exit 0 when no zone needs a change, 2 when changes are pending, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
}

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Apply even when the plan deletes more than 30% of a zone's managed records.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct CommonArgs {
    #[command(flatten)]
    files: crate::args::ConfigArgs,
    /// Only these domains; all domains under automatic DNS management when omitted.
    domains: Vec<String>,
    /// Only these record types, comma-separated (Stalwart's `updateRecords`).
    #[arg(long, value_delimiter = ',', value_parser = parse_type)]
    types: Vec<RecordPurpose>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    /// Run as if at this Unix time (tests of time-driven rollovers).
    #[arg(long, hide = true)]
    at: Option<i64>,
}

pub async fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (_, counts) = run(&args.common, false, false).await?;
    Ok(match (args.detailed_exitcode, counts.changed > 0) {
        (true, true) => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    })
}

pub async fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let (report, _) = run(&args.common, true, args.force).await?;
    if let Some(first) = report.on_key_change_failures.first() {
        anyhow::bail!("{first}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the plan or apply, writing each zone as the engine hands it over (a run over
/// 100,000 zones never holds its whole report), then the report's end.
async fn run(
    args: &CommonArgs,
    apply: bool,
    force: bool,
) -> anyhow::Result<(ReconcileReport, Counts)> {
    let (loaded, store) = args.files.load().await?;
    let writer = Arc::new(Mutex::new(ReportWriter::new(args.format, apply)));
    let sink = {
        let writer = writer.clone();
        Arc::new(move |zone: &ZoneOutcome| {
            if let Ok(mut writer) = writer.lock() {
                writer.zone(zone);
            }
        }) as mailzone_engine::reconcile::ZoneSink
    };
    let request = ReconcileRequest {
        records: RecordsRequest {
            domains: args.domains.clone(),
            types: args.types.clone(),
            state_dir: args.files.state_dir.clone(),
            now_unix: args.at.unwrap_or_else(clock::unix_now),
            store: store.clone(),
        },
        apply,
        force,
        delete_limit: DEFAULT_DELETE_LIMIT,
        after_read: None,
        on_zone: Some(sink),
        concurrency: mailzone_engine::reconcile::DEFAULT_CONCURRENCY,
        both_cores: true,
    };
    let progress = CliProgress::new(args.quiet || args.format == Format::Json);
    let report = mailzone_engine::reconcile(&loaded, &request, &progress).await;
    // The database's close waits on the disk (its last checkpoint's syncs) while this
    // thread writes the snapshot.
    let closing = tokio::spawn(crate::args::close(store));
    if apply {
        remember_config(&args.files.state_dir, &loaded);
    }
    closing.await?;
    progress.finish();
    let mut writer = writer
        .lock()
        .map_err(|_| anyhow::anyhow!("the report writer panicked"))?;
    let finished = writer.finish(report.as_ref().ok());
    let report = report?;
    finished?;
    Ok((report, writer.counts))
}

/// Takes the snapshot of the config's domains into the state directory, so that the next
/// run over the same file does not parse them again. Only `apply` writes it (a plan
/// changes nothing); a snapshot not written costs the next run a parse, nothing else.
fn remember_config(state_dir: &std::path::Path, loaded: &mailzone_engine::LoadedConfig) {
    if let Err(e) = mailzone_engine::load::snapshot::remember(state_dir, loaded) {
        tracing::warn!(
            "the config's snapshot was not written in {}: {e}",
            state_dir.display()
        );
    }
}

/// Adds, replaces and deletes over a whole report, and its zones changed and in sync.
#[derive(Default, Clone, Copy)]
struct Counts {
    add: usize,
    replace: usize,
    delete: usize,
    changed: usize,
    in_sync: usize,
}

impl Counts {
    fn count(&mut self, zone: &ZoneOutcome) {
        let entries = zone.changes.entry_counts();
        if entries.is_empty() {
            self.in_sync += 1;
        } else {
            self.changed += 1;
        }
        self.add += entries.adds;
        self.replace += entries.replaces;
        self.delete += entries.deletes;
    }
}

/// A zone's depth in the JSON report: an element of the `zones` array, a field of the
/// top-level object.
const ZONE_INDENT: &[u8] = b"    ";

/// Indents every line after the first one written through it by [`ZONE_INDENT`] (the
/// caller indents the first): serde_json's pretty form of a zone, written into the
/// report at the zone's depth. A pretty JSON text has no newline inside a string (it
/// escapes them), so every newline starts a line of the structure.
struct Indented<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Indented<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        for line in buf.split_inclusive(|&b| b == b'\n') {
            self.0.write_all(line)?;
            if line.ends_with(b"\n") {
                self.0.write_all(ZONE_INDENT)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Writes the report to stdout zone by zone. Text: each zone, then the skipped domains,
/// the activated DKIM keys and a summary line. JSON: one pretty-printed object whose
/// `zones` are written as they come; after a failed run the object is still closed (the
/// zones that were done, empty lists, the counts), and the exit status says it failed.
struct ReportWriter {
    format: Format,
    applied: bool,
    out: std::io::BufWriter<std::io::Stdout>,
    /// A zone's JSON, printed before it is indented into `out` (kept for the next zone).
    zone_json: Vec<u8>,
    counts: Counts,
    /// The first write error (stdout closed): said once the run is over.
    error: Option<std::io::Error>,
}

impl ReportWriter {
    fn new(format: Format, applied: bool) -> ReportWriter {
        ReportWriter {
            format,
            applied,
            out: std::io::BufWriter::new(std::io::stdout()),
            zone_json: Vec::new(),
            counts: Counts::default(),
            error: None,
        }
    }

    fn zones_written(&self) -> usize {
        self.counts.changed + self.counts.in_sync
    }

    fn zone(&mut self, zone: &ZoneOutcome) {
        let first = self.zones_written() == 0;
        self.counts.count(zone);
        let written = match self.format {
            Format::Text => self.out.write_all(zone_text(zone).as_bytes()),
            Format::Json => self.json_zone(zone, first),
        };
        if let Err(e) = written
            && self.error.is_none()
        {
            self.error = Some(e);
        }
    }

    /// The object's start, up to the `zones` array it opens.
    fn json_head(&mut self) -> std::io::Result<()> {
        write!(
            self.out,
            "{{\n  \"applied\": {},\n  \"zones\": ",
            self.applied
        )
    }

    /// A zone as an element of the `zones` array: serde_json's pretty form, indented to
    /// its depth (the array is a field of the top-level object).
    fn json_zone(&mut self, zone: &ZoneOutcome, first: bool) -> std::io::Result<()> {
        if first {
            self.json_head()?;
            self.out.write_all(b"[\n")?;
        } else {
            self.out.write_all(b",\n")?;
        }
        self.out.write_all(ZONE_INDENT)?;
        // Printed whole into a buffer first: serde_json writes a token at a time, and
        // each write through the indenting writer would scan its few bytes for a newline.
        self.zone_json.clear();
        serde_json::to_writer_pretty(&mut self.zone_json, &ZoneJson(zone))
            .map_err(std::io::Error::other)?;
        Indented(&mut self.out).write_all(&self.zone_json)
    }

    /// The end of the report: `report` is `None` when the run failed.
    fn finish(&mut self, report: Option<&ReconcileReport>) -> anyhow::Result<()> {
        match self.format {
            Format::Text => {
                if let Some(report) = report {
                    write_text_end(&mut self.out, report, self.counts, self.applied)?;
                }
            }
            // Nothing at all when the run failed before any zone was done.
            Format::Json if report.is_none() && self.zones_written() == 0 => {}
            Format::Json => self.json_end(report)?,
        }
        self.out.flush()?;
        match self.error.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn json_end(&mut self, report: Option<&ReconcileReport>) -> std::io::Result<()> {
        if self.zones_written() == 0 {
            self.json_head()?;
            self.out.write_all(b"[]")?;
        } else {
            self.out.write_all(b"\n  ]")?;
        }
        let end = JsonReportEnd {
            report,
            counts: self.counts,
        };
        let text = serde_json::to_string_pretty(&end).map_err(std::io::Error::other)?;
        // The end's own fields, written after `zones` inside the one object.
        let fields = text.strip_prefix('{').unwrap_or(&text);
        writeln!(self.out, ",{fields}")
    }
}

/// The skipped domains, the activated DKIM keys and the summary line of the text report.
fn write_text_end(
    out: &mut impl Write,
    report: &ReconcileReport,
    counts: Counts,
    applied: bool,
) -> std::io::Result<()> {
    for name in &report.manual_domains {
        writeln!(
            out,
            "domain {name}: manual DNS management, skipped (see `mailzone records`)"
        )?;
    }
    for (name, changes) in &report.dkim_changes {
        for change in changes {
            let replaces = if change.replaces.is_empty() {
                String::new()
            } else {
                format!(", {} retiring", change.replaces.join(", "))
            };
            writeln!(
                out,
                "domain {name}: DKIM key {} served everywhere, now active{replaces}",
                change.selector
            )?;
        }
    }
    let changed = counts.changed;
    let (verb, add, replace, delete) = if applied {
        ("Applied", "added", "replaced", "deleted")
    } else {
        ("Plan", "to add", "to replace", "to delete")
    };
    writeln!(
        out,
        "{verb}: {} {add}, {} {replace}, {} {delete} in {changed} zone{} ({} in sync); {} DNS messages",
        counts.add,
        counts.replace,
        counts.delete,
        if changed == 1 { "" } else { "s" },
        counts.in_sync,
        report.messages
    )
}

fn zone_text(zone: &ZoneOutcome) -> String {
    let mut out = String::new();
    let how = match zone.method {
        None => "serial unchanged since the last run".to_string(),
        Some(m) => format!(
            "read by {}",
            match m {
                mailzone_dns::ReadMethod::Transfer => "zone transfer",
                mailzone_dns::ReadMethod::Queries => "queries",
                mailzone_dns::ReadMethod::Listing => "the provider's listing",
                mailzone_dns::ReadMethod::File => "the zone file",
            }
        ),
    };
    out.push_str(&format!(
        "zone {} (dnsServer {}, serial {}, {how})\n",
        zone.zone, zone.dns_server, zone.serial
    ));
    let entries = zone.entries();
    if entries.is_empty() {
        out.push_str("  in sync\n");
        return out;
    }
    // Weaker guarantees than one atomic, conditional UPDATE are said before the changes.
    let c = &zone.capabilities;
    if !c.atomic || c.conditional == mailzone_dns::Conditional::No {
        out.push_str(&format!("  provider: {}\n", c.summary()));
    }
    for entry in entries {
        match entry {
            PlanEntry::Add(d) => {
                out.push_str(&format!(
                    "  + add     {}  [{}]\n",
                    line(&d.record),
                    d.purpose
                ));
            }
            PlanEntry::Replace { purpose, old, new } => {
                let head = &new[0];
                out.push_str(&format!(
                    "  ~ replace {} {}  [{purpose}]\n",
                    head.name,
                    head.data.rtype()
                ));
                for r in old {
                    out.push_str(&format!(
                        "      - {} {}\n",
                        r.ttl,
                        zonefile::rdata_presentation(&r.data)
                    ));
                }
                for r in new {
                    out.push_str(&format!(
                        "      + {} {}\n",
                        r.ttl,
                        zonefile::rdata_presentation(&r.data)
                    ));
                }
            }
            PlanEntry::Delete(t, r) => {
                let t = t.map(|t| t.to_string()).unwrap_or_else(|| "ledger".into());
                out.push_str(&format!("  - delete  {}  [{t}]\n", line(&r)));
            }
        }
    }
    out
}

fn line(record: &Record) -> String {
    zonefile::record_line(record, 0)
}

/// The fields of the JSON report after `zones`. `report` is `None` after a failed run: the
/// lists are then empty, the counts those of the zones written.
struct JsonReportEnd<'a> {
    report: Option<&'a ReconcileReport>,
    counts: Counts,
}

impl serde::Serialize for JsonReportEnd<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let counts = self.counts;
        let manual: Vec<&str> = self
            .report
            .map(|r| r.manual_domains.iter().map(Name::as_str).collect())
            .unwrap_or_default();
        let activated: Vec<serde_json::Value> = self
            .report
            .map(|r| {
                r.dkim_changes
                    .iter()
                    .flat_map(|(name, changes)| {
                        changes.iter().map(move |c| {
                            json!({
                                "domain": name.as_str(),
                                "selector": c.selector,
                                "algorithm": c.algorithm.as_str(),
                                "retiring": c.replaces,
                            })
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut object = serializer.serialize_struct("report", 3)?;
        object.serialize_field("manualDomains", &manual)?;
        object.serialize_field("dkimActivated", &activated)?;
        object.serialize_field(
            "summary",
            &json!({
                "add": counts.add, "replace": counts.replace, "delete": counts.delete,
                "zonesChanged": counts.changed,
                "zonesInSync": counts.in_sync,
                "dnsMessages": self.report.map_or(0, |r| r.messages),
                "zonesPlanned": self.report.map_or(0, |r| r.zones_planned),
            }),
        )?;
        object.end()
    }
}

/// Progress on stderr: a spinner per zone on a terminal, plain lines otherwise.
struct CliProgress {
    quiet: bool,
    bars: Option<MultiProgress>,
    /// The zones in flight: a bar each, removed once the zone is done (a run over
    /// 100,000 zones shows the ones being worked on and a count, not 100,000 lines).
    zones: Mutex<HashMap<Name, ProgressBar>>,
    /// The count of zones done (and failed), below the zones in flight.
    total: Option<ProgressBar>,
    done: AtomicU64,
    failed: AtomicU64,
}

impl CliProgress {
    fn new(quiet: bool) -> CliProgress {
        let terminal = std::io::stderr().is_terminal();
        let bars = (terminal && !quiet).then(MultiProgress::new);
        let total = bars.as_ref().map(|bars| {
            let total = bars.add(ProgressBar::new_spinner());
            total.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
            total
        });
        CliProgress {
            quiet,
            bars,
            zones: Mutex::new(HashMap::new()),
            total,
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    fn finish(&self) {
        if let Some(bars) = &self.bars {
            let _ = bars.clear();
        }
    }

    /// Shows `line` through `on_bar` on the zone's progress bar, or as a line of stderr
    /// when there are no bars; nothing with `--quiet`.
    fn show_unless_quiet(&self, zone: &Name, line: &str, on_bar: impl FnOnce(&ProgressBar)) {
        if self.quiet {
            return;
        }
        if self.bars.is_some() {
            if let Ok(zones) = self.zones.lock()
                && let Some(bar) = zones.get(zone)
            {
                on_bar(bar);
            }
        } else {
            eprintln!("{}: {line}", zone.as_str());
        }
    }

    /// Takes the zone's bar away and counts the zone as done.
    fn zone_done(&self, zone: &Name, failed: bool) {
        let (Some(bars), Some(total)) = (&self.bars, &self.total) else {
            return;
        };
        if let Some(bar) = self.zones.lock().ok().and_then(|mut z| z.remove(zone)) {
            bar.finish_and_clear();
            bars.remove(&bar);
        }
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let failed =
            self.failed.fetch_add(u64::from(failed), Ordering::Relaxed) + u64::from(failed);
        let failed = if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        };
        total.set_message(format!("{done} zones done{failed}"));
    }
}

impl Progress for CliProgress {
    fn zone_started(&self, zone: &Name) {
        if let (Some(bars), Some(total)) = (&self.bars, &self.total) {
            let bar = bars.insert_before(total, ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg}")
                    .expect("a valid template"),
            );
            bar.set_prefix(zone.as_str().to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            if let Ok(mut zones) = self.zones.lock() {
                zones.insert(zone.clone(), bar);
            }
        }
    }

    fn step(&self, zone: &Name, what: &str) {
        self.show_unless_quiet(zone, what, |bar| bar.set_message(what.to_string()));
    }

    fn zone_finished(&self, zone: &Name, summary: &str) {
        self.show_unless_quiet(zone, summary, |_| {});
        self.zone_done(zone, false);
    }

    fn zone_failed(&self, zone: &Name, _reason: &str) {
        // The reason is in the error the run ends with.
        self.zone_done(zone, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written through `Indented` in pieces of any size, a pretty JSON text is the text
    /// with every line indented (as a zone of the `zones` array is shown).
    #[test]
    fn every_line_after_the_first_is_indented_however_the_text_is_cut() {
        let value = serde_json::json!({
            "zone": "example.org",
            "changes": [{ "new": [{ "value": "v=DKIM1;\n p=A" }], "old": [] }],
            "domains": []
        });
        let text = serde_json::to_string_pretty(&value).unwrap();
        let expected: Vec<String> = text.lines().map(|line| format!("    {line}")).collect();
        for piece in [1, 2, 7, text.len()] {
            let mut out = Vec::from(ZONE_INDENT);
            let mut indented = Indented(&mut out);
            for chunk in text.as_bytes().chunks(piece) {
                indented.write_all(chunk).unwrap();
            }
            assert_eq!(String::from_utf8(out).unwrap(), expected.join("\n"));
        }
    }
}
