defmodule LiveCov.ExportFile do
  @moduledoc false
  # The `.livecov.json` export (`mix test --cover --export-coverage NAME`): every
  # instrumented module's line data plus the text of its source files, written, read back
  # and turned into a report on any machine (`mix live_cov.report --input`). The format is
  # described in `LiveCov.MixTool`.

  alias LiveCov.{PathMap, Stats}
  alias LiveCov.Report.Writer

  @export_format "live_cov_export"
  @export_version 1

  @typedoc "Exported coverage data, as `read/1` returns it."
  @type export :: %{
          modules: [Stats.module_data()],
          sources: %{String.t() => String.t()},
          root: String.t() | nil,
          node: String.t() | nil,
          generated_at: DateTime.t() | nil
        }

  @doc """
  The export of this node's coverage data (see the module documentation): every
  instrumented module's line data plus the text of its source file when readable.
  """
  @spec data() :: map
  def data do
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

  @doc "Writes `data/0` as JSON to `path` (atomically). Returns `{:ok, absolute_path}`."
  @spec write(Path.t()) :: {:ok, Path.t()} | {:error, {atom, String.t()}}
  def write(path) do
    path = Path.expand(path)

    with {:ok, json} <- LiveCov.JSON.encode(data(), pretty: true),
         :ok <- Writer.atomic_write(path, json) do
      {:ok, path}
    end
  end

  @doc """
  Reads an export written by `write_export/1` (or `mix test --cover --export-coverage`).
  Returns `{:ok, export}` or `{:error, {kind, message}}` with kind `:cant_read` or
  `:invalid_export`.
  """
  @spec read(Path.t()) :: {:ok, export} | {:error, {atom, String.t()}}
  def read(path) do
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
         {:cant_read,
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
  @spec stats(export, keyword) :: Stats.t() | {:error, {atom, String.t()}}
  def stats(%{modules: modules, sources: sources} = export, opts \\ []) do
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
                real = PathMap.map(orig, user_maps)
                %{f | path: real, filename: PathMap.display_name(real, root)}

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

  defp user_maps(opts), do: PathMap.from_opts(opts)

  defp export_root(nil), do: export_root(File.cwd!())

  defp export_root(root) when is_binary(root),
    do: {:ok, root |> Path.expand() |> PathMap.trim_slash()}

  defp export_root(other),
    do:
      {:error, {:invalid_option, ":root must be a directory path string, got: #{inspect(other)}"}}

  defp maybe_put(opts, _key, nil), do: opts
  defp maybe_put(opts, key, value), do: Keyword.put(opts, key, value)
end
