//! The shipped xdomea 3.1.0 schema set through the shipped catalog, and
//! the gewerbeanmeldung rule's expected DMS outputs.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{violation, workspace_root};
use drehscheibe_xsd::{Catalog, SchemaValidator, XsdFactory};

const XDOMEA: &str = "urn:xoev-de:xdomea:schema:3.1.0";

fn factory() -> XsdFactory {
    let catalog = Catalog::load(workspace_root().join("schemas/catalog.xml"))
        .expect("the shipped catalog loads");
    XsdFactory::new(Arc::new(catalog))
}

/// `rules/gewerbeanmeldung/2.0.0/tests/*/expected/dms.xml`.
fn expected_dms_outputs() -> Vec<PathBuf> {
    let tests = workspace_root().join("rules/gewerbeanmeldung/2.0.0/tests");
    let mut files: Vec<_> = std::fs::read_dir(&tests)
        .expect("rule tests exist")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("expected/dms.xml"))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn expected_dms_outputs_are_valid_xdomea() {
    let package = workspace_root().join("rules/gewerbeanmeldung/2.0.0");
    let schema = factory()
        .load_schema(&package, XDOMEA)
        .expect("xdomea 3.1.0 compiles offline");
    assert_eq!(schema.location(), XDOMEA);
    assert!(schema.path().ends_with("schemas/xdomea/3.1.0/xdomea.xsd"));
    let files = expected_dms_outputs();
    assert!(files.len() >= 5, "{files:?}");
    for file in &files {
        let document = std::fs::read(file).expect("read");
        if let Err(e) = schema.validate(&document) {
            panic!("{}: {e}", file.display());
        }
    }
}

#[test]
fn a_dms_output_without_a_required_element_is_invalid() {
    let package = workspace_root().join("rules/gewerbeanmeldung/2.0.0");
    let schema = factory().load_schema(&package, XDOMEA).expect("compiles");
    let files = expected_dms_outputs();
    let original = std::fs::read_to_string(&files[0]).expect("read");
    // Drop the (required) ProzessID line from the Kopf.
    let (line_no, line) = original
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("<xdomea:ProzessID>"))
        .expect("a ProzessID");
    let broken = original.replacen(&format!("{line}\n"), "", 1);
    assert_ne!(broken, original);
    let v = violation(schema.validate(broken.as_bytes()));
    assert_eq!(v.schema, XDOMEA);
    assert_eq!(v.issues.len(), 1, "{v}");
    let issue = &v.issues[0];
    assert!(issue.message.contains("Nachrichtentyp"), "{v}");
    assert!(issue.message.contains("ProzessID"), "{v}");
    // The line where ProzessID was, now holding Nachrichtentyp.
    assert_eq!(issue.line, Some(line_no as u32 + 1), "{v}");
    assert_eq!(issue.column, Some(5), "{v}");
}
