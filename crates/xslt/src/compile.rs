//! Reading a stylesheet (with its includes and imports) into the compiled
//! form, refusing everything outside the supported subset.

use rustc_hash::FxHashMap as HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use xot::{Node, Value as XValue, Xot};

use crate::read::Positions;

use crate::error::CompileError;
use crate::ir::*;
use crate::pattern::{compile_pattern, Test};
use crate::xpath::{compile_expr, resolve_lexical_qname, ExprId, FnSig, NsCtx, Scope, XName};
use crate::{GlobalParamDecl, OutputMethod, OutputSettings};
use drehscheibe_xpath::Error as XError;

pub(crate) const XSL_NS: &str = "http://www.w3.org/1999/XSL/Transform";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The namespaces in force at a stylesheet element for literal result
/// elements (see [`Compiler::exclusions`]).
struct Exclusions {
    /// Declared by `extension-element-prefixes` (on XSLT elements) or
    /// `xsl:extension-element-prefixes` (on others).
    extension: Rc<[String]>,
    /// Not copied to the result: the XSLT namespace, the extension
    /// namespaces and those of `exclude-result-prefixes`.
    excluded: Rc<[String]>,
}

struct Module {
    text: String,
    root: Node,
    /// Where elements and text nodes start (for messages).
    positions: Positions,
    line_starts: Vec<usize>,
}

struct Decl {
    module: usize,
    node: Node,
    precedence: usize,
}

type CResult<T> = Result<T, CompileError>;

pub(crate) struct Compiler {
    xot: Xot,
    modules: Vec<Module>,
    files: Vec<PathBuf>,
    /// The `file://` URI of each module (see [`Compiler::module_uri`]),
    /// resolved once when the module is loaded: the static base of every
    /// expression starts from it, and canonicalizing the path per
    /// expression (a `readlink` per path component) was a sixth of a
    /// `drehscheibe transform` process.
    module_uris: Vec<Option<String>>,
    next_precedence: usize,
    exprs: Vec<crate::xpath::ExprDef>,
    templates: Vec<Template>,
    template_names: HashMap<XName, (usize, usize)>,
    mode_names: HashMap<XName, usize>,
    modes: Vec<Mode>,
    rule_order: usize,
    /// Rules of `mode="#all"` templates, added to every mode (also to
    /// modes first named later).
    all_mode_rules: Vec<(crate::pattern::IndexKey, Rule)>,
    globals: Vec<Global>,
    global_names: HashMap<XName, usize>,
    global_prec: Vec<usize>,
    keys: Vec<Key>,
    key_names: HashMap<XName, usize>,
    formats: Vec<DecimalFormat>,
    format_names: HashMap<Option<XName>, usize>,
    /// The `xsl:output` declarations: (module, node, import precedence,
    /// expanded name or `""` for the unnamed output definition), merged by
    /// `finish_output`.
    output_decls: Vec<(usize, Node, usize, String)>,
    space_rules: Vec<SpaceRule>,
    names: Vec<(String, String, String)>,
    name_index: HashMap<(String, String, String), usize>,
    ns_bindings: Vec<(String, String)>,
    ns_index: HashMap<(String, String), usize>,
    locals: Vec<(XName, usize)>,
    next_slot: usize,
    max_slots: usize,
    ns_cache: rustc_hash::FxHashMap<Node, (Arc<NsCtx>, usize)>,
    nsctx: Vec<NsCtx>,
    nsctx_index: HashMap<NsCtx, usize>,
    functions: Vec<Function>,
    function_names: HashMap<(XName, usize), FnSig>,
    function_prec: Vec<usize>,
    function_nodes: HashMap<Node, usize>,
    source_text: String,
    module_stack: Vec<PathBuf>,
    /// `format-number()` pictures written as literals, parsed once here.
    pictures: std::cell::RefCell<crate::ir::PictureCache>,
    /// `xsl:call-template` sites to check once every template is compiled:
    /// (module, instruction, template, the `xsl:with-param` names).
    call_checks: Vec<(usize, Node, usize, Vec<XName>)>,
    /// The distinct static base URIs (index 0: the principal module's).
    bases: std::cell::RefCell<Vec<Option<String>>>,
    /// Per module, the index in `bases` of its own URI (the static base
    /// of an expression with no `xml:base` in scope), once known.
    module_base: std::cell::RefCell<Vec<Option<u32>>>,
    /// Memo of [`Compiler::exclusions`] per stylesheet element.
    exclusions_memo: std::cell::RefCell<rustc_hash::FxHashMap<Node, Rc<Exclusions>>>,
    /// Memo of [`Compiler::effective_version`] per stylesheet element.
    version_memo: std::cell::RefCell<rustc_hash::FxHashMap<Node, f64>>,
    /// Memo of [`Compiler::xpath_default_namespace`] per stylesheet element.
    xpath_default_memo: std::cell::RefCell<rustc_hash::FxHashMap<Node, String>>,
    /// The static base of each expression (index into `bases`).
    expr_bases: Vec<u32>,
    /// The `tunnel="yes"` `xsl:with-param`s of the instruction being compiled.
    pending_tunnel: Vec<WithParam>,
}

/// A `file://` URI for an absolute path (characters outside the URI
/// syntax percent-encoded).
pub(crate) fn file_uri(path: &Path) -> String {
    let mut out = String::from("file://");
    let text = path.to_string_lossy();
    if !text.starts_with('/') {
        out.push('/');
    }
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else if b == b'\\' {
            out.push('/');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            v.push(i + 1);
        }
    }
    v
}

/// The namespaces no declared name may use (XSLT 3.0 §3.3, `XTSE0080`):
/// XSLT, functions, XML, XML Schema and its instance namespace, math, map,
/// array.
const RESERVED_NAMESPACES: &[&str] = &[
    XSL_NS,
    "http://www.w3.org/2005/xpath-functions",
    XML_NS,
    "http://www.w3.org/2001/XMLSchema",
    "http://www.w3.org/2001/XMLSchema-instance",
    "http://www.w3.org/2005/xpath-functions/math",
    "http://www.w3.org/2005/xpath-functions/map",
    "http://www.w3.org/2005/xpath-functions/array",
];

