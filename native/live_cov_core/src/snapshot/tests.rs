//! Tests of `snapshot` (in their own file; `cargo test -p live_cov_core`).

use super::*;

pub(crate) fn sample_meta(module: &str, nsites: u32) -> (Hash, Vec<u8>) {
    let meta = Meta {
        module,
        md5: [7; 16],
        source: Some("/src/m.erl"),
        beam_path: None,
        functions: vec![("f", 1), ("g", 0)],
        sites: (0..nsites).map(|i| (i % 2, 1, 10 + i)).collect(),
        clauses: vec![(0, 1, nsites / 2), (1, 1, nsites - nsites / 2)],
    };
    meta.encode().unwrap()
}

fn origin() -> Origin<'static> {
    Origin {
        node: "a@host",
        os_pid: "4242",
        time_ms: 1_700_000_000_000,
        labels: vec![("run", "17"), ("git", "abc")],
    }
}

/// Modules m1 (counts [1, 0, 300]) and m2 (counts [u64::MAX, 5]) from `origin()`, with
/// `pruned` sites given as (module index, sites).
fn sample_with_pruned(pruned: &[(usize, &[u32])]) -> Vec<u8> {
    let (h1, b1) = sample_meta("m1", 3);
    let (h2, b2) = sample_meta("m2", 2);
    let hashes = [h1, h2];
    let c1 = pack(&[1, 0, 300]);
    let c2 = pack(&[u64::MAX, 5]);
    let blobs = [
        MetaBlob {
            hash: h1,
            bytes: &b1,
        },
        MetaBlob {
            hash: h2,
            bytes: &b2,
        },
    ];
    let counters = [
        CounterRef {
            meta: h1,
            packed: &c1,
        },
        CounterRef {
            meta: h2,
            packed: &c2,
        },
    ];
    let pruned: Vec<_> = pruned
        .iter()
        .map(|(i, sites)| PrunedRef {
            meta: hashes[*i],
            sites,
        })
        .collect();
    encode_with_pruned(&[origin()], &blobs, &counters, &pruned).unwrap()
}

pub(crate) fn sample_file() -> Vec<u8> {
    sample_with_pruned(&[])
}

/// `sample_file` with sites 0 and 2 of m1 pruned (given unsorted, with a duplicate).
pub(crate) fn pruned_file() -> Vec<u8> {
    sample_with_pruned(&[(0, &[2, 0]), (0, &[2]), (1, &[])])
}

/// `sample_file()` as written by the version 1 encoder (before pruned sites existed):
/// the bytes are frozen here so that old files stay readable.
const V1_SAMPLE_HEX: &str = concat!(
    "894c697665436f760100000000000000ea0000000000000024900bbb9e90018a",
    "50524f56260000000000000001066140686f73740434323432fd00d0ca9f1703",
    "0000020372756e02313703676974036162634d4554416e000000000000000202",
    "6d3107070707070707070707070707070707010a2f7372632f6d2e65726c0201",
    "66010167000300010a01010b00010c0200010101010200026d32070707070707",
    "07070707070707070707010a2f7372632f6d2e65726c020166010167000200010a",
    "01010b0200010101010100434e545232000000000000000287acd99ef606a68c",
    "3b524caa163dd93b030100fb2c01c63542928ca1297299fd19f0dbd89ddb02fd",
    "ffffffffffffffff05",
);

pub(crate) fn v1_file() -> Vec<u8> {
    (0..V1_SAMPLE_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&V1_SAMPLE_HEX[i..i + 2], 16).unwrap())
        .collect()
}

/// Re-encodes a decoded snapshot with its pruned sites.
fn reencode(d: &Decoded) -> Vec<u8> {
    let blobs: Vec<_> = d
        .metas
        .iter()
        .map(|m| MetaBlob {
            hash: m.hash,
            bytes: m.bytes,
        })
        .collect();
    let ps: Vec<_> = d
        .counters
        .iter()
        .map(|(i, c)| (d.metas[*i].hash, pack(c)))
        .collect();
    let cs = CounterRef::from_pairs(&ps);
    let pr: Vec<_> = ps
        .iter()
        .zip(&d.pruned)
        .map(|((h, _), p)| PrunedRef { meta: *h, sites: p })
        .collect();
    encode_with_pruned(&d.origins, &blobs, &cs, &pr).unwrap()
}

