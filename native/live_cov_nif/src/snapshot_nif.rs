//! NIFs over the snapshot format (`live_cov_core::snapshot`) and the pure count arithmetic
//! (`live_cov_core::merge`). Terms are decoded and built explicitly (no serde mapping): a
//! module's sites are a tuple of `{function, arity, clause, line}` on the Elixir side and a
//! function table plus `(function index, clause, line)` in the file.
//!
//! A build's counters travel as `{hash, packed_counts, pruned}`, `pruned` being the sorted
//! indices of the sites pruned in adaptive coverage mode (`[]` when none); the encoder also
//! takes `{hash, packed_counts}` for no pruned site.
//!
//! Everything that can touch megabytes (metadata batches, encode, decode, merge) runs on a
//! dirty CPU scheduler. Errors come back as `{:error, {kind, message}}`.

use live_cov_core::merge::{add_packed, merge_files, sub_packed};
use live_cov_core::snapshot::{
    decode, encode_with_pruned, hash_of, pack_into, CounterRef, Hash, Meta, MetaBlob, Origin,
    PrunedRef, SnapshotError, HEADER_LEN,
};
use rustler::types::tuple::{get_tuple, make_tuple};
use rustler::{Atom, Binary, Encoder, Env, NewBinary, Term};
use std::collections::HashMap;

use crate::error::error_term;

mod atoms {
    rustler::atoms! { nil, reset }
}

fn error<'a>(env: Env<'a>, e: &SnapshotError) -> Term<'a> {
    error_term(env, e.clone())
}

fn bad(detail: impl Into<String>) -> SnapshotError {
    SnapshotError::BadInput(detail.into())
}

fn ok<'a>(env: Env<'a>, value: impl Encoder) -> Term<'a> {
    (rustler::types::atom::ok(), value).encode(env)
}

fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let b: Binary = NewBinary::from_slice(env, bytes).into();
    b.encode(env)
}

fn hash_of_term(t: Term) -> Result<Hash, SnapshotError> {
    let b: Binary = t
        .decode()
        .map_err(|_| bad("a metadata hash must be a 16-byte binary"))?;
    b.as_slice()
        .try_into()
        .map_err(|_| bad("a metadata hash must be a 16-byte binary"))
}

fn string_or_nil(t: Term, what: &str) -> Result<Option<String>, SnapshotError> {
    if t == atoms::nil().to_term(t.get_env()) {
        return Ok(None);
    }
    let b: Binary = t
        .decode()
        .map_err(|_| bad(format!("{what} must be a string or nil")))?;
    std::str::from_utf8(b.as_slice())
        .map(|s| Some(s.to_string()))
        .map_err(|_| bad(format!("{what} must be valid UTF-8")))
}

fn u32_of(t: Term, what: &str) -> Result<u32, SnapshotError> {
    t.decode::<u32>()
        .map_err(|_| bad(format!("{what} must be an integer in 0..2^32")))
}

fn atom_name(t: Term, what: &str) -> Result<String, SnapshotError> {
    t.atom_to_string()
        .map_err(|_| bad(format!("{what} must be an atom with a Latin-1 name")))
}

/// Owned strings behind one `Meta` (which borrows them).
struct MetaInput {
    module: String,
    md5: Hash,
    source: Option<String>,
    beam_path: Option<String>,
    names: Vec<(String, u32)>,
    sites: Vec<(u32, u32, u32)>,
    clauses: Vec<(u32, u32, u32)>,
}

