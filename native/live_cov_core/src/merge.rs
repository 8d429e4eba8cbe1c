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
mod tests;
