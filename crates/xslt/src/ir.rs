//! The compiled form of a stylesheet: instructions, templates, globals.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::pattern::{IndexKey, Pattern};
use crate::xpath::{ExprDef, ExprId, NsCtx, XName};
use crate::{GlobalParamDecl, OutputSettings};

/// Source position of an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At {
    pub file: usize,
    pub line: usize,
    /// The static base URI of the instruction (index into
    /// [`Compiled::bases`]): the base URI of the temporary trees it builds.
    pub base: u32,
}

/// Index into [`Compiled::names`].
pub(crate) type NameIdx = usize;
/// Index into [`Compiled::ns_bindings`].
pub(crate) type NsIdx = usize;

/// A part of an attribute value template.
#[derive(Debug, Clone)]
pub(crate) enum AvtPart {
    Lit(String),
    Expr(ExprId),
}

/// An attribute value template.
#[derive(Debug, Clone)]
pub(crate) struct Avt {
    pub parts: Vec<AvtPart>,
    /// XSLT 1.0 (backwards compatible) semantics: only the first item of
    /// each expression is used.
    pub first_only: bool,
}

impl Avt {
    pub(crate) fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [AvtPart::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

/// How the value of a variable, parameter, attribute, comment etc. is given.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// `select` attribute.
    Select(ExprId),
    /// Sequence constructor (content).
    Body(Vec<Instr>),
    /// Sequence constructor with an `as` type: the constructed nodes (not
    /// a document) converted by the coercion expression.
    BodyAs(Vec<Instr>, ExprId),
    /// Neither: the empty string (variables) or empty content.
    Empty,
}

/// A `xsl:with-param`.
#[derive(Debug, Clone)]
pub(crate) struct WithParam {
    pub name: XName,
    pub value: Value,
}

/// A `xsl:sort` key.
#[derive(Debug, Clone)]
pub(crate) struct Sort {
    pub select: Option<ExprId>,
    pub number: bool,
    pub descending: bool,
    pub upper_first: Option<bool>,
    /// XSLT 2.0+ without `data-type`: compare the typed values (§13.1.2)
    /// instead of string values.
    pub typed: bool,
}

/// How `xsl:for-each-group` forms its groups.
#[derive(Debug, Clone)]
pub(crate) enum GroupKind {
    By { key: ExprId, composite: bool },
    Adjacent { key: ExprId, composite: bool },
    StartingWith(Pattern),
    EndingWith(Pattern),
}

/// Built-in behaviour of a mode for nodes no template rule matches
/// (`xsl:mode on-no-match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OnNoMatch {
    #[default]
    TextOnlyCopy,
    ShallowCopy,
    DeepCopy,
    ShallowSkip,
    DeepSkip,
    Fail,
}

/// An `xsl:catch` clause.
#[derive(Debug, Clone)]
pub(crate) struct Catch {
    /// Name tests on the error code (`*` = `None` test matches all):
    /// (namespace or None for any, local or None for any).
    pub errors: Vec<(Option<String>, Option<String>)>,
    pub body: Value,
    /// Frame slots of `$err:code`, `$err:description`, `$err:value`,
    /// `$err:module`, `$err:line-number`, `$err:column-number`.
    pub slots: [usize; 6],
}

/// Which mode `xsl:apply-templates` uses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ModeSel {
    Mode(usize),
    Current,
}

/// Level of `xsl:number`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberLevel {
    Single,
    Multiple,
    Any,
}

/// A compiled `xsl:number`.
#[derive(Debug, Clone)]
pub(crate) struct NumberDef {
    pub value: Option<ExprId>,
    /// XSLT 2.0 `select`: the node to number (default: the context node).
    pub select: Option<ExprId>,
    pub level: NumberLevel,
    pub count: Option<Pattern>,
    pub from: Option<Pattern>,
    pub format: Avt,
    pub grouping_separator: Option<String>,
    pub grouping_size: Option<usize>,
}

