//! Errors of the core. The NIF crate turns each into `{kind, message}` for Elixir.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    UnknownSlot(usize),
    BadSlot(usize),
    TableFull(usize),
    TooManySites(usize, usize),
    BadCounts {
        slot: usize,
        expected: usize,
        got: usize,
    },
}

impl Error {
    /// A stable, snake_case name for the error, used as the atom on the Elixir side.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::UnknownSlot(_) => "unknown_slot",
            Error::BadSlot(_) => "bad_slot",
            Error::TableFull(_) => "table_full",
            Error::TooManySites(..) => "too_many_sites",
            Error::BadCounts { .. } => "bad_counts",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownSlot(s) => write!(
                f,
                "counter slot {s} is not registered (the module was never instrumented here, or was stopped): instrument it again"
            ),
            Error::BadSlot(s) => write!(f, "counter slot id {s} is out of range"),
            Error::TableFull(n) => write!(
                f,
                "the counter table has used all {n} slot ids of this VM: restart the node to start afresh"
            ),
            Error::TooManySites(n, max) => write!(
                f,
                "a module with {n} bump sites exceeds the limit of {max}: split the module"
            ),
            Error::BadCounts { slot, expected, got } => write!(
                f,
                "slot {slot} has {expected} counters but {got} counts were given: the data belongs to another build of the module"
            ),
        }
    }
}

impl std::error::Error for Error {}
