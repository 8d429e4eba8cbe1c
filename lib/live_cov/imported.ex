defmodule LiveCov.Imported do
  @moduledoc false
  # Coverage data imported from files (`LiveCov.import/1`, `LiveCov.Cover.import/1`), kept per
  # build of each module.
  #
  # Imported counts add to what this node counts, but only for the same build: when a module
  # is instrumented here and its metadata hash (module, beam md5, source, bump sites) is the
  # one imported, `counts/1` — which `LiveCov.Counts` adds into every analysis — returns the
  # imported counts. Data of other builds stays here, listed by `builds/0`; a report against
  # it is made with `snapshot/0` and `LiveCov.Snapshot.report/2`.
  #
  # Data imported from a cover `.coverdata` file has no beam md5: it is matched to an
  # instrumented module when the module has exactly the same set of bump sites.
  #
  # Pruned sites (adaptive coverage, `LiveCov.Snapshot` `pruned`) are kept per build, united
  # over imports, and given back by `snapshot/0`.
  #
  # The same data (same content hash, whatever the file name) is never imported twice.
  # Reads go to protected ETS tables; imports are serialised through this process.
  use GenServer

  @behaviour LiveCov.Counts.Source

  alias LiveCov.{Coverdata, Instrumented, ModuleInfo, Snapshot, Table, Util}
  alias LiveCov.Snapshot.Meta

  @builds :live_cov_imported_builds
  @by_module :live_cov_imported_modules
  @files :live_cov_imported_files
  @cache :live_cov_meta_cache
  @zero_md5 <<0::128>>

  @type import_summary :: %{
          path: String.t() | charlist | nil,
          kind: :snapshot | :coverdata,
          modules: [module],
          matched: [module],
          other_build: [module],
          not_loaded: [module]
        }

  @doc false
  def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  ## Importing

  @doc """
  Imports a file: a LiveCov snapshot or a cover `.coverdata` file (told apart by content).
  Returns `{:ok, summary}`: the modules imported, those that match the build loaded here
  (`matched`), those loaded here as another build (`other_build`, kept apart) and those not
  instrumented here (`not_loaded`). Nothing is changed when the file is bad or was already
  imported (`{:error, {:already_imported, message}}`).

  Options: `format: :auto | :snapshot | :coverdata` (default `:auto`).
  """
  @spec import_file(Path.t() | charlist, keyword) :: {:ok, import_summary} | Snapshot.error()
  def import_file(path, opts \\ []) do
    name = to_string(path)

    # Read here, decode in the server: a large snapshot is then built where it is stored,
    # not copied over in a message.
    with {:ok, data} <- read(name),
         :ok <- ensure_started() do
      GenServer.call(
        __MODULE__,
        {:import_data, data, path, Keyword.get(opts, :format, :auto)},
        :infinity
      )
    end
  end

  defp read(name) do
    case File.read(name) do
      {:ok, data} ->
        {:ok, data}

      {:error, reason} ->
        {:error,
         {:cant_read, "cannot read #{name}: #{:file.format_error(reason)}; check the path"}}
    end
  end

  defp parse(data, name, format) do
    coverdata? = format == :coverdata or (format == :auto and Coverdata.looks_like?(data))

    result =
      if coverdata?,
        do: with({:ok, s} <- Coverdata.decode(data), do: {:ok, s, :coverdata}),
        else: with({:ok, s} <- Snapshot.decode(data), do: {:ok, s, :snapshot})

    case result do
      {:error, {kind, msg}} -> {:error, {kind, "#{name}: #{msg}"}}
      ok -> ok
    end
  end

  @doc """
  Imports an in-memory snapshot (e.g. one received from another node). Options: `source:`
  (recorded as the file), `kind:`. The content hash is computed when the snapshot has none.
  """
  @spec import_snapshot(Snapshot.t(), keyword) :: {:ok, import_summary} | Snapshot.error()
  def import_snapshot(%Snapshot{} = snap, opts \\ []) do
    with {:ok, snap} <- with_content_hash(snap),
         :ok <- ensure_started() do
      GenServer.call(__MODULE__, {:import, snap, opts}, :infinity)
    end
  end

  defp with_content_hash(%Snapshot{content_hash: h} = snap) when is_binary(h), do: {:ok, snap}

  defp with_content_hash(snap) do
    with {:ok, {_data, hash}} <- Snapshot.encode_with_hash(snap),
         do: {:ok, %{snap | content_hash: hash}}
  end

  defp ensure_started do
    case Application.ensure_all_started(:live_cov) do
      {:ok, _} ->
        :ok

      {:error, reason} ->
        {:error, {:not_started, "LiveCov could not be started: #{inspect(reason)}"}}
    end
  end

  ## Reading

  @doc """
  Imported counts of the given instrumented modules, for those whose build matches:
  `%{module => [count]}`. Modules without matching imported data are absent.
  """
  @spec counts([LiveCov.ModuleInfo.t()]) :: %{module => [non_neg_integer]}
  @impl LiveCov.Counts.Source
  def counts([]), do: %{}

  def counts(infos) do
    if :ets.info(@builds, :size) in [0, :undefined] do
      %{}
    else
      {metas, _} = Snapshot.metas_of(infos)

      for {info, %Meta{hash: hash}} <- Enum.zip(infos, metas),
          hash != nil,
          counts = matching_counts(info, hash),
          counts != nil,
          into: %{},
          do: {info.module, counts}
    end
  end

  @doc """
  The modules among `infos` whose imported data of the same build has pruned sites (it came
  from a `mode: :coverage` run): their counts, added to the live ones, are not exact.
  """
  @spec pruned_modules([LiveCov.ModuleInfo.t()]) :: MapSet.t(module)
  def pruned_modules(infos) do
    pruned =
      if :ets.info(@builds, :size) in [0, :undefined],
        do: [],
        else: :ets.select(@builds, [{{:"$1", :_, :_, :snapshot, :_, [:_ | :_]}, [], [:"$1"]}])

    if pruned == [] do
      MapSet.new()
    else
      pruned = MapSet.new(pruned)
      {metas, _} = Snapshot.metas_of(infos)

      for {info, %Meta{hash: hash}} <- Enum.zip(infos, metas),
          MapSet.member?(pruned, hash),
          into: MapSet.new(),
          do: info.module
    end
  end

  defp matching_counts(info, hash) do
    exact =
      case :ets.lookup(@builds, hash) do
        [{_, _meta, packed, :snapshot, _seq, _pruned}] -> packed
        # .coverdata builds are matched by sites below (never twice).
        _ -> nil
      end

    cover = cover_counts(info)

    case {exact, cover} do
      {nil, nil} -> nil
      {e, nil} -> Table.decode(e)
      {nil, c} -> c
      {e, c} -> LiveCov.Counts.add(Table.decode(e), c)
    end
  end

  # Data from .coverdata files (no md5): matched by the exact set of sites.
  defp cover_counts(info) do
    builds =
      for {_, hash} <- :ets.lookup(@by_module, info.module),
          [{_, meta, packed, :coverdata, _, _}] <- [:ets.lookup(@builds, hash)],
          do: {meta, packed}

    case builds do
      [] ->
        nil

      _ ->
        sites = ModuleInfo.site_list(info)
        sorted = Enum.sort(sites)

        builds
        |> Enum.filter(fn {meta, _} -> Tuple.to_list(meta.sites) == sorted end)
        |> Enum.map(fn {meta, packed} ->
          by_site = Map.new(Enum.zip(Tuple.to_list(meta.sites), Table.decode(packed)))
          Enum.map(sites, &Map.fetch!(by_site, &1))
        end)
        |> Enum.reduce(nil, fn c, acc -> if acc, do: LiveCov.Counts.add(acc, c), else: c end)
    end
  end

  @doc """
  Every imported build, per module: `%{module => [%{hash:, md5:, kind:, loaded:, calls:}]}`
  where `loaded` says whether it is the build instrumented here (so its counts are in the
  reports) and `calls` is the sum of its counts.
  """
  @spec builds() :: %{module => [map]}
  def builds do
    loaded = loaded()

    Util.ets_tab2list(@builds)
    |> Enum.sort_by(&elem(&1, 4))
    |> Enum.group_by(&elem(&1, 1).module, fn {hash, meta, packed, kind, _seq, _pruned} ->
      %{
        hash: hash,
        md5: meta.md5,
        kind: kind,
        loaded: loaded?(meta, kind, loaded),
        calls: packed |> Table.decode() |> Enum.sum()
      }
    end)
  end

  defp loaded do
    infos = Instrumented.modules()
    {metas, _} = Snapshot.metas_of(infos)

    %{
      hashes: MapSet.new(for %Meta{hash: h} <- metas, h != nil, do: h),
      sites: Map.new(infos, &{&1.module, &1 |> ModuleInfo.site_list() |> Enum.sort()})
    }
  end

  defp loaded?(meta, :coverdata, loaded),
    do: Map.get(loaded.sites, meta.module) == Tuple.to_list(meta.sites)

  defp loaded?(meta, _, loaded), do: MapSet.member?(loaded.hashes, meta.hash)

  @doc "The imports done, oldest first: `[%{path:, kind:, content_hash:, provenance:, modules:, imported_at:}]`."
  @spec files() :: [map]
  def files do
    Util.ets_tab2list(@files) |> Enum.map(&elem(&1, 1)) |> Enum.sort_by(& &1.seq)
  end

  @doc "Imported file names, absolute, as `:cover.imported/0`."
  @spec imported() :: [charlist | String.t()]
  def imported, do: files() |> Enum.map(& &1.path) |> Enum.reject(&is_nil/1) |> Enum.uniq()

  @doc "Modules with imported data, as `:cover.imported_modules/0`."
  @spec imported_modules() :: [module]
  def imported_modules,
    do: Util.ets_tab2list(@by_module) |> Enum.map(&elem(&1, 0)) |> Enum.uniq() |> Enum.sort()

  @doc "All imported data as one snapshot (one entry per build; provenance of every import)."
  @spec snapshot() :: Snapshot.t()
  def snapshot do
    builds = Util.ets_tab2list(@builds)

    %Snapshot{
      provenance: Enum.flat_map(files(), & &1.provenance),
      metas: Map.new(builds, fn {h, meta, _, _, _, _} -> {h, meta} end),
      counts: Map.new(builds, fn {h, _, packed, _, _, _} -> {h, packed} end),
      pruned: for({h, _, _, _, _, [_ | _] = pruned} <- builds, into: %{}, do: {h, pruned})
    }
  end

  @doc "Forgets every import."
  @spec clear() :: :ok
  def clear do
    if Process.whereis(__MODULE__), do: GenServer.call(__MODULE__, :clear), else: :ok
  end

  ## Server

  @impl true
  def init(nil) do
    opts = [:named_table, :protected, read_concurrency: true]
    :ets.new(@builds, [:set | opts])
    :ets.new(@by_module, [:bag | opts])
    :ets.new(@files, [:set | opts])
    # The metadata cache of LiveCov.Snapshot (any process may fill it).
    :ets.new(@cache, [:set, :public, :named_table, read_concurrency: true])
    {:ok, %{seq: 0}}
  end

  @impl true
  def handle_call({:import_data, data, path, format}, _from, state) do
    case parse(data, to_string(path), format) do
      {:ok, snap, kind} ->
        {reply, state} = import_now(snap, [source: path, kind: kind], state)
        {:reply, reply, state}

      error ->
        {:reply, error, state}
    end
  end

  def handle_call({:import, snap, opts}, _from, state) do
    {reply, state} = import_now(snap, opts, state)
    {:reply, reply, state}
  end

  def handle_call(:clear, _from, state) do
    Enum.each([@builds, @by_module, @files], &:ets.delete_all_objects/1)
    {:reply, :ok, state}
  end

  defp import_now(snap, opts, state) do
    case :ets.lookup(@files, snap.content_hash) do
      [{_, previous}] ->
        {{:error,
          {:already_imported,
           "#{describe(Keyword.get(opts, :source))} holds the same data as #{describe(previous.path)}, " <>
             "imported before (content hash #{Base.encode16(snap.content_hash, case: :lower)}): " <>
             "importing it again would count it twice, so it was not imported"}}, state}

      [] ->
        seq = state.seq + 1
        kind = Keyword.get(opts, :kind, :snapshot)
        store(snap, seq)
        modules = Snapshot.modules(snap)
        path = absname(Keyword.get(opts, :source))

        :ets.insert(
          @files,
          {snap.content_hash,
           %{
             path: path,
             kind: kind,
             content_hash: snap.content_hash,
             provenance: snap.provenance,
             modules: modules,
             imported_at: System.os_time(:millisecond),
             seq: seq
           }}
        )

        {{:ok, summary(snap, kind, path, modules)}, %{state | seq: seq}}
    end
  end

  # Metadata without an md5 comes from a .coverdata file (maybe through a snapshot): it is
  # matched by its sites.
  defp build_kind(%Meta{md5: @zero_md5}), do: :coverdata
  defp build_kind(_), do: :snapshot

  # Rows of @builds: {hash, meta, packed_counts, kind, seq, pruned_sites}.
  defp store(snap, seq) do
    for {hash, meta} <- snap.metas do
      packed = Map.get(snap.counts, hash) || :binary.copy(<<0::64>>, tuple_size(meta.sites))
      pruned = Map.get(snap.pruned || %{}, hash, [])

      case :ets.lookup(@builds, hash) do
        [{_, old_meta, old, old_kind, _, old_pruned}] ->
          pruned = Enum.sort(Enum.uniq(old_pruned ++ pruned))

          :ets.insert(
            @builds,
            {hash, old_meta, Snapshot.add!(old, packed), old_kind, seq, pruned}
          )

        [] ->
          :ets.insert(@builds, {hash, meta, packed, build_kind(meta), seq, pruned})
          :ets.insert(@by_module, {meta.module, hash})
      end
    end
  end

  defp summary(snap, kind, path, modules) do
    loaded = loaded()

    status =
      Map.new(snap.metas, fn {_h, meta} ->
        cond do
          loaded?(meta, build_kind(meta), loaded) -> {meta.module, :matched}
          Map.has_key?(loaded.sites, meta.module) -> {meta.module, :other_build}
          true -> {meta.module, :not_loaded}
        end
      end)

    # A module with one matching build among several counts as matched.
    status =
      Enum.reduce(snap.metas, status, fn {_h, meta}, acc ->
        if loaded?(meta, build_kind(meta), loaded),
          do: Map.put(acc, meta.module, :matched),
          else: acc
      end)

    pick = fn s -> for m <- modules, status[m] == s, do: m end

    %{
      path: path,
      kind: kind,
      modules: modules,
      matched: pick.(:matched),
      other_build: pick.(:other_build),
      not_loaded: pick.(:not_loaded),
      mixed_builds: snap |> Snapshot.mixed_builds() |> Map.keys() |> Enum.sort()
    }
  end

  defp absname(nil), do: nil
  defp absname(path) when is_list(path), do: :filename.absname(path)
  defp absname(path) when is_binary(path), do: Path.absname(path)

  defp describe(nil), do: "this snapshot"
  defp describe(path), do: to_string(path)
end
