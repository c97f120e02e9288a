//! XPath regular expressions (XSD 1.0 syntax plus the XPath extensions)
//! translated to the syntax of the `regex` crate.
//!
//! The `regex` crate guarantees linear-time matching, which is why it is
//! used instead of a backtracking engine; the price is that
//! back-references (`\1`) cannot be supported — they are refused with
//! FORX0002 and an explicit message.
//!
//! What the translation does:
//!
//! | XPath                        | `regex` crate                       |
//! |------------------------------|-------------------------------------|
//! | `.` (without `s`)            | `[^\n\r]`                           |
//! | `.` (with `s`)               | `(?s:.)`                            |
//! | `\s` / `\S`                  | `[\t\n\r ]` / `[^\t\n\r ]`          |
//! | `\w` / `\W`                  | `[^\p{P}\p{Z}\p{C}]` / negated      |
//! | `\i` `\I` `\c` `\C`          | XML name-character classes          |
//! | `\p{IsBasicLatin}` (blocks)  | explicit codepoint ranges           |
//! | `[a-z-[aeiou]]` subtraction  | `[[a-z]--[aeiou]]`                  |
//! | `$` (without `m`)            | `$` (end of text only, as in XPath) |
//! | flag `x`                     | whitespace outside classes removed  |
//! | flag `q`                     | the whole pattern escaped           |
//!
//! Literal characters are emitted as `\x{…}` escapes unless they are
//! alphanumeric, so nothing the `regex` crate treats specially (`&&`, `~~`,
//! `#`, …) can leak through. The translator also records, for every
//! capturing group, its enclosing group; `fn:analyze-string` needs that
//! nesting to build its `fn:group` elements.
//!
//! Compiled expressions are cached per thread (a small LRU keyed by pattern
//! and flags): a stylesheet typically applies the same few patterns to
//! every record.

use std::cell::RefCell;
use std::rc::Rc;

use crate::error::{Error, Result};

/// A compiled XPath regular expression.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// The translated expression.
    pub re: regex::Regex,
    /// For each capturing group (index = group number, 0 = whole match),
    /// the number of the nearest enclosing capturing group (0 at top).
    pub parents: Vec<usize>,
}

impl Compiled {
    /// Number of capturing groups (without group 0).
    pub fn groups(&self) -> usize {
        self.parents.len().saturating_sub(1)
    }

    /// Does the expression match the empty string (FORX0003 for
    /// `replace`/`tokenize`/`analyze-string`)?
    pub fn matches_empty(&self) -> bool {
        self.re.is_match("")
    }
}

const CACHE_SIZE: usize = 64;

thread_local! {
    static CACHE: RefCell<Vec<(String, String, Rc<Compiled>)>> = const { RefCell::new(Vec::new()) };
}

/// Compiles (or fetches from the per-thread cache) `pattern` with `flags`.
pub(crate) fn compile(pattern: &str, flags: &str) -> Result<Rc<Compiled>> {
    let hit = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let pos = c.iter().position(|(p, f, _)| p == pattern && f == flags)?;
        let entry = c.remove(pos);
        let re = entry.2.clone();
        c.push(entry);
        Some(re)
    });
    if let Some(re) = hit {
        return Ok(re);
    }
    let (translated, parents) = translate(pattern, flags)?;
    let re = regex::RegexBuilder::new(&translated)
        .size_limit(16 << 20)
        .build()
        .map_err(|e| {
            Error::new(
                "FORX0002",
                format!("invalid regular expression \"{pattern}\": {e}"),
            )
        })?;
    let compiled = Rc::new(Compiled { re, parents });
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_SIZE {
            c.remove(0);
        }
        c.push((pattern.to_string(), flags.to_string(), compiled.clone()));
    });
    Ok(compiled)
}