impl MetaInput {
    /// `{module, md5, source, beam_path, sites_tuple, clauses_list}`.
    fn from_term(t: Term) -> Result<MetaInput, SnapshotError> {
        let parts = get_tuple(t).map_err(|_| bad("metadata must be a 6-tuple"))?;
        let [module, md5, source, beam_path, sites, clauses] = parts[..] else {
            return Err(bad("metadata must be a 6-tuple"));
        };
        let module = atom_name(module, "the module")?;
        let md5: Binary = md5.decode().map_err(|_| bad("md5 must be a binary"))?;
        let md5: Hash = md5
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("the md5 of {module} must be 16 bytes")))?;
        let mut input = MetaInput {
            md5,
            source: string_or_nil(source, "source")?,
            beam_path: string_or_nil(beam_path, "beam_path")?,
            names: Vec::new(),
            sites: Vec::new(),
            clauses: Vec::new(),
            module,
        };
        let mut index: HashMap<(Atom, u32), u32> = HashMap::new();
        let mut entry = |input: &mut MetaInput, t: Term, what: &str| {
            let p = get_tuple(t).map_err(|_| bad(format!("a {what} must be a 4-tuple")))?;
            let [f, a, c, l] = p[..] else {
                return Err(bad(format!("a {what} must be a 4-tuple")));
            };
            let fun = Atom::from_term(f)
                .map_err(|_| bad(format!("a {what}'s function must be an atom")))?;
            let arity = u32_of(a, "an arity")?;
            let key = (fun, arity);
            let fi = match index.get(&key) {
                Some(&i) => i,
                None => {
                    let i = input.names.len() as u32;
                    input.names.push((atom_name(f, "a function name")?, arity));
                    index.insert(key, i);
                    i
                }
            };
            Ok((fi, u32_of(c, "a clause number")?, u32_of(l, "a line")?))
        };
        let sites = get_tuple(sites).map_err(|_| bad("sites must be a tuple"))?;
        input.sites.reserve(sites.len());
        for s in sites {
            let site = entry(&mut input, s, "site")?;
            input.sites.push(site);
        }
        let clauses: Vec<Term> = clauses
            .decode()
            .map_err(|_| bad("clauses must be a list"))?;
        for c in clauses {
            let cl = entry(&mut input, c, "clause")?;
            input.clauses.push(cl);
        }
        Ok(input)
    }

    fn meta(&self) -> Meta<'_> {
        Meta {
            module: &self.module,
            md5: self.md5,
            source: self.source.as_deref(),
            beam_path: self.beam_path.as_deref(),
            functions: self.names.iter().map(|(n, a)| (n.as_str(), *a)).collect(),
            sites: self.sites.clone(),
            clauses: self.clauses.clone(),
        }
    }
}

/// Encodes the metadata of several modules: for each, `{:ok, {hash, bytes}}` or
/// `{:error, {kind, message}}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn snapshot_metas<'a>(env: Env<'a>, list: Vec<Term<'a>>) -> Vec<Term<'a>> {
    list.into_iter()
        .map(
            |t| match MetaInput::from_term(t).and_then(|i| i.meta().encode()) {
                Ok((hash, bytes)) => ok(env, (binary(env, &hash), binary(env, &bytes))),
                Err(e) => error(env, &e),
            },
        )
        .collect()
}

/// `{node, os_pid, time_ms, [{key, value}]}` with string fields.
struct OriginInput {
    node: String,
    os_pid: String,
    time_ms: i64,
    labels: Vec<(String, String)>,
}

fn origin_input(t: Term) -> Result<OriginInput, SnapshotError> {
    let p = get_tuple(t).map_err(|_| bad("an origin must be a 4-tuple"))?;
    let [node, pid, time, labels] = p[..] else {
        return Err(bad("an origin must be a 4-tuple"));
    };
    let s = |t: Term, w: &str| string_or_nil(t, w).map(Option::unwrap_or_default);
    let labels: Vec<(Term, Term)> = labels
        .decode()
        .map_err(|_| bad("labels must be a list of {key, value} strings"))?;
    Ok(OriginInput {
        node: s(node, "node")?,
        os_pid: s(pid, "os_pid")?,
        time_ms: time.decode().map_err(|_| bad("time must be an integer"))?,
        labels: labels
            .into_iter()
            .map(|(k, v)| Ok((s(k, "a label key")?, s(v, "a label value")?)))
            .collect::<Result<_, SnapshotError>>()?,
    })
}

/// `{hash, packed}` or `{hash, packed, pruned}`.
fn counter_input<'a>(t: Term<'a>) -> Result<(Hash, Binary<'a>, Vec<u32>), SnapshotError> {
    const SHAPE: &str =
        "a counter entry must be {hash, packed_counts} or {hash, packed_counts, pruned_sites}";
    let p = get_tuple(t).map_err(|_| bad(SHAPE))?;
    let (h, b, pruned) = match p[..] {
        [h, b] => (h, b, None),
        [h, b, pruned] => (h, b, Some(pruned)),
        _ => return Err(bad(SHAPE)),
    };
    let packed: Binary = b
        .decode()
        .map_err(|_| bad("packed counts must be a binary"))?;
    let pruned = match pruned {
        None => Vec::new(),
        Some(l) => l.decode::<Vec<u32>>().map_err(|_| {
            bad("pruned sites must be a list of site indices (integers in 0..2^32)")
        })?,
    };
    Ok((hash_of_term(h)?, packed, pruned))
}

