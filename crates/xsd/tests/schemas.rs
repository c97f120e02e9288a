//! Loading schemas: locations, the catalog, offline imports, compile
//! errors.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{factory, schema_message, violation, write, ITEMS_XSD};
use drehscheibe_xsd::{Catalog, SchemaError, SchemaFactory, SchemaValidator, XsdFactory};

/// A schema for `urn:main` whose root has an attribute of a type from
/// `urn:other`, imported from `location`.
fn main_xsd(location: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:o="urn:other"
           targetNamespace="urn:main" elementFormDefault="qualified">
  <xs:import namespace="urn:other" schemaLocation="{location}"/>
  <xs:element name="root">
    <xs:complexType>
      <xs:attribute name="code" type="o:Code" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"#
    )
}

/// `urn:other`'s `Code`: two upper-case letters (via an include).
const OTHER_XSD: &str = r#"<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:other">
  <xs:include schemaLocation="other-types.xsd"/>
</xs:schema>
"#;

const OTHER_TYPES_XSD: &str = r#"<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:other">
  <xs:simpleType name="Code">
    <xs:restriction base="xs:string"><xs:pattern value="[A-Z]{2}"/></xs:restriction>
  </xs:simpleType>
</xs:schema>
"#;

const CATALOG_HEAD: &str = r#"<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">"#;

/// A folder with `catalog/` (the catalog and the local copy of the
/// imported schema) and `package/` (the rule package).
fn layout(import: &str, catalog_entries: &str) -> (tempfile::TempDir, XsdFactory) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "catalog/other/other.xsd", OTHER_XSD);
    write(root, "catalog/other/other-types.xsd", OTHER_TYPES_XSD);
    let catalog = write(
        root,
        "catalog/catalog.xml",
        &format!("{CATALOG_HEAD}\n{catalog_entries}\n</catalog>\n"),
    );
    write(root, "package/main.xsd", &main_xsd(import));
    let catalog = Catalog::load(catalog).expect("catalog loads");
    (dir, XsdFactory::new(Arc::new(catalog)))
}

