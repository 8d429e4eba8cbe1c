defmodule LiveCov.Report do
  @moduledoc false
  # This node's coverage as report data: the line data of every instrumented module, the
  # report built from it, its total, and the report formats written from one reading of the
  # counters. `LiveCov`, the Mix tool and the publisher call it.

  alias LiveCov.{Analyse, Instrumented, Stats}

  @stats_opts Stats.known_opts()

  @doc "See `LiveCov.module_data/1`."
  @spec module_data(keyword) :: [Stats.module_data()]
  def module_data(_opts \\ []) do
    infos = Instrumented.modules()
    all_counts = LiveCov.Counts.collect(infos)
    # Imported data of a coverage-mode run has frozen counters: the sum is not exact.
    inexact = LiveCov.Imported.pruned_modules(infos)

    for info <- infos do
      counts = Map.fetch!(all_counts, info.module)

      %{
        module: info.module,
        source: info.source,
        lines: Analyse.lines(info, counts),
        functions: Analyse.functions(info, counts),
        exact: info.mode != :coverage and not MapSet.member?(inexact, info.module),
        pruned_lines: LiveCov.Prune.pruned_lines(info)
      }
    end
  end

  @doc "See `LiveCov.instrumented/1`."
  @spec instrumented(keyword) :: [map]
  def instrumented(opts \\ []) do
    infos = Instrumented.modules()
    counts = if Keyword.get(opts, :counts, false), do: LiveCov.Counts.collect(infos), else: %{}

    for info <- infos do
      row = %{
        module: info.module,
        md5: info.md5,
        sites: LiveCov.ModuleInfo.size(info),
        mode: info.mode,
        backend: info.backend,
        source: info.source,
        instrumented_at: info.instrumented_at
      }

      if opts[:counts],
        do: Map.put(row, :hit, Enum.count(Map.get(counts, info.module, []), &(&1 > 0))),
        else: row
    end
  end

  @doc "See `LiveCov.report/1`."
  @spec build(keyword) :: Stats.t() | {:error, {atom, String.t()}}
  def build(opts \\ []), do: Stats.build(module_data(opts), Keyword.take(opts, @stats_opts))

  @doc "See `LiveCov.total_coverage/1`."
  @spec total_coverage(keyword) :: float | {:error, {atom, String.t()}}
  def total_coverage(opts \\ []) do
    with %Stats{} = stats <- build(opts), do: stats.coverage
  end

  @doc "See `LiveCov.write/3`."
  @spec write([atom], Path.t(), keyword) :: {:ok, [Path.t()]} | {:error, {atom, String.t()}}
  def write(formats, dir, opts \\ []) do
    with %Stats{} = stats <- build(opts) do
      LiveCov.Report.Writer.write(stats, formats, dir, opts)
    end
  end
end
