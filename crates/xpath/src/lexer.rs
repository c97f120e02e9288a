//! The XPath 3.1 lexer: turns expression text into a flat vector of
//! [`Token`]s, each with the byte [`Span`] it covers.
//!
//! # What the lexer decides, and what it leaves to the parser
//!
//! XPath has no reserved words: `div`, `if`, `for`, `text` … are ordinary
//! names that become keywords only in certain grammatical positions. The
//! lexer therefore never classifies names — every name is a
//! [`Tok::Name`], and the parser ([`crate::parser`]) decides from context
//! whether `div` is the division operator or a name test. Likewise `*` is a
//! single [`Tok::Star`] token that the parser reads as multiplication after
//! an operand and as a wildcard otherwise, and `?` is a single
//! [`Tok::Question`] (lookup, argument placeholder, or occurrence
//! indicator).
//!
//! What the lexer *does* decide is everything the spec settles by the
//! "longest possible match" rule (XPath 3.1 §A.2):
//!
//! * names may contain `-` and `.`, so `a-b` is one name while `a -b` and
//!   `a - b` are a subtraction; `$x-1` is the variable `x-1`;
//! * `p:local` is one QName token only when nothing separates the colon
//!   from its neighbours (`a : b` is three tokens, as needed inside
//!   `map { a : b }`); `p:*`, `*:local`, `Q{uri}local` and `Q{uri}*` are
//!   single tokens too;
//! * multi-character operators: `!=`, `<=`, `>=`, `<<`, `>>`, `||`, `=>`,
//!   `:=`, `::`, `..`, `//`;
//! * numeric literals: `12` ([`Tok::Integer`]), `1.5`, `.5`, `1.`
//!   ([`Tok::Decimal`]), `1e3`, `1.e3`, `.5E-2` ([`Tok::Double`]), kept as
//!   written; a numeric literal directly followed by a name character
//!   (`10div 3`) is a syntax error, as the spec requires;
//! * string literals in `"…"` or `'…'` with the delimiter doubled to
//!   escape it;
//! * whitespace and comments `(: … :)` (which nest) separate tokens and are
//!   dropped.
//!
//! The lexer runs once over the text, in time linear in its length; the
//! token vector always ends with [`Tok::Eof`].

use crate::ast::Name;
use crate::error::{Error, Result, Span};

