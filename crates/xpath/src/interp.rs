//! Evaluation of the IR (OWNER: core).

use crate::error::{Error, Result};
use crate::eval::Eval;
use crate::value::{Function, Sequence};

pub(crate) fn call_function<'a>(
    ev: &mut Eval<'a, '_>,
    f: &Function<'a>,
    args: Vec<Sequence<'a>>,
) -> Result<Sequence<'a>> {
    let _ = (ev, f, args);
    Err(Error::new("XPST0017", "not yet implemented"))
}