/// Translates an XPath pattern with flags to `regex` crate syntax; also
/// returns the group nesting (see [`Compiled::parents`]).
pub(crate) fn translate(pattern: &str, flags: &str) -> Result<(String, Vec<usize>)> {
    let mut f = Flags::default();
    for c in flags.chars() {
        match c {
            's' => f.s = true,
            'm' => f.m = true,
            'i' => f.i = true,
            'x' => f.x = true,
            'q' => f.q = true,
            other => {
                return Err(Error::new(
                    "FORX0001",
                    format!("invalid regular expression flag '{other}' in \"{flags}\""),
                ))
            }
        }
    }
    let mut out = String::new();
    if f.m || f.i {
        out.push_str("(?");
        if f.m {
            out.push('m');
        }
        if f.i {
            out.push('i');
        }
        out.push(')');
    }
    if f.q {
        out.push_str(&regex::escape(pattern));
        return Ok((out, vec![0]));
    }
    let mut t = Translator {
        chars: pattern.chars().collect(),
        pos: 0,
        out,
        flags: f,
        parents: vec![0],
        open: Vec::new(),
        pattern,
        after_quant: 0,
    };
    t.run()?;
    Ok((t.out, t.parents))
}

#[derive(Debug, Default, Clone, Copy)]
struct Flags {
    s: bool,
    m: bool,
    i: bool,
    x: bool,
    q: bool,
}

/// An escape: one character (usable in ranges) or a class expression.
enum Esc {
    Char(char),
    Class(String),
}

struct Translator<'p> {
    chars: Vec<char>,
    pos: usize,
    out: String,
    flags: Flags,
    parents: Vec<usize>,
    /// Open parentheses: `Some(group)` for capturing ones.
    open: Vec<Option<usize>>,
    pattern: &'p str,
    /// 1 right after a quantifier (a reluctance `?` may follow), 2 after
    /// a reluctant quantifier: XSD regexes allow no second quantifier.
    after_quant: u8,
}