#[test]
fn remote_import_mapped_by_the_catalog_compiles_offline() {
    let (dir, factory) = layout(
        "http://example.invalid/x.xsd",
        r#"<system systemId="http://example.invalid/x.xsd" uri="other/other.xsd"/>"#,
    );
    let package = dir.path().join("package");
    let schema = factory.load_schema(&package, "main.xsd").expect("compiles");
    schema
        .validate(br#"<root xmlns="urn:main" code="DE"/>"#)
        .expect("valid");
    let v = violation(schema.validate(br#"<root xmlns="urn:main" code="de"/>"#));
    assert!(v.issues[0].message.contains("'de'"), "{v}");
    assert_eq!((v.issues[0].line, v.issues[0].column), (Some(1), Some(1)));
}

#[test]
fn remote_import_mapped_by_a_rewrite_compiles_offline() {
    let (dir, factory) = layout(
        "https://example.invalid/schemas/other.xsd",
        r#"<rewriteURI uriStartString="https://example.invalid/schemas/" rewritePrefix="other/"/>"#,
    );
    let package = dir.path().join("package");
    let schema = factory.load_schema(&package, "main.xsd").expect("compiles");
    schema
        .validate(br#"<m:root xmlns:m="urn:main" code="AB"/>"#)
        .expect("valid");
}

#[test]
fn remote_import_not_in_the_catalog_is_refused() {
    let (dir, _) = layout("http://example.invalid/x.xsd", "");
    let package = dir.path().join("package");
    let message = schema_message(factory().load_schema(&package, "main.xsd"));
    assert!(
        message.contains(
            "import of http://example.invalid/x.xsd refused: not in the XML catalog; the hub never fetches schemas from the network"
        ),
        "{message}"
    );
    // libxml2's own complaint is kept, with file and line.
    assert!(
        message.contains("main.xsd:4: Element '{http://www.w3.org/2001/XMLSchema}import': Failed to parse the XML resource 'http://example.invalid/x.xsd'"),
        "{message}"
    );
    assert!(
        message.find("refused") < message.find("Failed to parse"),
        "{message}"
    );
}

#[test]
fn refused_import_fails_even_when_libxml2_would_skip_it() {
    // Nothing references the imported namespace: libxml2 only warns.
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "s.xsd",
        r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:import namespace="urn:x" schemaLocation="https://example.invalid/unused.xsd"/>
  <xs:element name="a" type="xs:string"/>
</xs:schema>"#,
    );
    let message = schema_message(factory().load_schema(dir.path(), "s.xsd"));
    assert!(
        message.contains("import of https://example.invalid/unused.xsd refused"),
        "{message}"
    );
}

#[test]
fn import_of_a_file_outside_the_allowed_folders_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = write(dir.path(), "elsewhere/other.xsd", OTHER_XSD);
    write(dir.path(), "elsewhere/other-types.xsd", OTHER_TYPES_XSD);
    write(
        dir.path(),
        "package/main.xsd",
        &main_xsd("../elsewhere/other.xsd"),
    );
    let package = dir.path().join("package");
    let message = schema_message(factory().load_schema(&package, "main.xsd"));
    assert!(message.contains("refused"), "{message}");
    assert!(message.contains("elsewhere/other.xsd"), "{message}");
    // The same file by file: URL.
    write(
        dir.path(),
        "package/main.xsd",
        &main_xsd(&format!("file://{}", outside.display())),
    );
    let message = schema_message(factory().load_schema(&package, "main.xsd"));
    assert!(message.contains("refused"), "{message}");

    // Inside the package, by relative path and by file: URL, it is fine.
    write(dir.path(), "package/sub/other.xsd", OTHER_XSD);
    write(dir.path(), "package/sub/other-types.xsd", OTHER_TYPES_XSD);
    write(dir.path(), "package/main.xsd", &main_xsd("sub/other.xsd"));
    factory()
        .load_schema(&package, "main.xsd")
        .expect("relative import inside the package");
    let inside = std::fs::canonicalize(package.join("sub/other.xsd")).expect("exists");
    write(
        dir.path(),
        "package/main.xsd",
        &main_xsd(&format!("file://{}", inside.display())),
    );
    factory()
        .load_schema(&package, "main.xsd")
        .expect("file: URL inside the package");
}

#[test]
fn schema_syntax_errors_name_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Not well-formed XML.
    write(
        dir.path(),
        "broken.xsd",
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n  <xs:element name=\"a\">\n</xs:schema>\n",
    );
    let err = factory().load_schema(dir.path(), "broken.xsd");
    let Err(SchemaError::Schema { schema, message }) = err else {
        panic!("expected a schema error, got {err:?}");
    };
    assert_eq!(schema, "broken.xsd");
    assert!(message.contains("broken.xsd:3: "), "{message}");
    assert!(
        message.contains("Opening and ending tag mismatch"),
        "{message}"
    );

    // Well-formed, but not a valid schema (unknown type, bad attribute).
    write(
        dir.path(),
        "wrong.xsd",
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n  <xs:element name=\"a\" type=\"xs:string\"/>\n  <xs:element name=\"b\" type=\"xs:nosuchtype\"/>\n</xs:schema>\n",
    );
    let message = schema_message(factory().load_schema(dir.path(), "wrong.xsd"));
    assert!(message.contains("wrong.xsd:3: "), "{message}");
    assert!(message.contains("nosuchtype"), "{message}");

    // An error in an included file names that file.
    write(
        dir.path(),
        "outer.xsd",
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n  <xs:include schemaLocation=\"wrong.xsd\"/>\n</xs:schema>\n",
    );
    let message = schema_message(factory().load_schema(dir.path(), "outer.xsd"));
    assert!(message.contains("wrong.xsd:3: "), "{message}");

    // Not a schema at all.
    write(dir.path(), "plain.xsd", "<a/>");
    let message = schema_message(factory().load_schema(dir.path(), "plain.xsd"));
    assert!(message.contains("plain.xsd"), "{message}");
}

#[test]
fn locations_must_stay_inside_the_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "x.xsd", ITEMS_XSD);
    write(dir.path(), "package/sub/x.xsd", ITEMS_XSD);
    let package = dir.path().join("package");
    let f = factory();
    for location in ["../x.xsd", "sub/../../x.xsd", "sub/../sub/x.xsd"] {
        let message = schema_message(f.load_schema(&package, location));
        assert!(
            message.contains("leaves the rule package"),
            "{location}: {message}"
        );
    }
    let absolute = dir.path().join("x.xsd");
    for location in ["/etc/x.xsd", absolute.to_str().expect("utf-8")] {
        let message = schema_message(f.load_schema(&package, location));
        assert!(message.contains("absolute path"), "{location}: {message}");
    }
    let message = schema_message(f.load_schema(&package, "missing.xsd"));
    assert!(message.contains("does not exist"), "{message}");
    let message = schema_message(f.load_schema(&package, ""));
    assert!(message.contains("empty"), "{message}");
    f.load_schema(&package, "sub/x.xsd").expect("inside");
    f.load_schema(&package, "./sub/x.xsd").expect("inside");

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.path().join("x.xsd"), package.join("link.xsd"))
            .expect("symlink");
        let message = schema_message(f.load_schema(&package, "link.xsd"));
        assert!(message.contains("leaves the rule package"), "{message}");
    }
}

