//! The NIF's one way to report an error: the core's [`Error`] crosses the boundary as
//! `{kind, message}` (inside the usual `{:error, _}`), so Elixir can match on the kind
//! (listed in `LiveCov.Errors`) and show the message.

use live_cov_core::error::Error;
use live_cov_core::snapshot::SnapshotError;
use rustler::{Atom, Encoder, Env, Term};

pub struct NifError(pub Error);

impl From<Error> for NifError {
    fn from(e: Error) -> Self {
        NifError(e)
    }
}

impl From<SnapshotError> for NifError {
    fn from(e: SnapshotError) -> Self {
        NifError(Error::Snapshot(e))
    }
}

impl Encoder for NifError {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let kind = Atom::from_str(env, self.0.kind()).expect("valid atom");
        (kind, self.0.to_string()).encode(env)
    }
}

/// `{:error, {kind, message}}`.
pub fn error_term<'a>(env: Env<'a>, e: impl Into<NifError>) -> Term<'a> {
    (rustler::types::atom::error(), e.into()).encode(env)
}