/// One instruction of a sequence constructor.
#[derive(Debug, Clone)]
pub(crate) enum Instr {
    Text(String),
    ValueOf {
        value: Value,
        separator: Option<Avt>,
        first_only: bool,
        at: At,
    },
    ApplyTemplates {
        select: Option<ExprId>,
        mode: ModeSel,
        params: Vec<WithParam>,
        sorts: Vec<Sort>,
        at: At,
    },
    CallTemplate {
        template: usize,
        params: Vec<WithParam>,
        at: At,
    },
    ForEach {
        select: ExprId,
        sorts: Vec<Sort>,
        body: Vec<Instr>,
        at: At,
    },
    If {
        test: ExprId,
        body: Vec<Instr>,
    },
    Choose {
        whens: Vec<(ExprId, Vec<Instr>)>,
        otherwise: Vec<Instr>,
    },
    Variable {
        slot: usize,
        value: Value,
        at: At,
    },
    LiteralElement {
        name: NameIdx,
        namespaces: Vec<NsIdx>,
        attributes: Vec<(NameIdx, Avt)>,
        body: Vec<Instr>,
        at: At,
    },
    Element {
        name: Avt,
        namespace: Option<Avt>,
        nsctx: Arc<NsCtx>,
        body: Vec<Instr>,
        at: At,
    },
    Attribute {
        name: Avt,
        namespace: Option<Avt>,
        nsctx: Arc<NsCtx>,
        value: Value,
        separator: Option<Avt>,
        at: At,
    },
    Comment {
        value: Value,
        at: At,
    },
    ProcessingInstruction {
        name: Avt,
        value: Value,
        at: At,
    },
    Namespace {
        name: Avt,
        value: Value,
        at: At,
    },
    Copy {
        body: Vec<Instr>,
        at: At,
    },
    CopyOf {
        select: ExprId,
        at: At,
    },
    Sequence {
        select: ExprId,
        at: At,
    },
    Message {
        value: Value,
        /// `terminate` (an attribute value template); `None`: `no`.
        terminate: Option<Avt>,
        at: At,
    },
    Number {
        def: Box<NumberDef>,
        at: At,
    },
    ForEachGroup {
        select: ExprId,
        kind: Box<GroupKind>,
        sorts: Vec<Sort>,
        body: Vec<Instr>,
        at: At,
    },
    /// `xsl:analyze-string`: `regex` is the hidden expression
    /// `fn:analyze-string($s[1], $s[2], $s[3])` over the supplied value.
    AnalyzeString {
        select: ExprId,
        regex: Avt,
        flags: Avt,
        analyze: ExprId,
        matching: Vec<Instr>,
        non_matching: Vec<Instr>,
        at: At,
    },
    NextMatch {
        params: Vec<WithParam>,
        tunnel: Vec<WithParam>,
        at: At,
    },
    /// Runs `body` (an apply-templates / call-template / next-match) with
    /// tunnel parameters added to the current tunnel set.
    WithTunnel {
        params: Vec<WithParam>,
        body: Box<Instr>,
    },
    /// Binds a template's `tunnel="yes"` parameter from the tunnel set.
    TunnelParam {
        name: XName,
        slot: usize,
        value: Value,
        required: bool,
        at: At,
    },
    Iterate {
        select: ExprId,
        /// (slot, initial value) of the `xsl:param`s, names for next-iteration.
        params: Vec<(XName, usize, Value)>,
        body: Vec<Instr>,
        on_completion: Vec<Instr>,
        at: At,
    },
    NextIteration {
        params: Vec<WithParam>,
    },
    Break {
        value: Value,
        at: At,
    },
    Try {
        body: Value,
        catches: Vec<Catch>,
        at: At,
    },
    PerformSort {
        select: Option<ExprId>,
        sorts: Vec<Sort>,
        body: Vec<Instr>,
        at: At,
    },
    MapConstruct {
        body: Vec<Instr>,
        at: At,
    },
    MapEntry {
        key: ExprId,
        value: Value,
        at: At,
    },
    /// An `xsl:sequence` next to another one in a sequence constructor
    /// (XSLT 2.0+): adjacent atomic values written by the two are
    /// separated by a space (§5.7.1). `check`: a space may be needed
    /// before the first item.
    SequenceSpaced {
        select: ExprId,
        check: bool,
        at: At,
    },
    /// `xsl:value-of` with a sequence constructor that may yield atomic
    /// values (XSLT 2.0+, §5.7.2): the items, adjacent text nodes merged,
    /// joined by `separator` (default "").
    ValueOfSeq {
        body: Vec<Instr>,
        separator: Option<Avt>,
        at: At,
    },
    /// A text value template (`expand-text="yes"`).
    TextTemplate(Avt, At),
    /// `xsl:where-populated`.
    WherePopulated {
        body: Vec<Instr>,
        at: At,
    },
    /// `xsl:on-empty` / `xsl:on-non-empty`: markers inside
    /// [`Instr::Conditional`].
    OnEmpty(Vec<Instr>),
    OnNonEmpty(Vec<Instr>),
    /// A sequence constructor with `xsl:on-empty` / `xsl:on-non-empty`.
    Conditional {
        parts: Vec<Instr>,
        at: At,
    },
}

