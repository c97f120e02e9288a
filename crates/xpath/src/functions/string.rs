//! String built-in functions (OWNER: functions helper).
//!
//! All positions and lengths are in Unicode codepoints (Rust `char`s), not
//! bytes: `substring("été", 2, 1)` is `"t"`. Collation arguments are
//! accepted only for the Unicode codepoint collation (anything else is
//! FOCH0002), which is also the default.
//!
//! The regular-expression functions (`matches`, `replace`, `tokenize`,
//! `analyze-string`) translate XPath's XSD-based syntax to the `regex`
//! crate in [`xsd_regex`], which guarantees linear-time matching (and
//! therefore cannot do back-references; those are refused with FORX0002).
//!
//! In XPath 1.0 backwards-compatible mode, numbers turned into strings
//! (`string(1.0)`, `concat("n=", 2)`) use the XPath 1.0 formatting through
//! [`Eval::atomic_string`].

mod xsd_regex;

use unicode_normalization::UnicodeNormalization;

use super::def;
use super::numeric::check_collation;
use super::params::*;
use super::{opt_str, str_or_empty, Builtin, FN};
use crate::error::{Error, Result};
use crate::eval::Eval;
use crate::tree::{Builder, QName};
use crate::value::{Atomic, Item, Sequence};

/// The functions of this module.
pub const FUNCTIONS: &[Builtin] = &[
    def("string", 1, 1, &[ITEM_OPT], true, string),
    def("concat", 2, usize::MAX, &[ATOMIC_OPT], false, concat),
    def(
        "string-join",
        1,
        2,
        &[ATOMIC_MANY, STR_ONE],
        false,
        string_join,
    ),
    def(
        "substring",
        2,
        3,
        &[STR_OPT, DOUBLE_ONE, DOUBLE_ONE],
        false,
        substring,
    ),
    def("string-length", 1, 1, &[STR_OPT], true, string_length),
    def("normalize-space", 1, 1, &[STR_OPT], true, normalize_space),
    def("upper-case", 1, 1, &[STR_OPT], false, upper_case),
    def("lower-case", 1, 1, &[STR_OPT], false, lower_case),
    def(
        "translate",
        3,
        3,
        &[STR_OPT, STR_ONE, STR_ONE],
        false,
        translate,
    ),
    def(
        "contains",
        2,
        3,
        &[STR_OPT, STR_OPT, STR_ONE],
        false,
        contains,
    ),
    def(
        "starts-with",
        2,
        3,
        &[STR_OPT, STR_OPT, STR_ONE],
        false,
        starts_with,
    ),
    def(
        "ends-with",
        2,
        3,
        &[STR_OPT, STR_OPT, STR_ONE],
        false,
        ends_with,
    ),
    def(
        "substring-before",
        2,
        3,
        &[STR_OPT, STR_OPT, STR_ONE],
        false,
        substring_before,
    ),
    def(
        "substring-after",
        2,
        3,
        &[STR_OPT, STR_OPT, STR_ONE],
        false,
        substring_after,
    ),
    def(
        "string-to-codepoints",
        1,
        1,
        &[STR_OPT],
        false,
        string_to_codepoints,
    ),
    def(
        "codepoints-to-string",
        1,
        1,
        &[INT_MANY],
        false,
        codepoints_to_string,
    ),
    def(
        "compare",
        2,
        3,
        &[STR_OPT, STR_OPT, STR_ONE],
        false,
        compare,
    ),
    def(
        "codepoint-equal",
        2,
        2,
        &[STR_OPT, STR_OPT],
        false,
        codepoint_equal,
    ),
    def(
        "normalize-unicode",
        1,
        2,
        &[STR_OPT, STR_ONE],
        false,
        normalize_unicode,
    ),
    def("encode-for-uri", 1, 1, &[STR_OPT], false, encode_for_uri),
    def("iri-to-uri", 1, 1, &[STR_OPT], false, iri_to_uri),
    def("escape-html-uri", 1, 1, &[STR_OPT], false, escape_html_uri),
    def(
        "contains-token",
        2,
        3,
        &[STR_MANY, STR_ONE, STR_ONE],
        false,
        contains_token,
    ),
    def(
        "matches",
        2,
        3,
        &[STR_OPT, STR_ONE, STR_ONE],
        false,
        matches,
    ),
    def(
        "replace",
        3,
        4,
        &[STR_OPT, STR_ONE, STR_ONE, STR_ONE],
        false,
        replace,
    ),
    def(
        "tokenize",
        1,
        3,
        &[STR_OPT, STR_ONE, STR_ONE],
        false,
        tokenize,
    ),
    def(
        "analyze-string",
        2,
        3,
        &[STR_OPT, STR_ONE, STR_ONE],
        false,
        analyze_string,
    ),
];

