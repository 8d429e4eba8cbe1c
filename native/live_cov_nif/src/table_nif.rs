//! NIFs over the counter table: register, read, take, reset, snapshot, info.
//!
//! Counts come back as packed binaries of little-endian u64 (one per site), never as lists:
//! a read of a module with 10,000 sites is one allocation and one memcpy-sized loop.

use crate::error::NifError;
use live_cov_core::error::Error;
use live_cov_core::table::{NativeSource, Slot, TABLE};
use rustler::{Binary, Encoder, Env, NewBinary, NifResult, Term};

/// Above this many counters a whole-table snapshot should run on a dirty scheduler.
const DIRTY_THRESHOLD: usize = 50_000;

fn le_binary<'a>(env: Env<'a>, counts: &[u64]) -> Binary<'a> {
    let mut bin = NewBinary::new(env, counts.len() * 8);
    for (chunk, c) in bin.as_mut_slice().chunks_exact_mut(8).zip(counts) {
        chunk.copy_from_slice(&c.to_le_bytes());
    }
    bin.into()
}

#[rustler::nif]
fn register(nsites: usize) -> Result<usize, NifError> {
    Ok(TABLE.register(nsites)?)
}

#[rustler::nif]
fn register_at(slot: usize, nsites: usize) -> Result<usize, NifError> {
    Ok(TABLE.register_at(slot, nsites)?)
}

/// `{:ok, slot}` when `slot` was never used in this VM and is now installed with `nsites`
/// zeroed counters; `{:error, {:slot_taken, message}}` otherwise (see `Table::claim`).
#[rustler::nif]
fn claim(env: Env, slot: usize, nsites: usize) -> Term {
    match TABLE.claim(slot, nsites) {
        Ok(true) => (rustler::types::atom::ok(), slot).encode(env),
        Ok(false) => {
            let kind = rustler::Atom::from_str(env, "slot_taken").expect("valid atom");
            let message = format!(
                "counter slot {slot} was already used in this VM (code compiled for it may still run): register a fresh slot"
            );
            (rustler::types::atom::error(), (kind, message)).encode(env)
        }
        Err(e) => (rustler::types::atom::error(), NifError(e)).encode(env),
    }
}

#[rustler::nif]
fn register_from(min: usize, nsites: usize) -> Result<usize, NifError> {
    Ok(TABLE.register_from(min, nsites)?)
}

#[rustler::nif]
fn unregister(env: Env, slot: usize) -> Term {
    ok_or_error(env, TABLE.unregister(slot))
}

/// `:ok` or `{:error, {kind, message}}` (rustler would encode `Ok(())` as `{:ok, {}}`).
fn ok_or_error(env: Env, result: Result<(), Error>) -> Term {
    match result {
        Ok(()) => rustler::types::atom::ok().encode(env),
        Err(e) => (rustler::types::atom::error(), NifError(e)).encode(env),
    }
}

fn slot_counts(env: Env, slot: usize, take: bool) -> Result<Binary, NifError> {
    Ok(TABLE.with_slot(slot, |s: &Slot| {
        let mut v = Vec::with_capacity(s.nsites());
        if take {
            s.take_into(&mut v)
        } else {
            s.read_into(&mut v)
        }
        le_binary(env, &v)
    })?)
}

#[rustler::nif]
fn read(env: Env, slot: usize) -> Result<Binary, NifError> {
    slot_counts(env, slot, false)
}

#[rustler::nif]
fn take(env: Env, slot: usize) -> Result<Binary, NifError> {
    slot_counts(env, slot, true)
}

/// Add counts (an import, or counts collected elsewhere) to a slot.
#[rustler::nif]
fn add<'a>(env: Env<'a>, slot: usize, counts: Binary<'a>) -> Term<'a> {
    let data = counts.as_slice();
    let result = TABLE.with_slot(slot, |s| {
        let n = s.nsites();
        if data.len() != n * 8 {
            return Err(Error::BadCounts {
                slot,
                expected: n,
                got: data.len() / 8,
            });
        }
        let v: Vec<u64> = data
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        s.add(&v);
        Ok(())
    });
    ok_or_error(env, result.and_then(|r| r))
}

#[rustler::nif]
fn reset(env: Env, slot: usize) -> Term {
    ok_or_error(env, TABLE.with_slot(slot, |s| s.reset()))
}

