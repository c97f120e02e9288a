//! XPath 3.1 expressions of rule packages: compilation at load time and
//! evaluation against an [`InputDocument`].
//!
//! Expressions are compiled once, when the package is loaded, by our own
//! engine (`drehscheibe-xpath`). A compiled [`Expression`] is `Send +
//! Sync`, so a package (shared across worker threads in an `Arc`) holds the
//! compiled form directly: nothing is compiled per message or per thread.
//!
//! # Static context
//!
//! * the package's `[namespaces]` prefixes, plus the prefixes XPath 3.1
//!   predeclares (`fn`, `xs`, `xsi`, `map`, `array`, `math`, `err`) unless
//!   the package rebinds them;
//! * unprefixed element names are in no namespace;
//! * three external variables, resolved at compile time to host ids by
//!   [`RuleStatic`]: `$channel`, `$content-type` (strings) and `$meta` (an
//!   element `<meta>` with one `<entry key="…">value</entry>` per envelope
//!   fact). Any other variable, and any unknown function, is a load error.
//!
//! # Dynamic context
//!
//! A [`Session`] evaluates expressions over one document: the context item
//! is the document node of the input tree, the variables come from
//! [`RuleHost`], and documents an expression creates (e.g. with
//! `parse-xml`) live in the session's [`DocArena`] until it ends.

use drehscheibe_xpath::compile::Namespaces;
use drehscheibe_xpath::datetime::DateTime;
use drehscheibe_xpath::{
    DocArena, Document, Env, Error, Expression, Focus, Host, HostStatic, Item, Node, QName,
    Sequence, StaticContext,
};

use crate::input::InputDocument;

/// Name of the external variable holding the input channel.
pub const VAR_CHANNEL: &str = "channel";
/// Name of the external variable holding the payload's content type.
pub const VAR_CONTENT_TYPE: &str = "content-type";
/// Name of the external variable holding the envelope facts: an element
/// `<meta>` with one `<entry key="…">value</entry>` per correlation id.
pub const VAR_META: &str = "meta";

/// Host variable id of `$channel`.
const ID_CHANNEL: u32 = 0;
/// Host variable id of `$content-type`.
const ID_CONTENT_TYPE: u32 = 1;
/// Host variable id of `$meta`.
const ID_META: u32 = 2;

/// Prefixes XPath 3.1 binds in every static context (besides `xml`,
/// which the engine binds itself).
const PREDECLARED: &[(&str, &str)] = &[
    ("fn", "http://www.w3.org/2005/xpath-functions"),
    ("xs", "http://www.w3.org/2001/XMLSchema"),
    ("xsi", "http://www.w3.org/2001/XMLSchema-instance"),
    ("map", "http://www.w3.org/2005/xpath-functions/map"),
    ("array", "http://www.w3.org/2005/xpath-functions/array"),
    ("math", "http://www.w3.org/2005/xpath-functions/math"),
    ("err", "http://www.w3.org/2005/xqt-errors"),
];

/// Compile-time side of the rule host: knows the three external variables
/// and no extra functions.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RuleStatic;

impl HostStatic for RuleStatic {
    fn variable(&self, name: &QName) -> Option<u32> {
        if !name.uri.is_empty() {
            return None;
        }
        match name.local.as_str() {
            VAR_CHANNEL => Some(ID_CHANNEL),
            VAR_CONTENT_TYPE => Some(ID_CONTENT_TYPE),
            VAR_META => Some(ID_META),
            _ => None,
        }
    }
}

/// Package prefixes first, then the predeclared ones.
struct PrefixMap<'n> {
    namespaces: &'n [(String, String)],
}

impl Namespaces for PrefixMap<'_> {
    fn resolve(&self, prefix: &str) -> Option<String> {
        self.namespaces
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, uri)| uri.clone())
            .or_else(|| {
                PREDECLARED
                    .iter()
                    .find(|(p, _)| *p == prefix)
                    .map(|(_, uri)| (*uri).to_owned())
            })
    }
}

/// Human-readable form of an engine error: code, message and, for static
/// errors, the line and column in the expression.
pub(crate) fn describe(e: &Error, text: &str) -> String {
    match e.span {
        Some(span) => {
            let (line, column) = span.line_col(text);
            format!("{e} (at line {line}, column {column})")
        }
        None => e.to_string(),
    }
}

/// Compiles one expression with the rule static context (see the module
/// docs).
pub(crate) fn compile(text: &str, namespaces: &[(String, String)]) -> Result<Expression, String> {
    let prefixes = PrefixMap { namespaces };
    let ctx = StaticContext {
        namespaces: &prefixes,
        default_element_namespace: String::new(),
        backwards_compatible: false,
        host: &RuleStatic,
    };
    Expression::compile(text, &ctx).map_err(|e| describe(&e, text))
}

