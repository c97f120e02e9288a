//! The OASIS XML catalog reader.

mod common;

use std::path::{Path, PathBuf};

use common::{workspace_root, write};
use drehscheibe_xsd::{Catalog, CatalogError, MAX_CATALOG_DEPTH};

const HEAD: &str = r#"<?xml version="1.0"?>
<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">"#;

fn catalog(dir: &Path, name: &str, entries: &str) -> PathBuf {
    write(dir, name, &format!("{HEAD}\n{entries}\n</catalog>\n"))
}

fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).expect("canonical")
}

#[test]
fn entries_resolve_in_the_specified_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = canonical(dir.path());
    let path = catalog(
        dir.path(),
        "cat/catalog.xml",
        r#"
  <!-- comments are fine -->
  <uri name="urn:a" uri="a/a.xsd"/>
  <system systemId="http://example.invalid/s/exact.xsd" uri="./s/../exact.xsd"/>
  <group>
    <rewriteSystem systemIdStartString="http://example.invalid/s/" rewritePrefix="short/"/>
    <rewriteURI uriStartString="http://example.invalid/s/deep/" rewritePrefix="long/"/>
  </group>
  <uriSuffix uriSuffix="/x.xsd" uri="suffix/short.xsd"/>
  <systemSuffix systemSuffix="/y/x.xsd" uri="suffix/long.xsd"/>
  <uri name="urn:abs" uri="file:///opt/schemas/abs%20x.xsd"/>
  <public publicId="-//X//DTD Y//EN" uri="ignored.dtd"/>
  <other:entry xmlns:other="urn:other" uri="http://ignored.invalid/"><uri name="urn:hidden" uri="h.xsd"/></other:entry>
"#,
    );
    let c = Catalog::load(&path).expect("loads");
    let cat = base.join("cat");
    assert_eq!(c.path(), Some(path.as_path()));
    assert!(!c.is_empty());
    assert_eq!(c.resolve("urn:a"), Some(cat.join("a/a.xsd")));
    // Exact match beats the rewrite that would also match.
    assert_eq!(
        c.resolve("http://example.invalid/s/exact.xsd"),
        Some(cat.join("exact.xsd"))
    );
    // The longest rewrite start string wins.
    assert_eq!(
        c.resolve("http://example.invalid/s/deep/z.xsd"),
        Some(cat.join("long/z.xsd"))
    );
    assert_eq!(
        c.resolve("http://example.invalid/s/q/z.xsd"),
        Some(cat.join("short/q/z.xsd"))
    );
    // Rewrites beat suffixes.
    assert_eq!(
        c.resolve("http://example.invalid/s/x.xsd"),
        Some(cat.join("short/x.xsd"))
    );
    // The longest suffix wins.
    assert_eq!(
        c.resolve("http://other.invalid/y/x.xsd"),
        Some(cat.join("suffix/long.xsd"))
    );
    assert_eq!(
        c.resolve("http://other.invalid/z/x.xsd"),
        Some(cat.join("suffix/short.xsd"))
    );
    assert_eq!(
        c.resolve("urn:abs"),
        Some(PathBuf::from("/opt/schemas/abs x.xsd"))
    );
    // A rewrite never climbs out of its prefix.
    assert_eq!(c.resolve("http://example.invalid/s/../../etc/passwd"), None);
    // Foreign elements (and what they contain) and public ids are ignored.
    assert_eq!(c.resolve("urn:hidden"), None);
    assert_eq!(c.resolve("-//X//DTD Y//EN"), None);
    assert_eq!(c.resolve("urn:unknown"), None);

    let roots = c.roots();
    // (Paths compare by components: a trailing slash does not matter.)
    for dir in ["a", "", "short", "long", "suffix"] {
        let expected = cat.join(dir);
        assert!(roots.contains(&expected), "{expected:?} not in {roots:?}");
    }
    assert!(roots.contains(&PathBuf::from("/opt/schemas")));
    let unique: std::collections::HashSet<_> = roots.iter().collect();
    assert_eq!(unique.len(), roots.len());
}

#[test]
fn next_catalogs_are_consulted_when_nothing_matched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = canonical(dir.path());
    let first = catalog(
        dir.path(),
        "first.xml",
        r#"<uri name="urn:both" uri="first/both.xsd"/><nextCatalog catalog="more/second.xml"/>"#,
    );
    catalog(
        dir.path(),
        "more/second.xml",
        r#"<uri name="urn:both" uri="second/both.xsd"/><uri name="urn:second" uri="second/only.xsd"/>
           <nextCatalog catalog="../first.xml"/>"#,
    );
    let c = Catalog::load(&first).expect("loads (the cycle is ignored)");
    assert_eq!(c.resolve("urn:both"), Some(base.join("first/both.xsd")));
    assert_eq!(
        c.resolve("urn:second"),
        Some(base.join("more/second/only.xsd"))
    );
    assert!(c.roots().contains(&base.join("more/second")));
}

