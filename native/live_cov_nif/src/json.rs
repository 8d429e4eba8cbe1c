//! JSON for the Elixir side (OTP 25 has no JSON module): terms go through rustler's serde
//! mapping into `serde_json`. Maps with atom or string keys become objects, lists arrays,
//! binaries strings, `nil` null, `true`/`false` booleans, other atoms strings.
//!
//! Both run on a dirty CPU scheduler: reports can be megabytes of JSON, and a normal
//! scheduler must never be held for milliseconds.

use live_cov_core::error::Error;
use rustler::{Binary, Encoder, Env, NewBinary, Term};
use serde_json::Value;

use crate::error::error_term;

#[rustler::nif(schedule = "DirtyCpu")]
fn json_encode<'a>(env: Env<'a>, term: Term<'a>, pretty: bool) -> Term<'a> {
    let value: Value = match rustler::serde::from_term(term) {
        Ok(v) => v,
        Err(e) => return error_term(env, Error::Unencodable(e.to_string())),
    };
    let bytes = if pretty {
        serde_json::to_vec_pretty(&value)
    } else {
        serde_json::to_vec(&value)
    };
    match bytes {
        Ok(b) => {
            let bin: Binary = NewBinary::from_slice(env, &b).into();
            (rustler::types::atom::ok(), bin).encode(env)
        }
        Err(e) => error_term(env, Error::Unencodable(e.to_string())),
    }
}

#[rustler::nif(schedule = "DirtyCpu")]
fn json_decode<'a>(env: Env<'a>, data: Binary<'a>) -> Term<'a> {
    match serde_json::from_slice::<Value>(data.as_slice()) {
        Ok(v) => match rustler::serde::to_term(env, &v) {
            Ok(t) => (rustler::types::atom::ok(), t).encode(env),
            Err(e) => error_term(env, Error::InvalidJson(e.to_string())),
        },
        Err(e) => error_term(env, Error::InvalidJson(e.to_string())),
    }
}