/// The compiled expressions of one package.
#[derive(Debug)]
pub(crate) struct ExprSet {
    namespaces: Vec<(String, String)>,
    exprs: Vec<Expression>,
}

/// Index of an expression inside its [`ExprSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExprId(usize);

impl ExprSet {
    /// An empty set whose expressions see `namespaces`.
    pub(crate) fn new(namespaces: Vec<(String, String)>) -> Self {
        Self {
            namespaces,
            exprs: Vec::new(),
        }
    }

    /// Compiles `text` and adds it to the set; the error describes what
    /// is wrong and where.
    pub(crate) fn add(&mut self, text: &str) -> Result<ExprId, String> {
        let expr = compile(text, &self.namespaces)?;
        self.exprs.push(expr);
        Ok(ExprId(self.exprs.len() - 1))
    }

    /// The source text of an expression.
    pub(crate) fn text(&self, id: ExprId) -> &str {
        self.exprs
            .get(id.0)
            .map(Expression::text)
            .unwrap_or_default()
    }

    fn get(&self, id: ExprId) -> Result<&Expression, String> {
        self.exprs
            .get(id.0)
            .ok_or_else(|| format!("internal: no expression #{}", id.0))
    }
}

/// Run-time side of the rule host: the values of the external variables.
pub(crate) struct RuleHost<'a> {
    channel: &'a str,
    content_type: &'a str,
    meta: Node<'a>,
}

impl<'a> Host<'a> for RuleHost<'a> {
    fn variable(&mut self, id: u32) -> drehscheibe_xpath::Result<Sequence<'a>> {
        match id {
            ID_CHANNEL => Ok(Sequence::string(self.channel)),
            ID_CONTENT_TYPE => Ok(Sequence::string(self.content_type)),
            ID_META => Ok(Sequence::from_nodes(vec![self.meta])),
            _ => Err(Error::new("XPST0008", format!("no variable with id {id}"))),
        }
    }
}

/// One evaluation session over a document: the document arena, the
/// document node, the external variables and a stable
/// `current-dateTime()`, shared by all expressions evaluated in it.
pub(crate) struct Session<'d> {
    arena: &'d DocArena,
    now: DateTime,
    root: Node<'d>,
    meta: Node<'d>,
    channel: &'d str,
    content_type: &'d str,
}

impl<'d> Session<'d> {
    fn new(
        arena: &'d DocArena,
        doc: &'d Document,
        meta: &'d Document,
        channel: &'d str,
        content_type: &'d str,
    ) -> Self {
        // The `<meta>` element is the first child of its document; the
        // document node itself is a harmless stand-in should it be missing.
        let meta_root = meta.root();
        let meta = meta_root.first_child().unwrap_or(meta_root);
        Self {
            now: Env::new(arena).now,
            arena,
            root: doc.root(),
            meta,
            channel,
            content_type,
        }
    }

    /// Evaluates `expr` with the document node as context item. The
    /// result borrows from both the session's documents and `expr`.
    fn run<'e>(&'e self, expr: &'e Expression) -> Result<Sequence<'e>, String>
    where
        'd: 'e,
    {
        let mut env: Env<'e> = Env::new(self.arena);
        env.now = self.now.clone();
        let mut host: RuleHost<'e> = RuleHost {
            channel: self.channel,
            content_type: self.content_type,
            meta: self.meta,
        };
        let focus = Focus::of(Item::Node(self.root));
        expr.evaluate(&env, &mut host, Some(&focus))
            .map_err(|e| e.to_string())
    }

    /// Effective boolean value of an expression.
    pub(crate) fn boolean(&mut self, set: &ExprSet, id: ExprId) -> Result<bool, String> {
        let sequence = self.run(set.get(id)?)?;
        ebv(&sequence)
    }

    /// String value of an expression, whitespace-trimmed; an empty sequence
    /// gives the empty string, more than one item is an error.
    pub(crate) fn string(&mut self, set: &ExprSet, id: ExprId) -> Result<String, String> {
        let sequence = self.run(set.get(id)?)?;
        single_string(&sequence)
    }
}

/// The effective boolean value (`fn:boolean`) of a result.
fn ebv(sequence: &Sequence<'_>) -> Result<bool, String> {
    drehscheibe_xpath::functions::numeric::effective_boolean_value(sequence)
        .map_err(|e| format!("{e} (no effective boolean value)"))
}