impl Translator<'_> {
    fn err(&self, why: &str) -> Error {
        Error::new(
            "FORX0002",
            format!("invalid regular expression \"{}\": {why}", self.pattern),
        )
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn run(&mut self) -> Result<()> {
        while let Some(c) = self.next() {
            let prev = std::mem::take(&mut self.after_quant);
            match c {
                '\\' => match self.escape()? {
                    Esc::Char(ch) => push_lit(&mut self.out, ch),
                    Esc::Class(s) => self.out.push_str(&s),
                },
                '[' => {
                    let class = self.class()?;
                    self.out.push_str(&class);
                }
                '.' => self
                    .out
                    .push_str(if self.flags.s { "(?s:.)" } else { "[^\\n\\r]" }),
                '(' => {
                    if self.peek() == Some('?') {
                        if self.peek_at(1) != Some(':') {
                            return Err(self.err("only (?: …) groups are allowed after '(?'"));
                        }
                        self.pos += 2;
                        self.out.push_str("(?:");
                        self.open.push(None);
                    } else {
                        let parent = self.open.iter().rev().find_map(|g| *g).unwrap_or(0);
                        let n = self.parents.len();
                        self.parents.push(parent);
                        self.open.push(Some(n));
                        self.out.push('(');
                    }
                }
                ')' => {
                    if self.open.pop().is_none() {
                        return Err(self.err("unbalanced ')'"));
                    }
                    self.out.push(')');
                }
                '{' => {
                    // quantifier {n}, {n,}, {n,m}
                    if prev != 0 {
                        return Err(self.err("a quantifier cannot follow a quantifier"));
                    }
                    self.after_quant = 1;
                    let mut q = String::from("{");
                    loop {
                        match self.next() {
                            Some('}') => break,
                            Some(d) if d.is_ascii_digit() || d == ',' => q.push(d),
                            _ => return Err(self.err("malformed quantifier")),
                        }
                    }
                    if q.len() == 1 || q.starts_with("{,") {
                        return Err(self.err("malformed quantifier"));
                    }
                    q.push('}');
                    self.out.push_str(&q);
                }
                '?' if prev == 1 => {
                    self.after_quant = 2;
                    self.out.push(c);
                }
                '?' | '*' | '+' => {
                    if prev != 0 {
                        return Err(self.err("a quantifier cannot follow a quantifier"));
                    }
                    self.after_quant = 1;
                    self.out.push(c);
                }
                '^' | '$' | '|' => self.out.push(c),
                ' ' | '\t' | '\n' | '\r' if self.flags.x => self.after_quant = prev,
                ']' | '}' => return Err(self.err(&format!("unescaped '{c}'"))),
                other => push_lit(&mut self.out, other),
            }
        }
        if !self.open.is_empty() {
            return Err(self.err("unbalanced '('"));
        }
        Ok(())
    }

    /// After a backslash.
    fn escape(&mut self) -> Result<Esc> {
        let c = self.next().ok_or_else(|| self.err("trailing backslash"))?;
        Ok(match c {
            'n' => Esc::Char('\n'),
            'r' => Esc::Char('\r'),
            't' => Esc::Char('\t'),
            '\\' | '|' | '.' | '?' | '*' | '+' | '(' | ')' | '{' | '}' | '-' | '[' | ']' | '^'
            | '$' => Esc::Char(c),
            's' => Esc::Class("[\\t\\n\\r ]".into()),
            'S' => Esc::Class("[^\\t\\n\\r ]".into()),
            'd' => Esc::Class("\\p{Nd}".into()),
            'D' => Esc::Class("\\P{Nd}".into()),
            'w' => Esc::Class("[^\\p{P}\\p{Z}\\p{C}]".into()),
            'W' => Esc::Class("[\\p{P}\\p{Z}\\p{C}]".into()),
            'i' => Esc::Class(format!("[{NAME_START}]")),
            'I' => Esc::Class(format!("[^{NAME_START}]")),
            'c' => Esc::Class(format!("[{NAME_START}{NAME_REST}]")),
            'C' => Esc::Class(format!("[^{NAME_START}{NAME_REST}]")),
            'p' | 'P' => {
                if self.next() != Some('{') {
                    return Err(self.err("expected '{' after \\p"));
                }
                let mut name = String::new();
                loop {
                    match self.next() {
                        Some('}') => break,
                        Some(ch) => name.push(ch),
                        None => return Err(self.err("unterminated \\p{…}")),
                    }
                }
                let class = category(&name).ok_or_else(|| {
                    self.err(&format!("unknown character category or block \"{name}\""))
                })?;
                if c == 'p' {
                    Esc::Class(class)
                } else {
                    Esc::Class(format!("[^{class}]"))
                }
            }
            '1'..='9' => {
                return Err(Error::new(
                    "FORX0002",
                    format!(
                    "invalid regular expression \"{}\": back-references (\\{c}) are not supported",
                    self.pattern
                ),
                ))
            }
            other => return Err(self.err(&format!("unknown escape \\{other}"))),
        })
    }

    /// After '[': a character class expression, up to and including ']'.
    fn class(&mut self) -> Result<String> {
        let negated = if self.peek() == Some('^') {
            self.pos += 1;
            true
        } else {
            false
        };
        let mut items = String::new();
        let mut count = 0usize;
        loop {
            let c = self
                .next()
                .ok_or_else(|| self.err("unterminated character class"))?;
            match c {
                ']' => {
                    if count == 0 {
                        return Err(self.err("empty character class"));
                    }
                    break;
                }
                '-' if self.peek() == Some('[') && count > 0 => {
                    self.pos += 1;
                    let sub = self.class()?;
                    if self.next() != Some(']') {
                        return Err(self.err("a subtraction must end the character class"));
                    }
                    let base = if negated {
                        format!("[^{items}]")
                    } else {
                        format!("[{items}]")
                    };
                    return Ok(format!("[{base}--{sub}]"));
                }
                '[' => return Err(self.err("unescaped '[' in a character class")),
                _ => {
                    let start = if c == '\\' {
                        match self.escape()? {
                            Esc::Char(ch) => ch,
                            Esc::Class(s) => {
                                items.push_str(&s);
                                count += 1;
                                continue;
                            }
                        }
                    } else {
                        c
                    };
                    let is_range = self.peek() == Some('-')
                        && !matches!(self.peek_at(1), Some(']') | Some('[') | None);
                    if is_range {
                        self.pos += 1;
                        let e = self.next().ok_or_else(|| self.err("unterminated range"))?;
                        let end = if e == '\\' {
                            match self.escape()? {
                                Esc::Char(ch) => ch,
                                Esc::Class(_) => {
                                    return Err(self.err("a range cannot end with a class escape"))
                                }
                            }
                        } else if e == '[' {
                            return Err(self.err("unescaped '[' in a range"));
                        } else {
                            e
                        };
                        if end < start {
                            return Err(self.err(&format!("invalid range {start}-{end}")));
                        }
                        push_lit(&mut items, start);
                        items.push('-');
                        push_lit(&mut items, end);
                        // XSD 1.0: after a range, a '-' may only end the
                        // class or start a subtraction (`[a-d-b]` is an error).
                        if self.peek() == Some('-')
                            && !matches!(self.peek_at(1), Some(']') | Some('['))
                        {
                            return Err(
                                self.err("a '-' after a range must end the character class")
                            );
                        }
                    } else {
                        push_lit(&mut items, start);
                    }
                }
            }
            count += 1;
        }
        Ok(if negated {
            format!("[^{items}]")
        } else {
            format!("[{items}]")
        })
    }
}

