//! Tests of `baseline` (`cargo test -p live_cov_core`).

use super::*;

#[test]
fn deltas_since_the_last_harvest() {
    let mut b = Baseline::new(3);
    let (d, h) = b.apply(&[(1, 2), (2, 0), (3, 5)], 0).unwrap();
    assert_eq!(d, vec![2, 0, 5]);
    assert_eq!(
        h,
        Harvest {
            added: 7,
            went_back: 0
        }
    );
    let (d, h) = b.apply(&[(1, 2), (2, 4), (3, 6)], 0).unwrap();
    assert_eq!(d, vec![0, 4, 1]);
    assert_eq!(h.added, 5);
}

#[test]
fn duplicated_ids_are_summed_and_missing_ids_are_zero() {
    let mut b = Baseline::new(3);
    let (d, _) = b.apply(&[(2, 1), (2, 3)], 0).unwrap();
    assert_eq!(d, vec![0, 4, 0]);
}

#[test]
fn a_counter_that_went_down_was_reset_elsewhere() {
    let mut b = Baseline::new(2);
    b.apply(&[(1, 10), (2, 10)], 0).unwrap();
    let (d, h) = b.apply(&[(1, 3), (2, 12)], 0).unwrap();
    assert_eq!(d, vec![3, 2]);
    assert_eq!(
        h,
        Harvest {
            added: 5,
            went_back: 1
        }
    );
}

#[test]
fn ids_of_another_build_change_nothing() {
    let mut b = Baseline::new(2);
    b.apply(&[(1, 4)], 7).unwrap();
    for bad in [0u64, 3, u64::MAX] {
        let e = b.apply(&[(1, 9), (bad, 1)], 7).unwrap_err();
        assert_eq!(e.kind(), "bad_cover_id");
        assert!(e.to_string().contains("slot 7"), "{e}");
    }
    let (d, _) = b.apply(&[(1, 5)], 7).unwrap();
    assert_eq!(d, vec![1, 0]);
}
