//! Compile time of XPath expressions over growing nesting depth: shows
//! that our parser + compiler are linear in the expression length (the
//! engine we replaced, xee-xpath, was exponential in the nesting depth of
//! parentheses: five levels took 0.21 s).
//!
//! Run with `cargo bench -p drehscheibe-xpath --bench compile`; `cargo test --benches`
//! runs a smoke version (depths up to 50, few iterations).
//!
//! Families, each nested `depth` times:
//! - `parens`: `((((1 + 0) + 1) + 2) …)`
//! - `calls`: `concat(concat(concat('x', ''), ''), …)`
//! - `arith`: `round(number('108') * 50 div 100 + (… ))`-style money
//!   arithmetic: `(((x * 1.5) div 2) + 3)` repeated
//! - `preds`: `//a[b[c[… = 1]]]`
//!
//! For each depth: mean microseconds per compile, and µs per depth level
//! (constant if linear). `BENCH_FAMILIES=arith,preds` picks families.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use drehscheibe_xpath::{Expression, NoHostStatic, StaticContext};

fn family(name: &str, depth: usize) -> String {
    match name {
        "parens" => {
            let mut e = String::from("1");
            for i in 0..depth {
                e = format!("({e} + {i})");
            }
            e
        }
        "calls" => {
            let mut e = String::from("'x'");
            for _ in 0..depth {
                e = format!("concat({e}, '')");
            }
            e
        }
        "arith" => {
            let mut e = String::from("number('108')");
            for i in 0..depth {
                e = format!("round((({e} * 1.5) div 2) + {i})");
            }
            e
        }
        "preds" => {
            let mut e = String::from("x = 1");
            for _ in 0..depth {
                e = format!("a[{e}]");
            }
            format!("//{e}")
        }
        _ => unreachable!(),
    }
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test") || std::env::var("BENCH_SMOKE").is_ok();
    let depths: &[usize] = if smoke {
        &[1, 10, 50]
    } else {
        &[1, 10, 25, 50, 100, 200, 400]
    };
    let budget = if smoke {
        Duration::from_millis(20)
    } else {
        Duration::from_millis(500)
    };
    let host = NoHostStatic;
    let ns = |_: &str| None;
    let ctx = StaticContext {
        namespaces: &ns,
        default_element_namespace: String::new(),
        backwards_compatible: false,
        host: &host,
    };
    println!(
        "{:<8} {:>6} {:>8} {:>12} {:>14}",
        "family", "depth", "chars", "µs/compile", "µs per level"
    );
    let only = std::env::var("BENCH_FAMILIES").ok();
    for fam in ["parens", "calls", "arith", "preds"] {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|f| f == fam))
        {
            continue;
        }
        for &d in depths {
            // the arithmetic family nests five levels per step: 400 steps
            // exceed the parser's nesting limit (1024) on purpose
            if fam == "arith" && d > 200 {
                continue;
            }
            let text = family(fam, d);
            Expression::compile(&text, &ctx).expect("compiles");
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < budget || n < 3 {
                let e = Expression::compile(&text, &ctx).expect("compiles");
                std::hint::black_box(&e);
                n += 1;
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
            println!(
                "{fam:<8} {d:>6} {:>8} {us:>12.1} {:>14.3}",
                text.len(),
                us / d as f64
            );
        }
    }
}
