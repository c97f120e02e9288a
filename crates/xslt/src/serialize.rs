//! Serialization of the result tree as `xsl:output` requests (XSLT and
//! XQuery Serialization 3.1): the `xml`, `xhtml`, `html` and `text`
//! methods, indentation, the output encoding, namespace fixup (every
//! element and attribute name gets a declared prefix), and the
//! serialization parameters `doctype-system`/`doctype-public`,
//! `standalone`, `cdata-section-elements`, `suppress-indentation`,
//! `byte-order-mark`, `normalization-form`, `escape-uri-attributes` and
//! `include-content-type`.
//!
//! The three markup methods share one writer; what differs is decided
//! per element:
//!
//! - **xml** writes the tree as it is (`<e/>` for an empty element).
//! - **xhtml** is XML following the HTML compatibility guidelines. An
//!   element is *recognized as HTML* when it is in the XHTML namespace
//!   (or, with HTML5, in no namespace with an HTML5 element name, any
//!   case). Empty recognized elements are written `<br />` when they are
//!   void (`EMPTY` in XHTML 1.0) and `<p></p>` otherwise.
//! - **html** writes elements in no namespace (and, with HTML5, in the
//!   XHTML namespace) as HTML: void elements without end tag (`<br>`),
//!   the content of `script`/`style` unescaped, boolean attributes
//!   minimized (`<option selected>`), `<` unescaped in attribute values,
//!   processing instructions ending in `>`. Other elements are "XML
//!   islands", written as by the XML method.
//!
//! For HTML5 (the default) both HTML methods apply *prefix
//! normalization*: elements in the XHTML, SVG and MathML namespaces are
//! written unprefixed with a default namespace declaration, and
//! declarations of those namespaces are dropped where they are unused.
//!
//! Element names are compared with the HTML tables after ASCII lowercasing
//! into a small stack buffer (no allocation per element); the XML method
//! never looks at the tables.

use std::borrow::Cow;
use std::fmt::Write as _;

use drehscheibe_xpath::{Node, NodeKind};
use unicode_normalization::UnicodeNormalization;

use crate::error::TransformError;
use crate::{NormalizationForm, OutputMethod, OutputSettings};

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
const SVG_NS: &str = "http://www.w3.org/2000/svg";
const MATHML_NS: &str = "http://www.w3.org/1998/Math/MathML";

/// A supported output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    /// UTF-16, big-endian.
    Utf16,
    Latin1,
    Ascii,
}

impl Encoding {
    /// The encoding for an `encoding` attribute value (case-insensitive).
    pub(crate) fn from_label(label: &str) -> Option<Encoding> {
        match label.trim().to_ascii_uppercase().as_str() {
            "UTF-8" | "UTF8" => Some(Encoding::Utf8),
            "UTF-16" | "UTF16" => Some(Encoding::Utf16),
            "ISO-8859-1" | "ISO8859-1" | "LATIN1" | "LATIN-1" | "ISO_8859-1" => {
                Some(Encoding::Latin1)
            }
            "US-ASCII" | "ASCII" => Some(Encoding::Ascii),
            _ => None,
        }
    }

    /// Can every character be encoded?
    fn is_unicode(self) -> bool {
        matches!(self, Encoding::Utf8 | Encoding::Utf16)
    }

    fn can_encode(self, c: char) -> bool {
        match self {
            Encoding::Utf8 | Encoding::Utf16 => true,
            Encoding::Latin1 => (c as u32) <= 0xFF,
            Encoding::Ascii => (c as u32) <= 0x7F,
        }
    }

    fn encode(self, text: String) -> Vec<u8> {
        match self {
            Encoding::Utf8 => text.into_bytes(),
            Encoding::Utf16 => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            // callers only pass encodable characters
            Encoding::Latin1 | Encoding::Ascii => text
                .chars()
                .map(|c| u8::try_from(c as u32).unwrap_or(b'?'))
                .collect(),
        }
    }
}

fn serr(message: impl Into<String>) -> TransformError {
    TransformError::Serialize {
        message: message.into(),
    }
}

/// `text` in the requested normalization form (borrowed when it cannot
/// change: no normalization, or ASCII only).
fn normalize(text: &str, form: NormalizationForm) -> Cow<'_, str> {
    if form == NormalizationForm::None || text.is_ascii() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(match form {
        NormalizationForm::Nfc => text.nfc().collect(),
        NormalizationForm::Nfd => text.nfd().collect(),
        NormalizationForm::Nfkc => text.nfkc().collect(),
        NormalizationForm::Nfkd => text.nfkd().collect(),
        NormalizationForm::None => text.to_string(),
    })
}

