//! The parse of a big config file, for measuring its memory and time by hand:
//! `MAILZONE_BIG_CONFIG=/path/mailzone.toml cargo test --release -p mailzone-records
//! --test big_config -- --ignored --nocapture` (under `heaptrack` for the peak heap).

use std::path::Path;
use std::time::Instant;

#[test]
#[ignore = "needs a generated config named by MAILZONE_BIG_CONFIG"]
fn parse_a_big_config() {
    let path = std::env::var("MAILZONE_BIG_CONFIG").expect("MAILZONE_BIG_CONFIG");
    let text = std::fs::read_to_string(&path).unwrap();
    let started = Instant::now();
    let config = mailzone_records::config::parse(&text, Path::new("/etc/mailzone")).unwrap();
    println!(
        "{} bytes, {} domains, parsed in {:?}",
        text.len(),
        config.domains.len(),
        started.elapsed()
    );
}
