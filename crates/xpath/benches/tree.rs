//! Parse speed of the arena tree ([`Document::parse`]) against xot, on
//! generated record-style XML (30 KB, 1 MB, 10 MB) and on one element with
//! 1k…100k attributes and on 1k…1M sibling elements (growth must be
//! linear).
//!
//! Run: `cargo bench -p drehscheibe-xpath --bench tree`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use drehscheibe_xpath::{Document, ParseOptions};

fn records(target: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<records xmlns=\"urn:example:records\">\n",
    );
    let mut i = 0;
    while s.len() < target {
        s.push_str(&format!(
            "  <record id=\"{i}\" status=\"active\">\n    <name>Person number {i}</name>\n    <city>Berlin-Charlottenburg</city>\n    <amount currency=\"EUR\">{}.50</amount>\n    <note>Fish &amp; chips &lt;3</note>\n  </record>\n",
            i * 7
        ));
        i += 1;
    }
    s.push_str("</records>\n");
    s
}

fn attributes(n: usize) -> String {
    let mut s = String::from("<r");
    for i in 0..n {
        s.push_str(&format!(" a{i}=\"{i}\""));
    }
    s.push_str("/>");
    s
}

fn bench_documents(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_records");
    group.sample_size(10);
    for (label, size) in [("30KB", 30_000), ("1MB", 1_000_000), ("10MB", 10_000_000)] {
        let text = records(size);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("tree", label), &text, |b, t| {
            b.iter(|| Document::parse(t.as_bytes(), &ParseOptions::default()).map(|d| d.len()))
        });
        group.bench_with_input(BenchmarkId::new("xot", label), &text, |b, t| {
            b.iter(|| {
                let mut xot = xot::Xot::new();
                xot.parse(t).is_ok()
            })
        });
    }
    group.finish();
}

fn bench_attributes(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_attributes");
    group.sample_size(10);
    let opts = ParseOptions {
        max_attributes: 1_000_000,
        ..ParseOptions::default()
    };
    for n in [1_000, 10_000, 100_000] {
        let text = attributes(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("tree", n), &text, |b, t| {
            b.iter(|| Document::parse(t.as_bytes(), &opts).map(|d| d.len()))
        });
        // xot checks duplicate attributes pairwise: keep it to sizes that
        // finish.
        if n <= 10_000 {
            group.bench_with_input(BenchmarkId::new("xot", n), &text, |b, t| {
                b.iter(|| {
                    let mut xot = xot::Xot::new();
                    xot.parse(t).is_ok()
                })
            });
        }
    }
    group.finish();
}

fn elements(n: usize) -> String {
    let mut s = String::with_capacity(n * 4 + 16);
    s.push_str("<r>");
    for _ in 0..n {
        s.push_str("<a/>");
    }
    s.push_str("</r>");
    s
}

fn bench_elements(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_elements");
    group.sample_size(10);
    for n in [1_000, 10_000, 100_000, 1_000_000] {
        let text = elements(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("tree", n), &text, |b, t| {
            b.iter(|| Document::parse(t.as_bytes(), &ParseOptions::default()).map(|d| d.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_documents, bench_attributes, bench_elements);
criterion_main!(benches);