fn is_xml_whitespace(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// The output method for the result document: the declared one, or the
/// default chosen from the first element child (XSLT 3.0 §26.1).
fn effective_method(doc: Node<'_>, settings: &OutputSettings) -> OutputMethod {
    if settings.method_declared {
        return settings.method;
    }
    for c in doc.children() {
        match c.kind() {
            NodeKind::Text if is_xml_whitespace(c.string_value()) => continue,
            NodeKind::Element => {
                return match c.name() {
                    Some(n) if n.local == "html" && n.uri == XHTML_NS && !settings.xslt1 => {
                        OutputMethod::Xhtml
                    }
                    Some(n) if n.uri.is_empty() && n.local.eq_ignore_ascii_case("html") => {
                        OutputMethod::Html
                    }
                    _ => OutputMethod::Xml,
                }
            }
            NodeKind::Text => return OutputMethod::Xml,
            _ => continue,
        }
    }
    OutputMethod::Xml
}

/// Serializes the children of the result document `doc`.
pub(crate) fn serialize(
    doc: Node<'_>,
    settings: &OutputSettings,
) -> Result<Vec<u8>, TransformError> {
    let encoding = Encoding::from_label(&settings.encoding)
        .ok_or_else(|| serr(format!("unsupported encoding {}", settings.encoding)))?;
    let method = effective_method(doc, settings);
    let bom = settings
        .byte_order_mark
        .unwrap_or(encoding == Encoding::Utf16)
        && encoding.is_unicode();
    if method == OutputMethod::Text {
        // the string value of the result document is exactly its text
        // nodes in document order (one slice of the arena's text buffer)
        let text = normalize(doc.string_value(), settings.normalization_form);
        if let Some(c) = text.chars().find(|c| !encoding.can_encode(*c)) {
            return Err(serr(format!(
                "character U+{:04X} cannot be represented in {} (SERE0008)",
                c as u32, settings.encoding
            )));
        }
        let mut text = text.into_owned();
        if bom {
            text.insert(0, '\u{feff}');
        }
        return Ok(encoding.encode(text));
    }
    let xml_like = method != OutputMethod::Html;
    if xml_like {
        if settings.omit_xml_declaration && settings.standalone.is_some() {
            return Err(serr(
                "standalone is set while omit-xml-declaration is yes (SEPM0009)",
            ));
        }
        if settings.undeclare_prefixes {
            return Err(serr(
                "undeclare-prefixes=\"yes\" needs XML 1.1, and the output version is 1.0 (SEPM0010)",
            ));
        }
        if settings.doctype_system.is_some() || settings.standalone.is_some() {
            let mut elements = 0;
            for c in doc.children() {
                match c.kind() {
                    NodeKind::Element => elements += 1,
                    NodeKind::Text => elements += 2,
                    _ => {}
                }
            }
            if elements > 1 {
                return Err(serr(
                    "doctype-system or standalone is set, but the result is not a well-formed document (text or several elements at the top level) (SEPM0004)",
                ));
            }
        }
    }
    let indent = settings
        .indent
        .unwrap_or(matches!(method, OutputMethod::Html | OutputMethod::Xhtml));
    let mut w = Writer {
        out: String::with_capacity(4096),
        encoding,
        method,
        html5: settings.html5,
        indent,
        settings,
        scopes: vec![
            (Cow::Borrowed(""), Cow::Borrowed("")),
            (Cow::Borrowed("xml"), Cow::Borrowed(XML_NS)),
        ],
        attrs: Vec::new(),
        generated: 0,
        first_element_done: false,
        text_before_first: false,
        raw: 0,
        no_indent: 0,
    };
    if bom {
        w.out.push('\u{feff}');
    }
    if xml_like && !settings.omit_xml_declaration {
        w.out.push_str("<?xml version=\"1.0\" encoding=\"");
        w.out.push_str(&settings.encoding);
        w.out.push('"');
        if let Some(s) = settings.standalone {
            w.out.push_str(if s {
                " standalone=\"yes\""
            } else {
                " standalone=\"no\""
            });
        }
        w.out.push_str("?>\n");
    }
    for (i, c) in doc.children().enumerate() {
        if indent && i > 0 && c.kind() != NodeKind::Text && !w.out.ends_with('\n') {
            w.out.push('\n');
        }
        if c.kind() == NodeKind::Text && !is_xml_whitespace(c.string_value()) {
            w.text_before_first = true;
        }
        w.node(c, 0)?;
    }
    // an indented XML document ends with a newline (like libxslt); without
    // indentation no whitespace is added (Serialization 3.1 §5.1.3)
    if indent && method == OutputMethod::Xml && !w.out.ends_with('\n') {
        w.out.push('\n');
    }
    Ok(encoding.encode(w.out))
}

/// How a text or attribute value is escaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Text,
    /// An attribute value in double quotes.
    Attr,
    /// An attribute value of the HTML method: `<` and `&{` stay as
    /// they are.
    HtmlAttr,
}

