//! The NIF's error type: the core's errors cross the boundary as `{kind, message}` (inside
//! the usual `{:error, _}`), so Elixir can match on the kind and show the message.

use rustler::{Atom, Encoder, Env, Term};

pub struct NifError(pub live_cov_core::error::Error);

impl From<live_cov_core::error::Error> for NifError {
    fn from(e: live_cov_core::error::Error) -> Self {
        NifError(e)
    }
}

impl Encoder for NifError {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let kind = Atom::from_str(env, self.0.kind()).expect("valid atom");
        (kind, self.0.to_string()).encode(env)
    }
}
