//! Fuzz target bodies for the parsers that face the network or the rule
//! author.
//!
//! Each public function takes the fuzzer's bytes and **panics only when an
//! invariant of the hub is broken** — never because the input is bad (bad
//! input must get an error). The functions are shared by two callers:
//!
//! * the coverage-guided binaries in `fuzz/` (`cargo fuzz run <target>`,
//!   see `fuzz/README.md`), which run them millions of times with
//!   libFuzzer's time (`-timeout`) and memory (`-rss_limit_mb`) limits —
//!   so a hang or a memory blow-up is a finding, too;
//! * `tests/corpora.rs`, which replays every stored corpus entry and
//!   every fixed crash (`fuzz/corpus/<target>`, `fuzz/regressions/<target>`)
//!   in the normal test suite, so a fixed finding stays fixed without a
//!   nightly toolchain or libFuzzer.
//!
//! | target | what it feeds | invariant beyond "no panic" |
//! |---|---|---|
//! | [`intake_xml`] | the intake check, transcoding and routing parser for XML | what the intake accepts parses at routing |
//! | [`intake_json`] | the same for JSON | the same |
//! | [`http_multipart`] | a `multipart/form-data` body to the HTTP inbox | no 5xx; every staged attachment is submitted or discarded |
//! | [`xta_mtom`] | an MTOM (`multipart/related`) request to the XTA 2 server | an HTTP answer, never a panic or 5xx other than a SOAP fault |
//! | [`soap_envelope`] | the SOAP 1.2 envelope parser | — |
//! | [`jose`] | FIT-Connect JWE decryption and JWS verification | a forged token never verifies |
//! | [`xpath`] | the XPath compiler, then evaluation under a time budget | — |
//! | [`xslt`] | the XSLT compiler, then a transform under a time budget | — |

mod intake;
mod protocols;
mod rules;

pub use intake::{http_multipart, intake_json, intake_xml};
pub use protocols::{jose, soap_envelope, xta_mtom};
pub use rules::{xpath, xslt};

/// A target by its name (as in `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>`).
pub type Target = fn(&[u8]);

/// All targets with their names.
pub const TARGETS: &[(&str, Target)] = &[
    ("intake_xml", intake_xml),
    ("intake_json", intake_json),
    ("http_multipart", http_multipart),
    ("xta_mtom", xta_mtom),
    ("soap_envelope", soap_envelope),
    ("jose", jose),
    ("xpath", xpath),
    ("xslt", xslt),
];

/// One current-thread runtime per process for the async targets.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        #[allow(clippy::expect_used)]
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the fuzz targets")
    })
}