/// The kinds of token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `12` (digits as written).
    Integer(String),
    /// `1.5`, `.5`, `1.` (as written).
    Decimal(String),
    /// `1e3`, `1.5E-2` (as written).
    Double(String),
    /// A string literal, quotes removed and doubled quotes undoubled.
    String(String),
    /// An NCName, a QName `p:local`, or an EQName `Q{uri}local`.
    Name(Name),
    /// `*`
    Star,
    /// `p:*`
    PrefixStar(String),
    /// `Q{uri}*`
    UriStar(String),
    /// `*:local`
    StarLocal(String),
    /// `$`
    Dollar,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `,`
    Comma,
    /// `:`
    Colon,
    /// `::`
    ColonColon,
    /// `:=`
    Assign,
    /// `.`
    Dot,
    /// `..`
    DotDot,
    /// `/`
    Slash,
    /// `//`
    SlashSlash,
    /// `@`
    At,
    /// `#`
    Hash,
    /// `?`
    Question,
    /// `!`
    Bang,
    /// `|`
    Pipe,
    /// `||`
    PipePipe,
    /// `=>`
    Arrow,
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<<`
    LtLt,
    /// `>>`
    GtGt,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// The end of the expression.
    Eof,
}

impl Tok {
    /// A short description for error messages ("`)`", "name `foo`", …).
    pub fn describe(&self) -> String {
        let sym = |s: &str| format!("`{s}`");
        match self {
            Tok::Integer(s) | Tok::Decimal(s) | Tok::Double(s) => format!("number `{s}`"),
            Tok::String(s) => format!("string literal {s:?}"),
            Tok::Name(n) => format!("name `{}`", display_name(n)),
            Tok::Star => sym("*"),
            Tok::PrefixStar(p) => format!("wildcard `{p}:*`"),
            Tok::UriStar(u) => format!("wildcard `Q{{{u}}}*`"),
            Tok::StarLocal(l) => format!("wildcard `*:{l}`"),
            Tok::Dollar => sym("$"),
            Tok::LParen => sym("("),
            Tok::RParen => sym(")"),
            Tok::LBracket => sym("["),
            Tok::RBracket => sym("]"),
            Tok::LBrace => sym("{"),
            Tok::RBrace => sym("}"),
            Tok::Comma => sym(","),
            Tok::Colon => sym(":"),
            Tok::ColonColon => sym("::"),
            Tok::Assign => sym(":="),
            Tok::Dot => sym("."),
            Tok::DotDot => sym(".."),
            Tok::Slash => sym("/"),
            Tok::SlashSlash => sym("//"),
            Tok::At => sym("@"),
            Tok::Hash => sym("#"),
            Tok::Question => sym("?"),
            Tok::Bang => sym("!"),
            Tok::Pipe => sym("|"),
            Tok::PipePipe => sym("||"),
            Tok::Arrow => sym("=>"),
            Tok::Eq => sym("="),
            Tok::Ne => sym("!="),
            Tok::Lt => sym("<"),
            Tok::Le => sym("<="),
            Tok::Gt => sym(">"),
            Tok::Ge => sym(">="),
            Tok::LtLt => sym("<<"),
            Tok::GtGt => sym(">>"),
            Tok::Plus => sym("+"),
            Tok::Minus => sym("-"),
            Tok::Eof => "end of expression".to_string(),
        }
    }

    /// Whether this is the unprefixed name `kw` (a keyword candidate).
    pub fn is_keyword(&self, kw: &str) -> bool {
        matches!(self, Tok::Name(n) if n.prefix.is_none() && n.uri.is_none() && n.local == kw)
    }

    /// The local part if this is an unprefixed, non-EQName name.
    pub fn unprefixed(&self) -> Option<&str> {
        match self {
            Tok::Name(n) if n.prefix.is_none() && n.uri.is_none() => Some(&n.local),
            _ => None,
        }
    }
}

/// A name as it would be written (`p:l`, `l`, `Q{u}l`).
pub fn display_name(n: &Name) -> String {
    match (&n.uri, &n.prefix) {
        (Some(u), _) => format!("Q{{{u}}}{}", n.local),
        (None, Some(p)) => format!("{p}:{}", n.local),
        (None, None) => n.local.clone(),
    }
}

/// A token with its source span.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// Where it is (byte offsets).
    pub span: Span,
}

/// `NameStartChar` of XML 1.0 (5th edition) without `:`.
pub fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// `NameChar` of XML 1.0 (5th edition) without `:`.
pub fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Whether `s` is an NCName.
pub fn is_ncname(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(is_name_start) && cs.all(is_name_char)
}

/// Splits `text` into tokens (ending with [`Tok::Eof`]).
pub fn tokenize(text: &str) -> Result<Vec<Token>> {
    let mut lx = Lexer {
        text,
        pos: 0,
        out: Vec::with_capacity(text.len() / 2 + 1),
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'t> {
    text: &'t str,
    pos: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn peek_at(&self, at: usize) -> Option<char> {
        self.text.get(at..).and_then(|s| s.chars().next())
    }

    fn peek(&self) -> Option<char> {
        self.peek_at(self.pos)
    }

    /// The character after the one at `self.pos`.
    fn peek2(&self) -> Option<char> {
        let c = self.peek()?;
        self.peek_at(self.pos + c.len_utf8())
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.out.push(Token {
            tok,
            span: Span::new(start, self.pos),
        });
    }

    fn run(&mut self) -> Result<()> {
        loop {
            self.skip_trivia()?;
            let start = self.pos;
            let Some(c) = self.peek() else {
                self.push(Tok::Eof, start);
                return Ok(());
            };
            let next = self.peek2();
            // Punctuation: (token, length in bytes).
            let punct = match (c, next) {
                ('$', _) => Some((Tok::Dollar, 1)),
                ('(', _) => Some((Tok::LParen, 1)),
                (')', _) => Some((Tok::RParen, 1)),
                ('[', _) => Some((Tok::LBracket, 1)),
                (']', _) => Some((Tok::RBracket, 1)),
                ('{', _) => Some((Tok::LBrace, 1)),
                ('}', _) => Some((Tok::RBrace, 1)),
                (',', _) => Some((Tok::Comma, 1)),
                (':', Some(':')) => Some((Tok::ColonColon, 2)),
                (':', Some('=')) => Some((Tok::Assign, 2)),
                (':', _) => Some((Tok::Colon, 1)),
                ('.', Some('.')) => Some((Tok::DotDot, 2)),
                ('.', Some(d)) if d.is_ascii_digit() => None,
                ('.', _) => Some((Tok::Dot, 1)),
                ('/', Some('/')) => Some((Tok::SlashSlash, 2)),
                ('/', _) => Some((Tok::Slash, 1)),
                ('@', _) => Some((Tok::At, 1)),
                ('#', _) => Some((Tok::Hash, 1)),
                ('?', _) => Some((Tok::Question, 1)),
                ('!', Some('=')) => Some((Tok::Ne, 2)),
                ('!', _) => Some((Tok::Bang, 1)),
                ('|', Some('|')) => Some((Tok::PipePipe, 2)),
                ('|', _) => Some((Tok::Pipe, 1)),
                ('=', Some('>')) => Some((Tok::Arrow, 2)),
                ('=', _) => Some((Tok::Eq, 1)),
                ('<', Some('=')) => Some((Tok::Le, 2)),
                ('<', Some('<')) => Some((Tok::LtLt, 2)),
                ('<', _) => Some((Tok::Lt, 1)),
                ('>', Some('=')) => Some((Tok::Ge, 2)),
                ('>', Some('>')) => Some((Tok::GtGt, 2)),
                ('>', _) => Some((Tok::Gt, 1)),
                ('+', _) => Some((Tok::Plus, 1)),
                ('-', _) => Some((Tok::Minus, 1)),
                _ => None,
            };
            if let Some((tok, len)) = punct {
                self.pos += len;
                self.push(tok, start);
                continue;
            }
            match c {
                '"' | '\'' => self.string(c)?,
                '0'..='9' | '.' => self.number()?,
                '*' => {
                    self.pos += 1;
                    // `*:local` only when the colon and the name follow directly.
                    if self.peek() == Some(':') && self.peek2().is_some_and(is_name_start) {
                        self.pos += 1;
                        let local = self.ncname();
                        self.push(Tok::StarLocal(local), start);
                    } else {
                        self.push(Tok::Star, start);
                    }
                }
                'Q' if next == Some('{') => self.eqname()?,
                c if is_name_start(c) => self.qname(),
                c => {
                    return Err(Error::syntax(
                        format!("unexpected character {c:?}"),
                        Span::new(start, start + c.len_utf8()),
                    ))
                }
            }
        }
    }

    /// Skips whitespace and (nested) comments.
    fn skip_trivia(&mut self) -> Result<()> {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\n') => self.pos += 1,
                Some('(') if self.peek2() == Some(':') => {
                    let start = self.pos;
                    self.pos += 2;
                    let mut depth = 1usize;
                    let bytes = self.text.as_bytes();
                    while depth > 0 {
                        match (bytes.get(self.pos), bytes.get(self.pos + 1)) {
                            (None, _) => {
                                return Err(Error::syntax(
                                    "unterminated comment: expected `:)`, found end of expression",
                                    Span::new(start, start + 2),
                                ))
                            }
                            (Some(b'('), Some(b':')) => {
                                depth += 1;
                                self.pos += 2;
                            }
                            (Some(b':'), Some(b')')) => {
                                depth -= 1;
                                self.pos += 2;
                            }
                            _ => self.pos += 1,
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn string(&mut self, quote: char) -> Result<()> {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        loop {
            let rest = self.text.get(self.pos..).unwrap_or("");
            match rest.find(quote) {
                None => {
                    return Err(Error::syntax(
                        format!("unterminated string literal: expected closing {quote}, found end of expression"),
                        Span::new(start, self.text.len()),
                    ))
                }
                Some(i) => {
                    value.push_str(&rest[..i]);
                    self.pos += i + 1;
                    if self.peek() == Some(quote) {
                        value.push(quote);
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
            }
        }
        self.push(Tok::String(value), start);
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let s = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - s
    }

    fn number(&mut self) -> Result<()> {
        let start = self.pos;
        let int_digits = self.digits();
        let mut decimal = false;
        if self.peek() == Some('.') {
            // `1..2` is not `1.` followed by `.2`-ish trouble: `..` after an
            // integer stays a separate token.
            if !(int_digits > 0 && self.peek2() == Some('.')) {
                self.pos += 1;
                decimal = true;
                self.digits();
            }
        }
        let mut double = false;
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            if self.digits() > 0 {
                double = true;
            } else {
                self.pos = save;
            }
        }
        let lexeme = self.text.get(start..self.pos).unwrap_or("").to_string();
        if let Some(c) = self.peek() {
            if is_name_start(c) {
                return Err(Error::syntax(
                    format!("a numeric literal must be separated from a following {c:?} by whitespace (found `{lexeme}{c}`)"),
                    Span::new(start, self.pos + c.len_utf8()),
                ));
            }
        }
        let tok = if double {
            Tok::Double(lexeme)
        } else if decimal {
            Tok::Decimal(lexeme)
        } else {
            Tok::Integer(lexeme)
        };
        self.push(tok, start);
        Ok(())
    }

    /// Reads an NCName at `self.pos` (the caller checked the start char).
    fn ncname(&mut self) -> String {
        let s = self.pos;
        while let Some(c) = self.peek() {
            if is_name_char(c) {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        self.text.get(s..self.pos).unwrap_or("").to_string()
    }

    /// An NCName, `prefix:local` or `prefix:*`.
    fn qname(&mut self) {
        let start = self.pos;
        let first = self.ncname();
        if self.peek() == Some(':') {
            match self.peek2() {
                Some(c) if is_name_start(c) => {
                    self.pos += 1;
                    let local = self.ncname();
                    self.push(
                        Tok::Name(Name {
                            prefix: Some(first),
                            local,
                            uri: None,
                        }),
                        start,
                    );
                    return;
                }
                Some('*') => {
                    self.pos += 2;
                    self.push(Tok::PrefixStar(first), start);
                    return;
                }
                _ => {}
            }
        }
        self.push(Tok::Name(Name::local(&first)), start);
    }

    /// `Q{uri}local` or `Q{uri}*`.
    fn eqname(&mut self) -> Result<()> {
        let start = self.pos;
        self.pos += 2;
        let rest = self.text.get(self.pos..).unwrap_or("");
        let Some(close) = rest
            .find(['{', '}'])
            .filter(|&i| rest.as_bytes()[i] == b'}')
        else {
            return Err(Error::syntax(
                "malformed `Q{uri}` name: expected `}` closing the URI",
                Span::new(start, start + 2),
            ));
        };
        let uri = rest[..close]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        self.pos += close + 1;
        match self.peek() {
            Some('*') => {
                self.pos += 1;
                self.push(Tok::UriStar(uri), start);
            }
            Some(c) if is_name_start(c) => {
                let local = self.ncname();
                self.push(
                    Tok::Name(Name {
                        prefix: None,
                        local,
                        uri: Some(uri),
                    }),
                    start,
                );
            }
            other => {
                let found = other.map_or("end of expression".to_string(), |c| format!("{c:?}"));
                return Err(Error::syntax(
                    format!("expected a local name or `*` after `Q{{{uri}}}`, found {found}"),
                    Span::new(start, self.pos),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn name(s: &str) -> Tok {
        Tok::Name(Name::local(s))
    }

    #[test]
    fn numbers() {
        assert_eq!(toks("12")[0], Tok::Integer("12".into()));
        assert_eq!(toks(".5")[0], Tok::Decimal(".5".into()));
        assert_eq!(toks("1.")[0], Tok::Decimal("1.".into()));
        assert_eq!(toks("1.5")[0], Tok::Decimal("1.5".into()));
        assert_eq!(toks("1e3")[0], Tok::Double("1e3".into()));
        assert_eq!(toks("1.e3")[0], Tok::Double("1.e3".into()));
        assert_eq!(toks(".5E-2")[0], Tok::Double(".5E-2".into()));
        assert_eq!(
            toks("1..2"),
            vec![
                Tok::Integer("1".into()),
                Tok::DotDot,
                Tok::Integer("2".into()),
                Tok::Eof
            ]
        );
        let e = tokenize("10div 3").unwrap_err();
        assert_eq!(e.code, "XPST0003");
        assert!(tokenize("1e").is_err());
    }

    #[test]
    fn strings() {
        assert_eq!(toks(r#""a""b""#)[0], Tok::String("a\"b".into()));
        assert_eq!(toks("'it''s'")[0], Tok::String("it's".into()));
        assert_eq!(toks("''")[0], Tok::String(String::new()));
        let e = tokenize("'abc").unwrap_err();
        assert_eq!(e.span, Some(Span::new(0, 4)));
    }

    #[test]
    fn names_and_hyphens() {
        assert_eq!(toks("a-b"), vec![name("a-b"), Tok::Eof]);
        assert_eq!(
            toks("a -b"),
            vec![name("a"), Tok::Minus, name("b"), Tok::Eof]
        );
        assert_eq!(
            toks("a - b"),
            vec![name("a"), Tok::Minus, name("b"), Tok::Eof]
        );
        assert_eq!(toks("$x-1"), vec![Tok::Dollar, name("x-1"), Tok::Eof]);
        assert_eq!(
            toks("p:l")[0],
            Tok::Name(Name {
                prefix: Some("p".into()),
                local: "l".into(),
                uri: None
            })
        );
        assert_eq!(
            toks("a : b"),
            vec![name("a"), Tok::Colon, name("b"), Tok::Eof]
        );
        assert_eq!(
            toks("a: b"),
            vec![name("a"), Tok::Colon, name("b"), Tok::Eof]
        );
        assert_eq!(
            toks("child::a"),
            vec![name("child"), Tok::ColonColon, name("a"), Tok::Eof]
        );
        assert_eq!(toks("p:*")[0], Tok::PrefixStar("p".into()));
        assert_eq!(toks("*:l")[0], Tok::StarLocal("l".into()));
        assert_eq!(toks("* : l")[0], Tok::Star);
        assert_eq!(
            toks("Q{ urn:x }l")[0],
            Tok::Name(Name {
                prefix: None,
                local: "l".into(),
                uri: Some("urn:x".into())
            })
        );
        assert_eq!(toks("Q{urn:x}*")[0], Tok::UriStar("urn:x".into()));
        assert_eq!(toks("Q")[0], name("Q"));
        assert!(tokenize("Q{urn").is_err());
        assert_eq!(toks("été")[0], name("été"));
    }

    #[test]
    fn operators() {
        assert_eq!(
            toks("!= <= >= << >> || => := :: .. // ! | = < > @ # ? , . /"),
            vec![
                Tok::Ne,
                Tok::Le,
                Tok::Ge,
                Tok::LtLt,
                Tok::GtGt,
                Tok::PipePipe,
                Tok::Arrow,
                Tok::Assign,
                Tok::ColonColon,
                Tok::DotDot,
                Tok::SlashSlash,
                Tok::Bang,
                Tok::Pipe,
                Tok::Eq,
                Tok::Lt,
                Tok::Gt,
                Tok::At,
                Tok::Hash,
                Tok::Question,
                Tok::Comma,
                Tok::Dot,
                Tok::Slash,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_nest() {
        assert_eq!(
            toks("1 (: a (: b :) c :) + (::)2"),
            vec![
                Tok::Integer("1".into()),
                Tok::Plus,
                Tok::Integer("2".into()),
                Tok::Eof
            ]
        );
        let e = tokenize("1 (: (: :)").unwrap_err();
        assert_eq!(e.span, Some(Span::new(2, 4)));
    }

    #[test]
    fn spans_are_byte_offsets() {
        let t = tokenize("é + $x").unwrap();
        assert_eq!(t[0].span, Span::new(0, 2));
        assert_eq!(t[1].span, Span::new(3, 4));
        assert_eq!(t[2].span, Span::new(5, 6));
        assert_eq!(t[3].span, Span::new(6, 7));
        assert_eq!(t[4].span, Span::new(7, 7));
    }

    #[test]
    fn bad_character() {
        let e = tokenize("1 ; 2").unwrap_err();
        assert_eq!(e.span, Some(Span::new(2, 3)));
    }
}
