//! Unified diffs of configuration texts (computed when shown, ADR 0021),
//! rendered as one `<span>` per line inside `<pre class="diff">`, with
//! CSS classes for added, removed, hunk and header lines.

use std::time::Duration;

use maud::{html, Markup};
use similar::{ChangeTag, TextDiff};

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

/// The lines of the unified diff from `old` to `new` (`None`: the file
/// did not exist, or no longer exists), three lines of context.
pub fn unified(
    old: Option<&str>,
    new: Option<&str>,
    old_name: &str,
    new_name: &str,
) -> Vec<(LineKind, String)> {
    let (old, new) = (old.unwrap_or(""), new.unwrap_or(""));
    let diff = TextDiff::configure()
        .timeout(Duration::from_secs(2))
        .diff_lines(old, new);
    let mut out = Vec::new();
    let mut udiff = diff.unified_diff();
    udiff.context_radius(3);
    let mut first = true;
    for hunk in udiff.iter_hunks() {
        if first {
            out.push((LineKind::Meta, format!("--- {old_name}")));
            out.push((LineKind::Meta, format!("+++ {new_name}")));
            first = false;
        }
        out.push((LineKind::Hunk, hunk.header().to_string()));
        for change in hunk.iter_changes() {
            let (kind, sign) = match change.tag() {
                ChangeTag::Insert => (LineKind::Added, '+'),
                ChangeTag::Delete => (LineKind::Removed, '-'),
                ChangeTag::Equal => (LineKind::Context, ' '),
            };
            let text = change.value();
            let text = text.strip_suffix('\n').unwrap_or(text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            out.push((kind, format!("{sign}{text}")));
        }
    }
    out
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
        let lines = unified(Some(old), Some(new), "alt", "neu");
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
        let lines = unified(None, Some("x = 1\n"), "/dev/null", "neu");
        assert_eq!(
            lines.last().map(|(k, t)| (*k, t.as_str())),
            Some((LineKind::Added, "+x = 1"))
        );
        assert!(unified(Some("x\n"), Some("x\n"), "a", "b").is_empty());
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
        let lines = unified(
            Some("name = \"alt\"\n"),
            Some("name = \"<script>alert(1)</script>\"\n"),
            "a",
            "b",
        );
        let html = render(&lines).into_string();
        assert!(html.starts_with("<pre class=\"diff\""));
        assert!(html.contains("<span class=\"diff-del\">-name = &quot;alt&quot;</span>"));
        assert!(html.contains(
            "<span class=\"diff-add\">+name = &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;</span>"
        ));
        assert!(html.contains("<span class=\"diff-hunk\">@@ -1 +1 @@</span>"));
        assert!(!html.contains("<script>"));
    }
}