/// A template parameter.
#[derive(Debug, Clone)]
pub(crate) struct ParamDef {
    pub name: XName,
    pub slot: usize,
    pub value: Value,
    pub required: bool,
    /// Coercion of a supplied value to the declared `as` type (`XTTE0590`
    /// when it does not convert).
    pub coerce: Option<ExprId>,
}

/// A compiled `xsl:template`.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub pattern: Option<Pattern>,
    pub params: Vec<ParamDef>,
    pub body: Vec<Instr>,
    pub slots: usize,
    pub at: At,
}

/// One template rule (one alternative of a template's match pattern).
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub template: usize,
    pub alt: usize,
    pub precedence: usize,
    pub priority: f64,
    /// Declaration order, for resolving ties (last wins).
    pub order: usize,
}

/// The template rules of one mode, indexed by node kind and name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mode {
    pub buckets: HashMap<IndexKey, Vec<Rule>>,
    /// The buckets merged per node kind and name, filled by
    /// [`Mode::finish`] once all rules are in.
    pub lists: CandidateLists,
    /// `xsl:mode on-no-match` (default: the XSLT 1.0 built-in rules).
    pub on_no_match: OnNoMatch,
    /// `xsl:mode on-multiple-match="fail"`.
    pub fail_on_multiple: bool,
}

/// The rules that may match a node, best first (precedence, priority,
/// declaration order), per node kind — and for elements and attributes per
/// expanded name, with the name's own bucket before the generic ones. A
/// run looks a node's list up here once per distinct name and keeps it.
#[derive(Debug, Clone, Default)]
pub(crate) struct CandidateLists {
    /// namespace URI → local name → rules, for names that have a bucket.
    pub elements: NameLists,
    pub attributes: NameLists,
    /// Elements and attributes whose name has no bucket of its own.
    pub any_element: Arc<[Rule]>,
    pub any_attribute: Arc<[Rule]>,
    pub document: Arc<[Rule]>,
    pub text: Arc<[Rule]>,
    pub comment: Arc<[Rule]>,
    pub pi: Arc<[Rule]>,
    /// Namespace nodes and items that are not nodes.
    pub other: Arc<[Rule]>,
}

/// namespace URI → local name → rules.
pub(crate) type NameLists = FxHashMap<String, FxHashMap<String, Arc<[Rule]>>>;

impl Mode {
    /// Merge the buckets into [`CandidateLists`] (after the last rule).
    pub fn finish(&mut self) {
        let merged = |keys: &[&IndexKey]| -> Arc<[Rule]> {
            let mut rules: Vec<Rule> = keys
                .iter()
                .filter_map(|k| self.buckets.get(*k))
                .flat_map(|b| b.iter().cloned())
                .collect();
            // stable: equal rules (alternatives of one template) keep
            // their bucket order
            rules.sort_by(|a, b| {
                b.precedence
                    .cmp(&a.precedence)
                    .then(b.priority.total_cmp(&a.priority))
                    .then(b.order.cmp(&a.order))
            });
            rules.into()
        };
        use IndexKey as K;
        let mut lists = CandidateLists {
            any_element: merged(&[&K::AnyElement, &K::AnyChild, &K::AnyNode]),
            any_attribute: merged(&[&K::AnyAttribute, &K::AnyNode]),
            document: merged(&[&K::Document, &K::AnyNode]),
            text: merged(&[&K::Text, &K::AnyChild, &K::AnyNode]),
            comment: merged(&[&K::Comment, &K::AnyChild, &K::AnyNode]),
            pi: merged(&[&K::Pi, &K::AnyChild, &K::AnyNode]),
            other: merged(&[&K::AnyNode]),
            ..CandidateLists::default()
        };
        for key in self.buckets.keys() {
            match key {
                K::Element(n) => {
                    let list = merged(&[key, &K::AnyElement, &K::AnyChild, &K::AnyNode]);
                    lists
                        .elements
                        .entry(n.ns.clone())
                        .or_default()
                        .insert(n.local.clone(), list);
                }
                K::Attribute(n) => {
                    let list = merged(&[key, &K::AnyAttribute, &K::AnyNode]);
                    lists
                        .attributes
                        .entry(n.ns.clone())
                        .or_default()
                        .insert(n.local.clone(), list);
                }
                _ => {}
            }
        }
        self.lists = lists;
    }
}