/// XML NameStartChar (XML 1.0 5th edition) as class items.
const NAME_START: &str = ":A-Z_a-z\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{2FF}\\x{370}-\\x{37D}\\x{37F}-\\x{1FFF}\\x{200C}-\\x{200D}\\x{2070}-\\x{218F}\\x{2C00}-\\x{2FEF}\\x{3001}-\\x{D7FF}\\x{F900}-\\x{FDCF}\\x{FDF0}-\\x{FFFD}\\x{10000}-\\x{EFFFF}";
/// The other XML NameChars.
const NAME_REST: &str = "\\-.0-9\\x{B7}\\x{300}-\\x{36F}\\x{203F}-\\x{2040}";

/// Appends a literal character, escaped unless alphanumeric.
fn push_lit(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || (c.is_alphanumeric() && !c.is_ascii()) {
        out.push(c);
    } else {
        out.push_str(&format!("\\x{{{:X}}}", c as u32));
    }
}

const CATEGORIES: &[&str] = &[
    "L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc",
    "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Z", "Zs", "Zl", "Zp", "S", "Sm", "Sc", "Sk", "So", "C",
    "Cc", "Cf", "Co", "Cn",
];

/// `\p{name}`: a general category or an `Is…` block, as a class expression.
fn category(name: &str) -> Option<String> {
    if CATEGORIES.contains(&name) {
        return Some(format!("\\p{{{name}}}"));
    }
    let block = name.strip_prefix("Is")?;
    let key: String = block
        .chars()
        .filter(|c| *c != ' ' && *c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    BLOCKS
        .iter()
        .find(|(n, _, _)| n.to_ascii_lowercase() == key)
        .map(|(_, lo, hi)| format!("[\\x{{{lo:X}}}-\\x{{{hi:X}}}]"))
}

/// Unicode blocks by their XSD names.
const BLOCKS: &[(&str, u32, u32)] = &[
    ("BasicLatin", 0x0000, 0x007F),
    ("Latin-1Supplement", 0x0080, 0x00FF),
    ("LatinExtended-A", 0x0100, 0x017F),
    ("LatinExtended-B", 0x0180, 0x024F),
    ("IPAExtensions", 0x0250, 0x02AF),
    ("SpacingModifierLetters", 0x02B0, 0x02FF),
    ("CombiningDiacriticalMarks", 0x0300, 0x036F),
    ("Greek", 0x0370, 0x03FF),
    ("GreekandCoptic", 0x0370, 0x03FF),
    ("Cyrillic", 0x0400, 0x04FF),
    ("CyrillicSupplement", 0x0500, 0x052F),
    ("Armenian", 0x0530, 0x058F),
    ("Hebrew", 0x0590, 0x05FF),
    ("Arabic", 0x0600, 0x06FF),
    ("Syriac", 0x0700, 0x074F),
    ("Thaana", 0x0780, 0x07BF),
    ("Devanagari", 0x0900, 0x097F),
    ("Bengali", 0x0980, 0x09FF),
    ("Gurmukhi", 0x0A00, 0x0A7F),
    ("Gujarati", 0x0A80, 0x0AFF),
    ("Oriya", 0x0B00, 0x0B7F),
    ("Tamil", 0x0B80, 0x0BFF),
    ("Telugu", 0x0C00, 0x0C7F),
    ("Kannada", 0x0C80, 0x0CFF),
    ("Malayalam", 0x0D00, 0x0D7F),
    ("Sinhala", 0x0D80, 0x0DFF),
    ("Thai", 0x0E00, 0x0E7F),
    ("Lao", 0x0E80, 0x0EFF),
    ("Tibetan", 0x0F00, 0x0FFF),
    ("Myanmar", 0x1000, 0x109F),
    ("Georgian", 0x10A0, 0x10FF),
    ("HangulJamo", 0x1100, 0x11FF),
    ("Ethiopic", 0x1200, 0x137F),
    ("Cherokee", 0x13A0, 0x13FF),
    ("UnifiedCanadianAboriginalSyllabics", 0x1400, 0x167F),
    ("Ogham", 0x1680, 0x169F),
    ("Runic", 0x16A0, 0x16FF),
    ("Khmer", 0x1780, 0x17FF),
    ("Mongolian", 0x1800, 0x18AF),
    ("LatinExtendedAdditional", 0x1E00, 0x1EFF),
    ("GreekExtended", 0x1F00, 0x1FFF),
    ("GeneralPunctuation", 0x2000, 0x206F),
    ("SuperscriptsandSubscripts", 0x2070, 0x209F),
    ("CurrencySymbols", 0x20A0, 0x20CF),
    ("CombiningMarksforSymbols", 0x20D0, 0x20FF),
    ("LetterlikeSymbols", 0x2100, 0x214F),
    ("NumberForms", 0x2150, 0x218F),
    ("Arrows", 0x2190, 0x21FF),
    ("MathematicalOperators", 0x2200, 0x22FF),
    ("MiscellaneousTechnical", 0x2300, 0x23FF),
    ("ControlPictures", 0x2400, 0x243F),
    ("OpticalCharacterRecognition", 0x2440, 0x245F),
    ("EnclosedAlphanumerics", 0x2460, 0x24FF),
    ("BoxDrawing", 0x2500, 0x257F),
    ("BlockElements", 0x2580, 0x259F),
    ("GeometricShapes", 0x25A0, 0x25FF),
    ("MiscellaneousSymbols", 0x2600, 0x26FF),
    ("Dingbats", 0x2700, 0x27BF),
    ("BraillePatterns", 0x2800, 0x28FF),
    ("LatinExtended-C", 0x2C60, 0x2C7F),
    ("SupplementalPunctuation", 0x2E00, 0x2E7F),
    ("CJKRadicalsSupplement", 0x2E80, 0x2EFF),
    ("KangxiRadicals", 0x2F00, 0x2FDF),
    ("IdeographicDescriptionCharacters", 0x2FF0, 0x2FFF),
    ("CJKSymbolsandPunctuation", 0x3000, 0x303F),
    ("Hiragana", 0x3040, 0x309F),
    ("Katakana", 0x30A0, 0x30FF),
    ("Bopomofo", 0x3100, 0x312F),
    ("HangulCompatibilityJamo", 0x3130, 0x318F),
    ("Kanbun", 0x3190, 0x319F),
    ("BopomofoExtended", 0x31A0, 0x31BF),
    ("EnclosedCJKLettersandMonths", 0x3200, 0x32FF),
    ("CJKCompatibility", 0x3300, 0x33FF),
    ("CJKUnifiedIdeographsExtensionA", 0x3400, 0x4DBF),
    ("CJKUnifiedIdeographs", 0x4E00, 0x9FFF),
    ("YiSyllables", 0xA000, 0xA48F),
    ("YiRadicals", 0xA490, 0xA4CF),
    ("LatinExtended-D", 0xA720, 0xA7FF),
    ("HangulSyllables", 0xAC00, 0xD7AF),
    ("PrivateUse", 0xE000, 0xF8FF),
    ("PrivateUseArea", 0xE000, 0xF8FF),
    ("CJKCompatibilityIdeographs", 0xF900, 0xFAFF),
    ("AlphabeticPresentationForms", 0xFB00, 0xFB4F),
    ("ArabicPresentationForms-A", 0xFB50, 0xFDFF),
    ("CombiningHalfMarks", 0xFE20, 0xFE2F),
    ("CJKCompatibilityForms", 0xFE30, 0xFE4F),
    ("SmallFormVariants", 0xFE50, 0xFE6F),
    ("ArabicPresentationForms-B", 0xFE70, 0xFEFF),
    ("HalfwidthandFullwidthForms", 0xFF00, 0xFFEF),
    ("Specials", 0xFFF0, 0xFFFF),
    ("HighSurrogates", 0xD800, 0xDB7F),
    ("HighPrivateUseSurrogates", 0xDB80, 0xDBFF),
    ("LowSurrogates", 0xDC00, 0xDFFF),
    ("CombiningDiacriticalMarksforSymbols", 0x20D0, 0x20FF),
    ("OldItalic", 0x10300, 0x1032F),
    ("Gothic", 0x10330, 0x1034F),
    ("Deseret", 0x10400, 0x1044F),
    ("ByzantineMusicalSymbols", 0x1D000, 0x1D0FF),
    ("MusicalSymbols", 0x1D100, 0x1D1FF),
    ("CJKUnifiedIdeographsExtensionB", 0x20000, 0x2A6DF),
    ("CJKCompatibilityIdeographsSupplement", 0x2F800, 0x2FA1F),
    ("Tags", 0xE0000, 0xE007F),
    ("SupplementaryPrivateUseArea-A", 0xF0000, 0xFFFFF),
    ("SupplementaryPrivateUseArea-B", 0x100000, 0x10FFFF),
    ("MathematicalAlphanumericSymbols", 0x1D400, 0x1D7FF),
    ("Emoticons", 0x1F600, 0x1F64F),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, flags: &str, s: &str) -> bool {
        compile(p, flags).unwrap().re.is_match(s)
    }

    #[test]
    fn basics() {
        assert!(m("^a.c$", "", "abc"));
        assert!(!m("^a.c$", "", "a\nc"));
        assert!(m("^a.c$", "s", "a\nc"));
        assert!(!m("^abc$", "", "abc\n"));
        assert!(m("^b$", "m", "a\nb\nc"));
        assert!(m("ABC", "i", "xabcx"));
        assert!(m("a b c", "x", "abc"));
        assert!(m("[a b]", "x", " "));
        assert!(m("a.b", "q", "a.b"));
        assert!(!m("a.b", "q", "axb"));
    }

    #[test]
    fn double_quantifiers_are_errors() {
        assert!(m("^a*?b+?c??d{1,2}?$", "", "bcd"));
        for bad in ["a**", "a*+", "a{1}*", "a{0,2}?*", "a??*", "a*{0,5}"] {
            assert_eq!(compile(bad, "").unwrap_err().code, "FORX0002", "{bad}");
        }
        assert!(m("^\\p{IsGothic}$", "", "\u{10330}"));
    }

    #[test]
    fn classes() {
        assert!(m("^[a-z-[aeiou]]+$", "", "bcd"));
        assert!(!m("^[a-z-[aeiou]]+$", "", "bad"));
        assert!(m("^[^a-c]$", "", "d"));
        assert!(m("^[\\d-]+$", "", "12-3"));
        assert!(m("^[+\\-]$", "", "-"));
        assert!(m("^\\p{IsBasicLatin}+$", "", "abc"));
        assert!(!m("^\\p{IsBasicLatin}+$", "", "é"));
        assert!(m("^\\p{Lu}\\P{Lu}$", "", "Ab"));
        assert!(m("^\\i\\c*$", "", "x-1.y"));
        assert!(!m("^\\i", "", "1"));
        assert!(m("^\\s$", "", "\t"));
        assert!(!m("^\\s$", "", "\u{a0}"));
        assert!(m("^\\w+$", "", "ab1"));
        assert!(!m("^\\w$", "", "."));
        assert!(m("^[&~#]+$", "", "&~#"));
    }

    #[test]
    fn errors() {
        let code = |p: &str, f: &str| compile(p, f).unwrap_err().code;
        assert_eq!(code("(a)\\1", ""), "FORX0002");
        assert!(compile("(a)\\1", "")
            .unwrap_err()
            .message
            .contains("back-references"));
        assert_eq!(code("[a", ""), "FORX0002");
        assert_eq!(code("[a-d-b-c]", ""), "FORX0002");
        assert_eq!(code("[a-a-x-x]+", ""), "FORX0002");
        assert_eq!(code("(a", ""), "FORX0002");
        assert_eq!(code("a", "k"), "FORX0001");
        assert_eq!(code("\\p{IsNoSuchBlock}", ""), "FORX0002");
        assert_eq!(code("(?i)a", ""), "FORX0002");
    }

    #[test]
    fn group_nesting() {
        let c = compile("((a)(b))|(c)", "").unwrap();
        assert_eq!(c.parents, vec![0, 0, 1, 1, 0]);
        assert_eq!(c.groups(), 4);
    }
}
