//! `mailzone records`: the records each domain needs, as a zone file or JSON.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use mailzone_engine::{RecordsRequest, clock};
use mailzone_records::{RecordPurpose, json, zonefile};

#[derive(Args)]
pub struct RecordsArgs {
    #[command(flatten)]
    files: crate::args::ConfigArgs,
    /// Only these domains (Unicode names are accepted); all configured domains when omitted.
    domains: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Zone)]
    format: Format,
    /// Only these record types, comma-separated (mx, address, spf, dkim, dmarc, tlsRpt,
    /// mtaSts, srv, autoConfig, autoConfigLegacy, autoDiscover, caa, tlsa).
    #[arg(long, value_delimiter = ',', value_parser = parse_type)]
    types: Vec<RecordPurpose>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Zone,
    Json,
}

pub fn parse_type(s: &str) -> Result<RecordPurpose, String> {
    s.parse::<RecordPurpose>().map_err(|e| e.to_string())
}

pub async fn run(args: RecordsArgs) -> anyhow::Result<ExitCode> {
    let (loaded, store) = args.files.load().await?;
    let request = RecordsRequest {
        types: args.types,
        ..args
            .files
            .records_request(args.domains, clock::unix_now(), &store)
    };
    let planned =
        crate::args::then_close(store, mailzone_engine::records(&loaded, &request)).await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Zone => {
            for (i, domain) in planned.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                let text =
                    zonefile::render(&domain.domain.name, &domain.domain.zone, &domain.records);
                out.write_all(text.as_bytes())?;
            }
        }
        Format::Json => {
            let all: Vec<_> = planned
                .iter()
                .flat_map(|d| json::records(&d.domain.name, &d.records))
                .collect();
            serde_json::to_writer_pretty(&mut out, &all).context("writing JSON")?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