/// What the HTML tables say about an element (for the html and xhtml
/// methods; all false for the xml method and for XML islands).
#[derive(Clone, Copy, Default)]
struct HtmlInfo {
    /// Serialized as an HTML element.
    html: bool,
    /// A void element (no content, `<br>` / `<br />`).
    void: bool,
    /// An inline (phrasing) element: no whitespace may be added next to it.
    inline: bool,
    /// `pre`, `script`, `style`, `title`, `textarea`: no whitespace may be
    /// added inside.
    formatted: bool,
    /// `script` or `style`: content unescaped (html method).
    raw: bool,
    /// `head`: gets the content-type `meta` element.
    head: bool,
}

/// The writer of the markup methods. Names and namespace URIs are
/// borrowed from the result tree (`'d`); only generated prefixes (`ns0`,
/// …) are owned.
struct Writer<'d, 's> {
    out: String,
    encoding: Encoding,
    method: OutputMethod,
    html5: bool,
    indent: bool,
    settings: &'s OutputSettings,
    /// Prefix → URI bindings in scope, innermost last; the element being
    /// written owns `scopes[frame..]` (the declarations it writes).
    scopes: Vec<(Cow<'d, str>, Cow<'d, str>)>,
    /// Attributes of the element being written: (prefix, local, value,
    /// in a namespace); an empty prefix writes the local name alone.
    attrs: Vec<(Cow<'d, str>, &'d str, &'d str, bool)>,
    generated: usize,
    /// The first element of the document has been written (a document
    /// type declaration goes right before it).
    first_element_done: bool,
    /// A non-whitespace text node precedes the first element.
    text_before_first: bool,
    /// Depth of `script`/`style` elements of the html method (content
    /// written unescaped).
    raw: usize,
    /// Depth of elements inside which no whitespace may be added.
    no_indent: usize,
}

/// `name` in ASCII lower case, in `buf` (empty if it does not fit or is
/// not ASCII: no HTML element or attribute name is that long).
fn lower<'b>(name: &str, buf: &'b mut [u8; 16]) -> &'b str {
    if name.len() > buf.len() || !name.is_ascii() {
        return "";
    }
    for (d, s) in buf.iter_mut().zip(name.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    buf.get(..name.len())
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

/// Elements with an `EMPTY` content model in HTML 4.01 / XHTML 1.0.
fn is_void4(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "basefont"
            | "br"
            | "col"
            | "embed"
            | "frame"
            | "hr"
            | "img"
            | "input"
            | "isindex"
            | "link"
            | "meta"
            | "param"
    )
}

/// The void elements of HTML5.
fn is_void5(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "command"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "keygen"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    )
}

/// Inline elements (`%inline` of HTML 4.01, phrasing content of HTML5).
fn is_inline(name: &str) -> bool {
    matches!(
        name,
        "a" | "abbr"
            | "acronym"
            | "applet"
            | "area"
            | "audio"
            | "b"
            | "basefont"
            | "bdi"
            | "bdo"
            | "big"
            | "br"
            | "button"
            | "canvas"
            | "cite"
            | "code"
            | "data"
            | "datalist"
            | "dfn"
            | "em"
            | "embed"
            | "font"
            | "i"
            | "iframe"
            | "img"
            | "input"
            | "kbd"
            | "keygen"
            | "label"
            | "map"
            | "mark"
            | "math"
            | "meter"
            | "noscript"
            | "object"
            | "output"
            | "picture"
            | "progress"
            | "q"
            | "ruby"
            | "s"
            | "samp"
            | "script"
            | "select"
            | "slot"
            | "small"
            | "span"
            | "strike"
            | "strong"
            | "sub"
            | "sup"
            | "svg"
            | "template"
            | "textarea"
            | "time"
            | "tt"
            | "u"
            | "var"
            | "video"
            | "wbr"
    )
}

/// The element names of HTML 4.01 and HTML5 (recognized in no namespace
/// by the xhtml method with HTML5, and used to treat unknown names of the
/// html method like `span`).
fn is_html_name(name: &str) -> bool {
    is_inline(name)
        || is_void4(name)
        || is_void5(name)
        || matches!(
            name,
            "address"
                | "article"
                | "aside"
                | "blockquote"
                | "body"
                | "caption"
                | "center"
                | "colgroup"
                | "dd"
                | "del"
                | "details"
                | "dialog"
                | "dir"
                | "div"
                | "dl"
                | "dt"
                | "fieldset"
                | "figcaption"
                | "figure"
                | "footer"
                | "form"
                | "frameset"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "head"
                | "header"
                | "hgroup"
                | "html"
                | "ins"
                | "legend"
                | "li"
                | "main"
                | "menu"
                | "nav"
                | "noframes"
                | "ol"
                | "optgroup"
                | "option"
                | "p"
                | "pre"
                | "rp"
                | "rt"
                | "search"
                | "section"
                | "style"
                | "summary"
                | "table"
                | "tbody"
                | "td"
                | "tfoot"
                | "th"
                | "thead"
                | "title"
                | "tr"
                | "ul"
        )
}