fn s_arg<'s>(args: &'s [Sequence<'_>], i: usize) -> &'s str {
    args.get(i).map(str_or_empty).unwrap_or("")
}

fn string<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let s = match args.first().and_then(Sequence::first) {
        None => String::new(),
        Some(item) => ev.item_string(item)?,
    };
    Ok(Sequence::string(&s))
}

fn concat<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut out = String::new();
    for a in &args {
        if let Some(Item::Atomic(v)) = a.first() {
            match v.as_str() {
                Some(s) => out.push_str(s),
                None => out.push_str(&ev.atomic_string(v)),
            }
        }
    }
    Ok(Sequence::string(&out))
}

fn string_join<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let sep = s_arg(&args, 1);
    let mut out = String::new();
    for (i, item) in args[0].iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        match item {
            Item::Atomic(a) => match a.as_str() {
                Some(s) => out.push_str(s),
                None => out.push_str(&ev.atomic_string(a)),
            },
            other => out.push_str(&ev.item_string(other)?),
        }
    }
    Ok(Sequence::string(&out))
}

/// XPath `round()` on doubles (halves towards +∞), used by `substring`.
fn xround(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let f = x.floor();
    if x - f >= 0.5 {
        f + 1.0
    } else {
        f
    }
}

fn substring<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let s = s_arg(&args, 0);
    let start = xround(super::double(&args[1]));
    let end = match args.get(2) {
        Some(len) => start + xround(super::double(len)),
        None => f64::INFINITY,
    };
    // NaN compares false, so NaN start or length yields ""
    let out: String = s
        .chars()
        .enumerate()
        .filter(|(i, _)| {
            let p = (*i + 1) as f64;
            p >= start && p < end
        })
        .map(|(_, c)| c)
        .collect();
    Ok(Sequence::string(&out))
}

fn string_length<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let n = s_arg(&args, 0).chars().count();
    Ok(Sequence::integer(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Collapses XML whitespace runs to single spaces and trims.
pub(crate) fn normalize_space_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(is_xml_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn normalize_space<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::string(&normalize_space_str(s_arg(&args, 0))))
}

fn upper_case<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::string(&s_arg(&args, 0).to_uppercase()))
}

fn lower_case<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::string(&s_arg(&args, 0).to_lowercase()))
}

fn translate<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let s = s_arg(&args, 0);
    let from: Vec<char> = s_arg(&args, 1).chars().collect();
    let to: Vec<char> = s_arg(&args, 2).chars().collect();
    // first occurrence in `from` wins; small maps are scanned linearly,
    // larger ones through a hash map
    let map: std::collections::HashMap<char, Option<char>> = {
        let mut m = std::collections::HashMap::new();
        for (i, c) in from.iter().enumerate() {
            m.entry(*c).or_insert_with(|| to.get(i).copied());
        }
        m
    };
    let out: String = s
        .chars()
        .filter_map(|c| match map.get(&c) {
            Some(r) => *r,
            None => Some(c),
        })
        .collect();
    Ok(Sequence::string(&out))
}

