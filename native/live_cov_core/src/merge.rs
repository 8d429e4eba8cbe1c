//! Pure merging of coverage counts and of whole snapshot files.
//!
//! The rule (as Go's `covdata merge`): counts of the same metadata hash, i.e. the same module
//! of the same build, are summed; different hashes are kept apart, and the modules that end
//! up with more than one build are reported. Counts add with saturation, so merging never
//! overflows. The pruned sites of a build (adaptive mode) are united.

use crate::snapshot::{
    decode, encode_with_pruned, pack, unpack, CounterRef, Hash, MetaBlob, Origin, PrunedRef,
    SnapshotError,
};
use std::collections::{BTreeMap, HashMap};

fn check_same(a: &[u8], b: &[u8]) -> Result<(), SnapshotError> {
    if a.len() != b.len() || !a.len().is_multiple_of(8) {
        return Err(SnapshotError::CountMismatch {
            detail: format!(
                "cannot combine counts of {} and {} bytes: they must be packed u64 of the same build",
                a.len(),
                b.len()
            ),
        });
    }
    Ok(())
}

/// Element-wise (saturating) sum of two packed count vectors of the same build.
pub fn add_packed(a: &[u8], b: &[u8]) -> Result<Vec<u8>, SnapshotError> {
    check_same(a, b)?;
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in unpack(a).zip(unpack(b)) {
        out.extend_from_slice(&x.saturating_add(y).to_le_bytes());
    }
    Ok(out)
}

/// `after - before`, element-wise. `Ok(None)` when some counter went down (the counters
/// were reset between the two readings).
pub fn sub_packed(after: &[u8], before: &[u8]) -> Result<Option<Vec<u8>>, SnapshotError> {
    check_same(after, before)?;
    let mut out = Vec::with_capacity(after.len());
    for (x, y) in unpack(after).zip(unpack(before)) {
        match x.checked_sub(y) {
            Some(d) => out.extend_from_slice(&d.to_le_bytes()),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// What a merge found: modules that have more than one build in the result.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// `(module, [metadata hash])`, sorted by module.
    pub mixed_builds: Vec<(String, Vec<Hash>)>,
}

/// Merges encoded snapshot files into one encoded snapshot (all origins kept). Every input
/// is decoded and validated first: if any is bad, the error names its position and nothing
/// is produced.
pub fn merge_files(files: &[&[u8]]) -> Result<(Vec<u8>, MergeReport), SnapshotError> {
    let mut decoded = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        decoded.push(decode(f).map_err(|e| match e {
            SnapshotError::CountMismatch { detail } => SnapshotError::CountMismatch { detail },
            other => SnapshotError::BadInput(format!("snapshot {} of the merge: {other}", i + 1)),
        })?);
    }

    let mut origins: Vec<Origin> = Vec::new();
    let mut metas: Vec<MetaBlob> = Vec::new();
    let mut index: HashMap<Hash, usize> = HashMap::new();
    let mut sums: Vec<Option<Vec<u64>>> = Vec::new();
    let mut builds: BTreeMap<&str, Vec<Hash>> = BTreeMap::new();
    // Pruned sites of a build are united: pruning never changes the build's hash.
    let mut pruned: HashMap<Hash, Vec<u32>> = HashMap::new();

    for d in &decoded {
        origins.extend(d.origins.iter().cloned());
        let mut local = Vec::with_capacity(d.metas.len());
        for m in &d.metas {
            let i = *index.entry(m.hash).or_insert_with(|| {
                metas.push(MetaBlob {
                    hash: m.hash,
                    bytes: m.bytes,
                });
                sums.push(None);
                builds.entry(m.meta.module).or_default().push(m.hash);
                metas.len() - 1
            });
            local.push(i);
        }
        for ((idx, _), sites) in d.counters.iter().zip(&d.pruned) {
            if !sites.is_empty() {
                pruned
                    .entry(d.metas[*idx].hash)
                    .or_default()
                    .extend_from_slice(sites);
            }
        }
        for (idx, counts) in &d.counters {
            let slot = &mut sums[local[*idx]];
            match slot {
                None => *slot = Some(counts.clone()),
                Some(acc) => {
                    for (a, c) in acc.iter_mut().zip(counts) {
                        *a = a.saturating_add(*c);
                    }
                }
            }
        }
    }

    let packed: Vec<(Hash, Vec<u8>)> = metas
        .iter()
        .zip(&sums)
        .filter_map(|(m, s)| s.as_ref().map(|v| (m.hash, pack(v))))
        .collect();
    let counters = CounterRef::from_pairs(&packed);
    let pruned_refs: Vec<PrunedRef> = pruned
        .iter()
        .map(|(h, sites)| PrunedRef { meta: *h, sites })
        .collect();
    let out = encode_with_pruned(&origins, &metas, &counters, &pruned_refs)?;
    let mixed_builds = builds
        .into_iter()
        .filter(|(_, hs)| hs.len() > 1)
        .map(|(m, hs)| (m.to_string(), hs))
        .collect();
    Ok((out, MergeReport { mixed_builds }))
}

#[cfg(test)]
mod tests {
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
}
