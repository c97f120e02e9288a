//! Unified diffs, rendered as one `<span>` per line inside
//! `<pre class="diff">`, with CSS classes for added, removed, hunk and
//! header lines. The diffs themselves come from the engine
//! ([`drehscheibe_engine::admin::unified_diff`], bounded in size and time,
//! the same as the JSON API's); here they are only read and shown, at
//! most [`MAX_SHOWN`] of each.

use maud::{html, Markup};

use crate::{human_bytes, layout::number};

/// Most of one diff's text shown on a page.
pub const MAX_SHOWN: usize = 200 * 1024;

/// What a diff line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// `--- a` / `+++ b`.
    Meta,
    /// `@@ -1,3 +1,4 @@`.
    Hunk,
    Added,
    Removed,
    Context,
}

impl LineKind {
    fn class(self) -> &'static str {
        match self {
            Self::Meta => "diff-meta",
            Self::Hunk => "diff-hunk",
            Self::Added => "diff-add",
            Self::Removed => "diff-del",
            Self::Context => "diff-ctx",
        }
    }
}

/// The unified diff from `old` to `new` (`None`: the file did not exist,
/// or no longer exists; its header is then `/dev/null`), made by the
/// engine.
pub fn unified(old: Option<&str>, new: Option<&str>, old_name: &str, new_name: &str) -> String {
    drehscheibe_engine::admin::unified_diff(
        old.unwrap_or(""),
        new.unwrap_or(""),
        if old.is_some() { old_name } else { "/dev/null" },
        if new.is_some() { new_name } else { "/dev/null" },
    )
}

/// The lines of a unified diff made elsewhere (the engine's rule and
/// dry-run comparisons), classified for [`render`]: `---`/`+++` before the
/// first hunk and `\ No newline at end of file` are header lines.
pub fn parse(text: &str) -> Vec<(LineKind, String)> {
    let mut in_hunk = false;
    text.lines()
        .map(|line| {
            let kind = if line.starts_with("@@") {
                in_hunk = true;
                LineKind::Hunk
            } else if line.starts_with('\\')
                || (!in_hunk && (line.starts_with("---") || line.starts_with("+++")))
            {
                LineKind::Meta
            } else if line.starts_with('+') {
                LineKind::Added
            } else if line.starts_with('-') {
                LineKind::Removed
            } else {
                LineKind::Context
            };
            (kind, line.strip_suffix('\r').unwrap_or(line).to_owned())
        })
        .collect()
}

/// A unified diff's text as HTML: at most [`MAX_SHOWN`] bytes of it (cut
/// at a line end), with a note when it was cut.
pub fn show(text: &str) -> Markup {
    let (shown, cut) = cut_text(text, MAX_SHOWN);
    html! {
        (render(&parse(shown)))
        @if cut {
            p.hint { "Gekürzt: gezeigt werden die ersten " (human_bytes(MAX_SHOWN as u64)) " von " (number(text.len() as u64)) " Bytes des Unterschieds." }
        }
    }
}

/// `text` cut to at most `max` bytes, at the last line end before (or at
/// a character boundary when one line is longer); whether it was cut.
fn cut_text(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map_or(end, |i| i + 1);
    (&text[..end], true)
}

/// The diff as HTML (escaped by maud); "no changes" when equal.
pub fn render(lines: &[(LineKind, String)]) -> Markup {
    if lines.is_empty() {
        return html! { p.muted { "Keine Änderungen im Text." } };
    }
    html! {
        pre.diff tabindex="0" aria-label="Änderungen (unified diff)" {
            @for (kind, text) in lines {
                span class=(kind.class()) { (text) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_are_marked_and_context_kept() {
        let old = "a = 1\nb = 2\nc = 3\n";
        let new = "a = 1\nb = 20\nc = 3\nd = 4\n";
        let lines = parse(&unified(Some(old), Some(new), "alt", "neu"));
        let kinds: Vec<LineKind> = lines.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                LineKind::Meta,
                LineKind::Meta,
                LineKind::Hunk,
                LineKind::Context,
                LineKind::Removed,
                LineKind::Added,
                LineKind::Context,
                LineKind::Added,
            ]
        );
        assert_eq!(lines[0].1, "--- alt");
        assert_eq!(lines[2].1, "@@ -1,3 +1,4 @@");
        assert_eq!(lines[4].1, "-b = 2");
        assert_eq!(lines[5].1, "+b = 20");
        assert_eq!(lines[7].1, "+d = 4");
    }

    #[test]
    fn a_new_file_is_all_added_and_equal_texts_have_no_diff() {
        let lines = parse(&unified(None, Some("x = 1\n"), "a/x", "b/x"));
        assert_eq!(lines[0].1, "--- /dev/null");
        assert_eq!(lines[1].1, "+++ b/x");
        assert_eq!(
            lines.last().map(|(k, t)| (*k, t.as_str())),
            Some((LineKind::Added, "+x = 1"))
        );
        let lines = parse(&unified(Some("x = 1\n"), None, "a/x", "b/x"));
        assert_eq!(lines[1].1, "+++ /dev/null");
        assert!(parse(&unified(Some("x\n"), Some("x\n"), "a", "b")).is_empty());
        assert!(render(&[]).into_string().contains("Keine Änderungen"));
    }

    #[test]
    fn diffs_made_elsewhere_are_classified() {
        let text = "--- r@1.0.0/a.xsl\n+++ r@1.1.0/a.xsl\n@@ -1,2 +1,2 @@\n x\n---y\n+++y\n\\ No newline at end of file\n";
        let kinds: Vec<LineKind> = parse(text).iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                LineKind::Meta,
                LineKind::Meta,
                LineKind::Hunk,
                LineKind::Context,
                LineKind::Removed,
                LineKind::Added,
                LineKind::Meta,
            ]
        );
        assert!(parse("").is_empty());
    }

    #[test]
    fn rendering_escapes_and_styles_each_line() {
        let text = unified(
            Some("name = \"alt\"\n"),
            Some("name = \"<script>alert(1)</script>\"\n"),
            "a",
            "b",
        );
        let html = show(&text).into_string();
        assert!(html.starts_with("<pre class=\"diff\""));
        assert!(html.contains("<span class=\"diff-del\">-name = &quot;alt&quot;</span>"));
        assert!(html.contains(
            "<span class=\"diff-add\">+name = &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;</span>"
        ));
        assert!(html.contains("<span class=\"diff-hunk\">@@ -1 +1 @@</span>"));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("Gekürzt"));
    }

    #[test]
    fn long_diffs_are_cut_at_a_line_end() {
        let line = format!("+{}\n", "ä".repeat(99));
        let text = format!("--- a\n+++ b\n@@ -0,0 +1,5000 @@\n{}", line.repeat(5000));
        let html = show(&text).into_string();
        assert!(html.contains("Gekürzt: gezeigt werden die ersten 200 KiB"));
        assert!(html.len() < 2 * MAX_SHOWN);
        let (cut, was_cut) = cut_text(&text, MAX_SHOWN);
        assert!(was_cut && cut.len() <= MAX_SHOWN && cut.ends_with('\n'));
        assert_eq!(cut_text("ab", 10), ("ab", false));
        // One long line: cut at a character boundary.
        let (cut, _) = cut_text("äää", 3);
        assert_eq!(cut, "ä");
    }
}