fn contains<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 2)?;
    Ok(Sequence::boolean(s_arg(&args, 0).contains(s_arg(&args, 1))))
}

fn starts_with<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 2)?;
    Ok(Sequence::boolean(
        s_arg(&args, 0).starts_with(s_arg(&args, 1)),
    ))
}

fn ends_with<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 2)?;
    Ok(Sequence::boolean(
        s_arg(&args, 0).ends_with(s_arg(&args, 1)),
    ))
}

fn substring_before<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 2)?;
    let s = s_arg(&args, 0);
    let out = s.find(s_arg(&args, 1)).map(|i| &s[..i]).unwrap_or("");
    Ok(Sequence::string(out))
}

fn substring_after<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 2)?;
    let s = s_arg(&args, 0);
    let pat = s_arg(&args, 1);
    let out = s.find(pat).map(|i| &s[i + pat.len()..]).unwrap_or("");
    Ok(Sequence::string(out))
}

fn string_to_codepoints<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(s_arg(&args, 0)
        .chars()
        .map(|c| Item::Atomic(Atomic::Integer(i64::from(u32::from(c)))))
        .collect())
}

/// Is `c` allowed in XML 1.0 text?
fn is_xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

fn codepoints_to_string<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut out = String::new();
    for item in args[0].iter() {
        let cp = match item {
            Item::Atomic(Atomic::Integer(i)) => *i,
            _ => return Err(Error::type_error("codepoints-to-string expects integers")),
        };
        let c = u32::try_from(cp)
            .ok()
            .filter(|c| is_xml_char(*c))
            .and_then(char::from_u32)
            .ok_or_else(|| Error::new("FOCH0001", format!("{cp} is not a valid XML character")))?;
        out.push(c);
    }
    Ok(Sequence::string(&out))
}

fn compare<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 2)?;
    match (opt_str(&args[0]), opt_str(&args[1])) {
        (Some(a), Some(b)) => Ok(Sequence::integer(match a.cmp(b) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        })),
        _ => Ok(Sequence::Empty),
    }
}

fn codepoint_equal<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    match (opt_str(&args[0]), opt_str(&args[1])) {
        (Some(a), Some(b)) => Ok(Sequence::boolean(a == b)),
        _ => Ok(Sequence::Empty),
    }
}

fn normalize_unicode<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let s = s_arg(&args, 0);
    let form = if args.len() > 1 {
        s_arg(&args, 1)
            .trim_matches(is_xml_space)
            .to_ascii_uppercase()
    } else {
        "NFC".to_string()
    };
    let out: String = match form.as_str() {
        "" => s.to_string(),
        "NFC" => s.nfc().collect(),
        "NFD" => s.nfd().collect(),
        "NFKC" => s.nfkc().collect(),
        "NFKD" => s.nfkd().collect(),
        other => {
            return Err(Error::new(
                "FOCH0003",
                format!("normalization form {other} is not supported"),
            ))
        }
    };
    Ok(Sequence::string(&out))
}

/// Percent-encodes the UTF-8 bytes of every character `keep` rejects.
fn percent_encode(s: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut buf = [0u8; 4];
    for c in s.chars() {
        if keep(c) {
            out.push(c);
        } else {
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn encode_for_uri<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let out = percent_encode(s_arg(&args, 0), |c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~')
    });
    Ok(Sequence::string(&out))
}

fn iri_to_uri<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let out = percent_encode(s_arg(&args, 0), |c| {
        (' '..='~').contains(&c)
            && !matches!(
                c,
                ' ' | '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`'
            )
    });
    Ok(Sequence::string(&out))
}

fn escape_html_uri<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let out = percent_encode(s_arg(&args, 0), |c| (' '..='~').contains(&c));
    Ok(Sequence::string(&out))
}

