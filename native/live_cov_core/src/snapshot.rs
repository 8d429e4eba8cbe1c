//! The snapshot file format: coverage data written to disk and read back, on this node or
//! another one.
//!
//! Following Go's `internal/coverage`, the static METADATA of a module (its name, build
//! identity, source path and bump sites) is kept apart from its COUNTERS. A module's metadata is
//! encoded once and named by its hash; counter entries carry that hash instead of the
//! metadata. Two counter entries with the same hash describe the same module of the same
//! build, so they can be summed; different hashes are different builds and are never mixed.
//!
//! ```text
//! header (32 bytes, little-endian)
//!   0  magic        8 bytes  "\x89LiveCov"
//!   8  version      u32      VERSION
//!  12  flags        u32      0 (reserved)
//!  16  body_len     u64      bytes after the header
//!  24  checksum     u64      xxh3-64 of the body
//! body: three sections, in this order, each `tag: 4 bytes, len: u64, payload: len bytes`
//!   "PROV"  bincode Vec<Origin>                  who wrote it: node, OS pid, time, labels
//!   "META"  bincode varint n, then n × Meta      one per build of a module
//!   "CNTR"  bincode varint n, then n × Counter   { meta: hash, counts: Vec<u64> (varint),
//!                                                  pruned: Vec<u32> (varint) }
//! ```
//!
//! `pruned` (adaptive coverage, `mode: :coverage`) lists the sites whose bumps were removed
//! from the loaded code after they ran: their counts are frozen, so the counts of the entry
//! are lower bounds (hit and missed are still exact). The indices are strictly increasing and
//! below the number of sites; the list is empty in `mode: :counts`. Pruning does not change
//! the build, so it is not part of the metadata: pruned and unpruned data of one build have
//! the same hash and merge (the pruned sets are then united).
//!
//! Versions: 2 is written. 1 is still read: its counter entries have no `pruned` field (no
//! site pruned). A newer version is refused (`unsupported_version`).
//!
//! A metadata hash is the xxh3-128 of the meta's encoded bytes but its last field, the beam
//! path (where the build lives is not what it is); the content hash of a file
//! (used to refuse importing the same data twice) is the xxh3-128 of its body.
//!
//! Decoding never trusts its input: every length is checked against the bytes that are
//! really there before anything is allocated, strings are borrowed from the input, and any
//! problem is an [`SnapshotError`], never a panic.

use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::HashMap;
use std::fmt;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

/// The first 8 bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"\x89LiveCov";
/// The format version this code writes, and the newest it reads.
pub const VERSION: u32 = 2;
/// The oldest format version this code reads (no pruned sites in its counter entries).
pub const MIN_VERSION: u32 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 32;
/// Size of a section frame (tag + length) before its payload.
const FRAME_LEN: usize = 12;
/// Bump sites in one module (the table's limit).
const MAX_SITES: usize = crate::table::MAX_SITES;

/// The sections of the body, in file order: tag and name for messages.
pub const SECTIONS: [([u8; 4], &str); 3] = [
    (*b"PROV", "provenance"),
    (*b"META", "metadata"),
    (*b"CNTR", "counters"),
];

/// A metadata hash or a content hash (xxh3-128, big-endian bytes).
pub type Hash = [u8; 16];

const CONFIG: bincode::config::Configuration = bincode::config::standard();

/// Who wrote a snapshot. A merged snapshot keeps the origins of all its parts.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Origin<'a> {
    pub node: &'a str,
    pub os_pid: &'a str,
    /// Unix time in milliseconds.
    pub time_ms: i64,
    #[serde(borrow)]
    pub labels: Vec<(&'a str, &'a str)>,
}

