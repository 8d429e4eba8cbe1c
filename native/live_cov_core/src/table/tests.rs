//! Tests of `table` (in their own file; `cargo test -p live_cov_core`).

use super::*;
use std::sync::Arc;

fn read(slot: usize) -> Vec<u64> {
    let mut v = Vec::new();
    TABLE.with_slot(slot, |s| s.read_into(&mut v)).unwrap();
    v
}

#[test]
fn fresh_slots_are_zero_and_count_bumps() {
    let s = TABLE.register(3).unwrap();
    assert_eq!(read(s), vec![0, 0, 0]);
    TABLE.bump(s, 1);
    TABLE.bump(s, 1);
    TABLE.bump(s, 2);
    assert_eq!(read(s), vec![0, 2, 1]);
}

#[test]
fn stale_or_bad_bumps_are_ignored() {
    let s = TABLE.register(2).unwrap();
    TABLE.bump(s, 2);
    TABLE.bump(s, usize::MAX);
    TABLE.bump(MAX_SLOTS + 5, 0);
    TABLE.bump(usize::MAX, 0);
    assert_eq!(read(s), vec![0, 0]);
    TABLE.unregister(s).unwrap();
    TABLE.bump(s, 0);
    assert!(matches!(
        TABLE.with_slot(s, |_| ()),
        Err(Error::UnknownSlot(_))
    ));
    assert!(matches!(TABLE.unregister(s), Err(Error::UnknownSlot(_))));
}

#[test]
fn ids_are_dense_and_not_reused() {
    let a = TABLE.register(1).unwrap();
    TABLE.unregister(a).unwrap();
    let b = TABLE.register(1).unwrap();
    assert!(b > a);
}

#[test]
fn register_at_gives_fresh_counters() {
    let s = TABLE.register(2).unwrap();
    TABLE.bump(s, 0);
    TABLE.register_at(s, 4).unwrap();
    assert_eq!(read(s), vec![0, 0, 0, 0]);
    assert!(TABLE.register_at(MAX_SLOTS, 1).is_err());
    assert!(TABLE.register(MAX_SITES + 1).is_err());
}

#[test]
fn concurrent_bumps_are_exact() {
    let s = TABLE.register(4).unwrap();
    let threads = 8;
    let per = 250_000;
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..per {
                    TABLE.bump(s, (i + t) % 4);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let total: u64 = read(s).iter().sum();
    assert_eq!(total, (threads * per) as u64);
}

#[test]
fn take_under_load_loses_nothing() {
    let s = TABLE.register(1).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let per = 400_000u64;
    let hs: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..per {
                    TABLE.bump(s, 0);
                }
            })
        })
        .collect();
    let st = stop.clone();
    let taker = std::thread::spawn(move || {
        let mut sum = 0;
        while !st.load(Ordering::Acquire) {
            let mut v = Vec::new();
            TABLE.with_slot(s, |sl| sl.take_into(&mut v)).unwrap();
            sum += v[0];
        }
        sum
    });
    for h in hs {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    let taken = taker.join().unwrap();
    let mut rest = Vec::new();
    TABLE.with_slot(s, |sl| sl.take_into(&mut rest)).unwrap();
    assert_eq!(taken + rest[0], 4 * per);
}

#[test]
fn claim_takes_only_ids_never_used() {
    let a = TABLE.register(2).unwrap();
    // A used id (live or retired) can never be claimed.
    assert!(!TABLE.claim(a, 2).unwrap());
    TABLE.unregister(a).unwrap();
    assert!(!TABLE.claim(a, 2).unwrap());

    // An id past the end: claimed, fresh counters, `next` moves past it.
    let far = TABLE.register(1).unwrap() + 1000;
    assert!(TABLE.claim(far, 3).unwrap());
    assert_eq!(read(far), vec![0, 0, 0]);
    TABLE.bump(far, 1);
    assert_eq!(read(far), vec![0, 1, 0]);
    assert!(!TABLE.claim(far, 3).unwrap());
    assert!(TABLE.register(1).unwrap() > far);

    // A skipped id was never used: it can still be claimed, once.
    let gap = far - 500;
    assert!(TABLE.claim(gap, 1).unwrap());
    assert!(!TABLE.claim(gap, 1).unwrap());
    TABLE.unregister(gap).unwrap();
    assert!(!TABLE.claim(gap, 1).unwrap());

    // Replicas installed with register_at count as used too.
    let rep = TABLE.register(1).unwrap() + 10;
    TABLE.register_at(rep, 1).unwrap();
    assert!(!TABLE.claim(rep, 1).unwrap());

    assert!(matches!(TABLE.claim(MAX_SLOTS, 1), Err(Error::BadSlot(_))));
    assert!(matches!(
        TABLE.claim(far + 5000, MAX_SITES + 1),
        Err(Error::TooManySites(..))
    ));
}