#[test]
fn v2_round_trip_with_pruned_sites() {
    let file = pruned_file();
    assert_eq!(le_u32(&file[8..]), 2);
    let d = decode(&file).unwrap();
    assert_eq!(d.version, 2);
    assert_eq!(
        d.counters,
        vec![(0, vec![1, 0, 300]), (1, vec![u64::MAX, 5])]
    );
    assert_eq!(d.pruned, vec![vec![0, 2], vec![]]);
    assert_eq!(reencode(&d), file);
    // Pruning is not part of the build: the metadata (and its hash) are those of the
    // unpruned data, so both merge.
    let plain = sample_file();
    let p = decode(&plain).unwrap();
    let hashes = |d: &Decoded| d.metas.iter().map(|m| m.hash).collect::<Vec<_>>();
    assert_eq!(hashes(&d), hashes(&p));
    assert_eq!(
        d.metas.iter().map(|m| m.bytes).collect::<Vec<_>>(),
        p.metas.iter().map(|m| m.bytes).collect::<Vec<_>>()
    );
    assert_ne!(d.content_hash, p.content_hash, "the content does differ");
}

#[test]
fn version_1_files_still_decode() {
    let file = v1_file();
    assert_eq!(&file[..8], &MAGIC);
    assert_eq!(le_u32(&file[8..]), 1);
    let d = decode(&file).unwrap();
    assert_eq!(d.version, 1);
    assert_eq!(d.origins, vec![origin()]);
    assert_eq!(
        d.metas.iter().map(|m| m.meta.module).collect::<Vec<_>>(),
        vec!["m1", "m2"]
    );
    assert_eq!(
        d.metas[0].hash,
        sample_meta("m1", 3).0,
        "same metadata hash"
    );
    assert_eq!(
        d.counters,
        vec![(0, vec![1, 0, 300]), (1, vec![u64::MAX, 5])]
    );
    assert_eq!(d.pruned, vec![Vec::<u32>::new(), vec![]]);
    // Written again, it is a version 2 file with the same content.
    let again = reencode(&d);
    assert_eq!(again, sample_file());
    let d2 = decode(&again).unwrap();
    assert_eq!(d2.version, VERSION);
    assert_eq!(d2.counters, d.counters);
    // A version 1 file merges with version 2 files.
    let (merged, _) = crate::merge::merge_files(&[&file, &pruned_file()]).unwrap();
    let m = decode(&merged).unwrap();
    assert_eq!(
        m.counters,
        vec![(0, vec![2, 0, 600]), (1, vec![u64::MAX, 10])]
    );
}

#[test]
fn version_0_is_malformed() {
    let mut f = sample_file();
    f[8..12].copy_from_slice(&0u32.to_le_bytes());
    let e = decode(&f).unwrap_err();
    assert_eq!(e.kind(), "malformed");
    assert!(e.to_string().contains("version 0"), "{e}");
}

/// A file with one module of 3 sites whose counter entry carries `pruned` as given.
fn file_with_pruned(pruned: &[u32]) -> Vec<u8> {
    let (h1, b1) = sample_meta("m1", 3);
    let mut meta_payload = bincode::serde::encode_to_vec(1u64, CONFIG).unwrap();
    meta_payload.extend_from_slice(&b1);
    let mut cntr = bincode::serde::encode_to_vec(1u64, CONFIG).unwrap();
    cntr.extend(
        bincode::serde::encode_to_vec(
            CounterOut {
                meta: h1,
                counts: Packed(&pack(&[1, 2, 3])),
                pruned,
            },
            CONFIG,
        )
        .unwrap(),
    );
    let mut f = vec![0u8; HEADER_LEN];
    f[0..8].copy_from_slice(&MAGIC);
    f[8..12].copy_from_slice(&VERSION.to_le_bytes());
    section(&mut f, b"PROV", &[0]);
    section(&mut f, b"META", &meta_payload);
    section(&mut f, b"CNTR", &cntr);
    reseal(f)
}