/// The static description of one build of one module.
///
/// `sites[i]` describes counter `i`: `(function index, clause, line)`, the function being
/// `functions[function index]` = `(name, arity)`. `clauses` is cover's clause table:
/// `(function index, clause, number of lines)`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Meta<'a> {
    pub module: &'a str,
    /// MD5 of the original beam: the build identity (all zero when unknown).
    pub md5: Hash,
    #[serde(borrow)]
    pub source: Option<&'a str>,
    #[serde(borrow)]
    pub functions: Vec<(&'a str, u32)>,
    pub sites: Vec<(u32, u32, u32)>,
    pub clauses: Vec<(u32, u32, u32)>,
    /// Where the beam was loaded from. Not part of the build identity: it is the last field,
    /// left out of the hash (the same build may live in another directory elsewhere).
    #[serde(borrow)]
    pub beam_path: Option<&'a str>,
}

impl Meta<'_> {
    /// Encodes the metadata; returns its hash and its bytes (what the file stores).
    pub fn encode(&self) -> Result<(Hash, Vec<u8>), SnapshotError> {
        self.validate()
            .map_err(|d| SnapshotError::BadInput(format!("metadata of {}: {d}", self.module)))?;
        let bytes = bincode::serde::encode_to_vec(self, CONFIG)
            .map_err(|e| SnapshotError::BadInput(format!("cannot encode metadata: {e}")))?;
        Ok((self.hash(&bytes), bytes))
    }

    /// The build identity of encoded metadata `bytes` (this meta's encoding): the hash of
    /// everything but the trailing `beam_path`.
    pub fn hash(&self, bytes: &[u8]) -> Hash {
        let tail = bincode::serde::encode_to_vec(self.beam_path, CONFIG).map_or(0, |t| t.len());
        hash_of(&bytes[..bytes.len().saturating_sub(tail)])
    }

    fn validate(&self) -> Result<(), String> {
        let nf = self.functions.len() as u64;
        if self.sites.len() > MAX_SITES {
            return Err(format!(
                "{} bump sites exceed the limit of {MAX_SITES}",
                self.sites.len()
            ));
        }
        if let Some((f, _, _)) = self
            .sites
            .iter()
            .chain(self.clauses.iter())
            .find(|(f, _, _)| u64::from(*f) >= nf)
        {
            return Err(format!(
                "function index {f} is out of range ({nf} functions)"
            ));
        }
        Ok(())
    }
}

/// A pre-encoded metadata record handed to [`encode`].
pub struct MetaBlob<'a> {
    pub hash: Hash,
    pub bytes: &'a [u8],
}

/// The counters of one build handed to [`encode`]: packed little-endian u64, one per site.
pub struct CounterRef<'a> {
    pub meta: Hash,
    pub packed: &'a [u8],
}

impl<'a> CounterRef<'a> {
    /// Counter entries borrowing `(metadata hash, packed counts)` pairs.
    pub fn from_pairs(pairs: &'a [(Hash, Vec<u8>)]) -> Vec<CounterRef<'a>> {
        pairs
            .iter()
            .map(|(h, p)| CounterRef {
                meta: *h,
                packed: p,
            })
            .collect()
    }
}

/// The pruned sites of one build handed to [`encode_with_pruned`]: indices of sites whose
/// bumps were removed (any order, duplicates allowed; written sorted). The build must have a
/// counter entry.
pub struct PrunedRef<'a> {
    pub meta: Hash,
    pub sites: &'a [u32],
}

/// Packs counts as little-endian u64, 8 bytes each (the form of [`CounterRef::packed`]).
pub fn pack(counts: &[u64]) -> Vec<u8> {
    let mut out = vec![0u8; counts.len() * 8];
    pack_into(&mut out, counts);
    out
}

/// Packs counts into `out` (e.g. a binary allocated by the caller), 8 bytes each; `out` must
/// hold `counts.len() * 8` bytes (extra bytes are left as they are).
pub fn pack_into(out: &mut [u8], counts: &[u64]) {
    for (chunk, c) in out.chunks_exact_mut(8).zip(counts) {
        chunk.copy_from_slice(&c.to_le_bytes());
    }
}

