//! The counter table: one slot per instrumented module, one counter per bump site.
//!
//! Layout: a two-level array of slot pointers (`chunks` of `CHUNK` slots) so that the hot
//! path is two dependent loads and one relaxed `fetch_add`, without a lock, a hash lookup or
//! an allocation. Each slot keeps `nshards` copies of its counters, shard-major, and a
//! scheduler thread always bumps the same shard, so concurrent schedulers do not fight over
//! one cache line. Reads sum the shards.
//!
//! Slot ids are dense and never reused during the life of the VM: code that still runs an
//! old instrumented version of a module bumps its own (retired) slot, never somebody else's.
//! A retired slot's memory is kept for a grace period before it is freed, because a bump or a
//! read that loaded the pointer just before it was retired may still be using it.

use crate::baseline::{Baseline, Harvest};
use crate::error::Error;
use parking_lot::Mutex;
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CHUNK_BITS: usize = 10;
const CHUNK: usize = 1 << CHUNK_BITS;
const MAX_CHUNKS: usize = 1024;
/// Slots over the lifetime of one VM (ids are never reused).
pub const MAX_SLOTS: usize = CHUNK * MAX_CHUNKS;
/// Bump sites in one module.
pub const MAX_SITES: usize = 1 << 26;
/// Shards per slot; the real count is the number of schedulers, capped here.
pub const MAX_SHARDS: usize = 64;
/// How long retired slot memory is kept before it is freed.
const GRACE: Duration = Duration::from_secs(10);

/// The code whose line counters feed a slot: its module and the md5 of the version LiveCov
/// loaded (a harvest checks the loaded code is still that one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeSource {
    pub module: String,
    pub md5: Vec<u8>,
}

pub struct Slot {
    nsites: usize,
    nshards: usize,
    counts: Box<[AtomicU64]>,
    /// For a slot fed by the runtime's line counters: where they come from, what they read last.
    native: Mutex<Option<(NativeSource, Baseline)>>,
}

impl Slot {
    fn new(nsites: usize, nshards: usize) -> Slot {
        let counts = (0..nsites * nshards).map(|_| AtomicU64::new(0)).collect();
        Slot {
            nsites,
            nshards,
            counts,
            native: Mutex::new(None),
        }
    }

    /// Feeds this slot from `module`'s runtime line counters, whose values are `seen` now
    /// (`[]` for freshly loaded code: they start at zero). Called again after each reload.
    pub fn attach_native(
        &self,
        id: usize,
        source: NativeSource,
        seen: &[(u64, u64)],
    ) -> Result<(), Error> {
        let mut baseline = Baseline::new(self.nsites);
        baseline.apply(seen, id)?;
        *self.native.lock() = Some((source, baseline));
        Ok(())
    }

    /// Stops feeding this slot (before the module's code is replaced or restored).
    pub fn detach_native(&self) {
        *self.native.lock() = None;
    }

    /// The code whose line counters feed this slot, if any.
    pub fn native_source(&self) -> Option<NativeSource> {
        self.native.lock().as_ref().map(|(src, _)| src.clone())
    }

    /// Adds the runtime counters' growth since the last harvest (`{cover_id, count}` pairs,
    /// see [`Baseline::apply`]) to shard 0. `id` is this slot's id, for the error message.
    pub fn harvest(&self, id: usize, pairs: &[(u64, u64)]) -> Result<Harvest, Error> {
        let mut native = self.native.lock();
        let Some((_, baseline)) = native.as_mut() else {
            return Err(Error::NotNative(id));
        };
        let (deltas, outcome) = baseline.apply(pairs, id)?;
        for (c, d) in self.counts[..self.nsites].iter().zip(deltas) {
            if d > 0 {
                c.fetch_add(d, Ordering::Relaxed);
            }
        }
        Ok(outcome)
    }

    pub fn nsites(&self) -> usize {
        self.nsites
    }