#[test]
fn pruned_sites_are_validated_on_decode() {
    assert_eq!(
        decode(&file_with_pruned(&[0, 2])).unwrap().pruned,
        vec![vec![0, 2]]
    );
    let e = decode(&file_with_pruned(&[0, 3])).unwrap_err();
    assert_eq!(e.kind(), "malformed");
    let msg = e.to_string();
    assert!(msg.contains("counters"), "{msg}");
    assert!(
        msg.contains("module m1: pruned site index 3 is out of range (the module has 3 sites)"),
        "{msg}"
    );
    let e = decode(&file_with_pruned(&[u32::MAX])).unwrap_err();
    assert!(
        e.to_string().contains("index 4294967295 is out of range"),
        "{e}"
    );
    for bad in [&[1, 1][..], &[2, 1]] {
        let e = decode(&file_with_pruned(bad)).unwrap_err();
        assert_eq!(e.kind(), "malformed");
        assert!(e.to_string().contains("not strictly increasing"), "{e}");
    }
}

#[test]
fn pruned_sites_are_checked_on_encode() {
    let (h, b) = sample_meta("m", 2);
    let c = pack(&[1, 2]);
    let blob = [MetaBlob { hash: h, bytes: &b }];
    let counters = [CounterRef {
        meta: h,
        packed: &c,
    }];
    let e = encode_with_pruned(
        &[],
        &blob,
        &counters,
        &[PrunedRef {
            meta: h,
            sites: &[0, 2],
        }],
    )
    .unwrap_err();
    assert_eq!(e.kind(), "bad_input");
    assert!(
        e.to_string().contains("pruned site index 2") && e.to_string().contains("2 sites"),
        "{e}"
    );
    // Pruned sites of a build without counters.
    let e = encode_with_pruned(
        &[],
        &blob,
        &[],
        &[PrunedRef {
            meta: h,
            sites: &[0],
        }],
    )
    .unwrap_err();
    assert_eq!(e.kind(), "bad_input");
    assert!(e.to_string().contains("has no counters"), "{e}");
    // An empty set is no set.
    let f = encode_with_pruned(
        &[],
        &blob,
        &[],
        &[PrunedRef {
            meta: h,
            sites: &[],
        }],
    );
    assert_eq!(f.unwrap(), encode(&[], &blob, &[]).unwrap());
}

#[test]
fn merged_files_keep_the_union_of_pruned_sites() {
    let (h1, b1) = sample_meta("m1", 3);
    let blob = [MetaBlob {
        hash: h1,
        bytes: &b1,
    }];
    let one = |counts: &[u64], pruned: &[u32]| {
        let c = pack(counts);
        encode_with_pruned(
            &[origin()],
            &blob,
            &[CounterRef {
                meta: h1,
                packed: &c,
            }],
            &[PrunedRef {
                meta: h1,
                sites: pruned,
            }],
        )
        .unwrap()
    };
    let a = one(&[1, 0, 0], &[0]);
    let b = one(&[0, 0, 4], &[2]);
    let c = one(&[0, 0, 0], &[]);
    let files = [&a[..], &b[..], &c[..], &v1_file()[..]];
    // The merge itself unites the pruned sets (and sums the counts).
    let (merged, _) = crate::merge::merge_files(&files).unwrap();
    let d = decode(&merged).unwrap();
    let i = d.metas.iter().position(|m| m.hash == h1).unwrap();
    let k = d.counters.iter().position(|(m, _)| *m == i).unwrap();
    assert_eq!(d.counters[k].1, vec![2, 0, 304]);
    assert_eq!(d.pruned[k], vec![0, 2]);
    assert!(d
        .pruned
        .iter()
        .enumerate()
        .all(|(j, p)| j == k || p.is_empty()));
    // Unpruned inputs merge to unpruned output.
    let (plain, _) = crate::merge::merge_files(&[&c[..], &c[..]]).unwrap();
    assert!(decode(&plain).unwrap().pruned.iter().all(Vec::is_empty));
}

