//! Probe: parse vs compile time of a deeply nested arithmetic expression.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::time::Instant;

use drehscheibe_xpath::{parser, Expression, NoHostStatic, StaticContext};

fn main() {
    let depth: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut e = String::from("number('108')");
    for i in 0..depth {
        e = format!("round((({e} * 1.5) div 2) + {i})");
    }
    let t = Instant::now();
    for _ in 0..20 {
        let a = parser::parse(&e).unwrap();
        std::hint::black_box(&a);
    }
    println!("parse {:?}", t.elapsed() / 20);
    let host = NoHostStatic;
    let ns = |_: &str| None;
    let ctx = StaticContext {
        namespaces: &ns,
        default_element_namespace: String::new(),
        backwards_compatible: false,
        host: &host,
    };
    let t = Instant::now();
    for _ in 0..20 {
        let x = Expression::compile(&e, &ctx).unwrap();
        std::hint::black_box(&x);
    }
    println!("compile (incl. parse) {:?}", t.elapsed() / 20);
}