/// A global variable or parameter.
#[derive(Debug, Clone)]
pub(crate) struct Global {
    pub name: XName,
    pub value: Value,
    pub is_param: bool,
    pub required: bool,
    /// Coercion of a supplied parameter value to the declared `as` type.
    pub coerce: Option<ExprId>,
    /// Frame size for evaluating the value.
    pub slots: usize,
    pub at: At,
}

/// An `xsl:key` (all declarations with one name).
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub defs: Vec<(Pattern, ExprId)>,
    /// Some declaration is in backwards-compatible (1.0) mode: key values
    /// are compared as strings instead of as typed atomic values.
    pub string_values: bool,
}

/// An `xsl:decimal-format`: the XPath crate's, which also formats.
pub(crate) use drehscheibe_xpath::functions::format_number::DecimalFormat;

/// Parsed `format-number()` pictures by (decimal format index, picture).
pub(crate) type PictureCache =
    HashMap<(usize, String), std::sync::Arc<drehscheibe_xpath::functions::format_number::Picture>>;

/// A whitespace stripping rule (`xsl:strip-space` / `xsl:preserve-space`).
#[derive(Debug, Clone)]
pub(crate) struct SpaceRule {
    pub test: crate::pattern::Test,
    pub strip: bool,
    pub precedence: usize,
    pub priority: f64,
}

/// A compiled `xsl:function`.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub name: XName,
    /// Per parameter: its frame slot and the coercion to its `as` type.
    pub params: Vec<(usize, Option<ExprId>)>,
    pub body: Vec<Instr>,
    /// Coercion of the result to the declared `as` type.
    pub result: Option<ExprId>,
    pub slots: usize,
    pub at: At,
}

/// The whole compiled stylesheet.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// Named templates by `local` or `Q{uri}local`.
    pub template_names: HashMap<String, usize>,
    /// Modes by `local` or `Q{uri}local`.
    pub mode_names: HashMap<String, usize>,
    /// The principal module is an XSLT 1.0 stylesheet: numbers are
    /// converted to strings the XPath 1.0 way.
    pub backwards_compatible: bool,
    pub files: Vec<PathBuf>,
    pub exprs: Vec<ExprDef>,
    pub templates: Vec<Template>,
    pub modes: Vec<Mode>,
    pub globals: Vec<Global>,
    pub keys: Vec<Key>,
    pub decimal_formats: Vec<DecimalFormat>,
    /// The literal `format-number()` pictures, parsed at compile time.
    pub pictures: PictureCache,
    pub output: OutputSettings,
    pub space_rules: Vec<SpaceRule>,
    pub params: Vec<GlobalParamDecl>,
    /// Static names (literal result elements and attributes), with the
    /// prefix written in the stylesheet.
    pub names: Vec<drehscheibe_xpath::tree::QName>,
    /// Namespace bindings for literal result elements: (prefix, URI).
    pub ns_bindings: Vec<(String, String)>,
    /// The `xsl:function`s.
    pub functions: Vec<Function>,
    /// The namespace contexts of the expressions (by index, see
    /// `xpath::fn_id`).
    pub nsctx: Vec<NsCtx>,
    /// The text of the principal stylesheet module (`document('')`).
    pub source_text: String,
    /// The distinct static base URIs of the stylesheet (index 0: the
    /// principal module's URI; `None` when compiled from a string).
    pub bases: Vec<Option<String>>,
    /// The static base URI of each expression (index into `bases`; an
    /// expression not listed has base 0).
    pub expr_bases: Vec<u32>,
    /// Keys by `local` / `Q{uri}local`.
    pub key_names: HashMap<String, usize>,
    /// Named decimal formats by `local` / `Q{uri}local` (the unnamed one
    /// is index 0).
    pub format_names: HashMap<String, usize>,
    /// `xsl:function`s by (`local` / `Q{uri}local`, arity).
    pub function_names: HashMap<(String, usize), usize>,
}
