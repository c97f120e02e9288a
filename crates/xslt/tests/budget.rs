//! A runaway transform stops when the caller's time budget is spent
//! (`drehscheibe_xpath::budget`), with a dynamic error naming the budget —
//! no timing is asserted, only that it stops and how.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drehscheibe_xpath::budget;
use drehscheibe_xslt::{Stylesheet, TransformError};

/// 10^9 iterations of instructions that evaluate almost nothing: hours
/// without a budget.
const RUNAWAY: &str = r#"<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:template match="/">
  <out>
    <xsl:for-each select="1 to 1000">
      <xsl:for-each select="1 to 1000">
        <xsl:for-each select="1 to 1000">
          <xsl:text/>
        </xsl:for-each>
      </xsl:for-each>
    </xsl:for-each>
  </out>
</xsl:template>
</xsl:stylesheet>"#;

#[test]
fn a_runaway_transform_stops_at_the_deadline() {
    let sheet = Stylesheet::compile_str(RUNAWAY, Path::new("runaway.xsl")).unwrap();
    let deadline = Instant::now() + Duration::from_millis(300);
    let result = budget::with_budget(deadline, Arc::new(AtomicBool::new(false)), || {
        sheet.transform_bytes(b"<a/>", &BTreeMap::new())
    });
    match result {
        Err(TransformError::Dynamic { message, .. }) => {
            assert!(message.contains(budget::CODE), "{message}")
        }
        other => panic!("expected a dynamic error, got {other:?}"),
    }
    // The budget ended with the call: the same stylesheet runs again
    // (on a small input that finishes) without one.
    let small = Stylesheet::compile_str(
        r#"<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/"><out><xsl:for-each select="1 to 3"><i/></xsl:for-each></out></xsl:template></xsl:stylesheet>"#,
        Path::new("small.xsl"),
    )
    .unwrap();
    let out = small.transform_bytes(b"<a/>", &BTreeMap::new()).unwrap();
    assert!(String::from_utf8_lossy(&out).contains("<i/><i/><i/>"));
}

#[test]
fn a_cancelled_transform_stops() {
    let sheet = Stylesheet::compile_str(RUNAWAY, Path::new("runaway.xsl")).unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let far = Instant::now() + Duration::from_secs(3600);
    let result = budget::with_budget(far, cancel, || {
        sheet.transform_bytes(b"<a/>", &BTreeMap::new())
    });
    canceller.join().unwrap();
    assert!(
        matches!(&result, Err(TransformError::Dynamic { message, .. }) if message.contains(budget::CODE)),
        "{result:?}"
    );
}