#[test]
fn round_trip() {
    let file = sample_file();
    let d = decode(&file).unwrap();
    assert_eq!(d.version, VERSION);
    assert_eq!(d.origins, vec![origin()]);
    assert_eq!(d.metas.len(), 2);
    assert_eq!(d.metas[0].meta.module, "m1");
    assert_eq!(
        d.metas[0].meta.sites,
        vec![(0, 1, 10), (1, 1, 11), (0, 1, 12)]
    );
    assert_eq!(d.metas[0].meta.source, Some("/src/m.erl"));
    assert_eq!(d.metas[1].hash, sample_meta("m2", 2).0);
    assert_eq!(
        d.counters,
        vec![(0, vec![1, 0, 300]), (1, vec![u64::MAX, 5])]
    );
    assert_eq!(d.pruned, vec![Vec::<u32>::new(), vec![]]);
    assert_eq!(d.content_hash, hash_of(&file[HEADER_LEN..]));
    // Re-encoding from the decoded parts gives the same bytes.
    assert_eq!(reencode(&d), file);
}

#[test]
fn empty_snapshot_round_trips() {
    let file = encode(&[], &[], &[]).unwrap();
    let d = decode(&file).unwrap();
    assert!(d.origins.is_empty() && d.metas.is_empty() && d.counters.is_empty());
}

#[test]
fn metadata_hash_identifies_the_build() {
    let (a, _) = sample_meta("m", 3);
    let (b, _) = sample_meta("m", 3);
    let (c, _) = sample_meta("m", 4);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut other = Meta {
        module: "m",
        md5: [8; 16],
        source: Some("/src/m.erl"),
        beam_path: None,
        functions: vec![("f", 1), ("g", 0)],
        sites: (0..3).map(|i| (i % 2, 1, 10 + i)).collect(),
        clauses: vec![(0, 1, 1), (1, 1, 2)],
    };
    assert_ne!(other.encode().unwrap().0, a, "another md5 is another build");
    let elsewhere = Meta {
        beam_path: Some("/other/dir/m.beam"),
        ..other.clone()
    };
    assert_eq!(
        elsewhere.encode().unwrap().0,
        other.encode().unwrap().0,
        "beam path is not identity"
    );
    let moved = Meta {
        source: Some("/other/src/m.erl"),
        ..other.clone()
    };
    assert_ne!(
        moved.encode().unwrap().0,
        other.encode().unwrap().0,
        "source path is identity"
    );
    other.functions.clear();
    assert_eq!(other.encode().unwrap_err().kind(), "bad_input");
}

#[test]
fn encoder_checks_its_input() {
    let (h, b) = sample_meta("m", 2);
    let ok = pack(&[1, 2]);
    let short = pack(&[1]);
    let blob = [MetaBlob { hash: h, bytes: &b }];
    let e = encode(
        &[],
        &blob,
        &[CounterRef {
            meta: h,
            packed: &short,
        }],
    )
    .unwrap_err();
    assert_eq!(e.kind(), "count_mismatch");
    let e = encode(
        &[],
        &[],
        &[CounterRef {
            meta: h,
            packed: &ok,
        }],
    )
    .unwrap_err();
    assert_eq!(e.kind(), "bad_input");
    let bad = [MetaBlob {
        hash: [0; 16],
        bytes: &b,
    }];
    assert_eq!(encode(&[], &bad, &[]).unwrap_err().kind(), "bad_input");
    let twice = [
        CounterRef {
            meta: h,
            packed: &ok,
        },
        CounterRef {
            meta: h,
            packed: &ok,
        },
    ];
    assert_eq!(encode(&[], &blob, &twice).unwrap_err().kind(), "bad_input");
    // The same metadata twice is written once.
    let two = [
        MetaBlob { hash: h, bytes: &b },
        MetaBlob { hash: h, bytes: &b },
    ];
    assert_eq!(
        decode(&encode(&[], &two, &[]).unwrap())
            .unwrap()
            .metas
            .len(),
        1
    );
}