    #[inline(always)]
    fn bump(&self, shard: usize, index: usize) {
        if index < self.nsites && shard < self.nshards {
            if let Some(c) = self.counts.get(shard * self.nsites + index) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sum of the shards for every site, in site order.
    pub fn read_into(&self, out: &mut Vec<u64>) {
        let n = self.nsites;
        out.extend(self.counts[..n].iter().map(|c| c.load(Ordering::Relaxed)));
        let base = out.len() - n;
        for shard in 1..self.nshards {
            let part = &self.counts[shard * n..(shard + 1) * n];
            for (o, c) in out[base..].iter_mut().zip(part) {
                *o += c.load(Ordering::Relaxed);
            }
        }
    }

    /// Read and zero every counter. Each bump is an atomic read-modify-write and so is each
    /// swap, so every bump lands either before a swap (and is returned by it) or after it
    /// (and stays for the next take): none is lost, none is counted twice.
    pub fn take_into(&self, out: &mut Vec<u64>) {
        let n = self.nsites;
        out.extend(
            self.counts[..n]
                .iter()
                .map(|c| c.swap(0, Ordering::Relaxed)),
        );
        let base = out.len() - n;
        for shard in 1..self.nshards {
            let part = &self.counts[shard * n..(shard + 1) * n];
            for (o, c) in out[base..].iter_mut().zip(part) {
                *o += c.swap(0, Ordering::Relaxed);
            }
        }
    }

    /// Add counts (an import) to shard 0.
    pub fn add(&self, counts: &[u64]) {
        for (c, v) in self.counts[..self.nsites].iter().zip(counts) {
            c.fetch_add(*v, Ordering::Relaxed);
        }
    }

    pub fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Slot>() + self.counts.len() * std::mem::size_of::<AtomicU64>()
    }
}

struct Chunk([AtomicPtr<Slot>; CHUNK]);

impl Chunk {
    fn new() -> Box<Chunk> {
        Box::new(Chunk([const { AtomicPtr::new(ptr::null_mut()) }; CHUNK]))
    }
}

/// Bookkeeping that only the cold paths (register, unregister) touch, under a mutex.
struct Alloc {
    next: usize,
    live: usize,
    retired: Vec<(Instant, *mut Slot)>,
    /// One bit per slot id ever installed in this VM (grown on demand): `claim` gives an id
    /// only if it was never used, so stale code can never bump somebody else's counters.
    used: Vec<u64>,
}

impl Alloc {
    fn was_used(&self, id: usize) -> bool {
        self.used
            .get(id / 64)
            .is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }

    fn mark_used(&mut self, id: usize) {
        let word = id / 64;
        if self.used.len() <= word {
            self.used.resize(word + 1, 0);
        }
        self.used[word] |= 1u64 << (id % 64);
    }
}

// The raw pointers in `retired` are owned by the table and only freed under the mutex.
unsafe impl Send for Alloc {}

pub struct Table {
    chunks: [AtomicPtr<Chunk>; MAX_CHUNKS],
    nshards: AtomicUsize,
    next_shard: AtomicUsize,
    alloc: Mutex<Alloc>,
}

pub static TABLE: Table = Table {
    chunks: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CHUNKS],
    nshards: AtomicUsize::new(0),
    next_shard: AtomicUsize::new(0),
    alloc: Mutex::new(Alloc {
        next: 0,
        live: 0,
        retired: Vec::new(),
        used: Vec::new(),
    }),
};

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Table-wide figures for `info/0`.
pub struct Info {
    pub nshards: usize,
    pub live_slots: usize,
    pub next_slot: usize,
    pub retired_slots: usize,
    pub sites: usize,
    pub bytes: usize,
}