fn contains_token<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 2)?;
    let token = s_arg(&args, 1).trim_matches(is_xml_space);
    if token.is_empty() {
        return Ok(Sequence::boolean(false));
    }
    let found = args[0].iter().any(|item| match item {
        Item::Atomic(a) => a
            .as_str()
            .is_some_and(|s| s.split(is_xml_space).any(|t| t == token)),
        _ => false,
    });
    Ok(Sequence::boolean(found))
}

fn matches<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let re = xsd_regex::compile(s_arg(&args, 1), s_arg(&args, 2))?;
    Ok(Sequence::boolean(re.re.is_match(s_arg(&args, 0))))
}

fn zero_length_error(pattern: &str) -> Error {
    Error::new(
        "FORX0003",
        format!("the regular expression \"{pattern}\" matches a zero-length string"),
    )
}

/// A piece of a `replace` replacement string.
#[derive(Debug, PartialEq)]
enum Piece {
    Lit(String),
    Group(usize),
}

/// Parses a replacement string: `$N` group references (as many digits as
/// still name an existing group), `\$` and `\\` escapes.
fn parse_replacement(rep: &str, groups: usize) -> Result<Vec<Piece>> {
    let bad = || {
        Error::new(
            "FORX0004",
            format!("invalid replacement string \"{rep}\": '\\' must be followed by '\\' or '$', '$' by a digit"),
        )
    };
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | '$')) => lit.push(e),
                _ => return Err(bad()),
            },
            '$' => {
                let first = chars.next().and_then(|d| d.to_digit(10)).ok_or_else(bad)?;
                let mut n = first as usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    let m = n * 10 + d as usize;
                    if m > groups {
                        break;
                    }
                    n = m;
                    chars.next();
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Group(n));
            }
            other => lit.push(other),
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

fn replace<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let input = s_arg(&args, 0);
    let pattern = s_arg(&args, 1);
    let flags = s_arg(&args, 3);
    let re = xsd_regex::compile(pattern, flags)?;
    if re.matches_empty() {
        return Err(zero_length_error(pattern));
    }
    let rep = s_arg(&args, 2);
    let pieces = if flags.contains('q') {
        vec![Piece::Lit(rep.to_string())]
    } else {
        parse_replacement(rep, re.groups())?
    };
    let mut out = String::with_capacity(input.len());
    let mut last = 0;
    for caps in re.re.captures_iter(input) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&input[last..m.start()]);
        for p in &pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Group(n) => {
                    if let Some(g) = caps.get(*n) {
                        out.push_str(g.as_str());
                    }
                }
            }
        }
        last = m.end();
    }
    out.push_str(&input[last..]);
    Ok(Sequence::string(&out))
}

fn tokenize<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let input = s_arg(&args, 0);
    if args.len() < 2 {
        return Ok(input
            .split(is_xml_space)
            .filter(|t| !t.is_empty())
            .map(|t| Item::Atomic(Atomic::string(t)))
            .collect());
    }
    let pattern = s_arg(&args, 1);
    let re = xsd_regex::compile(pattern, s_arg(&args, 2))?;
    if re.matches_empty() {
        return Err(zero_length_error(pattern));
    }
    if input.is_empty() {
        return Ok(Sequence::Empty);
    }
    Ok(re
        .re
        .split(input)
        .map(|t| Item::Atomic(Atomic::string(t)))
        .collect())
}

fn build_error(e: crate::tree::BuildError) -> Error {
    Error::new(
        "FOER0000",
        format!("internal error building a result tree: {e}"),
    )
}

