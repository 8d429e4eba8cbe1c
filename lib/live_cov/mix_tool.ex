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
    * `:optimize`, `:cache`, `:cache_dir` - how modules are instrumented, as for
      `LiveCov.start/2` (compile profile; instrumentation cache, on by default: the next
      `mix test --cover` of the same build loads instead of compiling).
    * `:export` (or `mix test --cover --export-coverage NAME`) - instead of reporting, writes
      the raw data to `OUTPUT/NAME.livecov.json` (line data and the sources: renders
      anywhere), `OUTPUT/NAME.livecov` (a LiveCov snapshot: exact builds, mergeable) and
      `OUTPUT/NAME.coverdata` (cover's format of the running OTP, read by Elixir's
      `mix test.coverage` and excoveralls' `--import-cover`); render later with
      `mix live_cov.report --input OUTPUT/NAME.livecov.json`, or merge partitions with
      `mix live_cov.report -i OUTPUT/a.livecov -i OUTPUT/b.livecov`.

  ## Export format

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
  @export_format "live_cov_export"
  @export_version 1
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

  @typedoc "Exported coverage data, as `read_export/1` returns it."
  @type export :: %{
          modules: [Stats.module_data()],
          sources: %{String.t() => String.t()},
          root: String.t() | nil,
          node: String.t() | nil,
          generated_at: DateTime.t() | nil
        }

  ## --- mix test --cover ----------------------------------------------------

  @doc """
  Instruments the beams of `compile_path` and returns the function `mix test` runs after
  the suite (see the module documentation for `opts`).
  """
  @spec start(Path.t(), keyword) :: (() -> :ok)
  def start(compile_path, opts) do
    Mix.shell().info("Instrumenting modules with LiveCov ...")

    case LiveCov.Session.start(
           beams(compile_path),
           Keyword.take(opts, [:optimize, :cache, :cache_dir])
         ) do
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
    {:ok, path} = ok!(write_export(base <> @export_ext))

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

  ## --- export ----------------------------------------------------------------

  @doc """
  The export of this node's coverage data (see the module documentation): every
  instrumented module's line data plus the text of its source file when readable.
  """
  @spec export_data() :: map
  def export_data do
    modules = LiveCov.Report.module_data()

    sources =
      for %{source: s} <- modules, is_binary(s) and s != "", uniq: true, into: %{} do
        {s, read_source(s)}
      end
      |> Map.reject(fn {_, text} -> is_nil(text) end)

    %{
      format: @export_format,
      version: @export_version,
      note:
        "module data and sources of LiveCov (the .livecov snapshot beside it has the counters per build)",
      generated_at: DateTime.utc_now() |> DateTime.truncate(:second) |> DateTime.to_iso8601(),
      node: Atom.to_string(node()),
      root: File.cwd!(),
      modules: Enum.map(modules, &encode_module/1),
      sources: sources
    }
  end

  defp read_source(path) do
    case File.read(path) do
      {:ok, text} -> if String.valid?(text), do: text, else: nil
      {:error, _} -> nil
    end
  end

  defp encode_module(m) do
    %{
      module: Atom.to_string(m.module),
      source: m.source,
      lines: m.lines,
      functions: Enum.map(m[:functions] || [], &Tuple.to_list/1)
    }
  end

  @doc "Writes `export_data/0` as JSON to `path` (atomically). Returns `{:ok, absolute_path}`."
  @spec write_export(Path.t()) :: {:ok, Path.t()} | {:error, {atom, String.t()}}
  def write_export(path) do
    path = Path.expand(path)

    with {:ok, json} <- LiveCov.JSON.encode(export_data(), pretty: true),
         :ok <- Writer.atomic_write(path, json) do
      {:ok, path}
    end
  end

  @doc """
  Reads an export written by `write_export/1` (or `mix test --cover --export-coverage`).
  Returns `{:ok, export}` or `{:error, {kind, message}}` with kind `:read_failed` or
  `:invalid_export`.
  """
  @spec read_export(Path.t()) :: {:ok, export} | {:error, {atom, String.t()}}
  def read_export(path) do
    with {:ok, text} <- read_file(path),
         {:ok, json} <- decode(text, path) do
      parse_export(json, path)
    end
  end

  defp read_file(path) do
    case File.read(path) do
      {:ok, text} ->
        {:ok, text}

      {:error, reason} ->
        {:error,
         {:read_failed,
          "cannot read LiveCov export #{path}: #{:file.format_error(reason)}; " <>
            "give the file written by `mix test --cover --export-coverage NAME`"}}
    end
  end

  defp decode(text, path) do
    case LiveCov.JSON.decode(text) do
      {:ok, json} -> {:ok, json}
      {:error, {_, msg}} -> invalid(path, "it is not JSON (#{msg})")
    end
  end

  defp parse_export(%{"format" => @export_format, "version" => @export_version} = json, path) do
    with {:ok, modules} <- parse_modules(Map.get(json, "modules"), path),
         {:ok, sources} <- parse_sources(Map.get(json, "sources", %{}), path) do
      {:ok,
       %{
         modules: modules,
         sources: sources,
         root: string_or_nil(json["root"]),
         node: string_or_nil(json["node"]),
         generated_at: parse_time(json["generated_at"])
       }}
    end
  end

  defp parse_export(%{"format" => @export_format, "version" => v}, path),
    do:
      invalid(
        path,
        "its version #{inspect(v)} is not supported (this LiveCov reads version #{@export_version})"
      )

  defp parse_export(_json, path),
    do: invalid(path, "it is not a LiveCov export (no \"format\": \"#{@export_format}\")")

  defp parse_modules(list, path) when is_list(list) do
    list
    |> Enum.with_index()
    |> LiveCov.Util.map_ok(fn {entry, i} ->
      with :error <- parse_module(entry),
           do: invalid(path, "modules[#{i}] is malformed: #{inspect(entry, limit: 5)}")
    end)
  end

  defp parse_modules(_, path), do: invalid(path, "\"modules\" must be a list")

  defp parse_module(%{"module" => mod, "lines" => lines} = entry)
       when is_binary(mod) and mod != "" and is_map(lines) do
    with {:ok, lines} <- parse_lines(lines),
         {:ok, functions} <- parse_functions(Map.get(entry, "functions", [])),
         source when is_binary(source) or is_nil(source) <- Map.get(entry, "source") do
      {:ok, %{module: String.to_atom(mod), source: source, lines: lines, functions: functions}}
    else
      _ -> :error
    end
  end

  defp parse_module(_), do: :error

  defp parse_lines(lines) do
    Enum.reduce_while(lines, {:ok, %{}}, fn {k, v}, {:ok, acc} ->
      case Integer.parse(k) do
        {line, ""} when line >= 0 and is_integer(v) and v >= 0 ->
          {:cont, {:ok, Map.put(acc, line, v)}}

        _ ->
          {:halt, :error}
      end
    end)
  end

  defp parse_functions(list) when is_list(list) do
    if Enum.all?(
         list,
         &match?([n, l, c] when is_binary(n) and is_integer(l) and is_integer(c), &1)
       ),
       do: {:ok, Enum.map(list, &List.to_tuple/1)},
       else: :error
  end

  defp parse_functions(_), do: :error

  defp parse_sources(map, path) when is_map(map) do
    if Enum.all?(map, fn {k, v} -> is_binary(v) and k != "" end),
      do: {:ok, map},
      else: invalid(path, "\"sources\" must map source paths to their text")
  end

  defp parse_sources(_, path),
    do: invalid(path, "\"sources\" must map source paths to their text")

  defp string_or_nil(s) when is_binary(s), do: s
  defp string_or_nil(_), do: nil

  defp parse_time(s) when is_binary(s) do
    case DateTime.from_iso8601(s) do
      {:ok, dt, _} -> dt
      _ -> nil
    end
  end

  defp parse_time(_), do: nil

  defp invalid(path, why),
    do:
      {:error,
       {:invalid_export,
        "#{path} cannot be rendered: #{why}; re-export it with this LiveCov version"}}

  @doc """
  Builds `%LiveCov.Stats{}` from an export. Sources embedded in the export are used; other
  sources are read from disk (mapped with `:compile_root`/`:runtime_root`/`:path_map`).
  Filenames are shown relative to `:root` (default: `:runtime_root`, else the export's project
  directory).
  Other options as `LiveCov.Stats.build/2`.
  """
  @spec export_stats(export, keyword) :: Stats.t() | {:error, {atom, String.t()}}
  def export_stats(%{modules: modules, sources: sources} = export, opts \\ []) do
    with {:ok, user_maps} <- user_maps(opts),
         {:ok, root} <- export_root(opts[:root] || opts[:runtime_root] || export[:root]) do
      build_export_stats(modules, sources, export[:generated_at], root, user_maps, opts)
    end
  end

  defp build_export_stats(modules, sources, generated_at, root, user_maps, opts) do
    tmp = Path.join(System.tmp_dir!(), "live_cov_export_#{System.unique_integer([:positive])}")

    try do
      embedded =
        sources
        |> Enum.sort()
        |> Enum.with_index()
        |> Map.new(fn {{orig, text}, i} ->
          file = Path.join(tmp, "#{i}#{Path.extname(orig)}")
          File.mkdir_p!(tmp)
          File.write!(file, text)
          {file, orig}
        end)

      stats_opts =
        opts
        |> Keyword.take([:ignore_modules, :skip_files, :empty_coverage])
        |> Keyword.merge(
          root: root,
          path_map: Enum.map(embedded, fn {file, orig} -> {orig, file} end) ++ user_maps
        )
        |> maybe_put(:generated_at, generated_at)

      with %Stats{} = stats <- Stats.build(modules, stats_opts) do
        files =
          stats.files
          |> Enum.map(fn f ->
            case Map.fetch(embedded, f.path) do
              {:ok, orig} ->
                real = map_path(orig, user_maps)
                %{f | path: real, filename: display_name(real, root)}

              :error ->
                f
            end
          end)
          |> Enum.sort_by(& &1.filename)

        %{stats | files: files}
      end
    rescue
      e in File.Error ->
        {:error, {:write_failed, "cannot unpack the export's sources: #{Exception.message(e)}"}}
    after
      File.rm_rf(tmp)
    end
  end

  defp user_maps(opts) do
    pairs =
      case {opts[:compile_root], opts[:runtime_root]} do
        {nil, nil} -> List.wrap(opts[:path_map])
        {c, r} -> [{c, r} | List.wrap(opts[:path_map])]
      end

    if Enum.all?(pairs, &match?({a, b} when is_binary(a) and is_binary(b), &1)) do
      {:ok, Enum.map(pairs, fn {a, b} -> {trim_slash(a), trim_slash(b)} end)}
    else
      {:error,
       {:invalid_option,
        ":compile_root and :runtime_root must be given together, as strings, and :path_map " <>
          "must be a list of {compile_prefix, runtime_prefix} string pairs"}}
    end
  end

  defp export_root(nil), do: export_root(File.cwd!())
  defp export_root(root) when is_binary(root), do: {:ok, root |> Path.expand() |> trim_slash()}

  defp export_root(other),
    do:
      {:error, {:invalid_option, ":root must be a directory path string, got: #{inspect(other)}"}}

  defp map_path(path, maps) do
    Enum.find_value(maps, path, fn {from, to} ->
      cond do
        path == from -> to
        String.starts_with?(path, from <> "/") -> to <> String.replace_prefix(path, from, "")
        true -> nil
      end
    end)
  end

  defp display_name(path, "/"), do: path

  defp display_name(path, root) do
    if String.starts_with?(path, root <> "/"), do: Path.relative_to(path, root), else: path
  end

  defp maybe_put(opts, _key, nil), do: opts
  defp maybe_put(opts, key, value), do: Keyword.put(opts, key, value)

  defp trim_slash("/"), do: "/"
  defp trim_slash(p), do: String.trim_trailing(p, "/")
end
