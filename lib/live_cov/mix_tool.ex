defmodule LiveCov.MixTool do
  @moduledoc """
  LiveCov as the coverage tool of `mix test --cover`.

  In the project's `mix.exs`:

      def project do
        [
          app: :my_app,
          deps: [{:live_cov, path: "../live_cov"}],
          test_coverage: [
            tool: LiveCov,
            summary: [threshold: 80],
            formats: [:html, :lcov],
            ignore_modules: [MyApp.Fake, ~r/\\.Test\\./]
          ]
        ]
      end

  Mix calls `LiveCov.start(compile_path, opts)` before the application starts; LiveCov
  instruments every `.beam` of `compile_path` (consolidated protocols from the consolidation
  directory, as Mix's own tool does) and returns the function Mix runs after the suite. That
  function builds the report (`LiveCov.report/1`), prints the terminal table
  (`LiveCov.Format.Terminal`) and writes the report files.

  ## Options (under `:test_coverage`)

    * `:output` - report directory, default `"cover"`.
    * `:summary` - `true` (default, threshold 90), `false` (no table, no threshold check), or
      a keyword list: `threshold:` (percent) and `sort:` (`:coverage` or `:filename`).
      When the total is below the threshold, a message is printed and `mix test` exits with
      status 3, exactly like Mix's own cover tool. The comparison uses the total as printed
      (one decimal, never 100.0 while a line is missed).
    * `:formats` - report formats written to `:output`, default `[:html]`; any name
      `LiveCov.Format` knows (`:html`, `:lcov`, `:cobertura`, `:coveralls`, `:json`,
      `:annotated`, `:terminal`) or a module implementing it. `[]` writes nothing. Mix's
      `format: :html | :text` is accepted too (`:text` is `:annotated`).
    * `:format_opts`, `:filenames`, `:split` - passed to `LiveCov.Report.Writer.write/4`.
    * `:ignore_modules` - module atoms or regexes on the module name, left out of the report.
    * `:skip_files`, `:empty_coverage`, `:root`, `:path_map`, `:compile_root`,
      `:runtime_root` - passed to `LiveCov.Stats.build/2`.
    * `:optimize`, `:cache`, `:cache_dir`, `:backend` - how modules are instrumented, as for
      `LiveCov.start/2` (compile profile; instrumentation cache, on by default: the next
      `mix test --cover` of the same build loads instead of compiling).
    * `:export` (or `mix test --cover --export-coverage NAME`) - instead of reporting, writes
      the raw data to `OUTPUT/NAME.livecov.json` (line data and the sources: renders
      anywhere), `OUTPUT/NAME.livecov` (a LiveCov snapshot: exact builds, mergeable) and
      `OUTPUT/NAME.coverdata` (cover's format of the running OTP, read by Elixir's
      `mix test.coverage` and excoveralls' `--import-cover`); render later with
      `mix live_cov.report --input OUTPUT/NAME.livecov.json`, or merge partitions with
      `mix live_cov.report -i OUTPUT/a.livecov -i OUTPUT/b.livecov`.

  ## Export format (`LiveCov.ExportFile`)

  For now the export is a JSON document (written with `LiveCov.JSON`) holding
  `LiveCov.module_data/0` and the text of every source file, so a report can be rendered
  on another machine:

      {"format": "live_cov_export", "version": 1, "generated_at": "...", "node": "...",
       "root": "/path/of/the/project",
       "modules": [{"module": "Elixir.MyApp.Calc", "source": "/path/lib/my_app/calc.ex",
                    "lines": {"3": 5, "4": 0}, "functions": [["add/2", 3, 5]]}],
       "sources": {"/path/lib/my_app/calc.ex": "defmodule MyApp.Calc do\\n..."}}

  The `.livecov` snapshot written beside it carries the counters per build (module, beam MD5,
  sites) without the sources; snapshots of several runs merge (`LiveCov.Snapshot.merge/1`).
  """

  alias LiveCov.{Snapshot, Stats}
  alias LiveCov.Report.Writer

  @default_threshold 90
  @export_ext ".livecov.json"
  @snapshot_ext ".livecov"
  @stats_keys [
    :ignore_modules,
    :skip_files,
    :empty_coverage,
    :root,
    :path_map,
    :compile_root,
    :runtime_root
  ]
  @writer_keys [:format_opts, :filenames, :split]

  ## --- mix test --cover ----------------------------------------------------

  @doc """
  Instruments the beams of `compile_path` and returns the function `mix test` runs after
  the suite (see the module documentation for `opts`).
  """
  @spec start(Path.t(), keyword) :: (() -> :ok)
  def start(compile_path, opts) do
    instrument_opts = Keyword.take(opts, [:optimize, :cache, :cache_dir, :backend])

    case LiveCov.Counter.resolve(Keyword.get(opts, :backend)) do
      {:ok, backend} ->
        Mix.shell().info("Instrumenting modules with LiveCov ... (backend: #{backend})")

      {:error, {_kind, message}} ->
        Mix.raise("LiveCov: #{message}")
    end

    case LiveCov.Session.start(beams(compile_path), instrument_opts) do
      {:error, {_kind, message}} ->
        Mix.raise("LiveCov could not instrument #{compile_path}: #{message}")

      %{instrumented: [], skipped: [%{message: message} | _]} ->
        Mix.raise("LiveCov could not instrument any module of #{compile_path}: #{message}")

      %{skipped: skipped} ->
        Enum.each(skipped, fn s ->
          target =
            if is_binary(s.target), do: Path.relative_to_cwd(s.target), else: inspect(s.target)

          Mix.shell().info("  not instrumented: #{target}: #{s.message}")
        end)
    end

    if name = opts[:export] do
      fn ->
        Mix.shell().info("\nExporting LiveCov coverage data ...\n")
        export_after_suite(name, opts)
      end
    else
      fn ->
        Mix.shell().info("\nGenerating LiveCov coverage results ...\n")
        results_after_suite(opts)
      end
    end
  end

  # Like Mix: a protocol consolidated by the project is instrumented from its consolidated
  # beam, which is the one the code server loads.
  defp beams(dir) do
    consolidated =
      case File.ls(Mix.Project.consolidation_path()) do
        {:ok, files} -> MapSet.new(files)
        _ -> MapSet.new()
      end

    files =
      case File.ls(dir) do
        {:ok, files} -> Enum.sort(files)
        {:error, _} -> []
      end

    for file <- files, Path.extname(file) == ".beam" do
      with true <- MapSet.member?(consolidated, file),
           [_ | _] = path <- :code.which(file |> Path.rootname() |> String.to_atom()) do
        List.to_string(path)
      else
        _ -> Path.join(dir, file)
      end
    end
  end

  defp results_after_suite(opts) do
    stats = build!(LiveCov.Report.build(Keyword.take(opts, @stats_keys)))

    case Keyword.get(opts, :summary, true) do
      falsy when falsy in [false, nil] -> :ok
      true -> summary(stats, [])
      summary_opts when is_list(summary_opts) -> summary(stats, summary_opts)
    end

    write_formats(stats, opts)
  end

  defp summary(stats, summary_opts) do
    if print_summary(stats, summary_opts) == :below do
      Mix.shell().info("Coverage test failed, threshold not met (exit status 3).")
      System.at_exit(fn _ -> exit({:shutdown, 3}) end)
    end

    :ok
  end

  @doc """
  Prints the terminal table of `stats` (`threshold:`, default 90, and `sort:` options) and
  returns `:below` when the total is under the threshold, else `:ok`.
  """
  @spec print_summary(Stats.t(), keyword) :: :ok | :below
  def print_summary(%Stats{} = stats, opts \\ []) do
    threshold = Keyword.get(opts, :threshold, @default_threshold)
    sort = Keyword.get(opts, :sort, :coverage)

    stats
    |> LiveCov.Format.Terminal.render(
      threshold: threshold,
      sort: sort,
      colors: IO.ANSI.enabled?()
    )
    |> IO.iodata_to_binary()
    |> String.trim_trailing()
    |> Mix.shell().info()

    if stats.coverage < threshold, do: :below, else: :ok
  end

  defp write_formats(stats, opts) do
    output = Keyword.get(opts, :output, "cover")

    case formats(opts) do
      [] ->
        :ok

      formats ->
        {:ok, paths} =
          stats |> Writer.write(formats, output, Keyword.take(opts, @writer_keys)) |> ok!()

        names = Enum.map_join(formats, ", ", &format_name/1)
        Mix.shell().info("Generated #{names} coverage results in #{inspect(output)} directory")
        Enum.each(paths, &Mix.shell().info("  " <> Path.relative_to_cwd(&1)))
    end
  end

  defp formats(opts) do
    case Keyword.fetch(opts, :formats) do
      {:ok, formats} ->
        List.wrap(formats)

      :error ->
        opts |> Keyword.get(:format, :html) |> List.wrap() |> Enum.map(&text_is_annotated/1)
    end
  end

  defp text_is_annotated(:text), do: :annotated
  defp text_is_annotated(other), do: other

  defp format_name(f) when is_atom(f) do
    case Atom.to_string(f) do
      "Elixir." <> _ -> inspect(f)
      name -> name
    end
  end

  defp format_name(f), do: to_string(f)

  defp export_after_suite(name, opts) do
    base = Path.join(Keyword.get(opts, :output, "cover"), name)
    {:ok, path} = ok!(LiveCov.ExportFile.write(base <> @export_ext))

    {:ok, %{path: snap}} =
      ok!(Snapshot.write(LiveCov.Capture.build(counts: :all), base <> @snapshot_ext))

    # cover's own format, for `mix test.coverage` and excoveralls' --import-cover.
    coverdata = base <> ".coverdata"
    :ok = ok!(LiveCov.Cover.export(coverdata))
    [path, snap, coverdata] = Enum.map([path, snap, coverdata], &Path.relative_to_cwd/1)

    Mix.shell().info(
      "Exported LiveCov data to #{path} (with the sources), #{snap} and #{coverdata}"
    )

    Mix.shell().info("Render it with: mix live_cov.report --input #{path}")
    Mix.shell().info("Merge partitions with: mix live_cov.report -i #{snap} -i OTHER.livecov")
  end

  defp build!(%Stats{} = stats), do: stats
  defp build!(error), do: ok!(error)

  defp ok!({:error, {kind, message}}), do: Mix.raise("LiveCov #{kind}: #{message}")
  defp ok!(ok), do: ok
end