/// Boolean attributes of HTML 4.01 and HTML5.
fn is_boolean_attr(name: &str) -> bool {
    matches!(
        name,
        "allowfullscreen"
            | "async"
            | "autofocus"
            | "autoplay"
            | "checked"
            | "compact"
            | "controls"
            | "declare"
            | "default"
            | "defer"
            | "disabled"
            | "formnovalidate"
            | "hidden"
            | "inert"
            | "ismap"
            | "itemscope"
            | "loop"
            | "multiple"
            | "muted"
            | "nohref"
            | "noresize"
            | "noshade"
            | "novalidate"
            | "nowrap"
            | "open"
            | "readonly"
            | "required"
            | "reversed"
            | "selected"
    )
}

/// URI-valued attributes (Serialization 3.1 appendix "List of URI
/// Attributes", without `input/@value`, which is not a URI: qtspecs
/// issue 21); `element` and `attr` in lower case.
fn is_uri_attr(element: &str, attr: &str) -> bool {
    match attr {
        "action" => element == "form",
        "archive" | "classid" | "data" => element == "object",
        "background" => element == "body",
        "cite" => matches!(element, "blockquote" | "del" | "ins" | "q"),
        "codebase" => matches!(element, "applet" | "object"),
        "datasrc" => matches!(
            element,
            "button" | "div" | "input" | "object" | "select" | "span" | "table" | "textarea"
        ),
        "for" => element == "script",
        "formaction" => matches!(element, "button" | "input"),
        "href" => matches!(element, "a" | "area" | "base" | "link"),
        "icon" => element == "command",
        "longdesc" => matches!(element, "frame" | "iframe" | "img"),
        "manifest" => element == "html",
        "name" => element == "a",
        "poster" => element == "video",
        "profile" => element == "head",
        "src" => matches!(
            element,
            "audio"
                | "embed"
                | "frame"
                | "iframe"
                | "img"
                | "input"
                | "script"
                | "source"
                | "track"
                | "video"
        ),
        "usemap" => matches!(element, "img" | "input" | "object"),
        _ => false,
    }
}

/// URI escaping of a URI attribute value: NFC, then every character
/// outside printable ASCII as `%HH` escapes of its UTF-8 bytes (as
/// `fn:escape-html-uri`).
fn escape_html_uri(value: &str) -> Cow<'_, str> {
    if value.bytes().all(|b| (32..=126).contains(&b)) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    // URI escaping normalizes to NFC first (Serialization 3.1 §2)
    for c in value.nfc() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    Cow::Owned(out)
}

/// Is this `meta` element the content-type declaration that the
/// inserted one replaces (`http-equiv="Content-Type"`, any case)?
fn is_content_type_meta(node: Node<'_>) -> bool {
    let Some(name) = node.name() else {
        return false;
    };
    if !name.local.eq_ignore_ascii_case("meta") || !(name.uri.is_empty() || name.uri == XHTML_NS) {
        return false;
    }
    node.attributes().any(|a| {
        a.name().is_some_and(|n| {
            n.uri.is_empty()
                && n.local.eq_ignore_ascii_case("http-equiv")
                && a.string_value().trim().eq_ignore_ascii_case("content-type")
        })
    })
}

/// A DOCTYPE literal, quoted with `"` unless it contains one.
fn quoted(out: &mut String, literal: &str) {
    let q = if literal.contains('"') { '\'' } else { '"' };
    out.push(q);
    out.push_str(literal);
    out.push(q);
}

/// Bytes [`Writer::escape`] must look at in text: markup characters,
/// controls, and the lead bytes of U+0080..U+009F (`0xC2`) and U+2028
/// (`0xE2`); every other byte is copied as part of a run.
static SPECIAL_IN_TEXT: [bool; 256] = special_bytes(false);
/// The same in attribute values (`"`, newline and tab too).
static SPECIAL_IN_ATTR: [bool; 256] = special_bytes(true);

const fn special_bytes(attr: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    if !attr {
        t[b'\n' as usize] = false;
        t[b'\t' as usize] = false;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'"' as usize] = attr;
    t[0x7F] = true;
    t[0xC2] = true;
    t[0xE2] = true;
    t
}

