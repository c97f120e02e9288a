//! File names the drop connector may write.

/// Maximum length of a file name written by the drop connector, in bytes.
pub const MAX_FILENAME_BYTES: usize = 200;

/// Longest extension (including the dot) kept when a name is shortened.
const MAX_EXTENSION_BYTES: usize = 16;

/// Suffixes that would collide with the connector's own companion files or
/// be ignored by consumers that skip temporary files.
const RESERVED_SUFFIXES: [&str; 4] = [".meta.json", ".attachments", ".tmp", ".part"];

/// Names Windows (and so many SMB shares) refuses as file stems.
const WINDOWS_DEVICE_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Turns a suggested file name into one that is safe to create in a drop
/// folder, or `None` when nothing usable is left.
///
/// Only the last path component is kept (`../../etc/passwd` becomes
/// `passwd`); German umlauts are transliterated; every character outside
/// `[A-Za-z0-9._-]` becomes `_`; runs of dots collapse to one (no `..`);
/// leading and trailing dots are removed (no hidden files); names ending in
/// `.meta.json`, `.attachments`, `.tmp` or `.part` get their last dot
/// replaced; Windows device names get a `_` prefix; the result is at most
/// [`MAX_FILENAME_BYTES`] bytes, keeping a short extension.
///
/// ```
/// use drehscheibe_directory::sanitize_filename;
/// assert_eq!(sanitize_filename("../../etc/passwd").as_deref(), Some("passwd"));
/// assert_eq!(sanitize_filename("Anträge für März.xml").as_deref(), Some("Antraege_fuer_Maerz.xml"));
/// assert_eq!(sanitize_filename(".."), None);
/// ```
pub fn sanitize_filename(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out = String::with_capacity(last.len());
    for c in last.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => out.push(c),
            '.' => {
                if !out.ends_with('.') {
                    out.push('.');
                }
            }
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'Ä' => out.push_str("Ae"),
            'Ö' => out.push_str("Oe"),
            'Ü' => out.push_str("Ue"),
            'ß' => out.push_str("ss"),
            _ => out.push('_'),
        }
    }
    let mut name = out.trim_matches('.').to_owned();
    if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        if let Some(dot) = name.rfind('.') {
            name.replace_range(dot..=dot, "_");
        }
    }
    let device = name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if WINDOWS_DEVICE_NAMES.contains(&device.as_str()) {
        name.insert(0, '_');
    }
    Some(shorten(&name, MAX_FILENAME_BYTES))
}

/// A name component (target, part of a composed name) made of
/// `[A-Za-z0-9_-]` only, at most `max` bytes; `fallback` when empty.
pub(crate) fn sanitize_component(raw: &str, max: usize, fallback: &str) -> String {
    let s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect();
    if s.is_empty() {
        fallback.to_owned()
    } else {
        s
    }
}

/// Splits `name` into stem and extension (with its dot); the extension is
/// empty when there is none or it is implausibly long.
pub(crate) fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_EXTENSION_BYTES => name.split_at(dot),
        _ => (name, ""),
    }
}

/// Shortens an ASCII name to `max` bytes, keeping a short extension.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    let keep = max.saturating_sub(ext.len());
    let stem: String = stem.chars().take(keep).collect();
    format!("{}{ext}", stem.trim_end_matches('.'))
}

/// `<stem>-<suffix><ext>`, shortened so the whole stays within
/// [`MAX_FILENAME_BYTES`] without cutting into `suffix` or `ext`.
pub(crate) fn with_suffix(name: &str, suffix: &str) -> String {
    let (stem, ext) = split_extension(name);
    let keep = MAX_FILENAME_BYTES.saturating_sub(suffix.len() + 1 + ext.len());
    let stem: String = stem.chars().take(keep).collect();
    format!("{stem}-{suffix}{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_plain_names() {
        assert_eq!(
            sanitize_filename("antrag-123_v2.xml").as_deref(),
            Some("antrag-123_v2.xml")
        );
    }

    #[test]
    fn strips_directories_and_traversal() {
        assert_eq!(
            sanitize_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_filename("..\\..\\win.ini").as_deref(),
            Some("win.ini")
        );
        assert_eq!(sanitize_filename("a/b/../"), None);
        assert_eq!(sanitize_filename(".."), None);
        assert_eq!(sanitize_filename("/"), None);
        assert_eq!(sanitize_filename(""), None);
    }

    #[test]
    fn no_hidden_names_and_no_double_dots() {
        assert_eq!(sanitize_filename(".bashrc").as_deref(), Some("bashrc"));
        assert_eq!(sanitize_filename("a..b...xml").as_deref(), Some("a.b.xml"));
        assert_eq!(sanitize_filename("name.").as_deref(), Some("name"));
    }

    #[test]
    fn limits_the_charset() {
        assert_eq!(
            sanitize_filename("Größe: 5 €?.xml").as_deref(),
            Some("Groesse__5___.xml")
        );
        assert_eq!(
            sanitize_filename("a\0b\nc.xml").as_deref(),
            Some("a_b_c.xml")
        );
        assert_eq!(sanitize_filename("€€€"), None);
    }

    #[test]
    fn avoids_companion_and_temporary_suffixes() {
        assert_eq!(
            sanitize_filename("x.meta.json").as_deref(),
            Some("x.meta_json")
        );
        assert_eq!(sanitize_filename("x.tmp").as_deref(), Some("x_tmp"));
        assert_eq!(sanitize_filename("x.PART").as_deref(), Some("x_PART"));
        assert_eq!(
            sanitize_filename("x.attachments").as_deref(),
            Some("x_attachments")
        );
    }

    #[test]
    fn escapes_windows_device_names() {
        assert_eq!(sanitize_filename("con.xml").as_deref(), Some("_con.xml"));
        assert_eq!(sanitize_filename("LPT1").as_deref(), Some("_LPT1"));
        assert_eq!(
            sanitize_filename("console.xml").as_deref(),
            Some("console.xml")
        );
    }

    #[test]
    fn shortens_long_names_keeping_the_extension() {
        let long = format!("{}.xml", "a".repeat(500));
        let name = sanitize_filename(&long).unwrap();
        assert_eq!(name.len(), MAX_FILENAME_BYTES);
        assert!(name.ends_with("a.xml"));
        let multibyte = "ä".repeat(300);
        let name = sanitize_filename(&multibyte).unwrap();
        assert_eq!(name.len(), MAX_FILENAME_BYTES);
    }

    #[test]
    fn suffixed_names_stay_within_the_limit() {
        let long = format!("{}.xml", "b".repeat(300));
        let name = with_suffix(&sanitize_filename(&long).unwrap(), "ID-target");
        assert_eq!(name.len(), MAX_FILENAME_BYTES);
        assert!(name.ends_with("-ID-target.xml"));
        assert_eq!(with_suffix("noext", "x"), "noext-x");
    }

    #[test]
    fn components_are_restricted() {
        assert_eq!(
            sanitize_component("fach/verfahren", 40, "t"),
            "fach_verfahren"
        );
        assert_eq!(sanitize_component("", 40, "t"), "t");
        assert_eq!(sanitize_component(&"z".repeat(100), 40, "t").len(), 40);
    }
}