/// Is `s` (after trimming) in the lexical space of `xs:decimal`: an
/// optional sign, digits with at most one point, no exponent?
fn is_decimal(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    (!int.is_empty() || !frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// The value of `terminate` (and other yes/no attributes): `Some(true)`
/// for `yes`/`true`/`1`, `Some(false)` for `no`/`false`/`0`.
pub(crate) fn terminate_flag(value: &str) -> Option<bool> {
    match value.trim() {
        "yes" | "true" | "1" => Some(true),
        "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// XSLT attributes allowed on every XSLT element.
/// The mode list entry of `mode="#all"`.
const ALL_MODES: usize = usize::MAX;

const COMMON_ATTRS: &[&str] = &[
    "version",
    "exclude-result-prefixes",
    "xpath-default-namespace",
];

impl Compiler {
    pub(crate) fn new() -> Self {
        let mut format_names = HashMap::default();
        format_names.insert(None, 0);
        Compiler {
            xot: Xot::new(),
            modules: Vec::new(),
            files: Vec::new(),
            module_uris: Vec::new(),
            next_precedence: 0,
            exprs: Vec::new(),
            templates: Vec::new(),
            template_names: HashMap::default(),
            mode_names: HashMap::default(),
            modes: vec![Mode::default()],
            rule_order: 0,
            all_mode_rules: Vec::new(),
            globals: Vec::new(),
            global_names: HashMap::default(),
            global_prec: Vec::new(),
            keys: Vec::new(),
            key_names: HashMap::default(),
            formats: vec![DecimalFormat::default()],
            format_names,
            output_decls: Vec::new(),
            space_rules: Vec::new(),
            names: Vec::new(),
            name_index: HashMap::default(),
            ns_bindings: Vec::new(),
            ns_index: HashMap::default(),
            locals: Vec::new(),
            next_slot: 0,
            max_slots: 0,
            ns_cache: Default::default(),
            nsctx: Vec::new(),
            nsctx_index: HashMap::default(),
            functions: Vec::new(),
            function_names: HashMap::default(),
            function_prec: Vec::new(),
            function_nodes: HashMap::default(),
            source_text: String::new(),
            module_stack: Vec::new(),
            pictures: Default::default(),
            call_checks: Vec::new(),
            bases: Default::default(),
            module_base: Default::default(),
            exclusions_memo: Default::default(),
            version_memo: Default::default(),
            xpath_default_memo: Default::default(),
            expr_bases: Vec::new(),
            pending_tunnel: Vec::new(),
        }
    }

    // ---- positions and errors ------------------------------------------

    fn position(&self, module: usize, node: Node) -> (usize, usize) {
        let Some(m) = self.modules.get(module) else {
            return (0, 0);
        };
        let offset = m.positions.get(node).unwrap_or(0);
        let line = m.line_starts.partition_point(|&s| s <= offset);
        let line_start = m
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = m
            .text
            .get(line_start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        // span starts at the name; the tag starts one character earlier
        (line, column.max(1))
    }

    fn err(&self, module: usize, node: Node, message: impl Into<String>) -> CompileError {
        let (line, column) = self.position(module, node);
        CompileError {
            file: self.files.get(module).cloned().unwrap_or_default(),
            line,
            column,
            message: message.into(),
        }
    }

    fn at(&self, module: usize, node: Node) -> At {
        At {
            file: module,
            line: self.position(module, node).0,
            base: self.static_base(module, node),
        }
    }

    // ---- loading ----------------------------------------------------------

    fn load_text(&mut self, text: String, path: PathBuf) -> CResult<usize> {
        let index = self.modules.len();
        let (root, positions) = match crate::read::read(&mut self.xot, &text) {
            Ok(r) => r,
            Err(e) => {
                let offset = e.offset;
                let starts = line_starts(&text);
                let line = starts.partition_point(|&s| s <= offset);
                let ls = starts.get(line.saturating_sub(1)).copied().unwrap_or(0);
                let column = text.get(ls..offset).map(|s| s.chars().count()).unwrap_or(0) + 1;
                return Err(CompileError {
                    file: path,
                    line,
                    column,
                    message: format!("stylesheet is not well-formed XML: {}", e.message),
                });
            }
        };
        let uri = if path.as_os_str().is_empty() || path == Path::new("<string>") {
            None
        } else {
            path.canonicalize().ok().map(|abs| file_uri(&abs))
        };
        self.module_uris.push(uri);
        self.files.push(path);
        self.modules.push(Module {
            line_starts: line_starts(&text),
            text,
            root,
            positions,
        });
        self.apply_use_when(index)?;
        // use-when removed elements, whose node ids a later module may
        // reuse: forget what was memoized about them.
        self.version_memo.get_mut().clear();
        self.xpath_default_memo.get_mut().clear();
        self.ns_cache.clear();
        self.exclusions_memo.get_mut().clear();
        Ok(index)
    }

    /// Conditional element inclusion (XSLT 3.0 §3.13.1): removes every
    /// element of module `m` whose `use-when` (on XSLT elements) or
    /// `xsl:use-when` (on other elements) is false, and drops the
    /// attribute from the elements that stay. The condition is evaluated
    /// once, at compile time, with no context item and no variables.
    fn apply_use_when(&mut self, m: usize) -> CResult<()> {
        let mut stack = vec![self.modules[m].root];
        let mut remove = Vec::new();
        while let Some(n) = stack.pop() {
            if self.xot.element(n).is_some() {
                let want_ns = if self.xsl_local(n).is_some() {
                    ""
                } else {
                    XSL_NS
                };
                let found = self.xot.attributes(n).iter().find_map(|(name, value)| {
                    let (l, ns) = self.xot.name_ns_str(name);
                    (l == "use-when" && ns == want_ns).then(|| (name, value.clone()))
                });
                if let Some((name, condition)) = found {
                    if !self.static_condition(m, n, &condition)? {
                        remove.push(n);
                        continue;
                    }
                    self.xot.attributes_mut(n).remove(name);
                }
            }
            stack.extend(self.xot.children(n));
        }
        for n in remove {
            if self.xot.parent(n) == Some(self.modules[m].root) {
                return Err(self.err(
                    m,
                    n,
                    "use-when excludes the document element of the stylesheet module (XTSE0010)",
                ));
            }
            self.xot
                .remove(n)
                .map_err(|e| self.err(m, n, format!("internal error: {e}")))?;
        }
        Ok(())
    }

    /// The effective boolean value of a `use-when` condition.
    fn static_condition(&mut self, m: usize, node: Node, text: &str) -> CResult<bool> {
        let (ns, ns_index) = self.namespaces_idx(node);
        let line = self.position(m, node).0;
        let no_locals: Vec<(XName, usize)> = Vec::new();
        let no_globals = HashMap::default();
        let no_functions = HashMap::default();
        let no_keys = HashMap::default();
        let no_format_names = HashMap::default();
        let scope = Scope {
            locals: &no_locals,
            globals: &no_globals,
            functions: &no_functions,
            ns: &ns,
            ns_index,
            backwards_compatible: self.bc(node),
            key_names: &no_keys,
            format_names: &no_format_names,
            formats: &[],
            pictures: &self.pictures,
        };
        let def = compile_expr(text, &scope, m, line).map_err(|e| {
            // A use-when condition that does not compile is a static
            // error of the stylesheet, not an unsupported construct.
            let e = e.replace("unsupported XPath function", "unknown function");
            self.err(m, node, format!("use-when=\"{text}\": {e} (XPST0017)"))
        })?;
        let arena = drehscheibe_xpath::DocArena::new();
        let env = drehscheibe_xpath::Env::new(&arena);
        let mut host = StaticHost {
            ns: &ns,
            bc: self.bc(node),
        };
        def.expr
            .evaluate_bool(&env, &mut host, None)
            .map_err(|e| self.err(m, node, format!("use-when=\"{text}\": {e}")))
    }

    fn load_file(&mut self, path: &Path, from: Option<(usize, Node)>) -> CResult<usize> {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.module_stack.contains(&canonical) {
            let imported = from.is_some_and(|(_, n)| self.xsl_local(n) == Some("import"));
            let message = if imported {
                format!(
                    "stylesheet module {} imports itself, directly or indirectly (XTSE0210)",
                    path.display()
                )
            } else {
                format!(
                    "stylesheet module {} includes itself, directly or indirectly (XTSE0180)",
                    path.display()
                )
            };
            return Err(match from {
                Some((m, n)) => self.err(m, n, message),
                None => CompileError {
                    file: path.to_path_buf(),
                    line: 0,
                    column: 0,
                    message,
                },
            });
        }
        let bytes = std::fs::read(path).map_err(|e| {
            let message = format!("cannot read stylesheet module {}: {e}", path.display());
            match from {
                Some((m, n)) => self.err(m, n, message),
                None => CompileError {
                    file: path.to_path_buf(),
                    line: 0,
                    column: 0,
                    message,
                },
            }
        })?;
        let text = crate::decode_text(&bytes).map_err(|message| match from {
            Some((m, n)) => self.err(m, n, message),
            None => CompileError {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                message,
            },
        })?;
        self.load_text(text, path.to_path_buf())
    }

    // ---- small helpers -------------------------------------------------

    fn root_element(&self, module: usize) -> CResult<Node> {
        let m = &self.modules[module];
        self.xot
            .document_element(m.root)
            .map_err(|_| self.err(module, m.root, "stylesheet has no document element"))
    }

    fn is_xsl(&self, node: Node, local: &str) -> bool {
        self.xsl_local(node) == Some(local)
    }

    fn xsl_local(&self, node: Node) -> Option<&str> {
        let el = self.xot.element(node)?;
        let (l, ns) = self.xot.name_ns_str(el.name());
        (ns == XSL_NS).then_some(l)
    }

    fn attrs(&self, node: Node) -> Vec<(String, String, String)> {
        // (namespace, local, value)
        self.xot
            .attributes(node)
            .iter()
            .map(|(name, value)| {
                let (l, ns) = self.xot.name_ns_str(name);
                (ns.to_string(), l.to_string(), value.clone())
            })
            .collect()
    }

    /// As [`Compiler::attrs`], borrowed: (namespace, local, value) of
    /// each attribute, without copying a string.
    fn attrs_ref(&self, node: Node) -> Vec<(&str, &str, &str)> {
        self.xot
            .attributes(node)
            .iter()
            .map(|(name, value)| {
                let (l, ns) = self.xot.name_ns_str(name);
                (ns, l, value.as_str())
            })
            .collect()
    }

    fn attr(&self, node: Node, local: &str) -> Option<String> {
        self.attr_ns(node, "", local)
    }

    /// The value of the attribute `{ns}local` of `node`, without copying
    /// the others.
    fn attr_ns(&self, node: Node, ns: &str, local: &str) -> Option<String> {
        self.xot
            .attributes(node)
            .iter()
            .find(|(name, _)| self.xot.name_ns_str(*name) == (local, ns))
            .map(|(_, value)| value.clone())
    }

    fn check_attrs(&self, module: usize, node: Node, allowed: &[&str]) -> CResult<()> {
        for (ns, local, value) in self.attrs_ref(node) {
            if ns.is_empty() && (allowed.contains(&local) || COMMON_ATTRS.contains(&local)) {
                continue;
            }
            if ns.is_empty()
                && local == "expand-text"
                && matches!(value.trim(), "no" | "false" | "0" | "yes" | "true" | "1")
            {
                continue;
            }
            // Attributes in a namespace other than the XSLT namespace are
            // allowed on any XSLT element and have no effect (XSLT 3.0
            // §3.6.1); `xml:space` is read by the whitespace stripping of
            // the stylesheet, `xml:base` by the static base URI of expressions.
            if !ns.is_empty() && ns != XSL_NS {
                continue;
            }
            let shown = if ns.is_empty() {
                local.to_string()
            } else {
                format!("{{{ns}}}{local}")
            };
            let name = self.xsl_local(node).unwrap_or("?");
            return Err(self.err(
                module,
                node,
                format!("unsupported attribute {shown} on xsl:{name}"),
            ));
        }
        Ok(())
    }

    fn required_attr(&self, module: usize, node: Node, local: &str) -> CResult<String> {
        self.attr(node, local).ok_or_else(|| {
            self.err(
                module,
                node,
                format!(
                    "xsl:{} requires the attribute {local} (XTSE0010)",
                    self.xsl_local(node).unwrap_or("?")
                ),
            )
        })
    }

    fn yes_no(&self, module: usize, node: Node, local: &str, default: bool) -> CResult<bool> {
        match self.attr(node, local).as_deref().map(str::trim) {
            None => Ok(default),
            Some("yes" | "true" | "1") => Ok(true),
            Some("no" | "false" | "0") => Ok(false),
            Some(other) => Err(self.err(
                module,
                node,
                format!("invalid value '{other}' for {local} (expected yes or no)"),
            )),
        }
    }

    /// Namespaces in scope of a stylesheet element, as an XPath static
    /// context sees them, and the index of that context.
    fn namespaces_idx(&mut self, node: Node) -> (Arc<NsCtx>, usize) {
        if let Some(ns) = self.ns_cache.get(&node) {
            return ns.clone();
        }
        // An element that declares no namespace and no
        // xpath-default-namespace of its own sees its parent's context.
        if let Some(parent) = self.xot.parent(node) {
            let own_xdn = {
                let want_ns = if self.xsl_local(node).is_some() {
                    ""
                } else {
                    XSL_NS
                };
                self.xot.attributes(node).iter().any(|(name, _)| {
                    self.xot.name_ns_str(name) == ("xpath-default-namespace", want_ns)
                })
            };
            if self.xot.element(parent).is_some()
                && self.xot.namespaces(node).is_empty()
                && !own_xdn
            {
                let entry = self.namespaces_idx(parent);
                self.ns_cache.insert(node, entry.clone());
                return entry;
            }
        }
        let mut bindings: Vec<(String, String)> = Vec::new();
        let mut default_ns = String::new();
        for (p, n) in self.xot.namespaces_in_scope(node) {
            let (p, n) = (
                self.xot.prefix_str(p).to_string(),
                self.xot.namespace_str(n).to_string(),
            );
            if p.is_empty() {
                default_ns = n;
            } else {
                bindings.push((p, n));
            }
        }
        bindings.sort();
        let ns = NsCtx {
            bindings,
            default_ns,
            xpath_default: self.xpath_default_namespace(node),
        };
        let index = match self.nsctx_index.get(&ns) {
            Some(i) => *i,
            None => {
                self.nsctx.push(ns.clone());
                self.nsctx_index.insert(ns.clone(), self.nsctx.len() - 1);
                self.nsctx.len() - 1
            }
        };
        let entry = (Arc::new(ns), index);
        self.ns_cache.insert(node, entry.clone());
        entry
    }

    fn namespaces(&mut self, node: Node) -> Arc<NsCtx> {
        self.namespaces_idx(node).0
    }

    /// The `xpath-default-namespace` in effect at a stylesheet element.
    fn xpath_default_namespace(&self, node: Node) -> String {
        self.inherited(
            node,
            &self.xpath_default_memo,
            String::new(),
            |this, anc| {
                let is_xsl = this.xsl_local(anc).is_some();
                let want_ns = if is_xsl { "" } else { XSL_NS };
                this.xot.attributes(anc).iter().find_map(|(name, value)| {
                    (this.xot.name_ns_str(name) == ("xpath-default-namespace", want_ns))
                        .then(|| value.trim().to_string())
                })
            },
        )
    }

    fn qname(&mut self, module: usize, node: Node, lexical: &str) -> CResult<XName> {
        let ns = self.namespaces(node);
        resolve_lexical_qname(lexical, &ns).ok_or_else(|| {
            self.err(
                module,
                node,
                format!("invalid or unresolvable QName '{lexical}' (XTSE0280)"),
            )
        })
    }

    fn effective_version(&self, node: Node) -> f64 {
        self.inherited(node, &self.version_memo, 3.0, |this, anc| {
            let is_xsl = this.xsl_local(anc).is_some();
            let want_ns = if is_xsl { "" } else { XSL_NS };
            this.xot.attributes(anc).iter().find_map(|(name, value)| {
                (this.xot.name_ns_str(name) == ("version", want_ns))
                    .then(|| value.trim().parse::<f64>().ok())
                    .flatten()
            })
        })
    }

    /// The value of an inherited stylesheet property at `node`: `own` of
    /// the nearest element ancestor-or-self that sets it, else `default`.
    /// Memoized per element (compiling asks once per expression, and
    /// walking to the root with every attribute copied each time was a
    /// tenth of compiling a three-module rule).
    fn inherited<T: Clone>(
        &self,
        node: Node,
        memo: &std::cell::RefCell<rustc_hash::FxHashMap<Node, T>>,
        default: T,
        own: impl Fn(&Self, Node) -> Option<T>,
    ) -> T {
        let mut path = Vec::new();
        let mut found = None;
        let mut cursor = Some(node);
        while let Some(n) = cursor {
            if let Some(v) = memo.borrow().get(&n) {
                found = Some(v.clone());
                break;
            }
            if self.xot.element(n).is_some() {
                if let Some(v) = own(self, n) {
                    memo.borrow_mut().insert(n, v.clone());
                    found = Some(v);
                    break;
                }
                path.push(n);
            }
            cursor = self.xot.parent(n);
        }
        let value = found.unwrap_or(default);
        let mut memo = memo.borrow_mut();
        for n in path {
            memo.insert(n, value.clone());
        }
        value
    }

    fn bc(&self, node: Node) -> bool {
        self.effective_version(node) < 2.0
    }

    fn expr(&mut self, module: usize, node: Node, text: &str) -> CResult<ExprId> {
        let (ns, ns_index) = self.namespaces_idx(node);
        let line = self.position(module, node).0;
        let scope = Scope {
            locals: &self.locals,
            globals: &self.global_names,
            functions: &self.function_names,
            ns: &ns,
            ns_index,
            backwards_compatible: self.bc(node),
            key_names: &self.key_names,
            format_names: &self.format_names,
            formats: &self.formats,
            pictures: &self.pictures,
        };
        let def =
            compile_expr(text, &scope, module, line).map_err(|m| self.err(module, node, m))?;
        self.exprs.push(def);
        let base = self.static_base(module, node);
        self.expr_bases.resize(self.exprs.len() - 1, 0);
        self.expr_bases.push(base);
        Ok(self.exprs.len() - 1)
    }

    /// The URI of module `m`: `file://` and its absolute path (none for a
    /// stylesheet compiled from a string).
    fn module_uri(&self, m: usize) -> Option<String> {
        self.module_uris.get(m).cloned().flatten()
    }

    /// The static base URI of the expressions on `node` (its module's URI
    /// with the `xml:base` attributes of its ancestors applied), as an
    /// index into the distinct bases of the stylesheet.
    fn static_base(&self, m: usize, node: Node) -> u32 {
        let mut rels: Vec<&str> = Vec::new();
        // `xml:base` compared by name id: no such name, no such attribute
        if let Some(base) = self.xot.name_ns("base", self.xot.xml_namespace()) {
            for anc in self.xot.ancestors(node) {
                if let Some(v) = self.xot.get_attribute(anc, base) {
                    rels.push(v);
                }
            }
        }
        // the common case, no `xml:base` in scope: the module's URI, whose
        // index is remembered per module
        if rels.is_empty() {
            if let Some(Some(i)) = self.module_base.borrow().get(m) {
                return *i;
            }
        }
        let index = self.base_index(m, &rels);
        if rels.is_empty() {
            let mut memo = self.module_base.borrow_mut();
            if memo.len() <= m {
                memo.resize(m + 1, None);
            }
            memo[m] = Some(index);
        }
        index
    }

    fn base_index(&self, m: usize, rels: &[&str]) -> u32 {
        let mut base = self.module_uri(m);
        for rel in rels.iter().rev() {
            base = Some(match base {
                Some(b) => drehscheibe_xpath::tree::resolve_uri(rel.trim(), &b),
                None => rel.trim().to_string(),
            });
        }
        let mut bases = self.bases.borrow_mut();
        if let Some(i) = bases.iter().position(|b| *b == base) {
            return i as u32;
        }
        bases.push(base);
        (bases.len() - 1) as u32
    }

    fn pattern(
        &mut self,
        module: usize,
        node: Node,
        text: &str,
    ) -> CResult<crate::pattern::Pattern> {
        let (ns, ns_index) = self.namespaces_idx(node);
        let line = self.position(module, node).0;
        // local variables are in scope of the patterns of xsl:number (none
        // are in scope of template and key patterns, which are top-level)
        let scope = Scope {
            locals: &self.locals,
            globals: &self.global_names,
            functions: &self.function_names,
            ns: &ns,
            ns_index,
            backwards_compatible: self.bc(node),
            key_names: &self.key_names,
            format_names: &self.format_names,
            formats: &self.formats,
            pictures: &self.pictures,
        };
        compile_pattern(text, &scope, module, line, &mut self.exprs)
            .map_err(|m| self.err(module, node, m))
    }

    fn avt(&mut self, module: usize, node: Node, text: &str) -> CResult<Avt> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '{' {
                if chars.get(i + 1) == Some(&'{') {
                    lit.push('{');
                    i += 2;
                    continue;
                }
                // find the matching close brace outside string literals
                let mut depth = 0usize;
                let mut j = i + 1;
                let mut quote: Option<char> = None;
                let mut end = None;
                while j < chars.len() {
                    let d = chars[j];
                    if let Some(q) = quote {
                        if d == q {
                            quote = None;
                        }
                    } else if d == '\'' || d == '"' {
                        quote = Some(d);
                    } else if d == '{' {
                        depth += 1;
                    } else if d == '}' {
                        if depth == 0 {
                            end = Some(j);
                            break;
                        }
                        depth -= 1;
                    }
                    j += 1;
                }
                let Some(end) = end else {
                    return Err(self.err(
                        module,
                        node,
                        format!("unterminated expression in attribute value template '{text}' (XTSE0350)"),
                    ));
                };
                let expr_text: String = chars[i + 1..end].iter().collect();
                if !lit.is_empty() {
                    parts.push(AvtPart::Lit(std::mem::take(&mut lit)));
                }
                let id = self.expr(module, node, &expr_text)?;
                parts.push(AvtPart::Expr(id));
                i = end + 1;
            } else if c == '}' {
                if chars.get(i + 1) == Some(&'}') {
                    lit.push('}');
                    i += 2;
                    continue;
                }
                return Err(self.err(
                    module,
                    node,
                    format!("unescaped '}}' in attribute value template '{text}' (XTSE0370)"),
                ));
            } else {
                lit.push(c);
                i += 1;
            }
        }
        if !lit.is_empty() {
            parts.push(AvtPart::Lit(lit));
        }
        Ok(Avt {
            parts,
            first_only: self.bc(node),
        })
    }

    fn literal_attr(&self, module: usize, node: Node, local: &str) -> CResult<Option<String>> {
        match self.attr(node, local) {
            Some(v) if v.contains('{') => Err(self.err(
                module,
                node,
                format!(
                    "attribute value templates are not supported in {local} of xsl:{}",
                    self.xsl_local(node).unwrap_or("?")
                ),
            )),
            other => Ok(other),
        }
    }

    fn name_idx(&mut self, ns: &str, local: &str, prefix: &str) -> NameIdx {
        let key = (ns.to_string(), local.to_string(), prefix.to_string());
        if let Some(i) = self.name_index.get(&key) {
            return *i;
        }
        self.names.push(key.clone());
        self.name_index.insert(key, self.names.len() - 1);
        self.names.len() - 1
    }

    fn ns_idx(&mut self, prefix: &str, uri: &str) -> NsIdx {
        let key = (prefix.to_string(), uri.to_string());
        if let Some(i) = self.ns_index.get(&key) {
            return *i;
        }
        self.ns_bindings.push(key.clone());
        self.ns_index.insert(key, self.ns_bindings.len() - 1);
        self.ns_bindings.len() - 1
    }

    fn alloc_slot(&mut self) -> usize {
        let s = self.next_slot;
        self.next_slot += 1;
        self.max_slots = self.max_slots.max(self.next_slot);
        s
    }

    fn begin_frame(&mut self) -> (Vec<(XName, usize)>, usize, usize) {
        let saved = (
            std::mem::take(&mut self.locals),
            self.next_slot,
            self.max_slots,
        );
        self.next_slot = 0;
        self.max_slots = 0;
        saved
    }

    fn end_frame(&mut self, saved: (Vec<(XName, usize)>, usize, usize)) -> usize {
        let slots = self.max_slots;
        self.locals = saved.0;
        self.next_slot = saved.1;
        self.max_slots = saved.2;
        slots
    }

    // ---- top level ------------------------------------------------------

    /// Collect the declarations of a module (expanding includes) and its
    /// imports; imports are processed first so they get lower precedence.
    fn process_module(&mut self, module: usize, decls: &mut Vec<Decl>) -> CResult<()> {
        let mut own: Vec<(usize, Node)> = Vec::new();
        let mut imports: Vec<usize> = Vec::new();
        self.collect_module(module, &mut own, &mut imports)?;
        // The importing module stays on the module stack while its imports
        // are processed, so a cycle of imports is found when the next
        // module of the cycle is loaded (XTSE0210) instead of recursing
        // without end.
        let path = self.files.get(module).cloned().unwrap_or_default();
        self.module_stack
            .push(path.canonicalize().unwrap_or_else(|_| path.clone()));
        let mut result = Ok(());
        for imp in imports {
            result = self.process_module(imp, decls);
            if result.is_err() {
                break;
            }
        }
        self.module_stack.pop();
        result?;
        let precedence = self.next_precedence;
        self.next_precedence += 1;
        for (m, node) in own {
            decls.push(Decl {
                module: m,
                node,
                precedence,
            });
        }
        Ok(())
    }

    fn collect_module(
        &mut self,
        module: usize,
        own: &mut Vec<(usize, Node)>,
        imports: &mut Vec<usize>,
    ) -> CResult<()> {
        let root = self.root_element(module)?;
        let path = self.files.get(module).cloned().unwrap_or_default();
        let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
        self.module_stack.push(canonical);
        let result = self.collect_module_inner(module, root, own, imports);
        self.module_stack.pop();
        result
    }

    fn collect_module_inner(
        &mut self,
        module: usize,
        root: Node,
        own: &mut Vec<(usize, Node)>,
        imports: &mut Vec<usize>,
    ) -> CResult<()> {
        match self.xsl_local(root) {
            Some("stylesheet" | "transform") => {}
            Some(other) => {
                return Err(self.err(
                    module,
                    root,
                    format!(
                        "xsl:{other} cannot be the document element of a stylesheet (XTSE0150)"
                    ),
                ))
            }
            None => {
                // simplified stylesheet: a literal result element
                let has_version = self
                    .attrs(root)
                    .iter()
                    .any(|(ns, l, _)| ns == XSL_NS && l == "version");
                if !has_version {
                    return Err(self.err(
                        module,
                        root,
                        "a simplified stylesheet needs an xsl:version attribute (XTSE0150)",
                    ));
                }
                own.push((module, root));
                return Ok(());
            }
        }
        self.check_attrs(
            module,
            root,
            &[
                "id",
                "extension-element-prefixes",
                "xpath-default-namespace-none-placeholder",
            ],
        )?;
        match self.attr(root, "version") {
            None => {
                return Err(self.err(
                    module,
                    root,
                    "xsl:stylesheet requires a version attribute (XTSE0010)",
                ))
            }
            Some(v) if !is_decimal(&v) => {
                return Err(self.err(
                    module,
                    root,
                    format!("version '{v}' is not an xs:decimal (XTSE0110)"),
                ))
            }
            Some(_) => {}
        }
        for attr in ["exclude-result-prefixes", "extension-element-prefixes"] {
            if let Some(list) = self.attr(root, attr) {
                self.check_prefix_list(module, root, attr, &list)?;
            }
        }
        let children: Vec<Node> = self.xot.children(root).collect();
        let mut seen_other = false;
        for child in children {
            match self.xot.value(child) {
                XValue::Element(_) => {}
                XValue::Text(t) => {
                    if !t.get().trim().is_empty() {
                        return Err(self.err(
                            module,
                            child,
                            "text is not allowed at the top level of a stylesheet (XTSE0120)",
                        ));
                    }
                    continue;
                }
                _ => continue,
            }
            match self.xsl_local(child) {
                Some("import") => {
                    if seen_other {
                        return Err(self.err(
                            module,
                            child,
                            "xsl:import must come before all other declarations (XTSE0200)",
                        ));
                    }
                    self.check_attrs(module, child, &["href"])?;
                    self.require_empty(module, child)?;
                    let href = self.required_attr(module, child, "href")?;
                    let target = self.resolve_href(module, child, &href)?;
                    let m = self.load_file(&target, Some((module, child)))?;
                    imports.push(m);
                }
                Some("include") => {
                    seen_other = true;
                    self.check_attrs(module, child, &["href"])?;
                    self.require_empty(module, child)?;
                    let href = self.required_attr(module, child, "href")?;
                    let target = self.resolve_href(module, child, &href)?;
                    let m = self.load_file(&target, Some((module, child)))?;
                    self.collect_module(m, own, imports)?;
                }
                _ => {
                    seen_other = true;
                    own.push((module, child));
                }
            }
        }
        Ok(())
    }

    fn resolve_href(&self, module: usize, node: Node, href: &str) -> CResult<PathBuf> {
        if href.contains("://") || href.starts_with("file:") {
            return Err(self.err(
                module,
                node,
                format!("only relative file references are supported in href ('{href}')"),
            ));
        }
        let base = self
            .files
            .get(module)
            .and_then(|f| f.parent().map(Path::to_path_buf));
        match base {
            Some(dir)
                if !self.files[module].as_os_str().is_empty()
                    && self.files[module] != Path::new("<string>") =>
            {
                Ok(dir.join(href))
            }
            _ => Err(self.err(
                module,
                node,
                format!("cannot resolve '{href}': the stylesheet was compiled without a base path"),
            )),
        }
    }

    pub(crate) fn compile_root(mut self, text: String, path: PathBuf) -> CResult<Compiled> {
        self.source_text = text.clone();
        let module = self.load_text(text, path)?;
        let principal = self.module_uri(module);
        self.bases.get_mut().push(principal);
        let mut decls = Vec::new();
        self.process_module(module, &mut decls)?;
        self.register(&decls)?;
        self.compile_decls(&decls)?;
        for (m, node, template, names) in std::mem::take(&mut self.call_checks) {
            let Some(t) = self.templates.get(template) else {
                continue;
            };
            if let Some(extra) = names
                .iter()
                .find(|n| !t.params.iter().any(|p| p.name == **n))
            {
                return Err(self.err(
                    m,
                    node,
                    format!(
                        "the called template has no parameter ${} (XTSE0680)",
                        extra.local_name()
                    ),
                ));
            }
        }
        let mut params = Vec::new();
        for g in &self.globals {
            if g.is_param {
                params.push(GlobalParamDecl {
                    name: if g.name.namespace().is_empty() {
                        g.name.local_name().to_string()
                    } else {
                        format!("Q{{{}}}{}", g.name.namespace(), g.name.local_name())
                    },
                    required: g.required,
                    has_default: !matches!(g.value, Value::Empty) || !g.required,
                });
            }
        }
        let backwards_compatible = match self.root_element(module) {
            Ok(root) => self.bc(root),
            Err(_) => false,
        };
        let template_names = self
            .template_names
            .iter()
            .map(|(n, (i, _))| (n.key(), *i))
            .collect();
        let mode_names = self.mode_names.iter().map(|(n, i)| (n.key(), *i)).collect();
        let output = self.finish_output(module)?;
        Ok(Compiled {
            template_names,
            mode_names,
            backwards_compatible,
            files: self.files,
            exprs: self.exprs,
            templates: self.templates,
            modes: {
                let mut modes = self.modes;
                modes.iter_mut().for_each(Mode::finish);
                modes
            },
            globals: self.globals,
            keys: self.keys,
            decimal_formats: self.formats,
            pictures: self.pictures.into_inner(),
            output,
            space_rules: self.space_rules,
            params,
            names: self
                .names
                .iter()
                .map(|(ns, local, prefix)| drehscheibe_xpath::tree::QName::new(ns, local, prefix))
                .collect(),
            ns_bindings: self.ns_bindings,
            functions: self.functions,
            nsctx: self.nsctx,
            source_text: self.source_text,
            bases: self.bases.into_inner(),
            expr_bases: self.expr_bases,
            key_names: self.key_names.iter().map(|(n, i)| (n.key(), *i)).collect(),
            format_names: self
                .format_names
                .iter()
                .filter_map(|(n, i)| n.as_ref().map(|n| (n.key(), *i)))
                .collect(),
            function_names: self
                .function_names
                .iter()
                .map(|((n, a), sig)| ((n.key(), *a), sig.index))
                .collect(),
        })
    }

    fn mode_index(&mut self, name: &XName) -> usize {
        if let Some(i) = self.mode_names.get(name) {
            return *i;
        }
        self.modes.push(Mode::default());
        let i = self.modes.len() - 1;
        self.mode_names.insert(name.clone(), i);
        for (key, rule) in self.all_mode_rules.clone() {
            self.insert_rule(i, key, rule);
        }
        i
    }

    /// Adds a rule to a mode's bucket, keeping the bucket in the order of
    /// rule selection (precedence, priority, declaration order).
    fn insert_rule(&mut self, mode: usize, key: crate::pattern::IndexKey, rule: Rule) {
        if let Some(mode) = self.modes.get_mut(mode) {
            let bucket = mode.buckets.entry(key).or_default();
            bucket.push(rule);
            bucket.sort_by(|a, b| {
                b.precedence
                    .cmp(&a.precedence)
                    .then(b.priority.total_cmp(&a.priority))
                    .then(b.order.cmp(&a.order))
            });
        }
    }

    /// First pass: register names of globals, keys, templates, formats.
    fn register(&mut self, decls: &[Decl]) -> CResult<()> {
        for d in decls {
            let (m, node) = (d.module, d.node);
            match self.xsl_local(node) {
                Some("variable" | "param") => {
                    let name = self.required_attr(m, node, "name")?;
                    let name = self.qname(m, node, &name)?;
                    self.check_reserved(m, node, &name, "variable")?;
                    if let Some(&g) = self.global_names.get(&name) {
                        let prec = self.global_prec.get(g).copied().unwrap_or(0);
                        if prec == d.precedence {
                            return Err(self.err(
                                m,
                                node,
                                format!(
                                    "duplicate global variable ${} (XTSE0630)",
                                    name.local_name()
                                ),
                            ));
                        }
                        if prec > d.precedence {
                            continue;
                        }
                    }
                    let is_param = self.is_xsl(node, "param");
                    self.globals.push(Global {
                        name: name.clone(),
                        value: Value::Empty,
                        is_param,
                        required: false,
                        coerce: None,
                        slots: 0,
                        at: self.at(m, node),
                    });
                    self.global_prec.push(d.precedence);
                    self.global_names.insert(name, self.globals.len() - 1);
                }
                Some("function") => {
                    let name = self.required_attr(m, node, "name")?;
                    let name = self.qname(m, node, &name)?;
                    self.check_reserved(m, node, &name, "function")?;
                    if name.namespace().is_empty() {
                        return Err(self.err(
                            m,
                            node,
                            format!(
                                "xsl:function name {} must be in a namespace (XTSE0740)",
                                name.local_name()
                            ),
                        ));
                    }
                    let arity = self
                        .xot
                        .children(node)
                        .filter(|c| self.is_xsl(*c, "param"))
                        .count();
                    let index = self.functions.len();
                    self.functions.push(Function {
                        name: name.clone(),
                        params: Vec::new(),
                        body: Vec::new(),
                        result: None,
                        slots: 0,
                        at: self.at(m, node),
                    });
                    if let Some(prev) = self.function_names.get(&(name.clone(), arity)) {
                        let prev_prec = self.function_prec.get(prev.index).copied().unwrap_or(0);
                        if prev_prec == d.precedence {
                            return Err(self.err(
                                m,
                                node,
                                format!(
                                    "duplicate xsl:function {}#{arity} (XTSE0770)",
                                    name.local_name()
                                ),
                            ));
                        }
                    }
                    self.function_prec.push(d.precedence);
                    self.function_nodes.insert(node, index);
                    self.function_names.insert((name, arity), FnSig { index });
                }
                Some("key") => {
                    let name = self.required_attr(m, node, "name")?;
                    let name = self.qname(m, node, &name)?;
                    self.check_reserved(m, node, &name, "key")?;
                    if !self.key_names.contains_key(&name) {
                        self.keys.push(Key {
                            defs: Vec::new(),
                            string_values: false,
                        });
                        self.key_names.insert(name, self.keys.len() - 1);
                    }
                }
                Some("decimal-format") => {
                    let name = match self.attr(node, "name") {
                        Some(n) => Some(self.qname(m, node, &n)?),
                        None => None,
                    };
                    if let Some(q) = &name {
                        self.check_reserved(m, node, q, "decimal-format")?;
                    }
                    if !self.format_names.contains_key(&name) {
                        self.formats.push(DecimalFormat::default());
                        self.format_names.insert(name, self.formats.len() - 1);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn compile_decls(&mut self, decls: &[Decl]) -> CResult<()> {
        // decimal formats first (used when compiling expressions)
        for d in decls {
            if self.is_xsl(d.node, "decimal-format") {
                self.compile_decimal_format(d.module, d.node)?;
            }
        }
        // template names: register in precedence order so higher precedence wins
        for d in decls {
            let (m, node) = (d.module, d.node);
            if self.is_xsl(node, "template") {
                if let Some(name) = self.attr(node, "name") {
                    let name = self.qname(m, node, &name)?;
                    if let Some((_, prec)) = self.template_names.get(&name) {
                        if *prec == d.precedence {
                            return Err(self.err(
                                m,
                                node,
                                format!(
                                    "duplicate named template {} (XTSE0660)",
                                    name.local_name()
                                ),
                            ));
                        }
                        if *prec > d.precedence {
                            continue;
                        }
                    }
                    // reserve a template slot
                    self.templates.push(Template {
                        pattern: None,
                        params: Vec::new(),
                        body: Vec::new(),
                        slots: 0,
                        at: self.at(m, node),
                    });
                    self.template_names
                        .insert(name, (self.templates.len() - 1, d.precedence));
                }
            }
        }
        let named: HashMap<Node, usize> = decls
            .iter()
            .filter_map(|d| {
                let name = self.attr(d.node, "name")?;
                if !self.is_xsl(d.node, "template") {
                    return None;
                }
                let ns = self.ns_cache.get(&d.node).map(|e| e.0.clone())?;
                let q = resolve_lexical_qname(&name, &ns)?;
                let (idx, prec) = self.template_names.get(&q)?;
                (*prec == d.precedence).then_some((d.node, *idx))
            })
            .collect();
        for d in decls {
            let (m, node) = (d.module, d.node);
            match self.xsl_local(node) {
                None if self.xot.parent(node) == Some(self.modules[m].root) => {
                    // simplified stylesheet
                    self.compile_simplified(m, node, d.precedence)?;
                }
                None => {
                    let el = self.xot.element(node).map(|e| e.name());
                    let ns = el
                        .map(|n| self.xot.name_ns_str(n).1.to_string())
                        .unwrap_or_default();
                    if ns.is_empty() {
                        return Err(self.err(
                            m,
                            node,
                            "top-level elements in no namespace are not allowed (XTSE0130)",
                        ));
                    }
                    // a user-defined data element (XSLT 3.0 §3.7.3): no
                    // effect on the transformation; `document('')` still
                    // sees it in the stylesheet's text
                }
                Some("template") => {
                    let index = named.get(&node).copied();
                    if index.is_none()
                        && self.attr(node, "name").is_some()
                        && self.attr(node, "match").is_none()
                    {
                        continue; // overridden named template
                    }
                    self.compile_template(m, node, d.precedence, index)?;
                }
                Some("variable" | "param") => self.compile_global(m, node, d.precedence)?,
                Some("output") => self.compile_output(m, node, d.precedence)?,
                Some("strip-space") | Some("preserve-space") => {
                    self.check_attrs(m, node, &["elements"])?;
                    self.require_empty(m, node)?;
                    let strip = self.is_xsl(node, "strip-space");
                    let elements = self.required_attr(m, node, "elements")?;
                    let ns = self.namespaces(node);
                    for token in elements.split_whitespace() {
                        let (test, priority) = if token == "*" {
                            (Test::Any, -0.5)
                        } else if let Some(prefix) = token.strip_suffix(":*") {
                            let uri = ns.by_prefix(prefix).ok_or_else(|| {
                                self.err(m, node, format!("undeclared prefix '{prefix}'"))
                            })?;
                            (Test::NsAny(uri.to_string()), -0.25)
                        } else if let Some(local) = token.strip_prefix("*:") {
                            (Test::LocalAny(local.to_string()), -0.25)
                        } else if let Some(uri) = token
                            .strip_prefix("Q{")
                            .and_then(|t| t.strip_suffix("}*"))
                            .filter(|u| !u.contains(['{', '}']))
                        {
                            (Test::NsAny(uri.to_string()), -0.25)
                        } else {
                            let mut q = resolve_lexical_qname(token, &ns).ok_or_else(|| {
                                self.err(m, node, format!("invalid name test '{token}'"))
                            })?;
                            if !token.contains(':') {
                                // unprefixed: in the xpath-default-namespace
                                let uri = self.xpath_default_namespace(node);
                                q = XName::new(q.local_name().to_string(), uri, String::new());
                            }
                            (
                                Test::Name(crate::pattern::ExpName {
                                    ns: q.namespace().to_string(),
                                    local: q.local_name().to_string(),
                                }),
                                0.0,
                            )
                        };
                        let conflict = self.space_rules.iter().any(|r| {
                            r.strip != strip && r.precedence == d.precedence && r.test == test
                        });
                        if conflict {
                            return Err(self.err(
                                m,
                                node,
                                format!(
                                    "'{token}' is in both xsl:strip-space and xsl:preserve-space (XTSE0270)"
                                ),
                            ));
                        }
                        self.space_rules.push(SpaceRule {
                            test,
                            strip,
                            precedence: d.precedence,
                            priority,
                        });
                    }
                }
                Some("key") => self.compile_key(m, node)?,
                Some("mode") => self.compile_mode(m, node)?,
                Some("function") => self.compile_function(m, node)?,
                Some("decimal-format") => self.require_empty(m, node)?,
                Some(other) => {
                    return Err(self.err(m, node, format!("unsupported declaration xsl:{other}")));
                }
            }
        }
        Ok(())
    }

    fn compile_simplified(&mut self, m: usize, node: Node, precedence: usize) -> CResult<()> {
        let saved = self.begin_frame();
        let body = vec![self.literal_element(m, node)?];
        let slots = self.end_frame(saved);
        let pattern = self.pattern(m, node, "/")?;
        self.add_template(
            Template {
                pattern: Some(pattern),
                params: Vec::new(),
                body,
                slots,
                at: self.at(m, node),
            },
            precedence,
            None,
            &[0],
            None,
        );
        Ok(())
    }

    fn add_template(
        &mut self,
        t: Template,
        precedence: usize,
        reserved: Option<usize>,
        modes: &[usize],
        priority: Option<f64>,
    ) {
        let index = match reserved {
            Some(i) => {
                if let Some(slot) = self.templates.get_mut(i) {
                    *slot = t;
                }
                i
            }
            None => {
                self.templates.push(t);
                self.templates.len() - 1
            }
        };
        let Some(pattern) = self.templates.get(index).and_then(|t| t.pattern.clone()) else {
            return;
        };
        for (alt_index, alt) in pattern.alts.iter().enumerate() {
            let key = alt.index_key();
            let rule = Rule {
                template: index,
                alt: alt_index,
                precedence,
                priority: priority.unwrap_or(alt.default_priority),
                order: self.rule_order,
            };
            self.rule_order += 1;
            for &mode in modes {
                if mode == ALL_MODES {
                    self.all_mode_rules.push((key.clone(), rule.clone()));
                    for i in 0..self.modes.len() {
                        self.insert_rule(i, key.clone(), rule.clone());
                    }
                } else {
                    self.insert_rule(mode, key.clone(), rule.clone());
                }
            }
        }
    }

    fn compile_template(
        &mut self,
        m: usize,
        node: Node,
        precedence: usize,
        reserved: Option<usize>,
    ) -> CResult<()> {
        self.check_attrs(m, node, &["match", "name", "mode", "priority"])?;
        let match_ = self.attr(node, "match");
        if match_.is_none() && self.attr(node, "name").is_none() {
            return Err(self.err(
                m,
                node,
                "xsl:template needs a match or a name attribute (XTSE0500)",
            ));
        }
        let pattern = match &match_ {
            Some(p) => Some(self.pattern(m, node, p)?),
            None => None,
        };
        if match_.is_none() && self.attr(node, "priority").is_some() {
            return Err(self.err(
                m,
                node,
                "a template without match must not have a priority (XTSE0500)",
            ));
        }
        if let Some(name) = self.attr(node, "name") {
            let q = self.qname(m, node, &name)?;
            let initial = q.namespace() == XSL_NS && q.local_name() == "initial-template";
            if !initial {
                self.check_reserved(m, node, &q, "template")?;
            }
        }
        let priority =
            match self.attr(node, "priority") {
                Some(p) => {
                    if !is_decimal(&p) {
                        return Err(self.err(
                            m,
                            node,
                            format!("priority '{p}' is not an xs:decimal (XTSE0530)"),
                        ));
                    }
                    Some(p.trim().parse::<f64>().map_err(|_| {
                        self.err(m, node, format!("invalid priority '{p}' (XTSE0530)"))
                    })?)
                }
                None => None,
            };
        let mut modes = Vec::new();
        match self.attr(node, "mode") {
            None => modes.push(0),
            Some(list) => {
                if match_.is_none() {
                    return Err(self.err(
                        m,
                        node,
                        "a template without match must not have a mode (XTSE0500)",
                    ));
                }
                let tokens: Vec<&str> = list.split_whitespace().collect();
                let bad = if tokens.is_empty() {
                    Some("is empty")
                } else if tokens.contains(&"#all") && tokens.len() > 1 {
                    Some("has #all together with other modes")
                } else if tokens
                    .iter()
                    .enumerate()
                    .any(|(i, t)| tokens[..i].contains(t))
                {
                    Some("names a mode twice")
                } else {
                    None
                };
                if let Some(bad) = bad {
                    return Err(self.err(
                        m,
                        node,
                        format!("the mode list '{list}' {bad} (XTSE0550)"),
                    ));
                }
                for token in tokens {
                    match token {
                        "#default" => modes.push(0),
                        "#all" => modes.push(ALL_MODES),
                        _ if token.starts_with('#') => {
                            return Err(self.err(
                                m,
                                node,
                                format!("invalid mode token '{token}' (XTSE0550)"),
                            ))
                        }
                        _ => {
                            let q = self.qname(m, node, token)?;
                            self.check_reserved(m, node, &q, "mode")?;
                            modes.push(self.mode_index(&q));
                        }
                    }
                }
            }
        }
        let saved = self.begin_frame();
        let children: Vec<Node> = self.xot.children(node).collect();
        let mut params = Vec::new();
        let mut tunnel_params: Vec<Instr> = Vec::new();
        let mut rest = Vec::new();
        let mut in_params = true;
        for c in children {
            if self.is_xsl(c, "param") {
                if !in_params {
                    return Err(self.err(
                        m,
                        c,
                        "xsl:param must come first in xsl:template (XTSE0010)",
                    ));
                }
                if self.yes_no(m, c, "tunnel", false)? {
                    tunnel_params.push(self.compile_tunnel_param(m, c)?);
                } else {
                    params.push(self.compile_param(m, c)?);
                }
            } else {
                if self.xot.element(c).is_some() {
                    in_params = false;
                } else if let Some(t) = self.xot.text_str(c) {
                    if !t.trim().is_empty() {
                        in_params = false;
                    }
                }
                rest.push(c);
            }
        }
        let mut body = self.body_of(m, node, &rest)?;
        if !tunnel_params.is_empty() {
            tunnel_params.append(&mut body);
            body = tunnel_params;
        }
        let slots = self.end_frame(saved);
        let t = Template {
            pattern,
            params,
            body,
            slots,
            at: self.at(m, node),
        };
        if match_.is_some() {
            self.add_template(t, precedence, reserved, &modes, priority);
        } else if let Some(i) = reserved {
            if let Some(slot) = self.templates.get_mut(i) {
                *slot = t;
            }
        }
        Ok(())
    }

    fn compile_param(&mut self, m: usize, node: Node) -> CResult<ParamDef> {
        self.check_attrs(m, node, &["name", "select", "required", "as", "tunnel"])?;
        if self.yes_no(m, node, "tunnel", false)? {
            return Err(self.err(m, node, "tunnel parameters are not supported"));
        }
        let (name, required, value, slot) = self.param_local(m, node)?;
        let coerce = match self.attr(node, "as") {
            Some(ty) => Some(self.coercion(m, node, &ty)?),
            None => None,
        };
        Ok(ParamDef {
            name,
            slot,
            value,
            required,
            coerce,
        })
    }

    /// What `xsl:param` and a tunnel parameter share: name, `required`, the
    /// default value and a fresh local slot, the name in scope from here
    /// on (XTSE0580 if it already is).
    fn param_local(&mut self, m: usize, node: Node) -> CResult<(XName, bool, Value, usize)> {
        let name = self.required_attr(m, node, "name")?;
        let name = self.qname(m, node, &name)?;
        let required = self.yes_no(m, node, "required", false)?;
        let value = self.var_value(m, node)?;
        let slot = self.alloc_slot();
        if self.locals.iter().any(|(n, _)| *n == name) {
            return Err(self.err(
                m,
                node,
                format!("duplicate parameter ${} (XTSE0580)", name.local_name()),
            ));
        }
        self.locals.push((name.clone(), slot));
        Ok((name, required, value, slot))
    }

    /// The value of a variable/param/with-param: `select` or content, with
    /// `as` coercion applied to `select`.
    fn var_value(&mut self, m: usize, node: Node) -> CResult<Value> {
        let select = self.attr(node, "select");
        let as_ = self.attr(node, "as");
        let has_content = self.has_content(node);
        match (select, has_content) {
            (Some(_), true) => Err(self.err(
                m,
                node,
                format!(
                    "xsl:{} must not have both a select attribute and content (XTSE0620)",
                    self.xsl_local(node).unwrap_or("?")
                ),
            )),
            (Some(s), false) => {
                let text = match &as_ {
                    Some(t) => format!(
                        "(function($Q{{{}}}v as {t}) {{ $Q{{{}}}v }})(({s}))",
                        crate::xpath::INTERNAL_NS,
                        crate::xpath::INTERNAL_NS
                    ),
                    None => s,
                };
                Ok(Value::Select(self.expr(m, node, &text)?))
            }
            (None, true) => {
                let children: Vec<Node> = self.xot.children(node).collect();
                let body = self.body_of(m, node, &children)?;
                match as_ {
                    None => Ok(Value::Body(body)),
                    Some(t) => {
                        let ns = crate::xpath::INTERNAL_NS;
                        let text = format!(
                            "(function($Q{{{ns}}}v as {t}) {{ $Q{{{ns}}}v }})($Q{{{ns}}}supplied)"
                        );
                        let coerce = self.expr(m, node, &text)?;
                        Ok(Value::BodyAs(body, coerce))
                    }
                }
            }
            (None, false) => {
                if let Some(t) = as_ {
                    let text = format!(
                        "(function($Q{{{}}}v as {t}) {{ $Q{{{}}}v }})('')",
                        crate::xpath::INTERNAL_NS,
                        crate::xpath::INTERNAL_NS
                    );
                    // an empty value must satisfy the type, e.g. xs:string? or item()*
                    let empty = format!(
                        "(function($Q{{{}}}v as {t}) {{ $Q{{{}}}v }})(())",
                        crate::xpath::INTERNAL_NS,
                        crate::xpath::INTERNAL_NS
                    );
                    let _ = text;
                    return Ok(Value::Select(self.expr(m, node, &empty)?));
                }
                Ok(Value::Empty)
            }
        }
    }

    /// `XTSE0080`: a declared name (template, mode, variable, function,
    /// key, decimal format) must not be in a reserved namespace.
    fn check_reserved(&self, m: usize, node: Node, q: &XName, what: &str) -> CResult<()> {
        if RESERVED_NAMESPACES.contains(&q.namespace()) {
            return Err(self.err(
                m,
                node,
                format!(
                    "the {what} name {} is in the reserved namespace {} (XTSE0080)",
                    q.local_name(),
                    q.namespace()
                ),
            ));
        }
        Ok(())
    }

    /// `XTSE0260`: an XSLT element that must be empty has no content but
    /// comments and processing instructions (whitespace counts when
    /// `xml:space="preserve"` keeps it).
    fn require_empty(&self, m: usize, node: Node) -> CResult<()> {
        let preserve = self.preserve_space(node);
        let bad = self.xot.children(node).any(|c| match self.xot.value(c) {
            XValue::Element(_) => true,
            XValue::Text(t) => preserve || !t.get().trim().is_empty(),
            _ => false,
        });
        if bad {
            return Err(self.err(
                m,
                node,
                format!(
                    "xsl:{} must be empty (XTSE0260)",
                    self.xsl_local(node).unwrap_or("?")
                ),
            ));
        }
        Ok(())
    }

    /// `XTSE0808` / `XTSE0809`: every token of `[xsl:]exclude-result-prefixes`
    /// or `[xsl:]extension-element-prefixes` is `#all` (only the former),
    /// `#default` with a default namespace, or a prefix in scope.
    fn check_prefix_list(&self, m: usize, node: Node, attr: &str, list: &str) -> CResult<()> {
        for token in list.split_whitespace() {
            let found = match token {
                "#all" if attr == "exclude-result-prefixes" => true,
                prefix if attr == "extension-element-prefixes" => {
                    let uri = self.xot.namespaces_in_scope(node).find_map(|(p, u)| {
                        (self.xot.prefix_str(p) == prefix.trim_start_matches("#default"))
                            .then(|| self.xot.namespace_str(u).to_string())
                    });
                    if let Some(uri) = &uri {
                        if RESERVED_NAMESPACES.contains(&uri.as_str()) {
                            return Err(self.err(
                                m,
                                node,
                                format!(
                                    "{attr}: '{prefix}' is the reserved namespace {uri} (XTSE0085)"
                                ),
                            ));
                        }
                    }
                    uri.is_some_and(|u| !u.is_empty())
                }
                "#default" => self.xot.namespaces_in_scope(node).any(|(p, u)| {
                    self.xot.prefix_str(p).is_empty() && !self.xot.namespace_str(u).is_empty()
                }),
                prefix => self
                    .xot
                    .namespaces_in_scope(node)
                    .any(|(p, _)| self.xot.prefix_str(p) == prefix),
            };
            if !found {
                let code = if token == "#default" {
                    "XTSE0809"
                } else {
                    "XTSE0808"
                };
                return Err(self.err(
                    m,
                    node,
                    format!("{attr}: '{token}' is not a namespace prefix in scope ({code})"),
                ));
            }
        }
        Ok(())
    }

    fn has_content(&self, node: Node) -> bool {
        self.xot.children(node).any(|c| match self.xot.value(c) {
            XValue::Element(_) => true,
            XValue::Text(t) => !t.get().trim().is_empty(),
            _ => false,
        })
    }

    fn compile_global(&mut self, m: usize, node: Node, precedence: usize) -> CResult<()> {
        let is_param = self.is_xsl(node, "param");
        if is_param {
            self.check_attrs(m, node, &["name", "select", "required", "as"])?;
        } else {
            self.check_attrs(m, node, &["name", "select", "as"])?;
        }
        let name = self.required_attr(m, node, "name")?;
        let name = self.qname(m, node, &name)?;
        let Some(&g) = self.global_names.get(&name) else {
            return Ok(());
        };
        if self.global_prec.get(g).copied() != Some(precedence) {
            return Ok(()); // overridden by a higher-precedence declaration
        }
        let required = if is_param {
            self.yes_no(m, node, "required", false)?
        } else {
            false
        };
        let saved = self.begin_frame();
        let value = self.var_value(m, node)?;
        let slots = self.end_frame(saved);
        let coerce = match (is_param, self.attr(node, "as")) {
            (true, Some(t)) => {
                let ns = crate::xpath::INTERNAL_NS;
                let text =
                    format!("(function($Q{{{ns}}}v as {t}) {{ $Q{{{ns}}}v }})($Q{{{ns}}}supplied)");
                let saved = self.begin_frame();
                let id = self.expr(m, node, &text);
                self.end_frame(saved);
                Some(id?)
            }
            _ => None,
        };
        if let Some(global) = self.globals.get_mut(g) {
            global.value = value;
            global.required = required;
            global.coerce = coerce;
            global.slots = slots;
        }
        Ok(())
    }

    /// Checks one `xsl:output` declaration (every attribute value is
    /// validated here, with its position) and keeps the unnamed ones for
    /// [`Compiler::finish_output`]. Named output definitions are only
    /// used by `xsl:result-document`, which is outside the subset.
    fn compile_output(&mut self, m: usize, node: Node, precedence: usize) -> CResult<()> {
        self.check_attrs(
            m,
            node,
            &[
                "method",
                "indent",
                "encoding",
                "omit-xml-declaration",
                "media-type",
                "version",
                "standalone",
                "doctype-system",
                "doctype-public",
                "escape-uri-attributes",
                "include-content-type",
                "html-version",
                "byte-order-mark",
                "undeclare-prefixes",
                "suppress-indentation",
                "cdata-section-elements",
                "name",
                "normalization-form",
                // Accepted and without effect: the result is always a
                // single document node, built as a tree.
                "item-separator",
                "build-tree",
                "json-node-output-method",
                "allow-duplicate-names",
            ],
        )?;
        for flag in [
            "indent",
            "omit-xml-declaration",
            "escape-uri-attributes",
            "include-content-type",
            "byte-order-mark",
            "undeclare-prefixes",
            "build-tree",
            "allow-duplicate-names",
        ] {
            if self.attr(node, flag).is_some() {
                self.yes_no(m, node, flag, false).map_err(|mut e| {
                    e.message.push_str(" (XTSE0020)");
                    e
                })?;
            }
        }
        if let Some(s) = self.attr(node, "standalone") {
            if output_flag(&s).is_none() && s.trim() != "omit" {
                return Err(self.err(
                    m,
                    node,
                    format!("invalid standalone value '{}' (XTSE0020)", s.trim()),
                ));
            }
        }
        if let Some(method) = self.attr(node, "method") {
            output_method(method.trim()).map_err(|e| self.err(m, node, e))?;
        }
        if let Some(nf) = self.attr(node, "normalization-form") {
            normalization_form(nf.trim()).map_err(|e| self.err(m, node, e))?;
        }
        if let Some(enc) = self.attr(node, "encoding") {
            let enc = enc.trim();
            if crate::serialize::Encoding::from_label(enc).is_none() {
                return Err(self.err(m, node, format!("unsupported output encoding '{enc}' (supported: UTF-8, UTF-16, ISO-8859-1, US-ASCII)")));
            }
        }
        for list in ["cdata-section-elements", "suppress-indentation"] {
            if let Some(names) = self.attr(node, list) {
                for name in names.split_whitespace() {
                    self.output_name(m, node, name)?;
                }
            }
        }
        let name = match self.attr(node, "name") {
            Some(n) => self.qname(m, node, &n)?.key(),
            None => String::new(),
        };
        self.output_decls.push((m, node, precedence, name));
        Ok(())
    }

    /// A name of `cdata-section-elements` / `suppress-indentation`: an
    /// unprefixed name is in the default namespace (XSLT 3.0 §26.1).
    fn output_name(&mut self, m: usize, node: Node, name: &str) -> CResult<(String, String)> {
        let ns = self.namespaces(node);
        let q = resolve_lexical_qname(name, &ns).ok_or_else(|| {
            self.err(
                m,
                node,
                format!("invalid or unresolvable QName '{name}' (XTSE0280)"),
            )
        })?;
        let uri = if name.contains(':') || name.starts_with("Q{") {
            q.namespace().to_string()
        } else {
            ns.default_ns.clone()
        };
        Ok((uri, q.local_name().to_string()))
    }

    /// Merges the unnamed `xsl:output` declarations into the output
    /// definition (XSLT 3.0 §26): each attribute comes from the
    /// declaration of highest import precedence (two different values at
    /// that precedence are XTSE1560); the QName lists are united.
    fn finish_output(&mut self, principal: usize) -> CResult<OutputSettings> {
        let decls = std::mem::take(&mut self.output_decls);
        let mut out = OutputSettings {
            xslt1: match self.root_element(principal) {
                Ok(root) => self.effective_version(root) < 2.0,
                Err(_) => false,
            },
            ..OutputSettings::default()
        };
        // (definition, attribute) -> (precedence, normalized value, raw
        // value, module, node)
        type Chosen = HashMap<(String, String), (usize, String, String, usize, Node)>;
        let mut chosen: Chosen = HashMap::default();
        let mut conflicts: HashMap<(String, String), (usize, usize, Node)> = HashMap::default();
        for (m, node, prec, def) in &decls {
            let (m, node, prec) = (*m, *node, *prec);
            for (ns, local, value) in self.attrs(node) {
                if !ns.is_empty() || local == "name" {
                    continue;
                }
                if !def.is_empty() {
                    // a named definition: only checked for conflicts
                } else if matches!(
                    local.as_str(),
                    "cdata-section-elements" | "suppress-indentation"
                ) {
                    for name in value.split_whitespace() {
                        let q = self.output_name(m, node, name)?;
                        let list = if local == "cdata-section-elements" {
                            &mut out.cdata_section_elements
                        } else {
                            &mut out.suppress_indentation
                        };
                        if !list.contains(&q) {
                            list.push(q);
                        }
                    }
                    continue;
                }
                if matches!(
                    local.as_str(),
                    "cdata-section-elements" | "suppress-indentation"
                ) {
                    continue;
                }
                let norm = match output_flag(&value) {
                    Some(true) => "yes".to_string(),
                    Some(false) => "no".to_string(),
                    None => value.trim().to_string(),
                };
                let local = (def.clone(), local);
                match chosen.get(&local) {
                    Some((p, _, _, _, _)) if *p > prec => {}
                    Some((p, v, _, _, _)) if *p == prec => {
                        if *v != norm {
                            conflicts.insert(local.clone(), (prec, m, node));
                        }
                    }
                    _ => {
                        chosen.insert(local, (prec, norm, value, m, node));
                    }
                }
            }
        }
        for (local, (prec, m, node)) in &conflicts {
            if chosen.get(local).is_some_and(|c| c.0 == *prec) {
                return Err(self.err(
                    *m,
                    *node,
                    format!("conflicting values for {} in xsl:output declarations of the same import precedence (XTSE1560)", local.1),
                ));
            }
        }
        let get = |name: &str| {
            chosen
                .get(&(String::new(), name.to_string()))
                .map(|c| (c.1.as_str(), c.2.as_str(), c.3, c.4))
        };
        let flag = |name: &str| get(name).map(|(v, ..)| v == "yes");
        if let Some((v, ..)) = get("method") {
            out.method = output_method(v).unwrap_or_default();
            out.method_declared = true;
        }
        out.indent = flag("indent");
        if let Some((v, ..)) = get("encoding") {
            out.encoding = v.to_string();
        }
        out.omit_xml_declaration = flag("omit-xml-declaration").unwrap_or(false);
        out.media_type = get("media-type").map(|(_, raw, ..)| raw.to_string());
        out.standalone = get("standalone").and_then(|(v, ..)| output_flag(v));
        out.doctype_system = get("doctype-system")
            .map(|(_, raw, ..)| raw.to_string())
            .filter(|s| !s.is_empty());
        out.doctype_public = get("doctype-public")
            .map(|(_, raw, ..)| raw.trim().to_string())
            .filter(|s| !s.is_empty());
        out.byte_order_mark = flag("byte-order-mark");
        out.escape_uri_attributes = flag("escape-uri-attributes").unwrap_or(true);
        out.include_content_type = flag("include-content-type").unwrap_or(true);
        out.undeclare_prefixes = flag("undeclare-prefixes").unwrap_or(false);
        if let Some((v, ..)) = get("normalization-form") {
            out.normalization_form = normalization_form(v).unwrap_or_default();
        }
        let html = out.method_declared && out.method == OutputMethod::Html;
        if let Some((v, _, m, node)) = get("version") {
            if html {
                html_version(v).map_err(|e| self.err(m, node, e))?;
            } else if v != "1.0" {
                return Err(self.err(
                    m,
                    node,
                    format!("unsupported output version '{v}' (only XML 1.0; HTML 4.01 and 5.0 with method html)"),
                ));
            }
        }
        out.html5 = match (get("html-version"), get("version")) {
            (Some((v, _, m, node)), _) => html_version(v).map_err(|e| self.err(m, node, e))?,
            (None, Some((v, ..))) if html => html_version(v).unwrap_or(true),
            _ => true,
        };
        Ok(out)
    }

    /// The coercion of `$Q{internal}supplied` to the sequence type `ty`
    /// (the function conversion rules of an inline function parameter).
    fn coercion(&mut self, m: usize, node: Node, ty: &str) -> CResult<ExprId> {
        let ns = crate::xpath::INTERNAL_NS;
        let text = format!("(function($Q{{{ns}}}v as {ty}) {{ $Q{{{ns}}}v }})($Q{{{ns}}}supplied)");
        self.expr(m, node, &text)
    }

    fn compile_function(&mut self, m: usize, node: Node) -> CResult<()> {
        self.check_attrs(
            m,
            node,
            &[
                "name",
                "as",
                "visibility",
                "override",
                "override-extension-function",
                "new-each-time",
                "cache",
                "identity-sensitive",
                "streamability",
            ],
        )?;
        let Some(&index) = self.function_nodes.get(&node) else {
            return Ok(());
        };
        let saved = self.begin_frame();
        let children: Vec<Node> = self.xot.children(node).collect();
        let mut params = Vec::new();
        let mut rest = Vec::new();
        for c in children {
            if self.is_xsl(c, "param") {
                self.check_attrs(m, c, &["name", "as", "required"])?;
                if self.attr(c, "select").is_some() || self.has_content(c) {
                    return Err(self.err(
                        m,
                        c,
                        "a parameter of xsl:function cannot have a default value (XTSE0760)",
                    ));
                }
                let name = self.required_attr(m, c, "name")?;
                let name = self.qname(m, c, &name)?;
                if self.locals.iter().any(|(n, _)| *n == name) {
                    return Err(self.err(
                        m,
                        c,
                        format!("duplicate parameter ${} (XTSE0580)", name.local_name()),
                    ));
                }
                let coerce = match self.attr(c, "as") {
                    Some(t) => Some(self.coercion(m, c, &t)?),
                    None => None,
                };
                let slot = self.alloc_slot();
                self.locals.push((name, slot));
                params.push((slot, coerce));
            } else {
                rest.push(c);
            }
        }
        let body = self.body_of(m, node, &rest)?;
        let result = match self.attr(node, "as") {
            Some(t) => Some(self.coercion(m, node, &t)?),
            None => None,
        };
        let slots = self.end_frame(saved);
        if let Some(f) = self.functions.get_mut(index) {
            f.params = params;
            f.body = body;
            f.result = result;
            f.slots = slots;
        }
        Ok(())
    }

    fn compile_key(&mut self, m: usize, node: Node) -> CResult<()> {
        self.check_attrs(m, node, &["name", "match", "use"])?;
        let name = self.required_attr(m, node, "name")?;
        let name = self.qname(m, node, &name)?;
        let match_ = self.required_attr(m, node, "match")?;
        let use_ = self
            .attr(node, "use")
            .ok_or_else(|| self.err(m, node, "xsl:key without a use attribute is not supported"))?;
        if self.has_content(node) {
            return Err(self.err(m, node, "xsl:key with content is not supported"));
        }
        let pattern = self.pattern(m, node, &match_)?;
        let saved = self.begin_frame();
        let use_id = self.expr(m, node, &use_)?;
        self.end_frame(saved);
        if let Some(&k) = self.key_names.get(&name) {
            let bc = self.bc(node);
            if let Some(key) = self.keys.get_mut(k) {
                key.defs.push((pattern, use_id));
                key.string_values |= bc;
            }
        }
        Ok(())
    }

    fn compile_decimal_format(&mut self, m: usize, node: Node) -> CResult<()> {
        const ATTRS: &[&str] = &[
            "name",
            "decimal-separator",
            "grouping-separator",
            "infinity",
            "minus-sign",
            "NaN",
            "percent",
            "per-mille",
            "zero-digit",
            "digit",
            "pattern-separator",
        ];
        self.check_attrs(m, node, ATTRS)?;
        let name = match self.attr(node, "name") {
            Some(n) => Some(self.qname(m, node, &n)?),
            None => None,
        };
        let Some(&index) = self.format_names.get(&name) else {
            return Ok(());
        };
        let mut f = self.formats.get(index).cloned().unwrap_or_default();
        let ch = |c: &Compiler, attr: &str, default: char| -> CResult<char> {
            match c.attr(node, attr) {
                None => Ok(default),
                Some(v) => {
                    let mut it = v.chars();
                    match (it.next(), it.next()) {
                        (Some(ch), None) => Ok(ch),
                        _ => Err(c.err(m, node, format!("{attr} must be a single character"))),
                    }
                }
            }
        };
        f.decimal_separator = ch(self, "decimal-separator", f.decimal_separator)?;
        f.grouping_separator = ch(self, "grouping-separator", f.grouping_separator)?;
        f.minus_sign = ch(self, "minus-sign", f.minus_sign)?;
        f.percent = ch(self, "percent", f.percent)?;
        f.per_mille = ch(self, "per-mille", f.per_mille)?;
        f.zero_digit = ch(self, "zero-digit", f.zero_digit)?;
        f.digit = ch(self, "digit", f.digit)?;
        f.pattern_separator = ch(self, "pattern-separator", f.pattern_separator)?;
        f.exponent_separator = ch(self, "exponent-separator", f.exponent_separator)?;
        if let Some(v) = self.attr(node, "infinity") {
            f.infinity = v;
        }
        if let Some(v) = self.attr(node, "NaN") {
            f.nan = v;
        }
        if let Some(slot) = self.formats.get_mut(index) {
            *slot = f;
        }
        Ok(())
    }

    // ---- sequence constructors ----------------------------------------------

    fn preserve_space(&self, node: Node) -> bool {
        let space = self.xot.xml_space_name();
        for anc in self.xot.ancestors(node) {
            if let Some(value) = self.xot.get_attribute(anc, space) {
                return value.trim() == "preserve";
            }
        }
        false
    }

    fn body_of(&mut self, m: usize, parent: Node, children: &[Node]) -> CResult<Vec<Instr>> {
        let saved_locals = self.locals.len();
        let mut out = Vec::new();
        let preserve = self.preserve_space(parent);
        for &c in children {
            match self.xot.value(c) {
                XValue::Text(t) => {
                    let t = t.get();
                    // XML whitespace only: `trim` would also drop e.g. U+00A0
                    if preserve || !t.trim_matches([' ', '\t', '\n', '\r']).is_empty() {
                        if t.contains(['{', '}']) && self.expand_text(parent) {
                            let t = t.to_string();
                            out.push(self.text_template(m, parent, &t)?);
                        } else {
                            out.push(Instr::Text(t.to_string()));
                        }
                    }
                }
                XValue::Element(_) => {
                    if let Some(i) = self.instruction(m, c)? {
                        out.push(i);
                    }
                }
                _ => {}
            }
        }
        self.locals.truncate(saved_locals);
        if !self.bc(parent) {
            mark_sequence_spacing(&mut out);
            if out
                .iter()
                .any(|i| matches!(i, Instr::OnEmpty(_) | Instr::OnNonEmpty(_)))
            {
                let at = self.at(m, parent);
                out = vec![Instr::Conditional { parts: out, at }];
            }
        }
        Ok(out)
    }

    fn children_body(&mut self, m: usize, node: Node) -> CResult<Vec<Instr>> {
        let children: Vec<Node> = self.xot.children(node).collect();
        self.body_of(m, node, &children)
    }

    fn with_params(
        &mut self,
        m: usize,
        node: Node,
        allow_sort: bool,
    ) -> CResult<(Vec<WithParam>, Vec<Sort>)> {
        let mut params: Vec<WithParam> = Vec::new();
        let mut sorts = Vec::new();
        let children: Vec<Node> = self.xot.children(node).collect();
        for c in children {
            match self.xot.value(c) {
                XValue::Text(t) if t.get().trim().is_empty() => continue,
                XValue::Comment(_) | XValue::ProcessingInstruction(_) => continue,
                _ => {}
            }
            match self.xsl_local(c) {
                Some("with-param") => {
                    self.check_attrs(m, c, &["name", "select", "as", "tunnel"])?;
                    let tunnel = self.yes_no(m, c, "tunnel", false)?;
                    let name = self.required_attr(m, c, "name")?;
                    let name = self.qname(m, c, &name)?;
                    if tunnel {
                        if self.pending_tunnel.iter().any(|p| p.name == name) {
                            return Err(self.err(
                                m,
                                c,
                                format!(
                                    "duplicate xsl:with-param ${} (XTSE0670)",
                                    name.local_name()
                                ),
                            ));
                        }
                        let value = self.var_value(m, c)?;
                        self.pending_tunnel.push(WithParam { name, value });
                        continue;
                    }
                    if params.iter().any(|p| p.name == name) {
                        return Err(self.err(
                            m,
                            c,
                            format!("duplicate xsl:with-param ${} (XTSE0670)", name.local_name()),
                        ));
                    }
                    let value = self.var_value(m, c)?;
                    params.push(WithParam { name, value });
                }
                Some("sort") if allow_sort => {
                    self.check_stable(m, c, sorts.len())?;
                    sorts.push(self.sort(m, c)?)
                }
                _ => {
                    return Err(self.err(
                        m,
                        c,
                        format!(
                            "unexpected content in xsl:{} (XTSE0010)",
                            self.xsl_local(node).unwrap_or("?")
                        ),
                    ))
                }
            }
        }
        Ok((params, sorts))
    }

    fn sort(&mut self, m: usize, node: Node) -> CResult<Sort> {
        self.check_attrs(
            m,
            node,
            // `lang` is accepted: the language-specific collation it asks
            // for is implementation-defined; strings sort by code point.
            &[
                "select",
                "data-type",
                "order",
                "case-order",
                "stable",
                "lang",
            ],
        )?;
        if let Some(lang) = self.attr(node, "lang") {
            if lang.contains('{') {
                return Err(self.err(
                    m,
                    node,
                    "attribute value templates are not supported in lang of xsl:sort",
                ));
            }
            let valid = !lang.is_empty()
                && lang.split('-').enumerate().all(|(i, part)| {
                    (1..=8).contains(&part.len())
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
                });
            if !valid {
                return Err(self.err(
                    m,
                    node,
                    format!("lang=\"{lang}\" is not a valid language code (XTSE0020)"),
                ));
            }
        }
        if self.has_content(node) {
            return Err(self.err(m, node, "xsl:sort with content is not supported"));
        }
        let select = match self.attr(node, "select") {
            Some(s) => Some(self.expr(m, node, &s)?),
            None => None,
        };
        let number = match self
            .literal_attr(m, node, "data-type")?
            .as_deref()
            .map(str::trim)
        {
            None | Some("text") => false,
            Some("number") => true,
            Some(other) => {
                return Err(self.err(
                    m,
                    node,
                    format!("unsupported data-type '{other}' (text or number)"),
                ))
            }
        };
        let descending = match self
            .literal_attr(m, node, "order")?
            .as_deref()
            .map(str::trim)
        {
            None | Some("ascending") => false,
            Some("descending") => true,
            Some(other) => return Err(self.err(m, node, format!("invalid order '{other}'"))),
        };
        let upper_first = match self
            .literal_attr(m, node, "case-order")?
            .as_deref()
            .map(str::trim)
        {
            None => None,
            Some("upper-first") => Some(true),
            Some("lower-first") => Some(false),
            Some(other) => return Err(self.err(m, node, format!("invalid case-order '{other}'"))),
        };
        let typed = !self.bc(node) && self.attr(node, "data-type").is_none();
        Ok(Sort {
            select,
            number,
            descending,
            upper_first,
            typed,
        })
    }

    /// Split leading xsl:sort children from the rest.
    /// `XTSE1017`: only the first `xsl:sort` may say `stable`.
    fn check_stable(&self, m: usize, node: Node, index: usize) -> CResult<()> {
        if index > 0 && self.attr(node, "stable").is_some() {
            return Err(self.err(
                m,
                node,
                "only the first xsl:sort may have a stable attribute (XTSE1017)",
            ));
        }
        Ok(())
    }

    fn sorts_and_body(&mut self, m: usize, node: Node) -> CResult<(Vec<Sort>, Vec<Instr>)> {
        let children: Vec<Node> = self.xot.children(node).collect();
        let mut sorts = Vec::new();
        let mut rest = Vec::new();
        let mut sorting = true;
        for c in children {
            if sorting && self.is_xsl(c, "sort") {
                self.check_stable(m, c, sorts.len())?;
                sorts.push(self.sort(m, c)?);
                continue;
            }
            if self.is_xsl(c, "sort") {
                return Err(self.err(m, c, "xsl:sort must come first (XTSE0010)"));
            }
            let ws_text = self
                .xot
                .text_str(c)
                .map(|t| t.trim().is_empty())
                .unwrap_or(false);
            if !ws_text && self.xot.comment(c).is_none() {
                sorting = false;
            }
            rest.push(c);
        }
        let body = self.body_of(m, node, &rest)?;
        Ok((sorts, body))
    }

    fn value_or_body(&mut self, m: usize, node: Node) -> CResult<Value> {
        let select = self.attr(node, "select");
        let has_content = self.has_content(node);
        match (select, has_content) {
            (Some(_), true) => Err(self.err(
                m,
                node,
                format!(
                    "xsl:{} must not have both a select attribute and content (XTSE0840)",
                    self.xsl_local(node).unwrap_or("?")
                ),
            )),
            (Some(s), false) => Ok(Value::Select(self.expr(m, node, &s)?)),
            (None, true) => Ok(Value::Body(self.children_body(m, node)?)),
            (None, false) => Ok(Value::Empty),
        }
    }

    fn no_doe(&self, m: usize, node: Node) -> CResult<()> {
        if self.yes_no(m, node, "disable-output-escaping", false)? {
            return Err(self.err(m, node, "disable-output-escaping=\"yes\" is not supported"));
        }
        Ok(())
    }

    fn instruction(&mut self, m: usize, node: Node) -> CResult<Option<Instr>> {
        let Some(local) = self.xsl_local(node).map(str::to_string) else {
            let ns = self
                .xot
                .element(node)
                .map(|e| self.xot.name_ns_str(e.name()).1.to_string())
                .unwrap_or_default();
            if !ns.is_empty() && self.extension_namespaces(node).contains(&ns) {
                return self.extension_instruction(m, node).map(Some);
            }
            return Ok(Some(self.literal_element(m, node)?));
        };
        let at = self.at(m, node);
        let instr = match local.as_str() {
            "text" => {
                self.check_attrs(m, node, &["disable-output-escaping"])?;
                self.no_doe(m, node)?;
                if self.xot.children(node).any(|c| self.xot.element(c).is_some()) {
                    return Err(self.err(m, node, "xsl:text must contain only text (XTSE0010)"));
                }
                let text: String = self.xot.children(node).filter_map(|c| self.xot.text_str(c)).collect();
                if text.contains(['{', '}']) && self.expand_text(node) {
                    return Ok(Some(self.text_template(m, node, &text)?));
                }
                Instr::Text(text)
            }
            "value-of" => {
                self.check_attrs(m, node, &["select", "separator", "disable-output-escaping"])?;
                self.no_doe(m, node)?;
                let value = self.value_or_body(m, node)?;
                if matches!(value, Value::Empty) {
                    return Err(self.err(m, node, "xsl:value-of needs a select attribute or content (XTSE0870)"));
                }
                let separator = match self.attr(node, "separator") {
                    Some(s) => Some(self.avt(m, node, &s)?),
                    None => None,
                };
                let first_only = self.bc(node) && separator.is_none();
                if let Value::Body(body) = &value {
                    if !self.bc(node) && (separator.is_some() || may_yield_atomics(body)) {
                        return Ok(Some(Instr::ValueOfSeq { body: body.clone(), separator, at }));
                    }
                }
                Instr::ValueOf { value, separator, first_only, at }
            }
            "apply-templates" => {
                self.check_attrs(m, node, &["select", "mode"])?;
                let select = match self.attr(node, "select") {
                    Some(s) => Some(self.expr(m, node, &s)?),
                    None => None,
                };
                let mode = match self.attr(node, "mode").as_deref().map(str::trim) {
                    None | Some("#default") => ModeSel::Mode(0),
                    Some("#current") => ModeSel::Current,
                    Some(name) => {
                        let q = self.qname(m, node, name)?;
                        ModeSel::Mode(self.mode_index(&q))
                    }
                };
                let outer_tunnel = std::mem::take(&mut self.pending_tunnel);
                let (params, sorts) = self.with_params(m, node, true)?;
                let tunnel = std::mem::replace(&mut self.pending_tunnel, outer_tunnel);
                Self::with_tunnel(tunnel, Instr::ApplyTemplates { select, mode, params, sorts, at })
            }
            "call-template" => {
                self.check_attrs(m, node, &["name"])?;
                let name = self.required_attr(m, node, "name")?;
                let q = self.qname(m, node, &name)?;
                let Some(&(template, _)) = self.template_names.get(&q) else {
                    return Err(self.err(m, node, format!("no template named {name} (XTSE0650)")));
                };
                let outer_tunnel = std::mem::take(&mut self.pending_tunnel);
                let (params, _) = self.with_params(m, node, false)?;
                if !self.bc(node) {
                    let names = params.iter().map(|p| p.name.clone()).collect();
                    self.call_checks.push((m, node, template, names));
                }
                let tunnel = std::mem::replace(&mut self.pending_tunnel, outer_tunnel);
                Self::with_tunnel(tunnel, Instr::CallTemplate { template, params, at })
            }
            "for-each" => {
                self.check_attrs(m, node, &["select"])?;
                let select = self.required_attr(m, node, "select")?;
                let select = self.expr(m, node, &select)?;
                let (sorts, mut body) = self.sorts_and_body(m, node)?;
                if !self.bc(node) {
                    mark_loop_spacing(&mut body);
                }
                Instr::ForEach { select, sorts, body, at }
            }
            "if" => {
                self.check_attrs(m, node, &["test"])?;
                let test = self.required_attr(m, node, "test")?;
                let test = self.expr(m, node, &test)?;
                let body = self.children_body(m, node)?;
                Instr::If { test, body }
            }
            "choose" => {
                self.check_attrs(m, node, &[])?;
                let mut whens = Vec::new();
                let mut otherwise = None;
                let children: Vec<Node> = self.xot.children(node).collect();
                for c in children {
                    if let Some(t) = self.xot.text_str(c) {
                        if t.trim().is_empty() {
                            continue;
                        }
                        return Err(self.err(m, node, "text is not allowed in xsl:choose (XTSE0010)"));
                    }
                    if self.xot.element(c).is_none() {
                        continue;
                    }
                    match self.xsl_local(c) {
                        Some("when") if otherwise.is_none() => {
                            self.check_attrs(m, c, &["test"])?;
                            let test = self.required_attr(m, c, "test")?;
                            let test = self.expr(m, c, &test)?;
                            let body = self.children_body(m, c)?;
                            whens.push((test, body));
                        }
                        Some("otherwise") if otherwise.is_none() => {
                            self.check_attrs(m, c, &[])?;
                            otherwise = Some(self.children_body(m, c)?);
                        }
                        _ => return Err(self.err(m, c, "only xsl:when and a final xsl:otherwise are allowed in xsl:choose (XTSE0010)")),
                    }
                }
                if whens.is_empty() {
                    return Err(self.err(m, node, "xsl:choose needs at least one xsl:when (XTSE0010)"));
                }
                Instr::Choose { whens, otherwise: otherwise.unwrap_or_default() }
            }
            "variable" => {
                self.check_attrs(m, node, &["name", "select", "as"])?;
                let name = self.required_attr(m, node, "name")?;
                let name = self.qname(m, node, &name)?;
                let value = self.var_value(m, node)?;
                let slot = self.alloc_slot();
                self.locals.push((name, slot));
                Instr::Variable { slot, value, at }
            }
            "param" => return Err(self.err(m, node, "xsl:param is only allowed at the start of a template or at the top level (XTSE0010)")),
            "element" => {
                self.check_attrs(m, node, &["name", "namespace"])?;
                let name = self.required_attr(m, node, "name")?;
                let name = self.avt(m, node, &name)?;
                let namespace = match self.attr(node, "namespace") {
                    Some(n) => Some(self.avt(m, node, &n)?),
                    None => None,
                };
                let nsctx = self.element_nsctx(node);
                let body = self.children_body(m, node)?;
                Instr::Element { name, namespace, nsctx, body, at }
            }
            "attribute" => {
                self.check_attrs(m, node, &["name", "namespace", "select", "separator"])?;
                let name = self.required_attr(m, node, "name")?;
                let name = self.avt(m, node, &name)?;
                let namespace = match self.attr(node, "namespace") {
                    Some(n) => Some(self.avt(m, node, &n)?),
                    None => None,
                };
                let separator = match self.attr(node, "separator") {
                    Some(s) => Some(self.avt(m, node, &s)?),
                    None => None,
                };
                let nsctx = self.element_nsctx(node);
                let value = self.value_or_body(m, node)?;
                Instr::Attribute { name, namespace, nsctx, value, separator, at }
            }
            "comment" => {
                self.check_attrs(m, node, &["select"])?;
                Instr::Comment { value: self.value_or_body(m, node)?, at }
            }
            "processing-instruction" => {
                self.check_attrs(m, node, &["name", "select"])?;
                let name = self.required_attr(m, node, "name")?;
                let name = self.avt(m, node, &name)?;
                Instr::ProcessingInstruction { name, value: self.value_or_body(m, node)?, at }
            }
            "namespace" => {
                self.check_attrs(m, node, &["name", "select"])?;
                let name = self.required_attr(m, node, "name")?;
                let name = self.avt(m, node, &name)?;
                Instr::Namespace { name, value: self.value_or_body(m, node)?, at }
            }
            "copy" => {
                self.check_attrs(m, node, &["copy-namespaces"])?;
                if !self.yes_no(m, node, "copy-namespaces", true)? {
                    return Err(self.err(m, node, "copy-namespaces=\"no\" is not supported"));
                }
                Instr::Copy { body: self.children_body(m, node)?, at }
            }
            "copy-of" => {
                self.check_attrs(m, node, &["select", "copy-namespaces"])?;
                if !self.yes_no(m, node, "copy-namespaces", true)? {
                    return Err(self.err(m, node, "copy-namespaces=\"no\" is not supported"));
                }
                if self.has_content(node) {
                    return Err(self.err(m, node, "xsl:copy-of must be empty (XTSE0260)"));
                }
                let select = self.required_attr(m, node, "select")?;
                Instr::CopyOf { select: self.expr(m, node, &select)?, at }
            }
            "sequence" => {
                self.check_attrs(m, node, &["select"])?;
                if self.has_content(node) {
                    return Err(self.err(m, node, "xsl:sequence with content is not supported"));
                }
                let select = self.required_attr(m, node, "select")?;
                Instr::Sequence { select: self.expr(m, node, &select)?, at }
            }
            "message" => {
                self.check_attrs(m, node, &["select", "terminate"])?;
                let terminate = match self.attr(node, "terminate") {
                    None => None,
                    Some(t) => {
                        let avt = self.avt(m, node, &t)?;
                        if let Some(lit) = avt.literal() {
                            if terminate_flag(lit).is_none() {
                                return Err(self.err(m, node, format!("invalid terminate value '{lit}' (XTSE0020)")));
                            }
                        }
                        Some(avt)
                    }
                };
                // XSLT 2.0+: select and content may both be given (the
                // select value comes first)
                let value = match self.attr(node, "select") {
                    Some(sel) if self.has_content(node) => {
                        let id = self.expr(m, node, &sel)?;
                        let mut body = vec![Instr::ValueOf {
                            value: Value::Select(id),
                            separator: None,
                            first_only: self.bc(node),
                            at,
                        }];
                        body.extend(self.children_body(m, node)?);
                        Value::Body(body)
                    }
                    _ => self.value_or_body(m, node)?,
                };
                Instr::Message { value, terminate, at }
            }
            "number" => self.number(m, node, at)?,
            // the instruction around it is known: the fallback is not used
            "fallback" => return Ok(None),
            other => return self.instruction3(m, node, other, at),
        };
        Ok(Some(instr))
    }

    fn number(&mut self, m: usize, node: Node, at: At) -> CResult<Instr> {
        self.check_attrs(
            m,
            node,
            &[
                "value",
                "level",
                "count",
                "from",
                "format",
                "grouping-separator",
                "grouping-size",
                "select",
            ],
        )?;
        if self.has_content(node) {
            return Err(self.err(m, node, "xsl:number must be empty"));
        }
        let select = match self.attr(node, "select") {
            Some(s) => Some(self.expr(m, node, &s)?),
            None => None,
        };
        let value = match self.attr(node, "value") {
            Some(v) => Some(self.expr(m, node, &v)?),
            None => None,
        };
        if value.is_some() {
            if let Some(a) = ["level", "count", "from"]
                .into_iter()
                .find(|a| self.attr(node, a).is_some())
            {
                return Err(self.err(
                    m,
                    node,
                    format!("xsl:number with value must not have {a} (XTSE0975)"),
                ));
            }
        }
        let level = match self
            .literal_attr(m, node, "level")?
            .as_deref()
            .map(str::trim)
        {
            None | Some("single") => NumberLevel::Single,
            Some("multiple") => NumberLevel::Multiple,
            Some("any") => NumberLevel::Any,
            Some(other) => return Err(self.err(m, node, format!("invalid level '{other}'"))),
        };
        let count = match self.attr(node, "count") {
            Some(p) => Some(self.pattern(m, node, &p)?),
            None => None,
        };
        let from = match self.attr(node, "from") {
            Some(p) => Some(self.pattern(m, node, &p)?),
            None => None,
        };
        let format = self.attr(node, "format").unwrap_or_else(|| "1".to_string());
        let format = self.avt(m, node, &format)?;
        if let Some(f) = format.literal() {
            drehscheibe_xpath::functions::format_number::check_number_format(f)
                .map_err(|e| self.err(m, node, e.to_string()))?;
        }
        let grouping_separator = self.literal_attr(m, node, "grouping-separator")?;
        let grouping_size = match self.literal_attr(m, node, "grouping-size")? {
            Some(s) => Some(
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| self.err(m, node, format!("invalid grouping-size '{s}'")))?,
            ),
            None => None,
        };
        Ok(Instr::Number {
            def: Box::new(NumberDef {
                value,
                select,
                level,
                count,
                from,
                format,
                grouping_separator,
                grouping_size,
            }),
            at,
        })
    }

    /// Namespace context of xsl:element/xsl:attribute names: the in-scope
    /// namespaces including the default namespace.
    fn element_nsctx(&mut self, node: Node) -> Arc<NsCtx> {
        self.namespaces(node)
    }

    /// The extension namespaces in effect at `node`: the URIs of the
    /// prefixes of `extension-element-prefixes` on XSLT ancestors and of
    /// `xsl:extension-element-prefixes` on literal result ancestors.
    fn extension_namespaces(&self, node: Node) -> Rc<[String]> {
        self.exclusions(node).extension.clone()
    }

    /// An instruction in an extension namespace: none is implemented, so
    /// its `xsl:fallback` children run instead; without any, executing it
    /// is the dynamic error `XTDE1450` (XSLT 3.0 §23.2).
    fn extension_instruction(&mut self, m: usize, node: Node) -> CResult<Instr> {
        let fallbacks: Vec<Node> = self
            .xot
            .children(node)
            .filter(|c| self.is_xsl(*c, "fallback"))
            .collect();
        let at = self.at(m, node);
        if fallbacks.is_empty() {
            let name = self
                .xot
                .element(node)
                .map(|e| {
                    let (l, n) = self.xot.name_ns_str(e.name());
                    format!("Q{{{n}}}{l}")
                })
                .unwrap_or_default();
            let text = format!(
                "error(QName('http://www.w3.org/2005/xqt-errors', 'err:XTDE1450'),                  'the extension instruction {name} is not available and has no xsl:fallback')"
            );
            let select = self.expr(m, node, &text)?;
            return Ok(Instr::Sequence { select, at });
        }
        let mut body = Vec::new();
        for f in fallbacks {
            self.check_attrs(m, f, &[])?;
            body.extend(self.children_body(m, f)?);
        }
        // a conditional that is always true: a sequence constructor as
        // one instruction, its variables scoped to it
        let test = self.expr(m, node, "true()")?;
        Ok(Instr::If { test, body })
    }

    /// The namespaces a literal result element at `node` does not copy:
    /// the XSLT namespace, the extension namespaces and those named by
    /// `exclude-result-prefixes` on it and its ancestors.
    fn excluded_namespaces(&self, node: Node) -> Rc<[String]> {
        self.exclusions(node).excluded.clone()
    }

    /// [`Exclusions`] at `node`, memoized per element: an element's are
    /// its parent's plus what its own attributes add, so each element's
    /// attributes are read once (not once per descendant). Iterative, so
    /// that a deeply nested stylesheet cannot exhaust the stack.
    fn exclusions(&self, node: Node) -> Rc<Exclusions> {
        let mut chain = Vec::new();
        let mut cur = Some(node);
        let mut inherited = None;
        while let Some(n) = cur {
            if self.xot.element(n).is_none() {
                break;
            }
            if let Some(found) = self.exclusions_memo.borrow().get(&n) {
                inherited = Some(found.clone());
                break;
            }
            chain.push(n);
            cur = self.xot.parent(n);
        }
        let mut current = inherited.unwrap_or_else(|| {
            Rc::new(Exclusions {
                extension: Rc::from(Vec::new()),
                excluded: Rc::from(vec![XSL_NS.to_string()]),
            })
        });
        for &n in chain.iter().rev() {
            current = self.own_exclusions(n, &current);
            self.exclusions_memo.borrow_mut().insert(n, current.clone());
        }
        current
    }

    /// `inherited` plus what the attributes of element `el` add.
    fn own_exclusions(&self, el: Node, inherited: &Rc<Exclusions>) -> Rc<Exclusions> {
        let is_xsl = self.xsl_local(el).is_some();
        let mut extension: Vec<String> = Vec::new();
        let mut excluded: Vec<String> = Vec::new();
        let in_scope = |prefix: Option<&str>| -> Vec<String> {
            self.xot
                .namespaces_in_scope(el)
                .filter(|(p, _)| prefix.is_none_or(|want| self.xot.prefix_str(*p) == want))
                .map(|(_, n)| self.xot.namespace_str(n).to_string())
                .collect()
        };
        for (ns, local, value) in self.attrs_ref(el) {
            let applies = (is_xsl && ns.is_empty()) || (!is_xsl && ns == XSL_NS);
            if !applies {
                continue;
            }
            match local {
                "extension-element-prefixes" => {
                    for token in value.split_whitespace() {
                        let prefix = if token == "#default" { "" } else { token };
                        extension.extend(in_scope(Some(prefix)));
                    }
                }
                "exclude-result-prefixes" => {
                    for token in value.split_whitespace() {
                        match token {
                            "#all" => excluded.extend(in_scope(None)),
                            "#default" => excluded.extend(in_scope(Some(""))),
                            prefix => excluded.extend(in_scope(Some(prefix))),
                        }
                    }
                }
                _ => {}
            }
        }
        if extension.is_empty() && excluded.is_empty() {
            return inherited.clone();
        }
        let mut all_extension = inherited.extension.to_vec();
        all_extension.extend(extension.iter().cloned());
        let mut all_excluded = inherited.excluded.to_vec();
        all_excluded.extend(extension);
        all_excluded.extend(excluded);
        Rc::new(Exclusions {
            extension: Rc::from(all_extension),
            excluded: Rc::from(all_excluded),
        })
    }

    fn literal_element(&mut self, m: usize, node: Node) -> CResult<Instr> {
        let at = self.at(m, node);
        let Some(el) = self.xot.element(node) else {
            return Err(self.err(m, node, "expected an element"));
        };
        let (local, ns) = {
            let (l, n) = self.xot.name_ns_str(el.name());
            (l.to_string(), n.to_string())
        };
        let prefix = self
            .xot
            .namespaces_in_scope(node)
            .find(|(_, n)| self.xot.namespace_str(*n) == ns)
            .map(|(p, _)| self.xot.prefix_str(p).to_string())
            .unwrap_or_default();
        let name = self.name_idx(&ns, &local, &prefix);
        // namespace nodes: all in-scope namespaces except excluded ones;
        // the element's own binding goes first (it is the preferred prefix)
        let excluded = self.excluded_namespaces(node);
        let parent_is_lre = self
            .xot
            .parent(node)
            .map(|p| self.xot.element(p).is_some() && self.xsl_local(p).is_none())
            .unwrap_or(false);
        let mut bindings: Vec<(String, String)> = self
            .xot
            .namespaces_in_scope(node)
            .map(|(p, n)| {
                (
                    self.xot.prefix_str(p).to_string(),
                    self.xot.namespace_str(n).to_string(),
                )
            })
            .filter(|(p, u)| p != "xml" && (!excluded.contains(u) || *u == ns && *p == prefix))
            .collect();
        if parent_is_lre {
            let own: Vec<(String, String)> = self
                .xot
                .namespaces(node)
                .iter()
                .map(|(p, n)| {
                    (
                        self.xot.prefix_str(p).to_string(),
                        self.xot.namespace_str(*n).to_string(),
                    )
                })
                .collect();
            bindings.retain(|b| own.contains(b) || (b.1 == ns && b.0 == prefix));
        }
        bindings.sort_by_key(|(p, u)| !(*p == prefix && *u == ns));
        let namespaces: Vec<NsIdx> = bindings.iter().map(|(p, u)| self.ns_idx(p, u)).collect();
        let mut attributes = Vec::new();
        for (ans, alocal, value) in self.attrs(node) {
            if ans == XSL_NS {
                match alocal.as_str() {
                    "version" | "expand-text" => continue,
                    "exclude-result-prefixes" | "extension-element-prefixes" => {
                        self.check_prefix_list(m, node, &alocal, &value)?;
                        continue;
                    }
                    other => {
                        return Err(self.err(
                            m,
                            node,
                            format!(
                                "unsupported attribute xsl:{other} on a literal result element"
                            ),
                        ))
                    }
                }
            }
            let aprefix = if ans.is_empty() {
                String::new()
            } else if ans == XML_NS {
                "xml".to_string()
            } else {
                self.xot
                    .namespaces_in_scope(node)
                    .find(|(p, n)| {
                        self.xot.namespace_str(*n) == ans && !self.xot.prefix_str(*p).is_empty()
                    })
                    .map(|(p, _)| self.xot.prefix_str(p).to_string())
                    .unwrap_or_default()
            };
            let idx = self.name_idx(&ans, &alocal, &aprefix);
            let avt = self.avt(m, node, &value)?;
            attributes.push((idx, avt));
        }
        let body = self.children_body(m, node)?;
        Ok(Instr::LiteralElement {
            name,
            namespaces,
            attributes,
            body,
            at,
        })
    }
}

/// The host of `use-when` conditions: the XSLT functions that make sense
/// at compile time (`system-property()`, `function-available()`,
/// `element-available()`, `type-available()`); no variables.
struct StaticHost<'n> {
    ns: &'n NsCtx,
    bc: bool,
}

/// The XSLT instructions the compiler accepts (for `element-available()`
/// in `use-when`).
const STATIC_INSTRUCTIONS: &[&str] = &[
    "apply-templates",
    "apply-imports",
    "attribute",
    "call-template",
    "choose",
    "comment",
    "copy",
    "copy-of",
    "element",
    "for-each",
    "if",
    "message",
    "namespace",
    "next-match",
    "number",
    "processing-instruction",
    "sequence",
    "text",
    "value-of",
    "variable",
    "analyze-string",
    "break",
    "catch",
    "for-each-group",
    "iterate",
    "map",
    "map-entry",
    "matching-substring",
    "next-iteration",
    "non-matching-substring",
    "on-completion",
    "perform-sort",
    "on-non-empty",
    "on-empty",
    "where-populated",
    "try",
];

impl<'a> drehscheibe_xpath::Host<'a> for StaticHost<'_> {
    fn variable(&mut self, id: u32) -> Result<drehscheibe_xpath::Sequence<'a>, XError> {
        Err(XError::new(
            "XPST0008",
            format!("variables ({id}) are not available in use-when"),
        ))
    }

    fn call(
        &mut self,
        id: u32,
        args: Vec<drehscheibe_xpath::Sequence<'a>>,
    ) -> Result<drehscheibe_xpath::Sequence<'a>, XError> {
        use crate::xpath::{decode_fn, HostFn, XsltFn};
        use drehscheibe_xpath::{Item, Sequence};
        let arg = |i: usize| -> String {
            args.get(i)
                .and_then(|s| s.first())
                .and_then(|item| match item {
                    Item::Atomic(a) => Some(a.to_xs_string()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let qname = |lexical: &str| resolve_lexical_qname(lexical, self.ns);
        match decode_fn(id) {
            Some(HostFn::Xslt(XsltFn::SystemProperty, _)) => {
                let value = match qname(&arg(0)) {
                    Some(q) if q.namespace() == XSL_NS => {
                        crate::xpath::system_property(q.local_name(), self.bc)
                    }
                    _ => "",
                };
                Ok(Sequence::string(value))
            }
            Some(HostFn::Xslt(XsltFn::FunctionAvailable, _)) => {
                let name = arg(0);
                let arity = args.get(1).and_then(|s| s.first()).and_then(|i| match i {
                    Item::Atomic(drehscheibe_xpath::value::Atomic::Integer(n)) => {
                        usize::try_from(*n).ok()
                    }
                    _ => None,
                });
                let q = if name.contains(':') || name.starts_with("Q{") {
                    qname(&name)
                } else {
                    Some(XName::new(
                        name.trim().to_string(),
                        drehscheibe_xpath::functions::FN.to_string(),
                        String::new(),
                    ))
                };
                let available =
                    q.is_some_and(|q| crate::xpath::builtin_function_available(&q, arity));
                Ok(Sequence::boolean(available))
            }
            Some(HostFn::Xslt(XsltFn::ElementAvailable, _)) => {
                let available = qname(&arg(0)).is_some_and(|q| {
                    q.namespace() == XSL_NS && STATIC_INSTRUCTIONS.contains(&q.local_name())
                });
                Ok(Sequence::boolean(available))
            }
            Some(HostFn::Xslt(XsltFn::TypeAvailable, _)) => {
                let available = qname(&arg(0)).is_some_and(|q| crate::xpath::type_available(&q));
                Ok(Sequence::boolean(available))
            }
            _ => Err(XError::new(
                "XPST0017",
                "this function is not available in use-when (no dynamic context)",
            )),
        }
    }
}

/// A yes/no serialization parameter value (`yes`, `true`, `1` / `no`,
/// `false`, `0`, surrounding whitespace allowed).
fn output_flag(value: &str) -> Option<bool> {
    match value.trim() {
        "yes" | "true" | "1" => Some(true),
        "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// The `method` of `xsl:output`.
fn output_method(value: &str) -> Result<OutputMethod, String> {
    match value {
        "xml" => Ok(OutputMethod::Xml),
        "html" => Ok(OutputMethod::Html),
        "xhtml" => Ok(OutputMethod::Xhtml),
        "text" => Ok(OutputMethod::Text),
        other if other.contains(':') || other.starts_with("Q{") => Err(format!(
            "unsupported output method '{other}' (supported: xml, html, xhtml, text)"
        )),
        "json" | "adaptive" => Err(format!(
            "unsupported output method '{value}' (supported: xml, html, xhtml, text)"
        )),
        other => Err(format!("invalid output method '{other}' (XTSE1570)")),
    }
}

/// The `normalization-form` of `xsl:output`.
fn normalization_form(value: &str) -> Result<crate::NormalizationForm, String> {
    use crate::NormalizationForm as N;
    match value {
        "none" => Ok(N::None),
        "NFC" => Ok(N::Nfc),
        "NFD" => Ok(N::Nfd),
        "NFKC" => Ok(N::Nfkc),
        "NFKD" => Ok(N::Nfkd),
        other => Err(format!(
            "unsupported normalization-form '{other}' (supported: NFC, NFD, NFKC, NFKD, none)"
        )),
    }
}

/// Whether a requested HTML version (`html-version`, or `version` of the
/// html method) is 5.0; versions below 5 select HTML 4.01 rules.
fn html_version(value: &str) -> Result<bool, String> {
    match value.trim().parse::<f64>() {
        Ok(5.0) => Ok(true),
        Ok(v) if (1.0..5.0).contains(&v) => Ok(false),
        _ => Err(format!(
            "unsupported HTML version '{}' (supported: 1.0 to 5.0) (SESU0013)",
            value.trim()
        )),
    }
}

/// The namespace of the `$err:*` variables of `xsl:catch`.
const ERR_NS: &str = "http://www.w3.org/2005/xqt-errors";

/// XSLT 2.0/3.0 instructions: grouping, regular expressions, iteration,
/// error recovery, `xsl:next-match`, tunnel parameters and `xsl:mode`.
impl Compiler {
    /// Wraps an invocation in [`Instr::WithTunnel`] when it passes tunnel
    /// parameters (stylesheets without them get the plain instruction).
    fn with_tunnel(tunnel: Vec<WithParam>, instr: Instr) -> Instr {
        if tunnel.is_empty() {
            instr
        } else {
            Instr::WithTunnel {
                params: tunnel,
                body: Box::new(instr),
            }
        }
    }

    /// A template's `xsl:param tunnel="yes"`: bound at the start of the
    /// body from the tunnel parameters of the invocation.
    fn compile_tunnel_param(&mut self, m: usize, node: Node) -> CResult<Instr> {
        self.check_attrs(m, node, &["name", "select", "required", "as", "tunnel"])?;
        let (name, required, value, slot) = self.param_local(m, node)?;
        Ok(Instr::TunnelParam {
            name,
            slot,
            value,
            required,
            at: self.at(m, node),
        })
    }

    /// `xsl:mode` (top level): `on-no-match`, `on-multiple-match`.
    fn compile_mode(&mut self, m: usize, node: Node) -> CResult<()> {
        self.check_attrs(
            m,
            node,
            &[
                "name",
                "on-no-match",
                "on-multiple-match",
                "warning-on-no-match",
                "warning-on-multiple-match",
                "streamable",
                "visibility",
                "use-accumulators",
                "typed",
            ],
        )?;
        if self.yes_no(m, node, "streamable", false)? {
            return Err(self.err(m, node, "streamable modes are not supported"));
        }
        let index = match self.attr(node, "name").as_deref().map(str::trim) {
            None | Some("#unnamed") | Some("#default") => 0,
            Some(name) => {
                let q = self.qname(m, node, name)?;
                self.mode_index(&q)
            }
        };
        let on_no_match = match self.attr(node, "on-no-match").as_deref().map(str::trim) {
            None | Some("text-only-copy") => OnNoMatch::TextOnlyCopy,
            Some("shallow-copy") => OnNoMatch::ShallowCopy,
            Some("deep-copy") => OnNoMatch::DeepCopy,
            Some("shallow-skip") => OnNoMatch::ShallowSkip,
            Some("deep-skip") => OnNoMatch::DeepSkip,
            Some("fail") => OnNoMatch::Fail,
            Some(other) => {
                return Err(self.err(m, node, format!("invalid on-no-match '{other}' (XTSE0020)")))
            }
        };
        let fail_on_multiple = match self
            .attr(node, "on-multiple-match")
            .as_deref()
            .map(str::trim)
        {
            None | Some("use-last") => false,
            Some("fail") => true,
            Some(other) => {
                return Err(self.err(
                    m,
                    node,
                    format!("invalid on-multiple-match '{other}' (XTSE0020)"),
                ))
            }
        };
        if self.has_content(node) {
            return Err(self.err(m, node, "xsl:mode must be empty (XTSE0010)"));
        }
        if let Some(mode) = self.modes.get_mut(index) {
            mode.on_no_match = on_no_match;
            mode.fail_on_multiple = fail_on_multiple;
        }
        Ok(())
    }

    /// The instructions added in XSLT 2.0/3.0 (called for names the
    /// XSLT 1.0 part of [`Compiler::instruction`] does not know).
    fn instruction3(
        &mut self,
        m: usize,
        node: Node,
        local: &str,
        at: At,
    ) -> CResult<Option<Instr>> {
        let instr = match local {
            "for-each-group" => {
                self.check_attrs(
                    m,
                    node,
                    &[
                        "select",
                        "group-by",
                        "group-adjacent",
                        "group-starting-with",
                        "group-ending-with",
                        "composite",
                        "collation",
                    ],
                )?;
                if let Some(c) = self.attr(node, "collation") {
                    if c.trim() != drehscheibe_xpath::functions::numeric::CODEPOINT_COLLATION {
                        return Err(self.err(
                            m,
                            node,
                            format!("unsupported collation '{c}' (only the codepoint collation)"),
                        ));
                    }
                }
                let select = self.required_attr(m, node, "select")?;
                let select = self.expr(m, node, &select)?;
                let composite = self.yes_no(m, node, "composite", false)?;
                let given: Vec<(&str, String)> = [
                    "group-by",
                    "group-adjacent",
                    "group-starting-with",
                    "group-ending-with",
                ]
                .into_iter()
                .filter_map(|a| self.attr(node, a).map(|v| (a, v)))
                .collect();
                let kind = match given.as_slice() {
                    [("group-by", e)] => GroupKind::By {
                        key: self.expr(m, node, e)?,
                        composite,
                    },
                    [("group-adjacent", e)] => GroupKind::Adjacent {
                        key: self.expr(m, node, e)?,
                        composite,
                    },
                    [(a, p)] => {
                        if self.attr(node, "composite").is_some() {
                            return Err(self.err(
                                m,
                                node,
                                "composite is only allowed with group-by and group-adjacent (XTSE1090)",
                            ));
                        }
                        let pattern = self.pattern(m, node, p)?;
                        if *a == "group-starting-with" {
                            GroupKind::StartingWith(pattern)
                        } else {
                            GroupKind::EndingWith(pattern)
                        }
                    }
                    _ => {
                        return Err(self.err(
                            m,
                            node,
                            "xsl:for-each-group needs exactly one of group-by, group-adjacent, group-starting-with, group-ending-with (XTSE1080)",
                        ))
                    }
                };
                let (sorts, body) = self.sorts_and_body(m, node)?;
                Instr::ForEachGroup {
                    select,
                    kind: Box::new(kind),
                    sorts,
                    body,
                    at,
                }
            }
            "analyze-string" => {
                self.check_attrs(m, node, &["select", "regex", "flags"])?;
                let select = self.required_attr(m, node, "select")?;
                let select = self.expr(m, node, &select)?;
                let regex = self.required_attr(m, node, "regex")?;
                let regex = self.avt(m, node, &regex)?;
                let flags = self.attr(node, "flags").unwrap_or_default();
                let flags = self.avt(m, node, &flags)?;
                let ns = crate::xpath::INTERNAL_NS;
                let analyze = self.expr(
                    m,
                    node,
                    &format!(
                        "Q{{{fn_ns}}}analyze-string($Q{{{ns}}}supplied[1], $Q{{{ns}}}supplied[2], $Q{{{ns}}}supplied[3])",
                        fn_ns = drehscheibe_xpath::functions::FN
                    ),
                )?;
                let mut matching = None;
                let mut non_matching = None;
                let children: Vec<Node> = self.xot.children(node).collect();
                for c in children {
                    if self.xot.element(c).is_none() {
                        if self.xot.text_str(c).is_some_and(|t| !t.trim().is_empty()) {
                            return Err(self.err(
                                m,
                                c,
                                "text is not allowed in xsl:analyze-string (XTSE0010)",
                            ));
                        }
                        continue;
                    }
                    match self.xsl_local(c) {
                        Some("matching-substring") if matching.is_none() && non_matching.is_none() => {
                            self.check_attrs(m, c, &[])?;
                            matching = Some(self.children_body(m, c)?);
                        }
                        Some("non-matching-substring") if non_matching.is_none() => {
                            self.check_attrs(m, c, &[])?;
                            non_matching = Some(self.children_body(m, c)?);
                        }
                        Some("fallback") => {}
                        _ => {
                            return Err(self.err(
                                m,
                                c,
                                "only xsl:matching-substring, xsl:non-matching-substring and xsl:fallback are allowed in xsl:analyze-string (XTSE0010)",
                            ))
                        }
                    }
                }
                if matching.is_none() && non_matching.is_none() {
                    return Err(self.err(
                        m,
                        node,
                        "xsl:analyze-string needs xsl:matching-substring or xsl:non-matching-substring (XTSE1130)",
                    ));
                }
                Instr::AnalyzeString {
                    select,
                    regex,
                    flags,
                    analyze,
                    matching: matching.unwrap_or_default(),
                    non_matching: non_matching.unwrap_or_default(),
                    at,
                }
            }
            "next-match" => {
                self.check_attrs(m, node, &[])?;
                let outer_tunnel = std::mem::take(&mut self.pending_tunnel);
                let (params, _) = self.with_params_no_fallback(m, node)?;
                let tunnel = std::mem::replace(&mut self.pending_tunnel, outer_tunnel);
                Instr::NextMatch { params, tunnel, at }
            }
            "iterate" => {
                self.check_attrs(m, node, &["select"])?;
                let select = self.required_attr(m, node, "select")?;
                let select = self.expr(m, node, &select)?;
                let saved_locals = self.locals.len();
                let children: Vec<Node> = self.xot.children(node).collect();
                let mut params: Vec<(XName, usize, Value)> = Vec::new();
                let mut on_completion = Vec::new();
                let mut rest = Vec::new();
                for c in children {
                    if self.is_xsl(c, "param") && rest.is_empty() {
                        self.check_attrs(m, c, &["name", "select", "as", "required", "tunnel"])?;
                        let name = self.required_attr(m, c, "name")?;
                        let name = self.qname(m, c, &name)?;
                        if params.iter().any(|(n, _, _)| *n == name) {
                            return Err(self.err(
                                m,
                                c,
                                format!("duplicate parameter ${} (XTSE0580)", name.local_name()),
                            ));
                        }
                        let value = self.var_value(m, c)?;
                        let slot = self.alloc_slot();
                        params.push((name, slot, value));
                    } else if self.is_xsl(c, "on-completion") {
                        self.check_attrs(m, c, &["select"])?;
                        for (n, s, _) in &params {
                            self.locals.push((n.clone(), *s));
                        }
                        on_completion = match self.value_or_body(m, c)? {
                            Value::Select(id) => vec![Instr::Sequence { select: id, at }],
                            Value::Body(b) => b,
                            _ => Vec::new(),
                        };
                        self.locals.truncate(saved_locals);
                    } else {
                        if self.xot.element(c).is_some()
                            || self.xot.text_str(c).is_some_and(|t| !t.trim().is_empty())
                        {
                            rest.push(c);
                        }
                    }
                }
                for (n, s, _) in &params {
                    self.locals.push((n.clone(), *s));
                }
                let body = self.body_of(m, node, &rest)?;
                self.locals.truncate(saved_locals);
                Instr::Iterate {
                    select,
                    params,
                    body,
                    on_completion,
                    at,
                }
            }
            "next-iteration" => {
                self.check_attrs(m, node, &[])?;
                let (params, _) = self.with_params(m, node, false)?;
                if !self.pending_tunnel.is_empty() {
                    return Err(self.err(
                        m,
                        node,
                        "tunnel parameters are not allowed on xsl:next-iteration",
                    ));
                }
                Instr::NextIteration { params }
            }
            "break" => {
                self.check_attrs(m, node, &["select"])?;
                Instr::Break {
                    value: self.value_or_body(m, node)?,
                    at,
                }
            }
            "try" => {
                self.check_attrs(m, node, &["select", "rollback-output"])?;
                let children: Vec<Node> = self.xot.children(node).collect();
                let mut body_nodes = Vec::new();
                let mut catch_nodes = Vec::new();
                for c in children {
                    if self.is_xsl(c, "catch") {
                        catch_nodes.push(c);
                    } else if self.is_xsl(c, "fallback") {
                        continue;
                    } else if !catch_nodes.is_empty() {
                        if self.xot.element(c).is_some() {
                            return Err(self.err(
                                m,
                                c,
                                "only xsl:catch may follow xsl:catch (XTSE0010)",
                            ));
                        }
                    } else {
                        body_nodes.push(c);
                    }
                }
                if catch_nodes.is_empty() {
                    return Err(self.err(m, node, "xsl:try needs an xsl:catch (XTSE0010)"));
                }
                let body = match self.attr(node, "select") {
                    Some(s) => {
                        if body_nodes.iter().any(|&c| {
                            self.xot.element(c).is_some()
                                || self.xot.text_str(c).is_some_and(|t| !t.trim().is_empty())
                        }) {
                            return Err(self.err(
                                m,
                                node,
                                "xsl:try must not have both a select attribute and content (XTSE3140)",
                            ));
                        }
                        Value::Select(self.expr(m, node, &s)?)
                    }
                    None => Value::Body(self.body_of(m, node, &body_nodes)?),
                };
                let mut catches = Vec::new();
                for c in catch_nodes {
                    self.check_attrs(m, c, &["errors", "select"])?;
                    let mut errors = Vec::new();
                    let spec = self.attr(c, "errors").unwrap_or_else(|| "*".to_string());
                    for token in spec.split_whitespace() {
                        if token == "*" {
                            errors.push((None, None));
                        } else if let Some(local) = token.strip_prefix("*:") {
                            errors.push((None, Some(local.to_string())));
                        } else if let Some(prefix) = token.strip_suffix(":*") {
                            let nsctx = self.namespaces(c);
                            let Some(uri) = nsctx.by_prefix(prefix).map(str::to_string) else {
                                return Err(self.err(
                                    m,
                                    c,
                                    format!("undeclared prefix '{prefix}'"),
                                ));
                            };
                            errors.push((Some(uri), None));
                        } else if let Some(rest) = token.strip_prefix("Q{") {
                            match rest.split_once('}') {
                                Some((uri, "*")) => errors.push((Some(uri.to_string()), None)),
                                Some((uri, local)) => {
                                    errors.push((Some(uri.to_string()), Some(local.to_string())))
                                }
                                None => {
                                    return Err(self.err(
                                        m,
                                        c,
                                        format!("invalid name test '{token}'"),
                                    ))
                                }
                            }
                        } else {
                            let q = self.qname(m, c, token)?;
                            errors.push((
                                Some(q.namespace().to_string()),
                                Some(q.local_name().to_string()),
                            ));
                        }
                    }
                    let saved_locals = self.locals.len();
                    let mut slots = [0usize; 6];
                    for (i, name) in [
                        "code",
                        "description",
                        "value",
                        "module",
                        "line-number",
                        "column-number",
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let slot = self.alloc_slot();
                        if let Some(s) = slots.get_mut(i) {
                            *s = slot;
                        }
                        self.locals.push((
                            XName::new(name.to_string(), ERR_NS.to_string(), "err".to_string()),
                            slot,
                        ));
                    }
                    let body = self.value_or_body(m, c)?;
                    self.locals.truncate(saved_locals);
                    catches.push(Catch {
                        errors,
                        body,
                        slots,
                    });
                }
                Instr::Try { body, catches, at }
            }
            "perform-sort" => {
                self.check_attrs(m, node, &["select"])?;
                let select = match self.attr(node, "select") {
                    Some(s) => Some(self.expr(m, node, &s)?),
                    None => None,
                };
                let (sorts, body) = self.sorts_and_body(m, node)?;
                if sorts.is_empty() {
                    return Err(self.err(m, node, "xsl:perform-sort needs an xsl:sort (XTSE0010)"));
                }
                if select.is_some() && !body.is_empty() {
                    return Err(self.err(
                        m,
                        node,
                        "xsl:perform-sort must not have both a select attribute and content (XTSE1040)",
                    ));
                }
                Instr::PerformSort {
                    select,
                    sorts,
                    body,
                    at,
                }
            }
            "where-populated" => {
                self.check_attrs(m, node, &[])?;
                Instr::WherePopulated {
                    body: self.children_body(m, node)?,
                    at,
                }
            }
            "on-empty" | "on-non-empty" => {
                self.check_attrs(m, node, &["select"])?;
                let body = match self.value_or_body(m, node)? {
                    Value::Select(id) => vec![Instr::Sequence { select: id, at }],
                    Value::Body(b) => b,
                    _ => Vec::new(),
                };
                if local == "on-empty" {
                    Instr::OnEmpty(body)
                } else {
                    Instr::OnNonEmpty(body)
                }
            }
            "map" => {
                self.check_attrs(m, node, &[])?;
                Instr::MapConstruct {
                    body: self.children_body(m, node)?,
                    at,
                }
            }
            "map-entry" => {
                self.check_attrs(m, node, &["key", "select"])?;
                let key = self.required_attr(m, node, "key")?;
                let key = self.expr(m, node, &key)?;
                let value = match self.value_or_body(m, node)? {
                    Value::Body(b) => {
                        let coerce = self.coercion(m, node, "item()*")?;
                        Value::BodyAs(b, coerce)
                    }
                    Value::Empty => Value::Select(self.expr(m, node, "()")?),
                    v => v,
                };
                Instr::MapEntry { key, value, at }
            }
            other => return Err(self.err(m, node, format!("unsupported instruction xsl:{other}"))),
        };
        Ok(Some(instr))
    }

    /// Is `expand-text` on for text children of `node` (the nearest
    /// `expand-text` / `xsl:expand-text` attribute decides)?
    fn expand_text(&self, node: Node) -> bool {
        let mut cur = Some(node);
        while let Some(n) = cur {
            if self.xot.element(n).is_some() {
                let is_xsl = self.xsl_local(n).is_some();
                for (ns, local, value) in self.attrs_ref(n) {
                    let applies = local == "expand-text"
                        && ((is_xsl && ns.is_empty()) || (!is_xsl && ns == XSL_NS));
                    if applies {
                        return matches!(value.trim(), "yes" | "true" | "1");
                    }
                }
            }
            cur = self.xot.parent(n);
        }
        false
    }

    /// A text value template: literal text stays [`Instr::Text`].
    fn text_template(&mut self, m: usize, node: Node, text: &str) -> CResult<Instr> {
        let mut avt = self.avt(m, node, text)?;
        avt.first_only = false;
        if let Some(lit) = avt.literal() {
            return Ok(Instr::Text(lit.to_string()));
        }
        Ok(Instr::TextTemplate(avt, self.at(m, node)))
    }

    /// `xsl:with-param` children (tunnel ones go to `pending_tunnel`),
    /// ignoring `xsl:fallback`.
    fn with_params_no_fallback(
        &mut self,
        m: usize,
        node: Node,
    ) -> CResult<(Vec<WithParam>, Vec<Sort>)> {
        if self.xot.children(node).any(|c| self.is_xsl(c, "fallback")) {
            return Err(self.err(m, node, "xsl:fallback in xsl:next-match is not supported"));
        }
        self.with_params(m, node, false)
    }
}

/// Can a sequence constructor yield atomic values (so that its simple
/// content differs from the string value of a tree)?
fn may_yield_atomics(body: &[Instr]) -> bool {
    body.iter().any(|i| match i {
        Instr::Sequence { .. }
        | Instr::SequenceSpaced { .. }
        | Instr::CopyOf { .. }
        | Instr::CallTemplate { .. }
        | Instr::ApplyTemplates { .. }
        | Instr::WithTunnel { .. }
        | Instr::NextMatch { .. }
        | Instr::Break { .. }
        | Instr::Try { .. }
        | Instr::PerformSort { .. }
        | Instr::Iterate { .. }
        | Instr::AnalyzeString { .. }
        | Instr::ForEachGroup { .. } => true,
        Instr::If { body, .. } | Instr::ForEach { body, .. } => may_yield_atomics(body),
        Instr::Choose { whens, otherwise } => {
            whens.iter().any(|(_, b)| may_yield_atomics(b)) || may_yield_atomics(otherwise)
        }
        _ => false,
    })
}

/// Turns adjacent `xsl:sequence` siblings into [`Instr::SequenceSpaced`]
/// (only stylesheets with such siblings pay for the spacing check).
fn mark_sequence_spacing(body: &mut [Instr]) {
    for i in 1..body.len() {
        let adjacent = matches!(
            (body.get(i - 1), body.get(i)),
            (
                Some(Instr::Sequence { .. } | Instr::SequenceSpaced { .. }),
                Some(Instr::Sequence { .. } | Instr::SequenceSpaced { .. })
            )
        );
        if adjacent {
            if let Some(prev) = body.get_mut(i - 1) {
                spaced(prev, false);
            }
            if let Some(next) = body.get_mut(i) {
                spaced(next, true);
            }
        }
    }
}

/// A loop body that starts and ends with `xsl:sequence`: the items of
/// consecutive iterations are adjacent.
fn mark_loop_spacing(body: &mut [Instr]) {
    let ends = matches!(
        body.last(),
        Some(Instr::Sequence { .. } | Instr::SequenceSpaced { .. })
    );
    if !ends {
        return;
    }
    if let Some(last) = body.last_mut() {
        spaced(last, false);
    }
    if let Some(first) = body.first_mut() {
        spaced(first, true);
    }
}

fn spaced(instr: &mut Instr, check: bool) {
    match instr {
        Instr::Sequence { select, at } => {
            *instr = Instr::SequenceSpaced {
                select: *select,
                check,
                at: *at,
            }
        }
        Instr::SequenceSpaced { check: c, .. } => *c = *c || check,
        _ => {}
    }
}