/// The trimmed string value of at most one item.
fn single_string(sequence: &Sequence<'_>) -> Result<String, String> {
    let count = sequence.len();
    if count > 1 {
        return Err(format!(
            "expression returned {count} items, expected at most one (wrap it in string(( … )[1]) to pick the first)"
        ));
    }
    match sequence.first() {
        None => Ok(String::new()),
        Some(item) => item
            .string_value()
            .map(|s| s.trim().to_owned())
            .map_err(|e| format!("{e} (no string value)")),
    }
}

/// Runs `f` with a session over `doc`.
pub(crate) fn with_session<R>(
    doc: &InputDocument,
    channel: &str,
    content_type: &str,
    f: impl FnOnce(&mut Session<'_>) -> R,
) -> R {
    let arena = DocArena::new();
    let mut session = Session::new(
        &arena,
        doc.document(),
        doc.meta_tree(),
        channel,
        content_type,
    );
    f(&mut session)
}

impl InputDocument {
    /// Evaluates an ad-hoc XPath expression (same static context as rule
    /// expressions, plus `namespaces`) and returns its string value, as
    /// `extract.*` would. Compiles on every call: meant for tools and
    /// tests, not the message path.
    pub fn evaluate_string(
        &self,
        expression: &str,
        namespaces: &[(&str, &str)],
        channel: &str,
        content_type: &str,
    ) -> Result<String, String> {
        let expr = compile_adhoc(expression, namespaces)?;
        with_session(self, channel, content_type, |s| {
            let sequence = s.run(&expr)?;
            single_string(&sequence)
        })
    }

    /// Evaluates an ad-hoc XPath expression and returns its effective
    /// boolean value, as `match.condition` would. Compiles on every call.
    pub fn evaluate_boolean(
        &self,
        expression: &str,
        namespaces: &[(&str, &str)],
        channel: &str,
        content_type: &str,
    ) -> Result<bool, String> {
        let expr = compile_adhoc(expression, namespaces)?;
        with_session(self, channel, content_type, |s| {
            let sequence = s.run(&expr)?;
            ebv(&sequence)
        })
    }
}

fn compile_adhoc(expression: &str, namespaces: &[(&str, &str)]) -> Result<Expression, String> {
    let namespaces: Vec<(String, String)> = namespaces
        .iter()
        .map(|(p, u)| ((*p).to_owned(), (*u).to_owned()))
        .collect();
    compile(expression, &namespaces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_three_rule_variables_are_declared() {
        assert_eq!(
            RuleStatic.variable(&QName::local(VAR_CHANNEL)),
            Some(ID_CHANNEL)
        );
        assert_eq!(
            RuleStatic.variable(&QName::local(VAR_CONTENT_TYPE)),
            Some(ID_CONTENT_TYPE)
        );
        assert_eq!(RuleStatic.variable(&QName::local(VAR_META)), Some(ID_META));
        assert_eq!(RuleStatic.variable(&QName::local("other")), None);
        assert_eq!(
            RuleStatic.variable(&QName::new("urn:x", VAR_CHANNEL, "x")),
            None
        );
    }

    #[test]
    fn package_prefixes_override_the_predeclared_ones() {
        let namespaces = vec![("fn".to_owned(), "urn:mine".to_owned())];
        let map = PrefixMap {
            namespaces: &namespaces,
        };
        assert_eq!(map.resolve("fn").as_deref(), Some("urn:mine"));
        assert_eq!(
            map.resolve("xs").as_deref(),
            Some("http://www.w3.org/2001/XMLSchema")
        );
        assert_eq!(map.resolve("nope"), None);
    }

    #[test]
    fn compile_errors_name_code_and_position() {
        let err = compile("1 +\n  )", &[]).unwrap_err();
        assert!(err.starts_with("XPST0003"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = compile("$undeclared", &[]).unwrap_err();
        assert!(err.starts_with("XPST0008"), "{err}");
        let err = compile("nope:f()", &[]).unwrap_err();
        assert!(err.starts_with("XPST0081"), "{err}");
    }

    #[test]
    fn results_are_reduced_to_one_trimmed_string() {
        assert_eq!(single_string(&Sequence::Empty).unwrap(), "");
        assert_eq!(single_string(&Sequence::string("  x \n")).unwrap(), "x");
        let two = Sequence::from_vec(vec![
            Item::Atomic(drehscheibe_xpath::Atomic::string("a")),
            Item::Atomic(drehscheibe_xpath::Atomic::string("b")),
        ]);
        assert!(single_string(&two).unwrap_err().contains("2 items"));
        assert!(!ebv(&Sequence::Empty).unwrap());
        assert!(ebv(&Sequence::string("x")).unwrap());
        assert!(ebv(&two).unwrap_err().contains("FORG0006"));
    }
}
