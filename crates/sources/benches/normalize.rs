//! Parse + normalize throughput of generated pages, one core.
//!
//! `cargo bench -p bankpipe-sources --bench normalize` reports time per
//! batch; criterion's throughput lines give transactions/s ("elem/s") and
//! MB/s ("MiB/s"). Target (issue #2): ≥ 1,000,000 Truv transactions/s.

use bankpipe_gen::{FireflyGenerator, GenConfig, TruvGenerator};
use bankpipe_sources::{firefly, truv, NormalizeContext};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// The allocator the `bankpipe` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS: u64 = 50_000;

fn config() -> GenConfig {
    GenConfig { accounts: 50, transactions: RECORDS, page_size: 1_000, seed: 42, ..GenConfig::default() }
}

fn bench_truv(c: &mut Criterion) {
    let pages: Vec<String> = TruvGenerator::new(config()).collect();
    let bytes: usize = pages.iter().map(String::len).sum();
    let ctx = NormalizeContext::new("truv");
    let mut group = c.benchmark_group("truv");
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("normalize_transactions", |b| {
        b.iter(|| {
            let mut n = 0;
            for p in &pages {
                let (page, _) = truv::normalize_page(&ctx, "bench", p.as_bytes()).expect("valid page");
                n += page.transactions.len();
            }
            black_box(n)
        })
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("normalize_bytes", |b| {
        b.iter(|| {
            for p in &pages {
                black_box(truv::normalize_page(&ctx, "bench", p.as_bytes()).expect("valid page"));
            }
        })
    });
    group.finish();
}

fn bench_firefly(c: &mut Criterion) {
    let pages: Vec<String> = FireflyGenerator::new(config()).collect();
    let ctx = NormalizeContext::new("firefly");
    let mut group = c.benchmark_group("firefly");
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("normalize_splits", |b| {
        b.iter(|| {
            for p in &pages {
                black_box(firefly::normalize_page(&ctx, "bench", p.as_bytes()).expect("valid page"));
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_truv, bench_firefly
}
criterion_main!(benches);
