//! Intake check ([`validate`]) and routing parse ([`InputDocument::parse`])
//! of XML payloads shaped like the issue 9 reproductions: one element with
//! 1k…10k attributes (the per-element limit is `MAX_XML_ATTRIBUTES`;
//! `crates/xpath/benches/tree.rs` parses up to 100k with a raised limit),
//! and 1k…1M sibling `<a/>` elements. Time per attribute / element must
//! stay flat (linear growth); the throughput column shows it directly.
//!
//! Run: `cargo bench -p drehscheibe-rules --bench input`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use drehscheibe_rules::{validate, InputDocument, MAX_XML_ATTRIBUTES};

const XML: &str = "application/xml";

fn attributes(n: usize) -> String {
    let mut s = String::from(r#"<p xmlns="urn:x""#);
    for i in 0..n {
        s.push_str(&format!(r#" a{i}="x""#));
    }
    s.push_str("/>");
    s
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

fn bench_attributes(c: &mut Criterion) {
    let mut group = c.benchmark_group("input_attributes");
    group.sample_size(10);
    for n in [1_000, 3_000, MAX_XML_ATTRIBUTES - 1] {
        let text = attributes(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("validate", n), &text, |b, t| {
            b.iter(|| validate(t.as_bytes(), XML).is_ok())
        });
        group.bench_with_input(BenchmarkId::new("parse", n), &text, |b, t| {
            b.iter(|| InputDocument::parse(t.as_bytes(), XML).is_ok())
        });
    }
    // Over the limit: refused after MAX_XML_ATTRIBUTES, not after reading
    // all of them.
    let text = attributes(100_000);
    group.bench_with_input(
        BenchmarkId::new("validate-refused", 100_000),
        &text,
        |b, t| b.iter(|| validate(t.as_bytes(), XML).is_err()),
    );
    group.finish();
}

fn bench_elements(c: &mut Criterion) {
    let mut group = c.benchmark_group("input_elements");
    group.sample_size(10);
    for n in [1_000, 10_000, 100_000, 1_000_000] {
        let text = elements(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("validate", n), &text, |b, t| {
            b.iter(|| validate(t.as_bytes(), XML).is_ok())
        });
        group.bench_with_input(BenchmarkId::new("parse", n), &text, |b, t| {
            b.iter(|| InputDocument::parse(t.as_bytes(), XML).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_attributes, bench_elements);
criterion_main!(benches);
