//! A cooperative time budget for evaluation: how a runaway XPath
//! expression or XSLT transform is stopped.
//!
//! Evaluation runs on the caller's thread without yielding, so nothing
//! outside can interrupt it safely. Instead the caller runs the work
//! inside [`with_budget`] (a deadline and a cancel flag, kept in a
//! thread-local for the duration of the call), and the evaluator calls
//! [`tick`] at every expression evaluation (`interp::eval`) and the XSLT
//! interpreter at every instruction. `tick` counts and, every
//! [`CHECK_EVERY`] steps, looks at the clock and the flag; once either
//! says stop, this and every later `tick` returns the error `DSXP0002`,
//! which unwinds the evaluation like any dynamic error.
//!
//! Outside `with_budget` a tick costs one thread-local counter update and
//! never fails. Nesting is allowed: the inner budget applies until it
//! returns, then the outer one again.
//!
//! ```
//! use std::sync::{atomic::AtomicBool, Arc};
//! use std::time::{Duration, Instant};
//! use drehscheibe_xpath::budget;
//!
//! let cancel = Arc::new(AtomicBool::new(true)); // already cancelled
//! let stopped = budget::with_budget(Instant::now() + Duration::from_secs(60), cancel, || {
//!     (0..budget::CHECK_EVERY * 2).try_for_each(|_| budget::tick())
//! });
//! assert_eq!(stopped.unwrap_err().code, "DSXP0002");
//! ```

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};

/// Steps between two looks at the clock (an `Instant::now()` costs about
/// as much as a few hundred simple steps).
pub const CHECK_EVERY: u32 = 1024;

/// The error code of a stopped evaluation.
pub const CODE: &str = "DSXP0002";

struct Budget {
    deadline: Instant,
    cancel: Arc<AtomicBool>,
}

thread_local! {
    static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
    static STEPS: Cell<u32> = const { Cell::new(0) };
    static STOPPED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with a deadline and a cancel flag that [`tick`] honours (see
/// the module docs). The previous budget of this thread (if any) is
/// restored afterwards, also when `f` panics.
pub fn with_budget<R>(deadline: Instant, cancel: Arc<AtomicBool>, f: impl FnOnce() -> R) -> R {
    struct Restore {
        previous: Option<Budget>,
        stopped: bool,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.previous.take();
            BUDGET.with(|b| *b.borrow_mut() = previous);
            STOPPED.with(|s| s.set(self.stopped));
        }
    }
    let previous = BUDGET.with(|b| b.borrow_mut().replace(Budget { deadline, cancel }));
    let _restore = Restore {
        previous,
        stopped: STOPPED.with(|s| s.replace(false)),
    };
    STEPS.with(|s| s.set(0));
    f()
}

/// One evaluation step: `Err(DSXP0002)` once the budget of this thread is
/// spent or cancelled, else `Ok`.
#[inline]
pub fn tick() -> Result<()> {
    let due = STEPS.with(|s| {
        let n = s.get().wrapping_add(1);
        s.set(n);
        n % CHECK_EVERY == 0
    });
    if due || STOPPED.with(Cell::get) {
        check()
    } else {
        Ok(())
    }
}

/// Looks at the clock and the flag now (see [`tick`]).
pub fn check() -> Result<()> {
    let stop = BUDGET.with(|b| {
        b.borrow()
            .as_ref()
            .is_some_and(|b| b.cancel.load(Ordering::Relaxed) || Instant::now() >= b.deadline)
    });
    if stop {
        STOPPED.with(|s| s.set(true));
        Err(Error::new(
            CODE,
            "evaluation stopped: the time budget is spent or the work was cancelled",
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn without_a_budget_ticks_never_fail() {
        for _ in 0..CHECK_EVERY * 3 {
            assert!(tick().is_ok());
        }
    }

    #[test]
    fn a_spent_budget_stops_and_is_restored_afterwards() {
        let past = Instant::now() - Duration::from_millis(1);
        let r = with_budget(past, Arc::new(AtomicBool::new(false)), || {
            (0..CHECK_EVERY * 2).try_for_each(|_| tick())
        });
        assert_eq!(r.unwrap_err().code, CODE);
        // The budget ended with the call.
        assert!((0..CHECK_EVERY * 2).try_for_each(|_| tick()).is_ok());
    }

    #[test]
    fn a_long_expression_is_stopped_by_the_deadline() {
        use crate::{
            DocArena, Document, Env, Expression, Focus, Item, NoHost, NoHostStatic, ParseOptions,
            StaticContext,
        };
        fn no_ns(_: &str) -> Option<String> {
            None
        }
        let doc = Document::parse(b"<a/>", &ParseOptions::default()).unwrap();
        let host = NoHostStatic;
        let ctx = StaticContext {
            namespaces: &no_ns,
            default_element_namespace: String::new(),
            backwards_compatible: false,
            host: &host,
        };
        // 10^9 steps that accumulate nothing: minutes without a budget.
        let expr = Expression::compile(
            "count(for $i in 1 to 1000, $j in 1 to 1000, $k in 1 to 1000 return (if ($k = -1) then 1 else ()))",
            &ctx,
        )
        .unwrap();
        let arena = DocArena::new();
        let env = Env::new(&arena);
        let focus = Focus::of(Item::Node(doc.root()));
        let deadline = Instant::now() + Duration::from_millis(200);
        let r = with_budget(deadline, Arc::new(AtomicBool::new(false)), || {
            expr.evaluate_string(&env, &mut NoHost, Some(&focus))
        });
        assert_eq!(r.unwrap_err().code, CODE);
    }
}
