//! `[store]` in the main file: the embedded store by default, PostgreSQL
//! with its URL as a secret, and clear errors for what cannot work.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use drehscheibe_config::{ConfigErrors, HubConfig, Plugins, StoreConfig};

fn load(main: &Path) -> Result<HubConfig, ConfigErrors> {
    HubConfig::load(main, &Plugins::new())
}

fn write(dir: &Path, store: &str) -> PathBuf {
    let main = dir.join("hub.toml");
    std::fs::write(
        &main,
        format!("[server]\nlisten = \"127.0.0.1:0\"\n\n{store}\n"),
    )
    .unwrap();
    main
}

#[test]
fn the_embedded_store_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(&write(dir.path(), "")).unwrap();
    assert_eq!(config.store, StoreConfig::Sled);
    let config = load(&write(dir.path(), "[store]\ntype = \"sled\"")).unwrap();
    assert_eq!(config.store, StoreConfig::Sled);
}

#[test]
fn postgres_reads_its_url_from_a_secret_file_and_applies_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("db-url"),
        "postgres://hub:geheim@db.example:5432/hub\n",
    )
    .unwrap();
    let main = write(
        dir.path(),
        "[store]\ntype = \"postgres\"\nurl = { file = \"db-url\" }\nschema = \"land_bb\"\ninstance = \"hub-a\"",
    );
    let config = load(&main).unwrap();
    let StoreConfig::Postgres(pg) = &config.store else {
        panic!("expected postgres, got {:?}", config.store);
    };
    assert_eq!(pg.url.expose(), "postgres://hub:geheim@db.example:5432/hub");
    assert_eq!(pg.schema, "land_bb");
    assert_eq!(pg.instance.as_deref(), Some("hub-a"));
    assert_eq!(pg.pool_size, drehscheibe_config::DEFAULT_PG_POOL_SIZE);
    assert_eq!(pg.connect_timeout, Duration::from_secs(5));
    assert_eq!(pg.statement_timeout, Duration::from_secs(30));
    // The password never shows in debug output.
    assert!(!format!("{config:?}").contains("geheim"));
}

#[test]
fn mistakes_are_reported_by_key_without_echoing_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[store]\ntype = \"postgres\"", "store", "needs `url`"),
        ("[store]\ntype = \"mysql\"", "store.type", "unknown store type"),
        (
            "[store]\ntype = \"sled\"\npool_size = 4",
            "store.pool_size",
            "sled store has none",
        ),
        (
            "[store]\ntype = \"postgres\"\nurl = { value = \"mysql://root:geheim@x/db\" }",
            "store.url",
            "must start with `postgres://`",
        ),
        (
            "[store]\ntype = \"postgres\"\nurl = { value = \"postgres://x/db\" }\nschema = \"Drop Table\"",
            "store.schema",
            "lower-case SQL identifier",
        ),
        (
            "[store]\ntype = \"postgres\"\nurl = { value = \"postgres://x/db\" }\npool_size = 0",
            "store.pool_size",
            "at least 1",
        ),
        (
            "[store]\ntype = \"postgres\"\nurl = { env = \"DREHSCHEIBE_TEST_UNSET_DB_URL\" }",
            "store.url.env",
            "is not set",
        ),
    ];
    for (text, key, message) in cases {
        let errors = load(&write(dir.path(), text)).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.key == key && e.message.contains(message)),
            "{text}: expected {key}: {message}, got {errors}"
        );
        assert!(!errors.to_string().contains("geheim"), "{errors}");
    }
}