#[test]
fn register_from_stays_above_min_and_next() {
    let base = TABLE.register(1).unwrap();
    let a = TABLE.register_from(base + 300, 2).unwrap();
    assert!(a >= base + 300);
    assert_eq!(read(a), vec![0, 0]);
    let b = TABLE.register_from(0, 1).unwrap();
    assert!(b > a);
    assert!(!TABLE.claim(a, 1).unwrap());
    // A minimum out of range falls back to the next id.
    let c = TABLE.register_from(usize::MAX, 1).unwrap();
    assert!(c > b && c < MAX_SLOTS);
}

#[test]
fn concurrent_claims_of_one_id_have_one_winner() {
    let id = TABLE.register(1).unwrap() + 2000;
    let hs: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || TABLE.claim(id, 1).unwrap()))
        .collect();
    let wins = hs.into_iter().map(|h| h.join().unwrap());
    assert_eq!(wins.filter(|w| *w).count(), 1);
}

fn src() -> NativeSource {
    NativeSource {
        module: "Elixir.M".to_string(),
        md5: vec![1, 2, 3],
    }
}

#[test]
fn native_slots_take_deltas_and_keep_their_table_semantics() {
    let s = TABLE.register(2).unwrap();
    assert!(matches!(
        TABLE.with_slot(s, |x| x.harvest(s, &[(1, 1)])).unwrap(),
        Err(Error::NotNative(_))
    ));
    TABLE
        .with_slot(s, |x| x.attach_native(s, src(), &[]))
        .unwrap()
        .unwrap();
    assert!(TABLE.native_slots().contains(&(s, src())));
    let h = TABLE
        .with_slot(s, |x| x.harvest(s, &[(1, 3), (2, 1)]))
        .unwrap()
        .unwrap();
    assert_eq!(h.added, 4);
    TABLE.bump(s, 0);
    assert_eq!(read(s), vec![4, 1]);
    let mut taken = Vec::new();
    TABLE.with_slot(s, |x| x.take_into(&mut taken)).unwrap();
    assert_eq!(taken, vec![4, 1]);
    // The runtime's counters are never reset: only their growth comes in.
    TABLE
        .with_slot(s, |x| x.harvest(s, &[(1, 5), (2, 1)]))
        .unwrap()
        .unwrap();
    assert_eq!(read(s), vec![2, 0]);
    // A reload starts the runtime's counters afresh.
    TABLE
        .with_slot(s, |x| x.attach_native(s, src(), &[]))
        .unwrap()
        .unwrap();
    TABLE
        .with_slot(s, |x| x.harvest(s, &[(1, 1)]))
        .unwrap()
        .unwrap();
    assert_eq!(read(s), vec![3, 0]);
    // A failed reload: the old code goes on from the values it has now.
    TABLE
        .with_slot(s, |x| x.attach_native(s, src(), &[(1, 7)]))
        .unwrap()
        .unwrap();
    TABLE
        .with_slot(s, |x| x.harvest(s, &[(1, 8)]))
        .unwrap()
        .unwrap();
    assert_eq!(read(s), vec![4, 0]);
    TABLE.with_slot(s, |x| x.detach_native()).unwrap();
    assert!(!TABLE.native_slots().iter().any(|(id, _)| *id == s));
}
