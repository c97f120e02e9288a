//! Many threads compiling their first schemas at the same moment, in a
//! process where nothing has used libxml2 yet (this file is its own test
//! binary and has a single test, so nothing runs before it).
//!
//! libxml2 before 2.11 fills its table of built-in XSD types lazily and
//! without a lock in the first `xmlSchemaParse`; without the crate's
//! one-time initialisation this failed now and then with "The QName value
//! '{http://www.w3.org/2001/XMLSchema}int' does not resolve to a(n) type
//! definition". (A race: a regression shows up in some runs, not all.)

mod common;

use std::sync::Barrier;

use common::{factory, write, ITEMS_XSD};
use drehscheibe_xsd::SchemaValidator;

#[test]
fn concurrent_first_compiles_all_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "items.xsd", ITEMS_XSD);
    let threads = 64;
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                barrier.wait();
                let schema = factory()
                    .load_schema(dir.path(), "items.xsd")
                    .unwrap_or_else(|e| panic!("{e}"));
                schema
                    .validate(b"<root xmlns='urn:t'><item>1</item></root>")
                    .unwrap_or_else(|e| panic!("{e}"));
            });
        }
    });
}
