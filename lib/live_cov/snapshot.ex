defmodule LiveCov.Snapshot do
  @moduledoc """
  Coverage data at one moment, in memory or in a file: build, encode/decode, merge, delta.

  A snapshot keeps the static METADATA of each build of a module apart from its COUNTERS, as
  Go's coverage tooling does:

      %LiveCov.Snapshot{
        provenance: [%{node: "app@host", os_pid: "4242", time: 1_700_000_000_000,
                       labels: %{"git" => "abc123"}}],
        metas: %{hash => %LiveCov.Snapshot.Meta{module: M, md5: ..., sites: {...}, ...}},
        counts: %{hash => <<packed counts>>},
        pruned: %{hash => [site index]}
      }

  A metadata `hash` names one build of one module (module, beam md5, source, bump sites):
  counts under the same hash are summed by `merge/2`, counts under different hashes (another
  build of the module) are never mixed — `mixed_builds/1` says which modules have several.
  Counts are packed binaries of little-endian u64, one per site (as `LiveCov.Table`);
  `counts/2` gives them as a list.

  `pruned` (adaptive coverage, `LiveCov.start(target, mode: :coverage)`, see `LiveCov.Prune`)
  lists, per build, the sorted indices of the sites whose bumps were removed after they ran:
  their counts are frozen, so that build's counts are lower bounds (hit and missed are still
  exact) and `module_data/2` marks it `exact: false`. Builds with no pruned site are absent.
  Pruning does not change a build or its hash: pruned and unpruned data of one build merge,
  and `merge/2` unites their pruned sets.

  The file format (header with magic and version, xxh3 checksum, provenance, metadata and
  counters sections) is written and checked by the NIF (`native/live_cov_core/src/snapshot.rs`):
  `decode/1` of truncated, corrupted, foreign or newer data is `{:error, {kind, message}}`.
  Format version 2 (written) records the pruned sites with the counters; version 1 files
  (before pruning existed) are still read, with no pruned site.

  `merge/1,2`, `delta/2`, `encode/1`, `decode/1`, `builds/1` and `mixed_builds/1` are pure
  functions of their arguments. `build/1` and `from_infos/3` read the counter table;
  `choose/2` (and the report functions that use it) looks up which build is loaded here
  unless given `loaded:`.
  """

  alias LiveCov.{ModuleInfo, Native, Table}

  defmodule Meta do
    @moduledoc false
    # One build of one module: what a snapshot's counters of that build mean.
    #
    # `sites` is the tuple of `{function, arity, clause, line}` in counter order; `clauses` is
    # cover's clause table `[{function, arity, clause, nlines}]`. `md5` is the original beam's
    # md5 (16 zero bytes for data imported from a cover `.coverdata` file, which has none).
    # `hash` identifies the whole record; `encoded` is its encoded form (kept so encoding a
    # snapshot does not redo it).
    @enforce_keys [:hash, :module, :md5, :sites]
    defstruct [:hash, :module, :md5, :source, :beam_path, :sites, clauses: [], encoded: nil]

    @type t :: %__MODULE__{
            hash: binary,
            module: module,
            md5: binary,
            source: String.t() | nil,
            beam_path: String.t() | nil,
            sites: tuple,
            clauses: [{atom, non_neg_integer, non_neg_integer, non_neg_integer}],
            encoded: binary | nil
          }
  end

  @version 2
  defstruct version: @version,
            provenance: [],
            metas: %{},
            counts: %{},
            pruned: %{},
            content_hash: nil,
            skipped: []

  @type hash :: binary
  @type origin :: %{
          node: String.t(),
          os_pid: String.t(),
          time: integer,
          labels: %{String.t() => String.t()}
        }
  @type t :: %__MODULE__{
          version: pos_integer,
          provenance: [origin],
          metas: %{hash => Meta.t()},
          counts: %{hash => binary},
          pruned: %{hash => [non_neg_integer]},
          content_hash: binary | nil,
          skipped: [{module, {atom, String.t()}}]
        }
  @type error :: {:error, {atom, String.t()}}

  @zero_md5 <<0::128>>
  @cache :live_cov_meta_cache
  # Above this many bytes count arithmetic runs on a dirty scheduler.
  @dirty_bytes 400_000

  @doc """
  The metadata of instrumented modules, in order, and the modules that could not be
  described (`{[Meta.t() | %Meta{hash: nil}], skipped}`). Encodings are cached per module
  and instrumentation, so exporting again costs only the counters.
  """
  @spec metas_of([ModuleInfo.t()]) :: {[Meta.t()], [{module, {atom, String.t()}}]}
  def metas_of(infos) do
    cached = Enum.map(infos, &cache_get/1)
    missing = for {info, nil} <- Enum.zip(infos, cached), do: info

    computed =
      case missing do
        [] ->
          %{}

        _ ->
          missing
          |> Enum.map(&meta_input/1)
          |> Native.snapshot_metas()
          |> Enum.zip(missing)
          |> Map.new(fn {result, info} ->
            if match?({:ok, _}, result), do: cache_put(info, result)
            {info.module, result}
          end)
      end

    {metas, skipped} =
      infos
      |> Enum.zip(cached)
      |> Enum.map_reduce([], fn {info, hit}, skipped ->
        case hit || Map.fetch!(computed, info.module) do
          {:ok, {hash, encoded}} ->
            {meta_struct(info, hash, encoded), skipped}

          {:error, reason} ->
            {%Meta{hash: nil, module: info.module, md5: nil, sites: {}},
             [{info.module, reason} | skipped]}
        end
      end)

    {metas, Enum.reverse(skipped)}
  end

  @doc "The metadata of one instrumented module (cached), or an error."
  @spec meta_of(ModuleInfo.t()) :: {:ok, Meta.t()} | error
  def meta_of(info) do
    case metas_of([info]) do
      {[%Meta{hash: nil}], [{_, reason}]} -> {:error, reason}
      {[meta], []} -> {:ok, meta}
    end
  end

  defp meta_struct(info, hash, encoded) do
    %Meta{
      hash: hash,
      module: info.module,
      md5: md5(info.md5),
      source: string(info.source),
      beam_path: string(info.beam_path),
      sites: ModuleInfo.sites(info),
      clauses: ModuleInfo.clauses(info),
      encoded: encoded
    }
  end

  defp meta_input(info) do
    {info.module, md5(info.md5), string(info.source), string(info.beam_path),
     ModuleInfo.sites(info), ModuleInfo.clauses(info)}
  end

  @doc false
  def meta_input_of(%Meta{} = m),
    do: {m.module, m.md5, m.source, m.beam_path, m.sites, m.clauses}

  defp md5(<<_::128>> = md5), do: md5
  defp md5(_), do: @zero_md5

  defp string(nil), do: nil
  defp string(s) when is_binary(s), do: s
  defp string(s) when is_list(s), do: List.to_string(s)

  defp cache_key(info), do: {info.slot, info.md5, ModuleInfo.size(info), info.source}

  defp cache_get(info) do
    key = cache_key(info)

    case :ets.lookup(@cache, info.module) do
      [{_, ^key, hash, encoded}] -> {:ok, {hash, encoded}}
      _ -> nil
    end
  rescue
    ArgumentError -> nil
  end

  defp cache_put(info, {:ok, {hash, encoded}}) do
    :ets.insert(@cache, {info.module, cache_key(info), hash, encoded})
  rescue
    ArgumentError -> false
  end

  ## Encoding

  @doc "Encodes a snapshot into the LiveCov snapshot file format."
  @spec encode(t) :: {:ok, binary} | error
  def encode(%__MODULE__{} = snap) do
    with {:ok, {data, _content_hash}} <- encode_with_hash(snap), do: {:ok, data}
  end

  @doc """
  Encodes a snapshot and gives the content hash of the result (what `LiveCov.import/1`
  uses to refuse the same data twice): `{:ok, {data, content_hash}}`.
  """
  @spec encode_with_hash(t) :: {:ok, {binary, binary}} | error
  def encode_with_hash(%__MODULE__{} = snap) do
    with {:ok, metas} <- encoded_metas(snap) do
      origins =
        Enum.map(snap.provenance, fn o ->
          {to_string(o.node), to_string(o.os_pid), o.time,
           Enum.map(o.labels, fn {k, v} -> {to_string(k), to_string(v)} end)}
        end)

      Native.snapshot_encode(origins, metas, counter_entries(snap))
    end
  end

  # `{hash, packed}`, or `{hash, packed, pruned}` for a build with pruned sites (its counts
  # are zero if the snapshot has none, so the pruned sites are not lost). Pruned sets of
  # builds the snapshot has no metadata for (filtered out) are left out.
  defp counter_entries(%__MODULE__{counts: counts, pruned: pruned, metas: metas}) do
    pruned = pruned || %{}

    extra =
      for {h, sites} <- pruned,
          sites != [],
          not is_map_key(counts, h),
          %Meta{sites: meta_sites} <- [metas[h]],
          do: {h, zeros(tuple_size(meta_sites))}

    for {h, bin} <- Enum.concat(counts, extra) do
      case Map.get(pruned, h, []) do
        [] -> {h, bin}
        sites -> {h, bin, normalize(sites)}
      end
    end
  end

  defp normalize(sites), do: sites |> Enum.to_list() |> Enum.sort() |> Enum.dedup()

  defp encoded_metas(snap) do
    {ready, todo} = Enum.split_with(Map.values(snap.metas), &is_binary(&1.encoded))

    fresh =
      case todo do
        [] -> []
        _ -> todo |> Enum.map(&meta_input_of/1) |> Native.snapshot_metas()
      end

    Enum.reduce_while(Enum.zip(todo, fresh), {:ok, Enum.map(ready, &{&1.hash, &1.encoded})}, fn
      {_meta, {:ok, pair}}, {:ok, acc} -> {:cont, {:ok, [pair | acc]}}
      {_meta, {:error, _} = error}, _ -> {:halt, error}
    end)
  end

  @doc """
  Decodes snapshot file data. Truncated, corrupted, foreign or newer-format data gives
  `{:error, {kind, message}}` (`:empty`, `:not_a_snapshot`, `:truncated`,
  `:unsupported_version`, `:trailing_data`, `:checksum_mismatch`, `:malformed`).
  """
  @spec decode(binary) :: {:ok, t} | error
  def decode(data) when is_binary(data) do
    with {:ok, {version, content_hash, origins, metas, counters}} <- Native.snapshot_decode(data) do
      metas =
        Map.new(metas, fn {hash, encoded, module, md5, source, beam, sites, clauses} ->
          {hash,
           %Meta{
             hash: hash,
             module: module,
             md5: md5,
             source: source,
             beam_path: beam,
             sites: sites,
             clauses: clauses,
             encoded: encoded
           }}
        end)

      {:ok,
       %__MODULE__{
         version: version,
         content_hash: content_hash,
         provenance:
           Enum.map(origins, fn {node, pid, time, labels} ->
             %{node: node, os_pid: pid, time: time, labels: Map.new(labels)}
           end),
         metas: metas,
         counts: Map.new(counters, fn {h, packed, _pruned} -> {h, packed} end),
         pruned: for({h, _packed, [_ | _] = sites} <- counters, into: %{}, do: {h, sites})
       }}
    end
  end

  def decode(other),
    do: {:error, {:not_a_snapshot, "expected snapshot data (a binary), got: #{inspect(other)}"}}

  @doc """
  Writes a snapshot to `path` (atomically: a temporary file renamed into place). Returns
  `{:ok, %{path:, bytes:, modules:, content_hash:}}`.
  """
  @spec write(t, Path.t()) :: {:ok, map} | error
  def write(%__MODULE__{} = snap, path) do
    with {:ok, {data, content_hash}} <- encode_with_hash(snap),
         :ok <- write_file(path, data) do
      {:ok,
       %{
         path: path,
         bytes: byte_size(data),
         modules:
           snap.metas |> Map.values() |> Enum.map(& &1.module) |> Enum.uniq() |> Enum.sort(),
         content_hash: content_hash
       }}
    end
  end

  @doc false
  def write_file(path, data) do
    case LiveCov.AtomicFile.write(path, data) do
      :ok ->
        :ok

      {:error, why} ->
        {:error,
         {:cant_write,
          LiveCov.AtomicFile.describe(why) <> "; check the directory exists and is writable"}}
    end
  end

  @doc "Reads and decodes a snapshot file."
  @spec read(Path.t()) :: {:ok, t} | error
  def read(path), do: read_with(path, &decode/1)

  @doc false
  # Reads `path` and decodes it with `decode`; errors name the file.
  @spec read_with(Path.t(), (binary -> {:ok, t} | error)) :: {:ok, t} | error
  def read_with(path, decode) do
    case File.read(to_string(path)) do
      {:ok, data} ->
        with {:error, {kind, msg}} <- decode.(data), do: {:error, {kind, "#{path}: #{msg}"}}

      {:error, reason} ->
        {:error, {:cant_read, "cannot read #{path}: #{:file.format_error(reason)}"}}
    end
  end

  ## Pure operations

  @doc """
  Merges snapshots: counts of the same build (same metadata hash) are summed, different
  builds of a module are kept apart (see `mixed_builds/1`), provenance entries are
  concatenated, and the pruned sites of a build are united.
  """
  @spec merge(t, t) :: t
  def merge(%__MODULE__{} = a, %__MODULE__{} = b) do
    %__MODULE__{
      provenance: a.provenance ++ b.provenance,
      metas: Map.merge(a.metas, b.metas, fn _h, ma, _mb -> ma end),
      counts: Map.merge(a.counts, b.counts, fn _h, ca, cb -> add!(ca, cb) end),
      pruned:
        Map.merge(a.pruned || %{}, b.pruned || %{}, fn _h, pa, pb ->
          normalize(Enum.concat(pa, pb))
        end),
      skipped: Enum.uniq(a.skipped ++ b.skipped)
    }
  end

  @doc "Merges a list of snapshots (an empty list gives an empty snapshot)."
  @spec merge([t]) :: t
  def merge([]), do: %__MODULE__{}
  def merge([first | rest]), do: Enum.reduce(rest, first, &merge(&2, &1))

  @doc """
  Merges encoded snapshot files without decoding them into terms (in the NIF), as `merge/2`
  does (counts summed, pruned sites united). Returns `{:ok, merged_file, mixed}` where
  `mixed` lists `{module_name, [hash]}` for modules with more than one build.
  """
  @spec merge_encoded([binary]) :: {:ok, binary, [{String.t(), [hash]}]} | error
  def merge_encoded(files) when is_list(files) do
    with {:ok, {file, mixed}} <- Native.snapshot_merge_files(files), do: {:ok, file, mixed}
  end

  @doc """
  What ran between two snapshots: for each build in `later`, its counts minus those in
  `earlier`. A build absent from `earlier` counts from zero. When a build's counters went
  down (they were reset in between), its delta is its counts in `later`: what ran since the
  reset. The pruned sites are those of `later` (a site pruned before `earlier` has a delta of
  0 there: it may have run in between without being counted).
  """
  @spec delta(t, t) :: t
  def delta(%__MODULE__{} = earlier, %__MODULE__{} = later) do
    counts =
      Map.new(later.counts, fn {h, after_counts} ->
        case Map.fetch(earlier.counts, h) do
          {:ok, before} -> {h, sub!(after_counts, before)}
          :error -> {h, after_counts}
        end
      end)

    %__MODULE__{later | counts: counts, content_hash: nil}
  end

  @doc "True when no counter is above zero."
  @spec empty?(t) :: boolean
  def empty?(%__MODULE__{counts: counts}),
    do: Enum.all?(counts, fn {_, bin} -> bin == zeros(div(byte_size(bin), 8)) end)

  @doc "Builds per module: `%{module => [hash]}` (hashes sorted)."
  @spec builds(t) :: %{module => [hash]}
  def builds(%__MODULE__{metas: metas}) do
    metas
    |> Map.values()
    |> Enum.group_by(& &1.module, & &1.hash)
    |> Map.new(fn {m, hs} -> {m, Enum.sort(hs)} end)
  end

  @doc "Modules with more than one build in the snapshot: `%{module => [hash]}`."
  @spec mixed_builds(t) :: %{module => [hash]}
  def mixed_builds(snap), do: snap |> builds() |> Map.filter(fn {_, hs} -> length(hs) > 1 end)

  @doc "The modules in the snapshot, sorted."
  @spec modules(t) :: [module]
  def modules(snap), do: snap |> builds() |> Map.keys() |> Enum.sort()

  @doc """
  The pruned site indices (sorted) of one build (by hash) or of a module's chosen build (see
  `choose/2`); `[]` when none was pruned, `nil` when the module is not in the snapshot.
  """
  @spec pruned(t, module | hash, keyword) :: [non_neg_integer] | nil
  def pruned(snap, module_or_hash, opts \\ [])

  def pruned(%__MODULE__{} = snap, hash, _opts) when is_map_key(snap.metas, hash),
    do: Map.get(snap.pruned || %{}, hash, [])

  def pruned(%__MODULE__{} = snap, module, opts) when is_atom(module) do
    case Map.get(choose(snap, opts), module) do
      nil -> nil
      hash -> pruned(snap, hash)
    end
  end

  def pruned(_snap, _other, _opts), do: nil

  @doc "Counts of one build (by hash) or of a module's chosen build (see `choose/2`), as a list."
  @spec counts(t, module | hash, keyword) :: [non_neg_integer] | nil
  def counts(snap, module_or_hash, opts \\ [])

  def counts(%__MODULE__{} = snap, hash, _opts) when is_map_key(snap.metas, hash) do
    case Map.fetch(snap.counts, hash) do
      {:ok, bin} -> Table.decode(bin)
      :error -> List.duplicate(0, tuple_size(snap.metas[hash].sites))
    end
  end

  def counts(%__MODULE__{} = snap, module, opts) when is_atom(module) do
    case Map.get(choose(snap, opts), module) do
      nil -> nil
      hash -> counts(snap, hash)
    end
  end

  def counts(_snap, _other, _opts), do: nil

  @doc """
  The build a report uses for each module: `%{module => hash}`. Options:

    * `builds: %{module => hash}` - explicit choices;
    * otherwise a build of `loaded:` (a set of hashes, e.g. `LiveCov.Capture.loaded_hashes/0`:
      the builds instrumented here) when the snapshot has one;
    * otherwise, for a module with several builds, the one with the most counts, else the
      only one.
  """
  @spec choose(t, keyword) :: %{module => hash}
  def choose(snap, opts \\ []) do
    explicit = Keyword.get(opts, :builds, %{})
    loaded = Keyword.get(opts, :loaded, MapSet.new())

    Map.new(builds(snap), fn {module, hashes} ->
      pick =
        Map.get(explicit, module) |> in_list(hashes) ||
          Enum.find(hashes, &MapSet.member?(loaded, &1)) ||
          Enum.max_by(hashes, &total(snap, &1))

      {module, pick}
    end)
  end

  defp in_list(nil, _), do: nil
  defp in_list(h, hashes), do: if(h in hashes, do: h)

  defp total(snap, hash),
    do: snap.counts |> Map.get(hash, <<>>) |> Table.decode() |> Enum.sum()

  @doc """
  A `LiveCov.ModuleInfo` describing a build (no slot), for `LiveCov.Analyse`. With pruned
  site indices (see `pruned/3`) it has them as `pruned` and is in `mode: :coverage`.
  """
  @spec to_module_info(Meta.t(), Enumerable.t()) :: ModuleInfo.t()
  def to_module_info(%Meta{} = m, pruned \\ []) do
    pruned = MapSet.new(pruned)

    ModuleInfo.new(
      module: m.module,
      slot: nil,
      sites: m.sites,
      md5: m.md5,
      source: m.source,
      beam_path: m.beam_path && String.to_charlist(m.beam_path),
      clauses: m.clauses,
      mode: if(MapSet.size(pruned) == 0, do: :counts, else: :coverage),
      pruned: pruned
    )
  end

  @doc "The `LiveCov.ModuleInfo` of one build of a snapshot (by hash), with its pruned sites."
  @spec module_info(t, hash) :: ModuleInfo.t() | nil
  def module_info(%__MODULE__{} = snap, hash) do
    case Map.fetch(snap.metas, hash) do
      {:ok, meta} -> to_module_info(meta, pruned(snap, hash))
      :error -> nil
    end
  end

  @doc false
  def add!(a, b) do
    fun =
      if byte_size(a) > @dirty_bytes, do: &Native.counts_add_dirty/2, else: &Native.counts_add/2

    case fun.(a, b) do
      {:ok, sum} -> sum
      {:error, {_, msg}} -> raise ArgumentError, msg
    end
  end

  defp zeros(n), do: :binary.copy(<<0::64>>, n)

  defp sub!(a, b) do
    fun =
      if byte_size(a) > @dirty_bytes, do: &Native.counts_sub_dirty/2, else: &Native.counts_sub/2

    case fun.(a, b) do
      {:ok, diff} -> diff
      :reset -> a
      {:error, {_, msg}} -> raise ArgumentError, msg
    end
  end
end