/// The counts of packed little-endian u64 (a trailing partial chunk is ignored).
pub fn unpack(packed: &[u8]) -> impl Iterator<Item = u64> + '_ {
    packed.chunks_exact(8).map(le_u64)
}

/// Serialises packed little-endian u64 counts as a sequence of u64 without unpacking them.
struct Packed<'a>(&'a [u8]);

impl Serialize for Packed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len() / 8))?;
        for c in unpack(self.0) {
            seq.serialize_element(&c)?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct CounterOut<'a> {
    meta: Hash,
    counts: Packed<'a>,
    pruned: &'a [u32],
}

/// A counter entry of format version 1 (no pruned sites).
#[derive(Deserialize)]
struct CounterInV1 {
    meta: Hash,
    counts: Vec<u64>,
}

#[derive(Deserialize)]
struct CounterIn {
    meta: Hash,
    counts: Vec<u64>,
    pruned: Vec<u32>,
}

/// One build's metadata as decoded from a file.
#[derive(Debug)]
pub struct DecodedMeta<'a> {
    pub hash: Hash,
    pub meta: Meta<'a>,
    /// The encoded bytes (a slice of the input): re-encoding can copy them as they are.
    pub bytes: &'a [u8],
}

/// A decoded snapshot. Strings borrow from the input.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub version: u32,
    pub content_hash: Hash,
    pub origins: Vec<Origin<'a>>,
    pub metas: Vec<DecodedMeta<'a>>,
    /// `(index into metas, counts)`, one entry per build with counters.
    pub counters: Vec<(usize, Vec<u64>)>,
    /// `pruned[i]`: the pruned sites of `counters[i]`, strictly increasing and in range
    /// (empty when none were pruned, and always in version 1 files).
    pub pruned: Vec<Vec<u32>>,
}

/// Everything that can be wrong with snapshot data or with what is given to the encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    Empty,
    BadMagic {
        hint: &'static str,
    },
    Truncated {
        section: &'static str,
        have: usize,
        need: usize,
    },
    FutureVersion {
        found: u32,
    },
    TrailingData {
        extra: usize,
    },
    ChecksumMismatch {
        stored: u64,
        computed: u64,
    },
    Malformed {
        section: &'static str,
        detail: String,
    },
    CountMismatch {
        detail: String,
    },
    BadInput(String),
}