#[test]
fn empty_and_foreign_data() {
    assert_eq!(decode(&[]).unwrap_err(), SnapshotError::Empty);
    let e = decode(b"hello world, this is not a snapshot at all").unwrap_err();
    assert_eq!(e.kind(), "not_a_snapshot");
    let e = decode(&[20, 131, 104, 3]).unwrap_err();
    assert!(e.to_string().contains("LiveCov.Cover.import"), "{e}");
    let e = decode(b"\x1f\x8b\x08\x00").unwrap_err();
    assert!(e.to_string().contains("gzip"), "{e}");
}

#[test]
fn truncated_at_every_length_names_the_section() {
    for file in [sample_file(), pruned_file(), v1_file()] {
        truncated_at_every_length(&file);
    }
}

fn truncated_at_every_length(file: &[u8]) {
    let body = &file[HEADER_LEN..];
    // Section boundaries within the file.
    let mut bounds = vec![];
    let mut pos = 0;
    for _ in 0..3 {
        let len = le_u64(&body[pos + 4..]) as usize;
        bounds.push(HEADER_LEN + pos + FRAME_LEN + len);
        pos += FRAME_LEN + len;
    }
    for cut in 1..file.len() {
        let e = decode(&file[..cut]).unwrap_err();
        let want = if cut < HEADER_LEN {
            "header"
        } else if cut < bounds[0] {
            "provenance"
        } else if cut < bounds[1] {
            "metadata"
        } else {
            "counters"
        };
        match e {
            SnapshotError::Truncated { section, .. } => {
                assert_eq!(section, want, "cut at {cut}")
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn every_flipped_byte_is_detected() {
    for file in [sample_file(), pruned_file(), v1_file()] {
        every_flipped_byte(&file);
    }
}

fn every_flipped_byte(file: &[u8]) {
    for i in 0..file.len() {
        for bit in [0x01u8, 0x80] {
            let mut f = file.to_vec();
            f[i] ^= bit;
            let e = decode(&f).expect_err(&format!("flip at {i} went unnoticed"));
            let want: &[&str] = match i {
                0..=7 => &["not_a_snapshot"],
                8..=11 => &["unsupported_version", "malformed"],
                12..=15 => &["malformed"],
                16..=23 => &["truncated", "trailing_data"],
                _ => &["checksum_mismatch"],
            };
            assert!(want.contains(&e.kind()), "flip at {i}: {e:?}");
        }
    }
}

#[test]
fn future_version_and_trailing_data() {
    let mut f = sample_file();
    f[8..12].copy_from_slice(&3u32.to_le_bytes());
    let e = decode(&f).unwrap_err();
    assert_eq!(e, SnapshotError::FutureVersion { found: 3 });
    assert_eq!(e.kind(), "unsupported_version");
    assert!(e.to_string().contains("version 3"), "{e}");
    assert!(e.to_string().contains("upgrade LiveCov"));
    let mut f = sample_file();
    f.push(0);
    assert_eq!(
        decode(&f).unwrap_err(),
        SnapshotError::TrailingData { extra: 1 }
    );
}

/// Rewrites a file's checksum so that structural checks behind it are reached.
fn reseal(mut f: Vec<u8>) -> Vec<u8> {
    let body_len = (f.len() - HEADER_LEN) as u64;
    f[16..24].copy_from_slice(&body_len.to_le_bytes());
    let sum = xxh3_64(&f[HEADER_LEN..]);
    f[24..32].copy_from_slice(&sum.to_le_bytes());
    f
}

#[test]
fn structurally_bad_bodies_with_a_valid_checksum() {
    // Every byte of the body replaced, checksum fixed: never a panic, and either an
    // error or a snapshot that still validates.
    for file in [sample_file(), pruned_file(), v1_file()] {
        for i in HEADER_LEN..file.len() {
            for v in [0u8, 0xff, 0x7f] {
                let mut f = file.clone();
                f[i] = v;
                let f = reseal(f);
                if let Ok(d) = decode(&f) {
                    assert_eq!(d.pruned.len(), d.counters.len());
                    for ((idx, c), p) in d.counters.iter().zip(&d.pruned) {
                        let n = d.metas[*idx].meta.sites.len();
                        assert_eq!(c.len(), n);
                        assert!(p.windows(2).all(|w| w[0] < w[1]));
                        assert!(p.iter().all(|&i| (i as usize) < n));
                    }
                }
            }
        }
    }
    let file = sample_file();
    // A wrong section tag.
    let mut f = file.clone();
    f[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(b"XXXX");
    let e = decode(&reseal(f)).unwrap_err();
    assert_eq!(e.kind(), "malformed");
    assert!(e.to_string().contains("provenance"), "{e}");
    // Huge claimed lengths never allocate.
    let mut f = file[..HEADER_LEN].to_vec();
    f.extend_from_slice(b"PROV");
    f.extend_from_slice(&1u64.to_le_bytes());
    f.push(0);
    f.extend_from_slice(b"META");
    let huge = bincode::serde::encode_to_vec(u64::MAX / 2, CONFIG).unwrap();
    f.extend_from_slice(&(huge.len() as u64).to_le_bytes());
    f.extend_from_slice(&huge);
    f.extend_from_slice(b"CNTR");
    f.extend_from_slice(&1u64.to_le_bytes());
    f.push(0);
    let e = decode(&reseal(f)).unwrap_err();
    assert_eq!(e.kind(), "malformed");
    assert!(e.to_string().contains("metadata"), "{e}");
}

#[test]
fn random_bodies_behind_a_valid_header_never_panic() {
    // A deterministic xorshift generator: garbage of every length up to 300 bytes, some
    // starting with valid section frames, all with a correct checksum.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let good = sample_file();
    for len in 0..300usize {
        for variant in 0..8 {
            let mut f = good[..HEADER_LEN].to_vec();
            if variant % 2 == 1 {
                f.extend_from_slice(b"PROV");
                f.extend_from_slice(&(next() % 64).to_le_bytes());
            }
            f.extend((0..len).map(|_| next() as u8));
            let f = reseal(f);
            let _ = decode(&f);
        }
    }
}

#[test]
fn counters_must_match_their_metadata() {
    let (h1, b1) = sample_meta("m1", 3);
    // Hand-build a counters section naming a hash that is not in the file.
    let mut meta_payload = bincode::serde::encode_to_vec(1u64, CONFIG).unwrap();
    meta_payload.extend_from_slice(&b1);
    let mut cntr = bincode::serde::encode_to_vec(1u64, CONFIG).unwrap();
    let mut other = h1;
    other[0] ^= 1;
    cntr.extend(
        bincode::serde::encode_to_vec(
            CounterOut {
                meta: other,
                counts: Packed(&pack(&[1, 2, 3])),
                pruned: &[],
            },
            CONFIG,
        )
        .unwrap(),
    );
    let build = |cntr: &[u8]| {
        let mut f = vec![0u8; HEADER_LEN];
        f[0..8].copy_from_slice(&MAGIC);
        f[8..12].copy_from_slice(&VERSION.to_le_bytes());
        section(&mut f, b"PROV", &[0]);
        section(&mut f, b"META", &meta_payload);
        section(&mut f, b"CNTR", cntr);
        reseal(f)
    };
    let e = decode(&build(&cntr)).unwrap_err();
    assert!(e.to_string().contains("not in the file"), "{e}");
    let mut cntr = bincode::serde::encode_to_vec(1u64, CONFIG).unwrap();
    cntr.extend(
        bincode::serde::encode_to_vec(
            CounterOut {
                meta: h1,
                counts: Packed(&pack(&[1, 2])),
                pruned: &[],
            },
            CONFIG,
        )
        .unwrap(),
    );
    let e = decode(&build(&cntr)).unwrap_err();
    assert!(e.to_string().contains("3 sites but 2 counts"), "{e}");
}