fn do_encode<'a>(
    origins: Vec<Term<'a>>,
    metas: Vec<(Term<'a>, Binary<'a>)>,
    counters: Vec<Term<'a>>,
) -> Result<Vec<u8>, SnapshotError> {
    let origins = origins
        .into_iter()
        .map(origin_input)
        .collect::<Result<Vec<_>, _>>()?;
    let origins: Vec<Origin> = origins
        .iter()
        .map(|o| Origin {
            node: &o.node,
            os_pid: &o.os_pid,
            time_ms: o.time_ms,
            labels: o
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        })
        .collect();
    let metas = metas
        .iter()
        .map(|(h, b)| {
            Ok(MetaBlob {
                hash: hash_of_term(*h)?,
                bytes: b.as_slice(),
            })
        })
        .collect::<Result<Vec<_>, SnapshotError>>()?;
    let inputs = counters
        .into_iter()
        .map(counter_input)
        .collect::<Result<Vec<_>, SnapshotError>>()?;
    let counters: Vec<CounterRef> = inputs
        .iter()
        .map(|(h, b, _)| CounterRef {
            meta: *h,
            packed: b.as_slice(),
        })
        .collect();
    let pruned: Vec<PrunedRef> = inputs
        .iter()
        .filter(|(_, _, p)| !p.is_empty())
        .map(|(h, _, p)| PrunedRef { meta: *h, sites: p })
        .collect();
    encode_with_pruned(&origins, &metas, &counters, &pruned)
}

/// Encodes a snapshot file from origins, `[{hash, meta_bytes}]` and
/// `[{hash, packed_counts} | {hash, packed_counts, pruned_sites}]`: `{:ok, {file, content_hash}}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn snapshot_encode<'a>(
    env: Env<'a>,
    origins: Vec<Term<'a>>,
    metas: Vec<(Term<'a>, Binary<'a>)>,
    counters: Vec<Term<'a>>,
) -> Term<'a> {
    match do_encode(origins, metas, counters) {
        Ok(bytes) => {
            let content = hash_of(&bytes[HEADER_LEN..]);
            ok(env, (binary(env, &bytes), binary(env, &content)))
        }
        Err(e) => error(env, &e),
    }
}

fn str_term<'a>(env: Env<'a>, s: &str) -> Term<'a> {
    s.encode(env)
}

fn opt_term<'a>(env: Env<'a>, s: Option<&str>) -> Term<'a> {
    match s {
        Some(s) => str_term(env, s),
        None => atoms::nil().encode(env),
    }
}

fn atom_for(env: Env, name: &str) -> Result<Atom, SnapshotError> {
    Atom::from_str(env, name).map_err(|_| SnapshotError::Malformed {
        section: "metadata",
        detail: format!("{name:?} cannot be an atom on this VM (too long, or not Latin-1)"),
    })
}