impl<'d> Writer<'d, '_> {
    fn lookup(&self, prefix: &str) -> Option<&str> {
        self.scopes
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_ref())
    }

    fn prefix_for(&self, uri: &str, allow_default: bool) -> Option<Cow<'d, str>> {
        for (p, u) in self.scopes.iter().rev() {
            if u == uri && (allow_default || !p.is_empty()) && self.lookup(p) == Some(uri) {
                return Some(p.clone());
            }
        }
        None
    }

    fn fresh_prefix(&mut self) -> Cow<'d, str> {
        loop {
            let p = format!("ns{}", self.generated);
            self.generated += 1;
            if self.lookup(&p).is_none() {
                return Cow::Owned(p);
            }
        }
    }

    /// A character reference.
    fn char_ref(&mut self, c: char) {
        let _ = write!(self.out, "&#{};", c as u32);
    }

    /// Escapes a text or attribute value. Runs of ordinary characters are
    /// copied at once; control characters, NEL and LINE SEPARATOR are
    /// always written as character references (Serialization 3.1 §5.1).
    fn escape(&mut self, text: &str, ctx: Ctx) {
        if !self.encoding.is_unicode() {
            return self.escape_chars(text, ctx);
        }
        let attr = ctx != Ctx::Text;
        let quote = if self.method == OutputMethod::Xml {
            "&quot;"
        } else {
            "&#34;"
        };
        let bytes = text.as_bytes();
        let special: &[bool; 256] = if attr {
            &SPECIAL_IN_ATTR
        } else {
            &SPECIAL_IN_TEXT
        };
        let mut run = 0;
        let mut i = 0;
        while i < bytes.len() {
            // skip the run of ordinary bytes (most of any text)
            match bytes
                .get(i..)
                .and_then(|rest| rest.iter().position(|&b| special[b as usize]))
            {
                Some(offset) => i += offset,
                None => break,
            }
            let b = bytes[i];
            let mut width = 1;
            let rep: Cow<'static, str> = match b {
                b'&' if ctx == Ctx::HtmlAttr && bytes.get(i + 1) == Some(&b'{') => {
                    i += 1;
                    continue;
                }
                b'&' => "&amp;".into(),
                b'<' if ctx == Ctx::HtmlAttr => {
                    i += 1;
                    continue;
                }
                b'<' => "&lt;".into(),
                b'>' if !attr || self.method != OutputMethod::Xml => "&gt;".into(),
                b'"' if attr => quote.into(),
                b'\n' if attr => "&#10;".into(),
                b'\t' if attr => "&#9;".into(),
                b'\r' => "&#13;".into(),
                b'\n' | b'\t' | b'>' | b'"' => {
                    i += 1;
                    continue;
                }
                0..=0x1F | 0x7F => format!("&#{b};").into(),
                // U+0080..U+009F (C1 controls, with NEL)
                0xC2 => match bytes.get(i + 1) {
                    Some(&c @ 0x80..=0x9F) => {
                        width = 2;
                        format!("&#{c};").into()
                    }
                    _ => {
                        i += 1;
                        continue;
                    }
                },
                // U+2028 LINE SEPARATOR
                0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA8) => {
                    width = 3;
                    "&#8232;".into()
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            // `i` is at the first byte of a character, hence a boundary
            self.out.push_str(text.get(run..i).unwrap_or_default());
            self.out.push_str(&rep);
            i += width;
            run = i;
        }
        self.out.push_str(text.get(run..).unwrap_or_default());
    }

    /// [`Writer::escape`] for encodings that cannot represent every
    /// character (character references for the others).
    fn escape_chars(&mut self, text: &str, ctx: Ctx) {
        let attr = ctx != Ctx::Text;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '&' if ctx == Ctx::HtmlAttr && chars.peek() == Some(&'{') => self.out.push('&'),
                '&' => self.out.push_str("&amp;"),
                '<' if ctx == Ctx::HtmlAttr => self.out.push('<'),
                '<' => self.out.push_str("&lt;"),
                '>' if !attr || self.method != OutputMethod::Xml => self.out.push_str("&gt;"),
                '"' if attr && self.method == OutputMethod::Xml => self.out.push_str("&quot;"),
                '"' if attr => self.out.push_str("&#34;"),
                '\n' if attr => self.out.push_str("&#10;"),
                '\t' if attr => self.out.push_str("&#9;"),
                '\n' | '\t' => self.out.push(c),
                '\r' | '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{2028}' => self.char_ref(c),
                c if !self.encoding.can_encode(c) => self.char_ref(c),
                c => self.out.push(c),
            }
        }
    }

    /// Text of a `cdata-section-elements` element: CDATA sections, split
    /// around `]]>` and around characters the encoding cannot represent.
    fn cdata(&mut self, text: &str) {
        self.out.push_str("<![CDATA[");
        let mut rest = text;
        while let Some(pos) = rest.find("]]>") {
            self.cdata_chars(rest.get(..pos + 2).unwrap_or_default());
            self.out.push_str("]]><![CDATA[");
            rest = rest.get(pos + 2..).unwrap_or_default();
        }
        self.cdata_chars(rest);
        self.out.push_str("]]>");
    }

    fn cdata_chars(&mut self, text: &str) {
        if self.encoding.is_unicode() {
            self.out.push_str(text);
            return;
        }
        for c in text.chars() {
            if self.encoding.can_encode(c) {
                self.out.push(c);
            } else {
                self.out.push_str("]]>");
                self.char_ref(c);
                self.out.push_str("<![CDATA[");
            }
        }
    }

    fn raw_checked(&mut self, text: &str, what: &str) -> Result<(), TransformError> {
        if !self.encoding.is_unicode() {
            if let Some(c) = text.chars().find(|c| !self.encoding.can_encode(*c)) {
                return Err(serr(format!(
                    "character U+{:04X} in a {what} cannot be represented in the output encoding (SERE0008)",
                    c as u32
                )));
            }
        }
        self.out.push_str(text);
        Ok(())
    }

    /// `prefix:local` (or `local`), checked for the encoding.
    fn qname(&mut self, prefix: &str, local: &str, what: &str) -> Result<(), TransformError> {
        if !prefix.is_empty() {
            self.raw_checked(prefix, what)?;
            self.out.push(':');
        }
        self.raw_checked(local, what)
    }

    fn newline_indent(&mut self, depth: usize) {
        self.out.push('\n');
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    fn node(&mut self, node: Node<'d>, depth: usize) -> Result<(), TransformError> {
        match node.kind() {
            NodeKind::Element => {
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.element(node, depth))
            }
            NodeKind::Text => self.text(node),
            NodeKind::Comment => {
                let text = normalize(node.string_value(), self.settings.normalization_form);
                self.out.push_str("<!--");
                self.raw_checked(&text, "comment")?;
                self.out.push_str("-->");
                Ok(())
            }
            NodeKind::ProcessingInstruction => {
                let target = node.name().map(|q| q.local.as_str()).unwrap_or("");
                let data = normalize(node.string_value(), self.settings.normalization_form);
                let html = self.method == OutputMethod::Html;
                if html && data.contains('>') {
                    return Err(serr(
                        "a processing instruction written by the html method contains '>' (SERE0015)",
                    ));
                }
                self.out.push_str("<?");
                self.raw_checked(target, "processing instruction")?;
                if !data.is_empty() {
                    self.out.push(' ');
                    self.raw_checked(&data, "processing instruction")?;
                }
                self.out.push_str(if html { ">" } else { "?>" });
                Ok(())
            }
            NodeKind::Document => {
                for c in node.children() {
                    self.node(c, depth)?;
                }
                Ok(())
            }
            NodeKind::Attribute | NodeKind::Namespace => Ok(()),
        }
    }

    fn text(&mut self, node: Node<'d>) -> Result<(), TransformError> {
        let text = normalize(node.string_value(), self.settings.normalization_form);
        if self.raw > 0 {
            return self.raw_checked(&text, "script or style element");
        }
        let cdata = !self.settings.cdata_section_elements.is_empty()
            && node.parent().and_then(|p| p.name()).is_some_and(|n| {
                // the html method writes CDATA sections in XML islands only
                !(self.method == OutputMethod::Html
                    && (n.uri.is_empty() || (self.html5 && n.uri == XHTML_NS)))
                    && self
                        .settings
                        .cdata_section_elements
                        .iter()
                        .any(|(u, l)| *u == n.uri && *l == n.local)
            });
        if cdata {
            self.cdata(&text);
        } else {
            self.escape(&text, Ctx::Text);
        }
        Ok(())
    }

    /// Binds a declaration this element writes.
    fn declare(&mut self, prefix: Cow<'d, str>, uri: Cow<'d, str>) {
        self.scopes.push((prefix, uri));
    }

    /// The HTML facts of an element (`lname`: its local name in lower case).
    fn html_info(&self, uri: &str, lname: &str) -> HtmlInfo {
        let html = match self.method {
            OutputMethod::Html => uri.is_empty() || (self.html5 && uri == XHTML_NS),
            OutputMethod::Xhtml => {
                uri == XHTML_NS || (self.html5 && uri.is_empty() && is_html_name(lname))
            }
            _ => false,
        };
        if !html {
            return HtmlInfo::default();
        }
        let known = is_html_name(lname);
        HtmlInfo {
            html,
            void: if self.html5 {
                is_void5(lname)
            } else {
                is_void4(lname)
            },
            // unknown names of the html method are written like `span`
            inline: is_inline(lname)
                || (self.method == OutputMethod::Html && !known && uri.is_empty()),
            formatted: matches!(lname, "pre" | "script" | "style" | "title" | "textarea"),
            raw: self.method == OutputMethod::Html && matches!(lname, "script" | "style"),
            head: lname == "head",
        }
    }

    /// Is whitespace next to this child element forbidden (an inline
    /// HTML element; `ins`/`del` when without element children)?
    fn is_inline_child(&self, child: Node<'_>) -> bool {
        if self.method == OutputMethod::Xml {
            return false;
        }
        let Some(n) = child.name() else {
            return false;
        };
        let mut buf = [0u8; 16];
        let lname = lower(&n.local, &mut buf);
        let info = self.html_info(&n.uri, lname);
        info.html
            && (info.inline
                || (matches!(lname, "ins" | "del")
                    && !child.children().any(|c| c.kind() == NodeKind::Element)))
    }

    fn suppressed(&self, uri: &str, local: &str) -> bool {
        self.settings.suppress_indentation.iter().any(|(u, l)| {
            (u == uri && l == local)
                || (self.method != OutputMethod::Xml
                    && l.eq_ignore_ascii_case(local)
                    && (u.is_empty() || (self.html5 && u == XHTML_NS))
                    && (uri.is_empty() || (self.html5 && uri == XHTML_NS)))
        })
    }

    /// The document type declaration before the first element, if any.
    fn doctype(&mut self, prefix: &str, local: &str, info: HtmlInfo) {
        let s = self.settings;
        let is_html_root =
            info.html && local.eq_ignore_ascii_case("html") && !self.text_before_first;
        match self.method {
            OutputMethod::Html => {
                if s.doctype_public.is_none() && s.doctype_system.is_none() {
                    if self.html5 && is_html_root {
                        self.out.push_str("<!DOCTYPE html>\n");
                    }
                    return;
                }
                self.out.push_str("<!DOCTYPE html");
            }
            _ => {
                if s.doctype_system.is_none() {
                    if self.method == OutputMethod::Xhtml && self.html5 && is_html_root {
                        self.out.push_str("<!DOCTYPE ");
                        self.out.push_str(local);
                        self.out.push_str(">\n");
                    }
                    return;
                }
                self.out.push_str("<!DOCTYPE ");
                if !prefix.is_empty() {
                    self.out.push_str(prefix);
                    self.out.push(':');
                }
                self.out.push_str(local);
            }
        }
        match (&s.doctype_public, &s.doctype_system) {
            (Some(p), sys) => {
                self.out.push_str(" PUBLIC ");
                quoted(&mut self.out, p);
                if let Some(sys) = sys {
                    self.out.push(' ');
                    quoted(&mut self.out, sys);
                }
            }
            (None, Some(sys)) => {
                self.out.push_str(" SYSTEM ");
                quoted(&mut self.out, sys);
            }
            (None, None) => {}
        }
        self.out.push_str(">\n");
    }

    /// The `meta` element that `include-content-type` adds to `head`.
    fn content_type_meta(&mut self, prefix: &str) {
        let s = self.settings;
        self.out.push('<');
        if !prefix.is_empty() {
            self.out.push_str(prefix);
            self.out.push(':');
        }
        self.out
            .push_str("meta http-equiv=\"Content-Type\" content=\"");
        let media = s.media_type.as_deref().unwrap_or("text/html");
        self.escape(media, Ctx::Attr);
        self.out.push_str("; charset=");
        self.escape(&s.encoding, Ctx::Attr);
        self.out.push_str(if self.method == OutputMethod::Html {
            "\">"
        } else {
            "\" />"
        });
    }

    fn element(&mut self, node: Node<'d>, depth: usize) -> Result<(), TransformError> {
        let Some(name) = node.name() else {
            return Ok(());
        };
        let (local, uri, own_prefix) =
            (name.local.as_str(), name.uri.as_str(), name.prefix.as_str());
        let mut buf = [0u8; 16];
        let lname = if self.method == OutputMethod::Xml {
            ""
        } else {
            lower(local, &mut buf)
        };
        let info = self.html_info(uri, lname);
        // HTML5 prefix normalization (html and xhtml methods)
        let normalize_prefixes = self.method != OutputMethod::Xml && self.html5;
        let special = |u: &str| u == XHTML_NS || u == SVG_NS || u == MATHML_NS;
        let frame = self.scopes.len();
        for (p, u) in node.namespace_decls() {
            if p == "xml" || (p.is_empty() && !u.is_empty() && uri.is_empty()) {
                continue;
            }
            if normalize_prefixes && special(u) {
                continue;
            }
            if self.lookup(p) != Some(u) {
                self.declare(Cow::Borrowed(p), Cow::Borrowed(u));
            }
        }
        let prefix: Cow<'d, str> = if uri.is_empty() {
            if self.lookup("").is_some_and(|d| !d.is_empty()) {
                self.declare(Cow::Borrowed(""), Cow::Borrowed(""));
            }
            Cow::Borrowed("")
        } else if normalize_prefixes && special(uri) {
            if self.lookup("") != Some(uri) {
                self.declare(Cow::Borrowed(""), Cow::Borrowed(uri));
            }
            Cow::Borrowed("")
        } else if self.lookup(own_prefix) == Some(uri) {
            Cow::Borrowed(own_prefix)
        } else {
            let preferred = node
                .namespace_decls()
                .find(|(p, u)| *u == uri && self.lookup(p) == Some(uri))
                .map(|(p, _)| Cow::Borrowed(p));
            match preferred.or_else(|| self.prefix_for(uri, true)) {
                Some(p) => p,
                None => {
                    let taken = |w: &Self, p: &str| {
                        w.scopes
                            .get(frame..)
                            .unwrap_or_default()
                            .iter()
                            .any(|(fp, u)| fp == p && u != uri)
                    };
                    let p = if !taken(self, own_prefix) {
                        Cow::Borrowed(own_prefix)
                    } else if !taken(self, "") {
                        Cow::Borrowed("")
                    } else {
                        self.fresh_prefix()
                    };
                    if !self
                        .scopes
                        .get(frame..)
                        .unwrap_or_default()
                        .iter()
                        .any(|(fp, u)| *fp == p && u == uri)
                    {
                        self.declare(p.clone(), Cow::Borrowed(uri));
                    }
                    p
                }
            }
        };
        let attrs_start = self.attrs.len();
        let mut preserve = false;
        for a in node.attributes() {
            let Some(an) = a.name() else {
                continue;
            };
            let (alocal, auri, aprefix) = (an.local.as_str(), an.uri.as_str(), an.prefix.as_str());
            let value = a.string_value();
            let p: Cow<'d, str> = if auri.is_empty() {
                Cow::Borrowed("")
            } else if auri == XML_NS {
                preserve |= alocal == "space" && value.trim() == "preserve";
                Cow::Borrowed("xml")
            } else if !aprefix.is_empty() && self.lookup(aprefix) == Some(auri) {
                Cow::Borrowed(aprefix)
            } else {
                match self.prefix_for(auri, false) {
                    Some(p) => p,
                    None => {
                        let p = if !aprefix.is_empty() && self.lookup(aprefix).is_none() {
                            Cow::Borrowed(aprefix)
                        } else {
                            self.fresh_prefix()
                        };
                        self.declare(p.clone(), Cow::Borrowed(auri));
                        p
                    }
                }
            };
            self.attrs.push((p, alocal, value, !auri.is_empty()));
        }
        if depth == 0 && !self.first_element_done {
            self.first_element_done = true;
            self.doctype(&prefix, local, info);
        }
        self.out.push('<');
        self.qname(&prefix, local, "element name")?;
        for i in frame..self.scopes.len() {
            let Some((p, u)) = self.scopes.get(i).cloned() else {
                continue;
            };
            if p.is_empty() {
                self.out.push_str(" xmlns=\"");
            } else {
                self.out.push_str(" xmlns:");
                self.out.push_str(&p);
                self.out.push_str("=\"");
            }
            self.escape(&u, Ctx::Attr);
            self.out.push('"');
        }
        let html_method = self.method == OutputMethod::Html;
        for i in attrs_start..self.attrs.len() {
            let Some((p, l, value, in_ns)) = self.attrs.get(i).cloned() else {
                continue;
            };
            self.out.push(' ');
            self.qname(&p, l, "attribute name")?;
            let mut abuf = [0u8; 16];
            let alname = if info.html && !in_ns {
                lower(l, &mut abuf)
            } else {
                ""
            };
            if html_method
                && info.html
                && is_boolean_attr(alname)
                && value.eq_ignore_ascii_case(alname)
            {
                continue;
            }
            let value = normalize(value, self.settings.normalization_form);
            let value =
                if info.html && self.settings.escape_uri_attributes && is_uri_attr(lname, alname) {
                    match value {
                        Cow::Borrowed(v) => escape_html_uri(v),
                        Cow::Owned(v) => Cow::Owned(escape_html_uri(&v).into_owned()),
                    }
                } else {
                    value
                };
            self.out.push_str("=\"");
            if self.raw > 0 {
                self.raw_checked(&value, "script or style element")?;
            } else {
                self.escape(
                    &value,
                    if html_method {
                        Ctx::HtmlAttr
                    } else {
                        Ctx::Attr
                    },
                );
            }
            self.out.push('"');
        }
        self.attrs.truncate(attrs_start);
        let meta = info.head && self.settings.include_content_type;
        let skip = |c: &Node<'_>| meta && c.kind() == NodeKind::Element && is_content_type_meta(*c);
        let mut children = node.children().filter(|c| !skip(c)).peekable();
        if children.peek().is_none() && !meta {
            if info.html {
                if info.void {
                    self.out.push_str(if html_method { ">" } else { " />" });
                } else {
                    self.out.push_str("></");
                    self.qname(&prefix, local, "element name")?;
                    self.out.push('>');
                }
            } else {
                self.out.push_str("/>");
            }
            self.scopes.truncate(frame);
            return Ok(());
        }
        self.out.push('>');
        let quiet = info.formatted || preserve || self.suppressed(uri, local);
        if quiet {
            self.no_indent += 1;
        }
        if info.raw {
            self.raw += 1;
        }
        let indent_children = self.indent
            && self.no_indent == 0
            && !info.inline
            && !node.children().any(|c| {
                c.kind() == NodeKind::Text
                    || (c.kind() == NodeKind::Element && self.is_inline_child(c))
            });
        if meta {
            if indent_children {
                self.newline_indent(depth + 1);
            }
            self.content_type_meta(&prefix);
        }
        let mut result = Ok(());
        for c in children {
            if indent_children {
                self.newline_indent(depth + 1);
            }
            result = self.node(c, depth + 1);
            if result.is_err() {
                break;
            }
        }
        if quiet {
            self.no_indent -= 1;
        }
        if info.raw {
            self.raw -= 1;
        }
        result?;
        if indent_children {
            self.newline_indent(depth);
        }
        self.out.push_str("</");
        self.qname(&prefix, local, "element name")?;
        self.out.push('>');
        self.scopes.truncate(frame);
        Ok(())
    }
}
