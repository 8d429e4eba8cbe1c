//! The hot entry point, `bump(Slot, Index)`.
//!
//! Two versions are exported so that the benchmark can measure the wrapper overhead:
//! `bump/2` is a raw `extern "C"` NIF (decode two small integers, one relaxed add, return
//! `ok`), `bump_rustler/2` the same work through rustler's `#[nif]` wrapper (term decoding,
//! `catch_unwind`, result encoding). Instrumented code calls the faster one, `bump/2`.
//! The raw version cannot panic: it indexes nothing unchecked and allocates nothing.
//!
//! Decoding: the arguments are literal small integers, which ERTS represents as immediates
//! (`value << 4 | 0xF` on 64-bit). Reading that directly saves the two `enif_get_int64`
//! calls (about a quarter of the bump's cost, measured). The layout is checked against
//! `enif_make_int64` when the library loads; if it does not match, the public API is used.

use live_cov_core::table::TABLE;
use rustler::codegen_runtime::{c_int, ErlNifEnv, ErlNifTerm};
use rustler::sys::{enif_get_int64, enif_make_int64};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The `ok` atom's term, cached when the library loads (atoms are never garbage collected).
static OK_TERM: OnceLock<ErlNifTerm> = OnceLock::new();

pub fn set_ok_term(term: ErlNifTerm) {
    let _ = OK_TERM.set(term);
}

/// Whether small integers have the immediate layout the fast decoder assumes.
static FAST_SMALL: AtomicBool = AtomicBool::new(false);

const SMALL_TAG: usize = 0xF;

fn raw(term: ErlNifTerm) -> usize {
    // SAFETY: `ErlNifTerm` is `repr(transparent)` over a `usize`.
    unsafe { std::mem::transmute::<ErlNifTerm, usize>(term) }
}

/// Checks the small-integer layout on this VM (called once, when the library loads).
///
/// # Safety
/// `env` must be the environment of the load call.
pub unsafe fn check_small_layout(env: *mut ErlNifEnv) -> bool {
    let ok = usize::BITS == 64
        && [0i64, 1, 7, 1023, 1 << 40, (1 << 59) - 1]
            .iter()
            .all(|&v| raw(enif_make_int64(env, v)) == ((v as usize) << 4) | SMALL_TAG)
        && raw(OK_TERM.get().copied().unwrap_or_default()) & 0xF != SMALL_TAG;
    FAST_SMALL.store(ok, Ordering::Relaxed);
    ok
}

/// Whether the fast small-integer decoder is in use (reported by `info/0`).
pub fn fast_small() -> bool {
    FAST_SMALL.load(Ordering::Relaxed)
}

/// A non-negative small integer argument, or `None` for anything else.
#[inline(always)]
unsafe fn index_arg(env: *mut ErlNifEnv, term: ErlNifTerm) -> Option<usize> {
    if FAST_SMALL.load(Ordering::Relaxed) {
        let r = raw(term);
        let v = (r as isize) >> 4;
        return (r & 0xF == SMALL_TAG && v >= 0).then_some(v as usize);
    }
    let mut v: i64 = -1;
    (enif_get_int64(env, term, &mut v) != 0 && v >= 0).then_some(v as usize)
}

unsafe extern "C" fn bump_raw(
    env: *mut ErlNifEnv,
    argc: c_int,
    argv: *const ErlNifTerm,
) -> ErlNifTerm {
    if argc == 2 {
        if let (Some(slot), Some(index)) = (index_arg(env, *argv), index_arg(env, *argv.add(1))) {
            TABLE.bump(slot, index);
        }
    }
    OK_TERM.get().copied().unwrap_or_default()
}

rustler::codegen_runtime::inventory::submit!(rustler::Nif {
    name: c"bump".as_ptr(),
    arity: 2,
    flags: 0,
    raw_func: bump_raw,
});

#[cfg(feature = "test-nifs")]
#[rustler::nif]
fn bump_rustler(slot: i64, index: i64) -> rustler::Atom {
    if slot >= 0 && index >= 0 {
        TABLE.bump(slot as usize, index as usize);
    }
    rustler::types::atom::ok()
}
