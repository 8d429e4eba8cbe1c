//! The one error type of the core: everything the NIF can report crosses the boundary as an
//! [`Error`], which the NIF crate turns into `{kind, message}` for Elixir (one encoder).

use std::fmt;

use crate::snapshot::SnapshotError;

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
    /// A runtime line counter id that is not one of the slot's sites.
    BadCoverId {
        slot: usize,
        id: u64,
        nsites: usize,
    },
    /// A slot that is not fed by the runtime's line counters.
    NotNative(usize),
    /// Snapshot data or encoder input that is wrong (see [`SnapshotError`]).
    Snapshot(SnapshotError),
    /// A text that is not JSON.
    InvalidJson(String),
    /// A term JSON cannot represent.
    Unencodable(String),
}

impl From<SnapshotError> for Error {
    fn from(e: SnapshotError) -> Self {
        Error::Snapshot(e)
    }
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
            Error::BadCoverId { .. } => "bad_cover_id",
            Error::NotNative(_) => "not_native",
            Error::Snapshot(e) => e.kind(),
            Error::InvalidJson(_) => "invalid_json",
            Error::Unencodable(_) => "unencodable",
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
            Error::BadCoverId { slot, id, nsites } => write!(
                f,
                "the runtime reports line counter {id} for slot {slot}, which has {nsites} sites: the loaded code is not the build LiveCov instrumented (reloaded by somebody else?); instrument the module again"
            ),
            Error::NotNative(s) => write!(
                f,
                "counter slot {s} is not fed by the runtime's line counters (it was instrumented with backend: :nif)"
            ),
            Error::Snapshot(e) => e.fmt(f),
            Error::InvalidJson(detail) => write!(f, "invalid JSON: {detail}"),
            Error::Unencodable(detail) => write!(f, "cannot encode as JSON: {detail}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests;
