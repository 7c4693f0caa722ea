//! Planning and rendering the records of 10,000 domains.
//!
//! `cargo bench -p mailzone-bench`. The config, the DKIM keys (one RSA-2048 key, a few
//! Ed25519 keys) and the TLSA digests are made once, before anything is timed.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailzone_bench::{Fixture, example_relative_config_text, parse_config};

const DOMAINS: usize = 10_000;

fn records(c: &mut Criterion) {
    let text = example_relative_config_text(DOMAINS);
    let fixture = Fixture::new(DOMAINS);

    let mut group = c.benchmark_group("records");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(DOMAINS as u64));

    group.bench_function("parse config 10k", |b| {
        b.iter(|| parse_config(black_box(&text)))
    });
    group.bench_function("plan 10k domains", |b| {
        b.iter(|| black_box(&fixture).plan_all())
    });
    group.bench_function("plan+render zone 10k", |b| {
        b.iter(|| black_box(&fixture).plan_render_zone())
    });
    group.bench_function("plan+render json 10k", |b| {
        b.iter(|| black_box(&fixture).plan_render_json())
    });
    group.finish();
}

criterion_group!(benches, records);
criterion_main!(benches);