#[test]
fn next_catalog_chains_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..=MAX_CATALOG_DEPTH + 1 {
        catalog(
            dir.path(),
            &format!("c{i}.xml"),
            &format!(r#"<nextCatalog catalog="c{}.xml"/>"#, i + 1),
        );
    }
    let err = Catalog::load(dir.path().join("c0.xml")).expect_err("too deep");
    assert!(matches!(err, CatalogError::TooDeep { .. }), "{err}");

    // Depth MAX_CATALOG_DEPTH itself is fine.
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..MAX_CATALOG_DEPTH {
        catalog(
            dir.path(),
            &format!("c{i}.xml"),
            &format!(r#"<nextCatalog catalog="c{}.xml"/>"#, i + 1),
        );
    }
    catalog(
        dir.path(),
        &format!("c{MAX_CATALOG_DEPTH}.xml"),
        r#"<uri name="urn:deep" uri="deep.xsd"/>"#,
    );
    let c = Catalog::load(dir.path().join("c0.xml")).expect("loads");
    assert!(c.resolve("urn:deep").is_some());
}

#[test]
fn broken_catalogs_are_errors_with_a_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &str, &str); 8] = [
        (
            "missing.xml",
            "<uri name=\"urn:a\"/>",
            "line 3: <uri> needs the attribute `uri`",
        ),
        (
            "remote.xml",
            "\n<uri name=\"urn:a\" uri=\"https://example.invalid/a.xsd\"/>",
            "line 4: `https://example.invalid/a.xsd` is not a local file; the hub never fetches schemas from the network",
        ),
        (
            "delegate.xml",
            "<delegateURI uriStartString=\"x\" catalog=\"y.xml\"/>",
            "line 3: the entry <delegateURI> is not supported",
        ),
        (
            "base.xml",
            "<group xml:base=\"http://example.invalid/\"><uri name=\"a\" uri=\"b\"/></group>",
            "line 3: the attribute xml:base is not supported",
        ),
        (
            "syntax.xml",
            "<uri name=\"a\" uri=\"b\">\n</catalog>",
            "line 4",
        ),
        (
            "next-missing.xml",
            "<nextCatalog catalog=\"nowhere.xml\"/>",
            "cannot read XML catalog",
        ),
        (
            "rewrite.xml",
            "<rewriteURI uriStartString=\"http://x/\"/>",
            "<rewriteURI> needs the attribute `rewritePrefix`",
        ),
        (
            "suffix.xml",
            "<systemSuffix uri=\"a.xsd\"/>",
            "<systemSuffix> needs the attribute `systemSuffix`",
        ),
    ];
    for (name, entries, expected) in cases {
        let path = catalog(dir.path(), name, entries);
        let err = Catalog::load(&path).expect_err(name).to_string();
        assert!(err.contains(expected), "{name}: {err}");
    }
    // Not a catalog at all.
    for (name, text) in [
        ("other.xml", "<catalog/>"),
        ("empty.xml", ""),
        (
            "wrong-root.xml",
            "<group xmlns=\"urn:oasis:names:tc:entity:xmlns:xml:catalog\"/>",
        ),
    ] {
        let path = write(dir.path(), name, text);
        let err = Catalog::load(&path).expect_err(name);
        assert!(
            matches!(err, CatalogError::NotACatalog { .. }),
            "{name}: {err}"
        );
    }
    let err = Catalog::load(dir.path().join("absent.xml")).expect_err("absent");
    assert!(matches!(err, CatalogError::Io { .. }), "{err}");
}

#[test]
fn the_empty_catalog_maps_nothing() {
    let c = Catalog::empty();
    assert!(c.is_empty());
    assert_eq!(c.path(), None);
    assert_eq!(c.resolve("urn:xoev-de:xdomea:schema:3.1.0"), None);
    assert!(c.roots().is_empty());
    assert_eq!(c.to_string(), "(empty catalog)");
}

#[test]
fn the_shipped_catalog_maps_to_existing_files() {
    let path = workspace_root().join("schemas/catalog.xml");
    let c = Catalog::load(&path).expect("the shipped catalog loads");
    for id in [
        "urn:xoev-de:xdomea:schema:3.1.0",
        "urn:xoev-de:xdomea:schema:3.1.0/xdomea.xsd",
        "http://xoev.de/schemata/code/1_0/xoev-code.xsd",
        "http://www.w3.org/2001/xml.xsd",
        "http://www.w3.org/2009/01/xml.xsd",
    ] {
        let file = c.resolve(id).unwrap_or_else(|| panic!("{id} is mapped"));
        assert!(file.is_file(), "{id} -> {} exists", file.display());
    }
    assert!(c
        .resolve("urn:xoev-de:xdomea:schema:3.1.0")
        .is_some_and(|f| f.ends_with("schemas/xdomea/3.1.0/xdomea.xsd")));
    for root in c.roots() {
        assert!(root.is_dir(), "{}", root.display());
    }
}
