//! The compiled intermediate representation (OWNER: core).

/// A compiled expression tree.
#[derive(Debug)]
pub(crate) enum Ir {
    /// placeholder
    Empty,
}