#[rustler::nif]
fn reset_all() -> rustler::Atom {
    TABLE.reset_all();
    rustler::types::atom::ok()
}

/// Every live slot as `slot::u32-le, n::u32-le, n × u64-le`, in slot order.
fn snapshot_binary(env: Env, take: bool) -> Binary {
    let mut out: Vec<u8> = Vec::new();
    let mut counts = Vec::new();
    TABLE.for_each_slot(|id, s| {
        counts.clear();
        if take {
            s.take_into(&mut counts)
        } else {
            s.read_into(&mut counts)
        }
        out.extend_from_slice(&(id as u32).to_le_bytes());
        out.extend_from_slice(&(counts.len() as u32).to_le_bytes());
        for c in &counts {
            out.extend_from_slice(&c.to_le_bytes());
        }
    });
    NewBinary::from_slice(env, &out).into()
}

#[rustler::nif]
fn snapshot(env: Env, take: bool) -> Binary {
    snapshot_binary(env, take)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn snapshot_dirty(env: Env, take: bool) -> Binary {
    snapshot_binary(env, take)
}

#[rustler::nif]
fn dirty_threshold() -> usize {
    DIRTY_THRESHOLD
}

#[rustler::nif]
fn info(env: Env) -> NifResult<Term> {
    let i = TABLE.info();
    let pairs = [
        ("nshards", i.nshards),
        ("live_slots", i.live_slots),
        ("next_slot", i.next_slot),
        ("retired_slots", i.retired_slots),
        ("sites", i.sites),
        ("bytes", i.bytes),
    ];
    let mut map = Term::map_new(env);
    for (k, v) in pairs {
        map = map.map_put(rustler::Atom::from_str(env, k)?, v)?;
    }
    map.map_put(
        rustler::Atom::from_str(env, "fast_decode")?,
        crate::bump::fast_small(),
    )
}

/// Panics on purpose: the test suite checks a panic becomes an Erlang exception.
#[cfg(feature = "test-nifs")]
#[rustler::nif]
fn debug_panic(message: String) -> rustler::Atom {
    panic!("{message}")
}

/// Feeds `slot` from the line counters of `module`'s loaded version `md5`, whose values are
/// `seen` now.
#[rustler::nif]
fn native_attach<'a>(
    env: Env<'a>,
    slot: usize,
    module: String,
    md5: Binary<'a>,
    seen: Vec<(u64, u64)>,
) -> Term<'a> {
    let source = NativeSource {
        module,
        md5: md5.as_slice().to_vec(),
    };
    let result = TABLE.with_slot(slot, |s| s.attach_native(slot, source, &seen));
    ok_or_error(env, result.and_then(|r| r))
}

/// Stops feeding `slot` from runtime line counters.
#[rustler::nif]
fn native_detach(env: Env, slot: usize) -> Term {
    ok_or_error(env, TABLE.with_slot(slot, |s| s.detach_native()))
}

/// `[{slot, module_name, md5}]` for every slot fed by runtime line counters.
#[rustler::nif]
fn native_slots(env: Env) -> Vec<(usize, String, Binary)> {
    TABLE
        .native_slots()
        .into_iter()
        .map(|(id, src)| (id, src.module, NewBinary::from_slice(env, &src.md5).into()))
        .collect()
}

/// `{slot, module_name, md5}` when `slot` is fed by runtime line counters, else `nil`: one
/// slot's lookup, without walking the table as `native_slots/0` does.
#[rustler::nif]
fn native_source(env: Env, slot: usize) -> Term {
    match TABLE.with_slot(slot, |s| s.native_source()) {
        Ok(Some(src)) => {
            let md5: Binary = NewBinary::from_slice(env, &src.md5).into();
            (slot, src.module, md5).encode(env)
        }
        _ => rustler::types::atom::nil().encode(env),
    }
}

/// Moves the growth of the runtime counters (`code:get_coverage(cover_id_line, M)`'s
/// `[{cover_id, count}]`) into `slot`: `{:ok, {added, went_back}}`.
#[rustler::nif]
fn native_harvest(slot: usize, pairs: Vec<(u64, u64)>) -> Result<(u64, u64), NifError> {
    let h = TABLE.with_slot(slot, |s| s.harvest(slot, &pairs))??;
    Ok((h.added, h.went_back))
}
