//! Partner certificates: expiry and chain checks against configured CA
//! certificates. (Being written, issue 14.)
