//! Casting between atomic types and the xs: constructor functions
//! (OWNER: datetime helper).
//!
//! Contract used by the evaluator:
//! * [`type_by_name`] — the xs: local names the engine knows (primitive
//!   and derived: `int`, `short`, `nonNegativeInteger`, `token`, `NCName`,
//!   …) → a [`CastTarget`];
//! * [`cast`] — `$v cast as T` (FORG0001 invalid lexical form, XPTY0004
//!   impossible cast);
//! * [`instance_of`] — does an atomic value belong to a named type
//!   (derivation: an xs:integer is an xs:decimal; xs:untypedAtomic is not
//!   xs:string; every value is xs:anyAtomicType)?

use crate::error::{Error, Result};
use crate::value::{Atomic, AtomicType};

/// A cast target: a primitive type, optionally restricted (derived
/// integer and string types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CastTarget {
    /// The primitive type the value is stored as.
    pub primitive: AtomicType,
    /// The xs: local name (for derived-type facets and error messages).
    pub name: &'static str,
}

/// Looks up an xs: type by local name (`anyAtomicType` and `numeric` are
/// known but not cast targets: `cast` refuses them with XPST0080).
pub fn type_by_name(local: &str) -> Option<CastTarget> {
    let _ = local;
    None
}

/// Casts `value` to `target`.
pub fn cast(value: &Atomic, target: CastTarget) -> Result<Atomic> {
    let _ = (value, target);
    Err(Error::new("XPTY0004", "not yet implemented"))
}

/// Casts to a primitive type.
pub fn cast_to(value: &Atomic, ty: AtomicType) -> Result<Atomic> {
    let _ = (value, ty);
    Err(Error::new("XPTY0004", "not yet implemented"))
}

/// Is `value` an instance of the xs: type `local` (by derivation)?
pub fn instance_of(value: &Atomic, local: &str) -> bool {
    let _ = (value, local);
    false
}