impl SnapshotError {
    /// A stable, snake_case name for the error, used as the atom on the Elixir side.
    pub fn kind(&self) -> &'static str {
        match self {
            SnapshotError::Empty => "empty",
            SnapshotError::BadMagic { .. } => "not_a_snapshot",
            SnapshotError::Truncated { .. } => "truncated",
            SnapshotError::FutureVersion { .. } => "unsupported_version",
            SnapshotError::TrailingData { .. } => "trailing_data",
            SnapshotError::ChecksumMismatch { .. } => "checksum_mismatch",
            SnapshotError::Malformed { .. } => "malformed",
            SnapshotError::CountMismatch { .. } => "count_mismatch",
            SnapshotError::BadInput(_) => "bad_input",
        }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Empty => write!(
                f,
                "the snapshot is empty (0 bytes): the export was interrupted or the wrong file was given; export it again"
            ),
            SnapshotError::BadMagic { hint } => write!(
                f,
                "not a LiveCov snapshot (it does not start with the LiveCov magic bytes){hint}"
            ),
            SnapshotError::Truncated { section, have, need } => write!(
                f,
                "the snapshot is truncated in its {section} section ({have} of {need} bytes): the copy or the export was cut short; export it again"
            ),
            SnapshotError::FutureVersion { found } => write!(
                f,
                "the snapshot has format version {found}, newer than the version {VERSION} this LiveCov reads: upgrade LiveCov to read it"
            ),
            SnapshotError::TrailingData { extra } => write!(
                f,
                "the snapshot has {extra} unexpected bytes after its end: it was appended to or concatenated with another file"
            ),
            SnapshotError::ChecksumMismatch { stored, computed } => write!(
                f,
                "the snapshot is corrupted: its checksum is {stored:016x} but its content hashes to {computed:016x}; export it again"
            ),
            SnapshotError::Malformed { section, detail } => write!(
                f,
                "the snapshot's {section} section is malformed ({detail}): it was not written by LiveCov or is damaged; export it again"
            ),
            SnapshotError::CountMismatch { detail } => write!(f, "{detail}"),
            SnapshotError::BadInput(d) => write!(f, "cannot encode the snapshot: {d}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// xxh3-128 of `bytes`, as 16 big-endian bytes.
pub fn hash_of(bytes: &[u8]) -> Hash {
    xxh3_128(bytes).to_be_bytes()
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn malformed(section: &'static str, detail: impl Into<String>) -> SnapshotError {
    SnapshotError::Malformed {
        section,
        detail: detail.into(),
    }
}

fn enc<T: Serialize>(v: &T, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
    bincode::serde::encode_into_std_write(v, out, CONFIG)
        .map(|_| ())
        .map_err(|e| SnapshotError::BadInput(e.to_string()))
}

fn section(out: &mut Vec<u8>, tag: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(tag);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Encodes a snapshot with no pruned sites (see [`encode_with_pruned`]).
pub fn encode(
    origins: &[Origin],
    metas: &[MetaBlob],
    counters: &[CounterRef],
) -> Result<Vec<u8>, SnapshotError> {
    encode_with_pruned(origins, metas, counters, &[])
}

/// The pruned sets given to the encoder, per metadata hash: united, sorted, deduplicated.
fn pruned_by_hash(pruned: &[PrunedRef]) -> HashMap<Hash, Vec<u32>> {
    let mut by_hash: HashMap<Hash, Vec<u32>> = HashMap::new();
    for p in pruned.iter().filter(|p| !p.sites.is_empty()) {
        by_hash
            .entry(p.meta)
            .or_default()
            .extend_from_slice(p.sites);
    }
    for v in by_hash.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    by_hash
}

/// Encodes a snapshot. Every metadata blob is checked (it decodes, its hash is right), every
/// counter entry must name a given metadata hash and have one count per site, and every
/// pruned set must name a build with counters and sites that it has.
pub fn encode_with_pruned(
    origins: &[Origin],
    metas: &[MetaBlob],
    counters: &[CounterRef],
    pruned: &[PrunedRef],
) -> Result<Vec<u8>, SnapshotError> {
    let pruned = pruned_by_hash(pruned);
    // Metadata, deduplicated by hash, with each build's number of sites.
    let mut nsites: HashMap<Hash, usize> = HashMap::with_capacity(metas.len());
    let mut meta_payload =
        Vec::with_capacity(metas.iter().map(|m| m.bytes.len()).sum::<usize>() + 10);
    let mut kept = Vec::with_capacity(metas.len());
    for m in metas {
        if nsites.contains_key(&m.hash) {
            continue;
        }
        let (meta, used): (Meta, usize) = bincode::serde::borrow_decode_from_slice(m.bytes, CONFIG)
            .map_err(|e| SnapshotError::BadInput(format!("invalid metadata blob: {e}")))?;
        if used != m.bytes.len() {
            return Err(SnapshotError::BadInput(
                "metadata blob has trailing bytes".into(),
            ));
        }
        if meta.hash(m.bytes) != m.hash {
            return Err(SnapshotError::BadInput(format!(
                "the metadata given under hash {} does not match its bytes",
                hex(&m.hash)
            )));
        }
        nsites.insert(m.hash, meta.sites.len());
        kept.push(m.bytes);
    }
    enc(&(kept.len() as u64), &mut meta_payload)?;
    for b in kept {
        meta_payload.extend_from_slice(b);
    }

    let mut seen: HashMap<Hash, ()> = HashMap::with_capacity(counters.len());
    let mut cntr_payload =
        Vec::with_capacity(counters.iter().map(|c| c.packed.len() / 4).sum::<usize>() + 10);
    enc(&(counters.len() as u64), &mut cntr_payload)?;
    for c in counters {
        let Some(&n) = nsites.get(&c.meta) else {
            return Err(SnapshotError::BadInput(format!(
                "counters refer to metadata {} that is not part of the snapshot",
                hex(&c.meta)
            )));
        };
        if c.packed.len() != n * 8 {
            return Err(SnapshotError::CountMismatch {
                detail: format!(
                    "counters for metadata {} have {} bytes, expected {n} counts ({} bytes)",
                    hex(&c.meta),
                    c.packed.len(),
                    n * 8
                ),
            });
        }
        if seen.insert(c.meta, ()).is_some() {
            return Err(SnapshotError::BadInput(format!(
                "two counter entries for metadata {}: merge them first",
                hex(&c.meta)
            )));
        }
        let sites = pruned.get(&c.meta).map_or(&[][..], Vec::as_slice);
        if let Some(&bad) = sites.last().filter(|&&i| i as usize >= n) {
            return Err(SnapshotError::BadInput(format!(
                "pruned site index {bad} of metadata {} is out of range: the build has {n} sites",
                hex(&c.meta)
            )));
        }
        enc(
            &CounterOut {
                meta: c.meta,
                counts: Packed(c.packed),
                pruned: sites,
            },
            &mut cntr_payload,
        )?;
    }

    if let Some(h) = pruned.keys().find(|h| !seen.contains_key(*h)) {
        return Err(SnapshotError::BadInput(format!(
            "pruned sites refer to metadata {} that has no counters in the snapshot",
            hex(h)
        )));
    }

    let mut prov_payload = Vec::new();
    enc(&origins, &mut prov_payload)?;

    let body_len = 3 * FRAME_LEN + prov_payload.len() + meta_payload.len() + cntr_payload.len();
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    section(&mut out, &SECTIONS[0].0, &prov_payload);
    section(&mut out, &SECTIONS[1].0, &meta_payload);
    section(&mut out, &SECTIONS[2].0, &cntr_payload);
    let checksum = xxh3_64(&out[HEADER_LEN..]);
    out[0..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&0u32.to_le_bytes());
    out[16..24].copy_from_slice(&(body_len as u64).to_le_bytes());
    out[24..32].copy_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Where a body of `have` bytes (of `need` declared) is cut: the section it ends in.
fn truncated_section(body: &[u8]) -> &'static str {
    let mut pos = 0usize;
    for (_, name) in SECTIONS {
        if pos + FRAME_LEN > body.len() {
            return name;
        }
        let len = le_u64(&body[pos + 4..]);
        match pos
            .checked_add(FRAME_LEN)
            .and_then(|p| p.checked_add(usize::try_from(len).ok()?))
        {
            Some(end) if end <= body.len() => pos = end,
            _ => return name,
        }
    }
    SECTIONS[2].1
}

/// Checks the header and the checksum; returns the format version and the body.
pub fn check_frame(data: &[u8]) -> Result<(u32, &[u8]), SnapshotError> {
    if data.is_empty() {
        return Err(SnapshotError::Empty);
    }
    let n = data.len().min(MAGIC.len());
    if data[..n] != MAGIC[..n] {
        return Err(SnapshotError::BadMagic {
            hint: foreign_hint(data),
        });
    }
    if data.len() < HEADER_LEN {
        return Err(SnapshotError::Truncated {
            section: "header",
            have: data.len(),
            need: HEADER_LEN,
        });
    }
    let version = le_u32(&data[8..]);
    if version > VERSION {
        return Err(SnapshotError::FutureVersion { found: version });
    }
    if version < MIN_VERSION {
        return Err(malformed(
            "header",
            format!("format version {version} does not exist"),
        ));
    }
    let flags = le_u32(&data[12..]);
    if flags != 0 {
        return Err(malformed("header", format!("unknown flags {flags:#x}")));
    }
    let body = &data[HEADER_LEN..];
    let need = le_u64(&data[16..]);
    if (body.len() as u64) < need {
        return Err(SnapshotError::Truncated {
            section: truncated_section(body),
            have: data.len(),
            need: usize::try_from(need)
                .ok()
                .and_then(|n| n.checked_add(HEADER_LEN))
                .unwrap_or(usize::MAX),
        });
    }
    if body.len() as u64 > need {
        return Err(SnapshotError::TrailingData {
            extra: body.len() - need as usize,
        });
    }
    let stored = le_u64(&data[24..]);
    let computed = xxh3_64(body);
    if stored != computed {
        return Err(SnapshotError::ChecksumMismatch { stored, computed });
    }
    Ok((version, body))
}

fn foreign_hint(data: &[u8]) -> &'static str {
    // cover's export: a size byte, then term_to_binary data (131).
    if data.len() >= 2 && data[1] == 131 {
        ": it looks like an OTP cover export (.coverdata); import it with LiveCov.Cover.import/1"
    } else if data.starts_with(b"\x1f\x8b") {
        ": it is gzip-compressed; decompress it first"
    } else {
        ": check the path, or re-export the data with LiveCov.export/2"
    }
}

/// Splits the body into its three section payloads.
fn sections(body: &[u8]) -> Result<[&[u8]; 3], SnapshotError> {
    let mut out: [&[u8]; 3] = [&[]; 3];
    let mut pos = 0usize;
    for (i, (tag, name)) in SECTIONS.iter().enumerate() {
        if pos + FRAME_LEN > body.len() {
            return Err(malformed(name, "the section is missing"));
        }
        if &body[pos..pos + 4] != tag {
            return Err(malformed(
                name,
                format!(
                    "expected tag {:?}, found {:?}",
                    String::from_utf8_lossy(tag),
                    String::from_utf8_lossy(&body[pos..pos + 4])
                ),
            ));
        }
        let len = le_u64(&body[pos + 4..]);
        let start = pos + FRAME_LEN;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= body.len())
            .ok_or_else(|| malformed(name, format!("section length {len} exceeds the file")))?;
        out[i] = &body[start..end];
        pos = end;
    }
    if pos != body.len() {
        return Err(malformed(
            "counters",
            "unexpected bytes after the last section",
        ));
    }
    Ok(out)
}

/// Reads a bincode varint count and checks it against the bytes left (each item takes at
/// least `min_item` bytes), so no allocation is ever sized by an unchecked number.
fn read_len(
    payload: &[u8],
    section: &'static str,
    min_item: usize,
) -> Result<(usize, usize), SnapshotError> {
    let (n, used): (u64, usize) = bincode::serde::decode_from_slice(payload, CONFIG)
        .map_err(|e| malformed(section, format!("bad item count: {e}")))?;
    let left = (payload.len() - used) as u64;
    if n.saturating_mul(min_item as u64) > left {
        return Err(malformed(
            section,
            format!("it claims {n} entries but only {left} bytes follow"),
        ));
    }
    Ok((n as usize, used))
}

/// Decodes and validates a snapshot. Nothing is allocated from an unchecked length.
pub fn decode(data: &[u8]) -> Result<Decoded<'_>, SnapshotError> {
    let (version, body) = check_frame(data)?;
    let [prov, meta, cntr] = sections(body)?;

    let (origins, used): (Vec<Origin>, usize) =
        bincode::serde::borrow_decode_from_slice(prov, CONFIG)
            .map_err(|e| malformed("provenance", e.to_string()))?;
    if used != prov.len() {
        return Err(malformed(
            "provenance",
            "unexpected bytes after the provenance",
        ));
    }

    // The smallest Meta: module "", md5, two None, three empty lists.
    let (n, mut pos) = read_len(meta, "metadata", 22)?;
    let mut metas = Vec::with_capacity(n);
    let mut by_hash: HashMap<Hash, usize> = HashMap::with_capacity(n);
    for i in 0..n {
        let (m, used): (Meta, usize) =
            bincode::serde::borrow_decode_from_slice(&meta[pos..], CONFIG)
                .map_err(|e| malformed("metadata", format!("entry {i}: {e}")))?;
        m.validate()
            .map_err(|d| malformed("metadata", format!("module {}: {d}", m.module)))?;
        let bytes = &meta[pos..pos + used];
        let hash = m.hash(bytes);
        if by_hash.insert(hash, i).is_some() {
            return Err(malformed(
                "metadata",
                format!("module {} appears twice", m.module),
            ));
        }
        metas.push(DecodedMeta {
            hash,
            meta: m,
            bytes,
        });
        pos += used;
    }
    if pos != meta.len() {
        return Err(malformed(
            "metadata",
            "unexpected bytes after the last entry",
        ));
    }

    // The smallest Counter: a hash and an empty list (two in version 2).
    let v1 = version == 1;
    let (n, mut pos) = read_len(cntr, "counters", if v1 { 17 } else { 18 })?;
    let mut counters = Vec::with_capacity(n);
    let mut pruned = Vec::with_capacity(n);
    let mut seen = vec![false; metas.len()];
    for i in 0..n {
        let entry =
            |e: bincode::error::DecodeError| malformed("counters", format!("entry {i}: {e}"));
        let (c, used): (CounterIn, usize) = if v1 {
            let (c, used): (CounterInV1, usize) =
                bincode::serde::decode_from_slice(&cntr[pos..], CONFIG).map_err(entry)?;
            let c = CounterIn {
                meta: c.meta,
                counts: c.counts,
                pruned: Vec::new(),
            };
            (c, used)
        } else {
            bincode::serde::decode_from_slice(&cntr[pos..], CONFIG).map_err(entry)?
        };
        pos += used;
        let Some(&idx) = by_hash.get(&c.meta) else {
            return Err(malformed(
                "counters",
                format!(
                    "entry {i} refers to metadata {} that is not in the file",
                    hex(&c.meta)
                ),
            ));
        };
        let m = &metas[idx].meta;
        if c.counts.len() != m.sites.len() {
            return Err(malformed(
                "counters",
                format!(
                    "module {} has {} sites but {} counts",
                    m.module,
                    m.sites.len(),
                    c.counts.len()
                ),
            ));
        }
        if std::mem::replace(&mut seen[idx], true) {
            return Err(malformed(
                "counters",
                format!("module {} has two counter entries", m.module),
            ));
        }
        check_pruned(&c.pruned, m)?;
        counters.push((idx, c.counts));
        pruned.push(c.pruned);
    }
    if pos != cntr.len() {
        return Err(malformed(
            "counters",
            "unexpected bytes after the last entry",
        ));
    }

    Ok(Decoded {
        version,
        content_hash: hash_of(body),
        origins,
        metas,
        counters,
        pruned,
    })
}

/// A decoded pruned set must be strictly increasing and name sites the module has.
fn check_pruned(pruned: &[u32], m: &Meta) -> Result<(), SnapshotError> {
    let n = m.sites.len();
    if let Some(&bad) = pruned.iter().find(|&&i| i as usize >= n) {
        return Err(malformed(
            "counters",
            format!(
                "module {}: pruned site index {bad} is out of range (the module has {n} sites)",
                m.module
            ),
        ));
    }
    if let Some(w) = pruned.windows(2).find(|w| w[0] >= w[1]) {
        return Err(malformed(
            "counters",
            format!(
                "module {}: pruned site indices are not strictly increasing ({} then {})",
                m.module, w[0], w[1]
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
}
