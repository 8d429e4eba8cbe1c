//! The hot entry point, `bump(Slot, Index)`.
//!
//! Two versions are exported so that the benchmark can measure the wrapper overhead:
//! `bump/2` is a raw `extern "C"` NIF (two `enif_get_int64` calls, one relaxed add, return
//! `ok`), `bump_rustler/2` the same work through rustler's `#[nif]` wrapper (term decoding,
//! `catch_unwind`, result encoding). Instrumented code calls the faster one, `bump/2`.
//! The raw version cannot panic: it indexes nothing unchecked and allocates nothing.

use live_cov_core::table::TABLE;
use rustler::codegen_runtime::{c_int, ErlNifEnv, ErlNifTerm};
use rustler::sys::enif_get_int64;
use std::sync::OnceLock;

/// The `ok` atom's term, cached when the library loads (atoms are never garbage collected).
static OK_TERM: OnceLock<ErlNifTerm> = OnceLock::new();

pub fn set_ok_term(term: ErlNifTerm) {
    let _ = OK_TERM.set(term);
}

unsafe extern "C" fn bump_raw(
    env: *mut ErlNifEnv,
    argc: c_int,
    argv: *const ErlNifTerm,
) -> ErlNifTerm {
    let mut slot: i64 = -1;
    let mut index: i64 = -1;
    if argc == 2
        && enif_get_int64(env, *argv, &mut slot) != 0
        && enif_get_int64(env, *argv.add(1), &mut index) != 0
        && slot >= 0
        && index >= 0
    {
        TABLE.bump(slot as usize, index as usize);
    }
    OK_TERM.get().copied().unwrap_or_default()
}

rustler::codegen_runtime::inventory::submit!(rustler::Nif {
    name: c"bump".as_ptr(),
    arity: 2,
    flags: 0,
    raw_func: bump_raw,
});

#[rustler::nif]
fn bump_rustler(slot: i64, index: i64) -> rustler::Atom {
    if slot >= 0 && index >= 0 {
        TABLE.bump(slot as usize, index as usize);
    }
    rustler::types::atom::ok()
}