impl Table {
    /// Fix the number of shards (once, when the library loads). Later calls are ignored so
    /// that every slot has the same shard count.
    pub fn set_shards(&self, n: usize) {
        let n = n.clamp(1, MAX_SHARDS);
        let _ = self
            .nshards
            .compare_exchange(0, n, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn nshards(&self) -> usize {
        match self.nshards.load(Ordering::Acquire) {
            0 => {
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                self.set_shards(n);
                self.nshards.load(Ordering::Acquire)
            }
            n => n,
        }
    }

    /// The calling thread's shard: assigned round-robin on the thread's first bump.
    #[inline(always)]
    fn shard(&self) -> usize {
        SHARD.with(|s| {
            let v = s.get();
            if v != usize::MAX {
                return v;
            }
            let n = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.nshards();
            s.set(n);
            n
        })
    }

    #[inline(always)]
    fn slot_ptr(&self, slot: usize) -> *mut Slot {
        let Some(chunk) = self.chunks.get(slot >> CHUNK_BITS) else {
            return ptr::null_mut();
        };
        let chunk = chunk.load(Ordering::Acquire);
        if chunk.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: chunks are allocated once and never freed.
        unsafe { (*chunk).0[slot & (CHUNK - 1)].load(Ordering::Acquire) }
    }

    /// The hot path. An unknown slot or an index out of range is a no-op: code left over
    /// from an older version must never crash the process that runs it.
    #[inline(always)]
    pub fn bump(&self, slot: usize, index: usize) {
        let p = self.slot_ptr(slot);
        if !p.is_null() {
            // SAFETY: a slot is freed only `GRACE` after it was unlinked (see `retire`).
            unsafe { (*p).bump(self.shard(), index) }
        }
    }

    /// Run `f` on a live slot.
    pub fn with_slot<T>(&self, slot: usize, f: impl FnOnce(&Slot) -> T) -> Result<T, Error> {
        let p = self.slot_ptr(slot);
        if p.is_null() {
            return Err(Error::UnknownSlot(slot));
        }
        // SAFETY: as in `bump`.
        Ok(f(unsafe { &*p }))
    }

    /// Every live slot, in id order.
    pub fn for_each_slot(&self, mut f: impl FnMut(usize, &Slot)) {
        let next = self.alloc.lock().next;
        for id in 0..next {
            let p = self.slot_ptr(id);
            if !p.is_null() {
                // SAFETY: as in `bump`.
                f(id, unsafe { &*p });
            }
        }
    }

    /// Every live slot fed by runtime line counters, with its source, in id order.
    pub fn native_slots(&self) -> Vec<(usize, NativeSource)> {
        let mut out = Vec::new();
        self.for_each_slot(|id, s| {
            if let Some(src) = s.native_source() {
                out.push((id, src));
            }
        });
        out
    }

    /// Allocate a fresh slot with `nsites` zeroed counters.
    pub fn register(&self, nsites: usize) -> Result<usize, Error> {
        check_sites(nsites)?;
        let mut alloc = self.alloc.lock();
        let id = alloc.next;
        if id >= MAX_SLOTS {
            return Err(Error::TableFull(MAX_SLOTS));
        }
        self.install(&mut alloc, id, nsites);
        Ok(id)
    }

    /// Install a fresh slot under a given id (a replica of another node's slot). An existing
    /// slot under that id is retired first.
    pub fn register_at(&self, id: usize, nsites: usize) -> Result<usize, Error> {
        check_sites(nsites)?;
        if id >= MAX_SLOTS {
            return Err(Error::BadSlot(id));
        }
        let mut alloc = self.alloc.lock();
        self.install(&mut alloc, id, nsites);
        Ok(id)
    }

    fn install(&self, alloc: &mut Alloc, id: usize, nsites: usize) {
        let entry = self.entry(id);
        let fresh = Box::into_raw(Box::new(Slot::new(nsites, self.nshards())));
        let old = entry.swap(fresh, Ordering::AcqRel);
        if old.is_null() {
            alloc.live += 1;
        } else {
            alloc.retired.push((Instant::now(), old));
        }
        alloc.next = alloc.next.max(id + 1);
        alloc.mark_used(id);
        Self::reclaim(alloc);
    }

    /// Install a fresh slot under `id` only if that id was never used in this VM (not
    /// registered, claimed or installed by `register_at`, even if since unregistered).
    /// Returns `Ok(true)` when the slot is now `id`'s, `Ok(false)` when the id was taken.
    /// Ids above the current end are fine: `next` moves past `id` and the ids skipped stay
    /// unused (a later `claim` may still take them; `register` never hands them out).
    ///
    /// This lets a binary compiled earlier for slot `id` (an instrumentation cache entry) be
    /// loaded as is: its literal slot id is safe exactly when nothing else ever used it.
    pub fn claim(&self, id: usize, nsites: usize) -> Result<bool, Error> {
        check_sites(nsites)?;
        if id >= MAX_SLOTS {
            return Err(Error::BadSlot(id));
        }
        let mut alloc = self.alloc.lock();
        if alloc.was_used(id) {
            return Ok(false);
        }
        self.install(&mut alloc, id, nsites);
        Ok(true)
    }

    /// Like `register`, but the id is at least `min` (`max(next, min)`): fresh ids can be kept
    /// clear of a range that `claim` is expected to ask for (the ids recorded in a cache).
    /// When `min` is out of range this is `register`.
    pub fn register_from(&self, min: usize, nsites: usize) -> Result<usize, Error> {
        check_sites(nsites)?;
        let mut alloc = self.alloc.lock();
        let mut id = alloc.next.max(min);
        if id >= MAX_SLOTS {
            id = alloc.next;
        }
        if id >= MAX_SLOTS {
            return Err(Error::TableFull(MAX_SLOTS));
        }
        self.install(&mut alloc, id, nsites);
        Ok(id)
    }

    /// Unlink a slot; its memory is freed after the grace period.
    pub fn unregister(&self, id: usize) -> Result<(), Error> {
        let mut alloc = self.alloc.lock();
        if self.slot_ptr(id).is_null() {
            return Err(Error::UnknownSlot(id));
        }
        let old = self.entry(id).swap(ptr::null_mut(), Ordering::AcqRel);
        alloc.live -= 1;
        alloc.retired.push((Instant::now(), old));
        Self::reclaim(&mut alloc);
        Ok(())
    }

    /// Free retired slots whose grace period is over.
    fn reclaim(alloc: &mut Alloc) {
        let now = Instant::now();
        alloc.retired.retain(|(at, p)| {
            if now.duration_since(*at) < GRACE {
                return true;
            }
            // SAFETY: unlinked more than GRACE ago; no NIF call lasts that long.
            drop(unsafe { Box::from_raw(*p) });
            false
        });
    }

    /// The pointer cell for `id`, allocating its chunk if needed (caller holds the mutex).
    fn entry(&self, id: usize) -> &AtomicPtr<Slot> {
        let cell = &self.chunks[id >> CHUNK_BITS];
        let mut chunk = cell.load(Ordering::Acquire);
        if chunk.is_null() {
            chunk = Box::into_raw(Chunk::new());
            cell.store(chunk, Ordering::Release);
        }
        // SAFETY: chunks are never freed.
        unsafe { &(*chunk).0[id & (CHUNK - 1)] }
    }

    pub fn reset_all(&self) {
        self.for_each_slot(|_, s| s.reset());
    }

    pub fn info(&self) -> Info {
        let (next, live, retired) = {
            let a = self.alloc.lock();
            (a.next, a.live, a.retired.len())
        };
        let mut sites = 0;
        let mut bytes = 0;
        self.for_each_slot(|_, s| {
            sites += s.nsites;
            bytes += s.bytes();
        });
        let chunks = self
            .chunks
            .iter()
            .filter(|c| !c.load(Ordering::Acquire).is_null())
            .count();
        Info {
            nshards: self.nshards(),
            live_slots: live,
            next_slot: next,
            retired_slots: retired,
            sites,
            bytes: bytes + chunks * std::mem::size_of::<Chunk>(),
        }
    }
}

fn check_sites(nsites: usize) -> Result<(), Error> {
    if nsites > MAX_SITES {
        Err(Error::TooManySites(nsites, MAX_SITES))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
