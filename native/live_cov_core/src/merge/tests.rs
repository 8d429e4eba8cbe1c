//! Tests of `merge` (in their own file; `cargo test -p live_cov_core`).

use super::*;
use crate::snapshot::Meta;

fn meta(module: &str, md5: u8, n: u32) -> (Hash, Vec<u8>) {
    Meta {
        module,
        md5: [md5; 16],
        source: None,
        beam_path: None,
        functions: vec![("f", 0)],
        sites: (0..n).map(|i| (0, 1, i + 1)).collect(),
        clauses: vec![(0, 1, n)],
    }
    .encode()
    .unwrap()
}

type Part<'a> = (&'a (Hash, Vec<u8>), &'a [u64]);

fn file(node: &str, parts: &[Part]) -> Vec<u8> {
    let blobs: Vec<_> = parts
        .iter()
        .map(|((h, b), _)| MetaBlob { hash: *h, bytes: b })
        .collect();
    let ps: Vec<_> = parts.iter().map(|((h, _), c)| (*h, pack(c))).collect();
    let cs = CounterRef::from_pairs(&ps);
    let o = Origin {
        node,
        os_pid: "1",
        time_ms: 0,
        labels: vec![],
    };
    crate::snapshot::encode(&[o], &blobs, &cs).unwrap()
}

#[test]
fn add_and_sub() {
    assert_eq!(
        add_packed(&pack(&[1, u64::MAX]), &pack(&[2, 1])).unwrap(),
        pack(&[3, u64::MAX])
    );
    assert_eq!(
        sub_packed(&pack(&[5, 3]), &pack(&[2, 3])).unwrap(),
        Some(pack(&[3, 0]))
    );
    assert_eq!(sub_packed(&pack(&[1, 3]), &pack(&[2, 3])).unwrap(), None);
    assert_eq!(
        add_packed(&pack(&[1]), &pack(&[1, 2])).unwrap_err().kind(),
        "count_mismatch"
    );
    assert_eq!(
        sub_packed(&[1, 2, 3], &[1, 2, 3]).unwrap_err().kind(),
        "count_mismatch"
    );
}

#[test]
fn same_build_sums_other_builds_stay_apart() {
    let a1 = meta("a", 1, 2);
    let a2 = meta("a", 2, 2); // another build of a
    let b = meta("b", 1, 1);
    let f1 = file("n1", &[(&a1, &[1, 0]), (&b, &[4])]);
    let f2 = file("n2", &[(&a1, &[2, 5]), (&a2, &[9, 9])]);
    let (out, report) = merge_files(&[&f1, &f2]).unwrap();
    let d = decode(&out).unwrap();
    assert_eq!(
        d.origins.iter().map(|o| o.node).collect::<Vec<_>>(),
        vec!["n1", "n2"]
    );
    let counts: HashMap<Hash, Vec<u64>> = d
        .counters
        .iter()
        .map(|(i, c)| (d.metas[*i].hash, c.clone()))
        .collect();
    assert_eq!(counts[&a1.0], vec![3, 5]);
    assert_eq!(counts[&a2.0], vec![9, 9]);
    assert_eq!(counts[&b.0], vec![4]);
    assert_eq!(
        report.mixed_builds,
        vec![("a".to_string(), vec![a1.0, a2.0])]
    );
}

#[test]
fn merge_is_order_independent_for_counts_and_refuses_bad_input() {
    let a = meta("a", 1, 3);
    let f1 = file("n1", &[(&a, &[1, 2, 3])]);
    let f2 = file("n2", &[(&a, &[10, 20, 30])]);
    let x = decode(&merge_files(&[&f1, &f2]).unwrap().0)
        .unwrap()
        .counters;
    let y = decode(&merge_files(&[&f2, &f1]).unwrap().0)
        .unwrap()
        .counters;
    assert_eq!(x, y);
    let e = merge_files(&[&f1, &f2[..10]]).unwrap_err();
    assert!(e.to_string().contains("snapshot 2 of the merge"), "{e}");
    assert!(merge_files(&[]).is_ok());
}