fn do_decode<'a>(env: Env<'a>, input: Binary<'a>) -> Result<Term<'a>, SnapshotError> {
    let data = input.as_slice();
    let d = decode(data)?;
    let origins: Vec<Term> = d
        .origins
        .iter()
        .map(|o| {
            let labels: Vec<Term> = o
                .labels
                .iter()
                .map(|(k, v)| (str_term(env, k), str_term(env, v)).encode(env))
                .collect();
            (
                str_term(env, o.node),
                str_term(env, o.os_pid),
                o.time_ms,
                labels,
            )
                .encode(env)
        })
        .collect();
    let base = data.as_ptr() as usize;
    let mut metas = Vec::with_capacity(d.metas.len());
    for m in &d.metas {
        let meta = &m.meta;
        let module = atom_for(env, meta.module)?;
        let funs = meta
            .functions
            .iter()
            .map(|(n, a)| Ok((atom_for(env, n)?, *a)))
            .collect::<Result<Vec<_>, SnapshotError>>()?;
        let row = |&(f, c, l): &(u32, u32, u32)| {
            let (name, arity) = funs[f as usize];
            make_tuple(
                env,
                &[
                    name.encode(env),
                    arity.encode(env),
                    c.encode(env),
                    l.encode(env),
                ],
            )
        };
        let sites: Vec<Term> = meta.sites.iter().map(row).collect();
        let clauses: Vec<Term> = meta.clauses.iter().map(row).collect();
        let offset = m.bytes.as_ptr() as usize - base;
        let bytes = input
            .make_subbinary(offset, m.bytes.len())
            .map_err(|_| SnapshotError::BadInput("sub-binary out of range".into()))?;
        metas.push(make_tuple(
            env,
            &[
                binary(env, &m.hash),
                bytes.encode(env),
                module.encode(env),
                binary(env, &meta.md5),
                opt_term(env, meta.source),
                opt_term(env, meta.beam_path),
                make_tuple(env, &sites),
                clauses.encode(env),
            ],
        ));
    }
    let counters: Vec<Term> = d
        .counters
        .iter()
        .zip(&d.pruned)
        .map(|((i, counts), pruned)| {
            let mut b = NewBinary::new(env, counts.len() * 8);
            pack_into(b.as_mut_slice(), counts);
            let b: Binary = b.into();
            (binary(env, &d.metas[*i].hash), b, pruned).encode(env)
        })
        .collect();
    Ok(make_tuple(
        env,
        &[
            d.version.encode(env),
            binary(env, &d.content_hash),
            origins.encode(env),
            metas.encode(env),
            counters.encode(env),
        ],
    ))
}

/// Decodes a snapshot file: `{:ok, {version, content_hash, origins, metas, counters}}` with
/// `metas = [{hash, bytes, module, md5, source, beam_path, sites_tuple, clauses}]` and
/// `counters = [{hash, packed_counts, pruned_sites}]`, or `{:error, {kind, message}}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn snapshot_decode<'a>(env: Env<'a>, input: Binary<'a>) -> Term<'a> {
    match do_decode(env, input) {
        Ok(t) => ok(env, t),
        Err(e) => error(env, &e),
    }
}

/// Merges encoded snapshot files: `{:ok, {file, [{module_name, [hash]}]}}` where the list
/// names the modules that have more than one build in the result. Counts of the same build
/// are summed and its pruned sites united.
#[rustler::nif(schedule = "DirtyCpu")]
fn snapshot_merge_files<'a>(env: Env<'a>, files: Vec<Binary<'a>>) -> Term<'a> {
    let slices: Vec<&[u8]> = files.iter().map(|b| b.as_slice()).collect();
    match merge_files(&slices) {
        Ok((bytes, report)) => {
            let mixed: Vec<Term> = report
                .mixed_builds
                .iter()
                .map(|(m, hs)| {
                    let hs: Vec<Term> = hs.iter().map(|h| binary(env, h)).collect();
                    (str_term(env, m), hs).encode(env)
                })
                .collect();
            ok(env, (binary(env, &bytes), mixed))
        }
        Err(e) => error(env, &e),
    }
}

fn add<'a>(env: Env<'a>, a: Binary<'a>, b: Binary<'a>) -> Term<'a> {
    match add_packed(a.as_slice(), b.as_slice()) {
        Ok(v) => ok(env, binary(env, &v)),
        Err(e) => error(env, &e),
    }
}

fn sub<'a>(env: Env<'a>, after: Binary<'a>, before: Binary<'a>) -> Term<'a> {
    match sub_packed(after.as_slice(), before.as_slice()) {
        Ok(Some(v)) => ok(env, binary(env, &v)),
        Ok(None) => atoms::reset().encode(env),
        Err(e) => error(env, &e),
    }
}

/// Saturating element-wise sum of two packed count vectors of the same build.
#[rustler::nif]
fn counts_add<'a>(env: Env<'a>, a: Binary<'a>, b: Binary<'a>) -> Term<'a> {
    add(env, a, b)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn counts_add_dirty<'a>(env: Env<'a>, a: Binary<'a>, b: Binary<'a>) -> Term<'a> {
    add(env, a, b)
}

/// `after - before`; `:reset` when a counter went down in between.
#[rustler::nif]
fn counts_sub<'a>(env: Env<'a>, after: Binary<'a>, before: Binary<'a>) -> Term<'a> {
    sub(env, after, before)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn counts_sub_dirty<'a>(env: Env<'a>, after: Binary<'a>, before: Binary<'a>) -> Term<'a> {
    sub(env, after, before)
}
