defmodule Mix.Tasks.LiveCov.Report do
  @shortdoc "Renders LiveCov coverage reports from an export or from this node"

  @moduledoc """
  Renders LiveCov reports in any format, from data exported by
  `mix test --cover --export-coverage NAME` (see `LiveCov.MixTool`) or, without `--input`,
  from the modules instrumented on the current node (e.g. in `iex -S mix` after
  `LiveCov.start(:my_app)`).

      mix live_cov.report --input cover/default.livecov.json --format lcov --output cover
      mix live_cov.report --input a.livecov.json --format html,cobertura --threshold 80
      mix live_cov.report --input a.livecov.json --compile-root /build/app --runtime-root .
      mix live_cov.report -i cover/part1.livecov -i cover/part2.livecov --format lcov

  Options:

    * `--input PATH` - a LiveCov snapshot (`LiveCov.export/2`, an agent's `/snapshot`, the
      `.livecov` file of `--export-coverage`), an OTP cover `.coverdata` file, or a JSON
      export. Repeatable (or comma-separated) for snapshots and `.coverdata` files: their
      counts are merged (`LiveCov.Snapshot.merge/1`: the same build sums, different builds
      stay apart), e.g. the partitions of `mix test --partitions`. Without it, the current
      node's counters.
    * `--format NAME` - repeatable or comma-separated: `html` (default), `lcov`, `cobertura`,
      `coveralls`, `json`, `annotated`, `terminal`.
    * `--output DIR` - where the files go; default `:output` of the project's
      `:test_coverage` config, else `cover`.
    * `--compile-root DIR --runtime-root DIR` - read sources compiled under the first
      directory from the second (only for sources an export does not embed).
    * `--root DIR` - show filenames relative to this directory (default: the exporting
      project's directory, or the current directory).
    * `--threshold N` - when the total is below `N` percent, exit with status 3 (after
      writing the reports).
    * `--no-summary` - do not print the terminal table.

  In a project, `:ignore_modules` and `:skip_files` of its `:test_coverage` config apply.
  """

  use Mix.Task

  alias LiveCov.MixTool

  @switches [
    input: :keep,
    format: :keep,
    output: :string,
    compile_root: :string,
    runtime_root: :string,
    root: :string,
    threshold: :float,
    summary: :boolean
  ]
  @aliases [i: :input, f: :format, o: :output]

  @impl true
  def run(args) do
    # Runnable more than once in one VM (iex -S mix, Mix.Task.run/2).
    Mix.Task.reenable("live_cov.report")

    {opts, rest, invalid} = OptionParser.parse(args, strict: @switches, aliases: @aliases)
    check_args!(rest, invalid)

    config = project_config()
    if Mix.Project.get(), do: Mix.Task.run("compile")

    stats = opts |> stats(config) |> ok!()
    threshold = opts[:threshold]

    if Keyword.get(opts, :summary, true) do
      MixTool.print_summary(stats, threshold: threshold || 90, sort: :coverage)
    end

    output = opts[:output] || Keyword.get(config, :output, "cover")
    {:ok, paths} = stats |> LiveCov.Report.Writer.write(formats(opts), output) |> ok!()
    Enum.each(paths, &Mix.shell().info("Wrote #{Path.relative_to_cwd(&1)}"))

    if threshold && stats.coverage < threshold do
      Mix.shell().info("Coverage test failed, threshold not met (exit status 3).")
      exit({:shutdown, 3})
    end

    :ok
  end

  defp check_args!([], []), do: :ok

  defp check_args!(rest, invalid) do
    bad = Enum.map(invalid, fn {k, _} -> k end) ++ rest

    Mix.raise(
      "mix live_cov.report: unexpected #{Enum.join(bad, " ")}; " <>
        "usage: mix live_cov.report [--input EXPORT.json] [--format lcov] [--output DIR]"
    )
  end

  defp project_config do
    if Mix.Project.get(), do: Mix.Project.config()[:test_coverage] || [], else: []
  end

  defp stats(opts, config) do
    stats_opts =
      config
      |> Keyword.take([:ignore_modules, :skip_files])
      |> Keyword.merge(Keyword.take(opts, [:compile_root, :runtime_root, :root]))

    case inputs(opts) do
      [] ->
        if LiveCov.modules() == [] do
          {:error,
           {:nothing_instrumented,
            "no module is instrumented on this node: run LiveCov.start/1 first, " <>
              "or pass --input with a LiveCov snapshot, a .coverdata file or a JSON export"}}
        else
          LiveCov.report(stats_opts)
        end

      [input] ->
        report_from_file(input, stats_opts)

      inputs ->
        report_from_files(inputs, stats_opts)
    end
  end

  defp inputs(opts) do
    opts
    |> Keyword.get_values(:input)
    |> Enum.flat_map(&String.split(&1, ",", trim: true))
    |> Enum.uniq()
  end

  # Snapshots and .coverdata files: each read as a snapshot, then merged.
  defp report_from_files(inputs, stats_opts) do
    inputs
    |> Enum.reduce_while({:ok, []}, fn input, {:ok, acc} ->
      case read_snapshot(input) do
        {:ok, snap} -> {:cont, {:ok, [snap | acc]}}
        error -> {:halt, error}
      end
    end)
    |> case do
      {:ok, snaps} -> snapshot_report(LiveCov.Snapshot.merge(Enum.reverse(snaps)), stats_opts)
      error -> error
    end
  end

  defp read_snapshot(input) do
    case input_kind(input) do
      :snapshot ->
        LiveCov.Snapshot.read(input)

      :coverdata ->
        with {:ok, snap} <- LiveCov.Coverdata.read(input), do: {:ok, with_sources(snap)}

      :json ->
        {:error,
         {:cannot_merge,
          "#{input} is not a LiveCov snapshot or a .coverdata file, and only those can be " <>
            "merged; give the .livecov file that --export-coverage writes next to the JSON"}}
    end
  end

  # A LiveCov snapshot (`LiveCov.export/2`, `/snapshot` of an agent), OTP cover's
  # `.coverdata`, or the JSON export of `mix test --cover --export-coverage`.
  defp report_from_file(input, stats_opts) do
    case input_kind(input) do
      :json ->
        with {:ok, export} <- LiveCov.ExportFile.read(input),
             do: LiveCov.ExportFile.stats(export, stats_opts)

      _snapshot_or_coverdata ->
        report_from_files([input], stats_opts)
    end
  end

  # Reports are made against the builds in the file, not against what this VM has loaded.
  defp snapshot_report(snap, stats_opts),
    do: LiveCov.SnapshotReport.report(snap, [loaded: MapSet.new()] ++ stats_opts)

  # `.coverdata` records no source paths: as cover does, take them from the beams' compile
  # info when the modules can be found here.
  defp with_sources(snap) do
    metas =
      Map.new(snap.metas, fn
        {h, %{source: s} = m} when s in [nil, ""] -> {h, %{m | source: beam_source(m.module)}}
        pair -> pair
      end)

    %{snap | metas: metas}
  end

  defp beam_source(module) do
    with path when is_list(path) <- :code.which(module),
         {:ok, {_, [compile_info: info]}} <- :beam_lib.chunks(path, [:compile_info]),
         {:source, source} <- List.keyfind(info, :source, 0) do
      to_string(source)
    else
      _ -> nil
    end
  end

  defp input_kind(path) do
    with {:ok, io} <- File.open(path, [:read, :binary]),
         head = IO.binread(io, 8),
         :ok <- File.close(io) do
      cond do
        head == "\x89LiveCov" -> :snapshot
        String.ends_with?(path, ".coverdata") -> :coverdata
        true -> :json
      end
    else
      _ -> :json
    end
  end

  defp formats(opts) do
    case Keyword.get_values(opts, :format) do
      [] ->
        [:html]

      values ->
        values |> Enum.flat_map(&String.split(&1, ",", trim: true)) |> Enum.map(&String.trim/1)
    end
  end

  defp ok!({:error, {kind, message}}), do: Mix.raise("mix live_cov.report (#{kind}): #{message}")
  defp ok!(ok), do: ok
end
