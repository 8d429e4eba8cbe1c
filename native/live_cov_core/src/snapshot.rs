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
mod tests;
