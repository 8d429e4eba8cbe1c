defmodule LiveCov.SnapshotReport do
  @moduledoc false
  # Reports and cover analyses of a snapshot's data: the line data of one build of each
  # module (as `LiveCov.Stats.build/2` takes it), the report, `:cover`-shaped analyses.

  alias LiveCov.{Analyse, Snapshot, Stats}

  @doc """
  Line data (as `LiveCov.Stats.build/2` takes it) for one build of each module, chosen by
  `choose/2` (options `:builds`, `:modules`). A build with pruned sites is `exact: false`
  (its counts are lower bounds) and lists the lines whose sites were all pruned in
  `pruned_lines`, as `LiveCov.module_data/1` does.
  """
  @spec module_data(Snapshot.t(), keyword) :: [Stats.module_data()]
  def module_data(%Snapshot{} = snap, opts \\ []) do
    wanted = opts[:modules] && MapSet.new(List.wrap(opts[:modules]))

    for {module, hash} <- Enum.sort(Snapshot.choose(snap, opts)),
        wanted == nil or MapSet.member?(wanted, module) do
      info = Snapshot.module_info(snap, hash)
      counts = Snapshot.counts(snap, hash)

      %{
        module: module,
        source: info.source,
        lines: Analyse.lines(info, counts),
        functions: Analyse.functions(info, counts),
        exact: MapSet.size(info.pruned) == 0,
        pruned_lines: LiveCov.Prune.pruned_lines(info)
      }
    end
  end

  @doc "The coverage report (`LiveCov.Stats`) of a snapshot; options of `module_data/2` and `LiveCov.Stats.build/2`."
  @spec report(Snapshot.t(), keyword) :: Stats.t() | Snapshot.error()
  def report(%Snapshot{} = snap, opts \\ []) do
    Stats.build(module_data(snap, opts), Keyword.drop(opts, [:builds, :modules, :loaded]))
  end

  @doc """
  Cover-compatible analysis (as `:cover.analyse/3`) of one module's chosen build, or of a
  build given by hash.
  """
  @spec analyse(
          Snapshot.t(),
          module | Snapshot.hash(),
          :calls | :coverage,
          :module | :function | :clause | :line,
          keyword
        ) ::
          {:ok, term} | {:error, {:not_in_snapshot, module | Snapshot.hash()}}
  def analyse(snap, module_or_hash, analysis, level, opts \\ []) do
    hash =
      if is_map_key(snap.metas, module_or_hash),
        do: module_or_hash,
        else: Map.get(Snapshot.choose(snap, opts), module_or_hash)

    case hash do
      nil ->
        {:error, {:not_in_snapshot, module_or_hash}}

      h ->
        {:ok,
         Analyse.cover(Snapshot.module_info(snap, h), Snapshot.counts(snap, h), analysis, level)}
    end
  end
end