#[test]
fn uri_locations_resolve_through_the_catalog_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "schemas/items.xsd", ITEMS_XSD);
    let catalog_path = write(
        dir.path(),
        "schemas/catalog.xml",
        &format!(
            "{CATALOG_HEAD}<uri name=\"urn:test:items\" uri=\"items.xsd\"/><uri name=\"urn:test:gone\" uri=\"gone.xsd\"/></catalog>"
        ),
    );
    let package = dir.path().join("package");
    std::fs::create_dir_all(&package).expect("mkdir");
    let f = XsdFactory::new(Arc::new(Catalog::load(&catalog_path).expect("catalog")));

    // Through the SchemaFactory seam.
    let seam: &dyn SchemaFactory = &f;
    let validator = seam.load(&package, "urn:test:items").expect("compiles");
    assert_eq!(validator.location(), "urn:test:items");
    validator
        .validate(b"<root xmlns='urn:t'><item>5</item></root>")
        .expect("valid");
    let v = violation(validator.validate(b"<root xmlns='urn:t'><item>five</item></root>"));
    assert_eq!(v.schema, "urn:test:items");

    for location in ["urn:test:nope", "https://example.invalid/items.xsd"] {
        let message = schema_message(f.load_schema(&package, location));
        assert_eq!(
            message,
            format!(
                "{location} is not in the XML catalog {}; the hub never fetches schemas from the network",
                catalog_path.display()
            )
        );
    }
    let message = schema_message(f.load_schema(&package, "urn:test:gone"));
    assert!(
        message.contains("gone.xsd, which is not a file"),
        "{message}"
    );

    // The empty catalog refuses every URI.
    let message = schema_message(factory().load_schema(&package, "urn:test:items"));
    assert!(
        message.contains("is not in the XML catalog (empty catalog)"),
        "{message}"
    );
}

#[test]
fn load_path_compiles_a_schema_file_given_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "cli/items.xsd", ITEMS_XSD);
    let schema = factory().load_path(&file).expect("compiles");
    assert_eq!(schema.path(), file.as_path());
    assert_eq!(schema.location(), file.display().to_string());
    schema.validate(b"<root xmlns='urn:t'/>").expect("valid");
    let message = schema_message(factory().load_path(Path::new("/nonexistent/s.xsd")));
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn schemas_compile_again_on_other_threads() {
    let (dir, factory) = layout(
        "http://example.invalid/x.xsd",
        r#"<system systemId="http://example.invalid/x.xsd" uri="other/other.xsd"/>"#,
    );
    let package = dir.path().join("package");
    let schema = factory.load_schema(&package, "main.xsd").expect("compiles");
    // Each thread compiles its own copy, through the same offline rules.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                schema
                    .validate(br#"<root xmlns="urn:main" code="DE"/>"#)
                    .expect("valid");
                violation(schema.validate(br#"<root xmlns="urn:main" code="D"/>"#));
            });
        }
    });
    // A schema whose file vanished reports that on a new thread.
    std::fs::remove_file(package.join("main.xsd")).expect("remove");
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let result = schema.validate(br#"<root xmlns="urn:main" code="DE"/>"#);
            assert!(
                matches!(result, Err(SchemaError::Schema { .. })),
                "{result:?}"
            );
        });
    });
}