fn analyze_string<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let input = s_arg(&args, 0);
    let pattern = s_arg(&args, 1);
    let re = xsd_regex::compile(pattern, s_arg(&args, 2))?;
    if re.matches_empty() {
        return Err(zero_length_error(pattern));
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); re.parents.len()];
    for (g, p) in re.parents.iter().enumerate().skip(1) {
        if let Some(list) = children.get_mut(*p) {
            list.push(g);
        }
    }
    let name = |local: &str| QName::new(FN, local, "fn");
    let mut b = Builder::new_fragment();
    b.start_element(&name("analyze-string-result"));
    b.namespace("fn", FN).map_err(build_error)?;
    let mut last = 0;
    for caps in re.re.captures_iter(input) {
        let Some(m) = caps.get(0) else { continue };
        if m.start() > last {
            b.start_element(&name("non-match"));
            b.text(&input[last..m.start()]);
            b.end_element().map_err(build_error)?;
        }
        b.start_element(&name("match"));
        emit_groups(&mut b, input, &caps, &children, 0, m.start(), m.end())?;
        b.end_element().map_err(build_error)?;
        last = m.end();
    }
    if last < input.len() {
        b.start_element(&name("non-match"));
        b.text(&input[last..]);
        b.end_element().map_err(build_error)?;
    }
    b.end_element().map_err(build_error)?;
    let doc = ev.alloc_document(b.finish());
    Ok(Sequence::One(Item::Node(doc.root())))
}

/// Emits the text of `start..end` with the participating child groups of
/// `group` wrapped in `fn:group` elements (recursion depth is bounded by
/// the group nesting of the pattern, not by the input).
fn emit_groups(
    b: &mut Builder,
    input: &str,
    caps: &regex::Captures<'_>,
    children: &[Vec<usize>],
    group: usize,
    start: usize,
    end: usize,
) -> Result<()> {
    let mut cursor = start;
    for &child in children.get(group).map(Vec::as_slice).unwrap_or(&[]) {
        let Some(m) = caps.get(child) else { continue };
        if m.start() < cursor || m.end() > end {
            continue;
        }
        b.text(&input[cursor..m.start()]);
        b.start_element(&QName::new(FN, "group", "fn"));
        b.attribute(&QName::local("nr"), &child.to_string())
            .map_err(build_error)?;
        emit_groups(b, input, caps, children, child, m.start(), m.end())?;
        b.end_element().map_err(build_error)?;
        cursor = m.end();
    }
    b.text(&input[cursor..end]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{DocArena, Env, NoHost};
    use crate::functions::Impl;

    fn run_mode(f: Impl, args: Vec<Sequence<'static>>, xpath1: bool) -> Result<String> {
        let arena = DocArena::new();
        let env = Env::new(&arena);
        let mut host = NoHost;
        let mut ev = Eval {
            env: &env,
            host: &mut host,
            locals: vec![],
            xpath1,
        };
        let r = f(&mut ev, args)?;
        Ok(r.iter()
            .map(|i| match i {
                Item::Atomic(a) => a.to_xs_string(),
                _ => "?".into(),
            })
            .collect::<Vec<_>>()
            .join("|"))
    }

    fn run(f: Impl, args: Vec<Sequence<'static>>) -> Result<String> {
        run_mode(f, args, false)
    }

    fn s(v: &str) -> Sequence<'static> {
        Sequence::string(v)
    }

    fn d(v: f64) -> Sequence<'static> {
        Sequence::double(v)
    }

    #[test]
    fn string_and_concat() {
        assert_eq!(run(string, vec![Sequence::double(1.0)]).unwrap(), "1");
        assert_eq!(run(string, vec![Sequence::Empty]).unwrap(), "");
        assert_eq!(run(string, vec![Sequence::double(1e7)]).unwrap(), "1.0E7");
        assert_eq!(
            run_mode(string, vec![Sequence::double(1e7)], true).unwrap(),
            "10000000"
        );
        assert_eq!(
            run(concat, vec![s("a"), Sequence::Empty, Sequence::integer(2)]).unwrap(),
            "a2"
        );
        let items = Sequence::from_vec(vec![
            Item::Atomic(Atomic::string("a")),
            Item::Atomic(Atomic::Integer(1)),
        ]);
        assert_eq!(
            run(string_join, vec![items.clone(), s(", ")]).unwrap(),
            "a, 1"
        );
        assert_eq!(run(string_join, vec![items]).unwrap(), "a1");
    }

    #[test]
    fn substring_rules() {
        assert_eq!(
            run(substring, vec![s("12345"), d(1.5), d(2.6)]).unwrap(),
            "234"
        );
        assert_eq!(
            run(substring, vec![s("12345"), d(0.0), d(3.0)]).unwrap(),
            "12"
        );
        assert_eq!(
            run(substring, vec![s("12345"), d(f64::NAN), d(3.0)]).unwrap(),
            ""
        );
        assert_eq!(
            run(substring, vec![s("12345"), d(1.0), d(f64::NAN)]).unwrap(),
            ""
        );
        assert_eq!(
            run(substring, vec![s("12345"), d(-42.0), d(f64::INFINITY)]).unwrap(),
            "12345"
        );
        assert_eq!(
            run(
                substring,
                vec![s("12345"), d(f64::NEG_INFINITY), d(f64::INFINITY)]
            )
            .unwrap(),
            ""
        );
        assert_eq!(run(substring, vec![s("été"), d(2.0), d(1.0)]).unwrap(), "t");
        assert_eq!(
            run(substring, vec![s("motor car"), d(6.0)]).unwrap(),
            " car"
        );
    }

    #[test]
    fn simple_string_functions() {
        assert_eq!(run(string_length, vec![s("été")]).unwrap(), "3");
        assert_eq!(run(normalize_space, vec![s("  a \t b\n ")]).unwrap(), "a b");
        assert_eq!(run(upper_case, vec![s("abc")]).unwrap(), "ABC");
        assert_eq!(
            run(translate, vec![s("bar"), s("abc"), s("ABC")]).unwrap(),
            "BAr"
        );
        assert_eq!(
            run(translate, vec![s("--aaa--"), s("abc-"), s("ABC")]).unwrap(),
            "AAA"
        );
        assert_eq!(run(contains, vec![s("abc"), s("")]).unwrap(), "true");
        assert_eq!(
            run(starts_with, vec![Sequence::Empty, s("")]).unwrap(),
            "true"
        );
        assert_eq!(
            run(substring_before, vec![s("tattoo"), s("too")]).unwrap(),
            "tat"
        );
        assert_eq!(
            run(substring_after, vec![s("tattoo"), s("tat")]).unwrap(),
            "too"
        );
        assert_eq!(run(substring_after, vec![s("abc"), s("x")]).unwrap(), "");
        assert_eq!(
            run(contains, vec![s("a"), s("a"), s("http://example.com/coll")])
                .unwrap_err()
                .code,
            "FOCH0002"
        );
        assert_eq!(run(string_to_codepoints, vec![s("aé")]).unwrap(), "97|233");
        let cps = Sequence::from_vec(vec![
            Item::Atomic(Atomic::Integer(72)),
            Item::Atomic(Atomic::Integer(105)),
        ]);
        assert_eq!(run(codepoints_to_string, vec![cps]).unwrap(), "Hi");
        assert_eq!(
            run(codepoints_to_string, vec![Sequence::integer(0)])
                .unwrap_err()
                .code,
            "FOCH0001"
        );
        assert_eq!(run(compare, vec![s("a"), s("b")]).unwrap(), "-1");
        assert_eq!(run(compare, vec![s("a"), Sequence::Empty]).unwrap(), "");
        assert_eq!(
            run(normalize_unicode, vec![s("e\u{301}")]).unwrap(),
            "\u{e9}"
        );
        assert_eq!(
            run(normalize_unicode, vec![s("x"), s("bogus")])
                .unwrap_err()
                .code,
            "FOCH0003"
        );
    }

    #[test]
    fn uri_functions() {
        assert_eq!(
            run(encode_for_uri, vec![s("http://a/b c~é")]).unwrap(),
            "http%3A%2F%2Fa%2Fb%20c~%C3%A9"
        );
        assert_eq!(
            run(iri_to_uri, vec![s("http://a/b c/é")]).unwrap(),
            "http://a/b%20c/%C3%A9"
        );
        assert_eq!(
            run(escape_html_uri, vec![s("a b/é")]).unwrap(),
            "a b/%C3%A9"
        );
        let toks = Sequence::from_vec(vec![
            Item::Atomic(Atomic::string("red green")),
            Item::Atomic(Atomic::string("blue")),
        ]);
        assert_eq!(
            run(contains_token, vec![toks.clone(), s(" green ")]).unwrap(),
            "true"
        );
        assert_eq!(run(contains_token, vec![toks, s("gre")]).unwrap(), "false");
    }

    #[test]
    fn regex_functions() {
        assert_eq!(
            run(matches, vec![s("abracadabra"), s("^a.*a$")]).unwrap(),
            "true"
        );
        assert_eq!(
            run(matches, vec![s("abracadabra"), s("bra")]).unwrap(),
            "true"
        );
        assert_eq!(
            run(matches, vec![s("Mary"), s("^m"), s("i")]).unwrap(),
            "true"
        );
        assert_eq!(
            run(replace, vec![s("abracadabra"), s("bra"), s("*")]).unwrap(),
            "a*cada*"
        );
        assert_eq!(
            run(replace, vec![s("abracadabra"), s("a(.)"), s("a$1$1")]).unwrap(),
            "abbraccaddabbra"
        );
        assert_eq!(
            run(replace, vec![s("darted"), s("^(.*?)d(.*)$"), s("$1c$2")]).unwrap(),
            "carted"
        );
        assert_eq!(
            run(replace, vec![s("a.b"), s("."), s("$"), s("q")]).unwrap(),
            "a$b"
        );
        assert_eq!(
            run(replace, vec![s("ab"), s("b"), s("\\$1")]).unwrap(),
            "a$1"
        );
        assert_eq!(
            run(replace, vec![s("abc"), s("b*"), s("x")])
                .unwrap_err()
                .code,
            "FORX0003"
        );
        assert_eq!(
            run(replace, vec![s("abc"), s("b"), s("$")])
                .unwrap_err()
                .code,
            "FORX0004"
        );
        assert_eq!(
            run(replace, vec![s("abc"), s("b"), s("\\n")])
                .unwrap_err()
                .code,
            "FORX0004"
        );
        assert_eq!(run(tokenize, vec![s(" red  green ")]).unwrap(), "red|green");
        assert_eq!(run(tokenize, vec![s("abba"), s("a")]).unwrap(), "|bb|");
        assert_eq!(
            run(tokenize, vec![s("1, 15, 24"), s(",\\s*")]).unwrap(),
            "1|15|24"
        );
        assert_eq!(run(tokenize, vec![s(""), s(",")]).unwrap(), "");
        assert_eq!(
            run(tokenize, vec![s("abc"), s("x?")]).unwrap_err().code,
            "FORX0003"
        );
    }

    #[test]
    fn replacement_parsing() {
        assert_eq!(
            parse_replacement("x$12y", 1).unwrap(),
            vec![
                Piece::Lit("x".into()),
                Piece::Group(1),
                Piece::Lit("2y".into())
            ]
        );
        assert_eq!(
            parse_replacement("$12", 12).unwrap(),
            vec![Piece::Group(12)]
        );
    }

    #[test]
    fn analyze_string_builds_fragment() {
        let arena = DocArena::new();
        let env = Env::new(&arena);
        let mut host = NoHost;
        let mut ev = Eval {
            env: &env,
            host: &mut host,
            locals: vec![],
            xpath1: false,
        };
        let r = analyze_string(&mut ev, vec![s("a1b22"), s("([0-9])+")]).unwrap();
        let node = r.first().and_then(Item::as_node).unwrap();
        assert_eq!(node.string_value(), "a1b22");
        let kids: Vec<_> = node
            .children()
            .map(|c| c.name().map(|n| n.local.clone()))
            .collect();
        assert_eq!(kids.len(), 4);
    }
}
