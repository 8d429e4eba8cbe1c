defmodule LiveCov.Stats do
  @moduledoc """
  Per-file line coverage statistics, the input of every `LiveCov.Format`.

  `build/2` turns per-module line data into per-source-file statistics in the
  shape users of excoveralls / ex_integration_coveralls know:

      %LiveCov.Stats{
        coverage: 83.3, sloc: 12, hits: 10, misses: 2,
        files: [%LiveCov.Stats.Source{filename: "lib/app/calc.ex", coverage: 75.0,
                                      sloc: 8, hits: 6, misses: 2,
                                      source: [%LiveCov.Stats.Line{coverage: nil, source: "defmodule ..."}, ...]}],
        missing_sources: []
      }

  ## Input

  A list of maps, one per module:

      %{module: MyApp.Calc,
        source: "/build/app/lib/my_app/calc.ex",   # compile-time absolute path
        lines: %{3 => 5, 4 => 0},                   # line => count; absent = not executable
        functions: [{"add/2", 3, 5}]}               # {name, first line, count} (optional)

  `lines` already holds one count per line (the maximum over the line's bump
  sites). Line `0` (compiler-generated code) is ignored. Several modules may come
  from the same file; their lines are merged, taking the maximum count when two
  modules report the same line.

  ## Options

    * `:compile_root` / `:runtime_root` - a source path starting with
      `compile_root` is read from `runtime_root` instead (the same idea as
      ex_integration_coveralls' `get_total_coverage(compile_time_path, runtime_path)`).
    * `:path_map` - more `{compile_prefix, runtime_prefix}` pairs, tried in order
      after `compile_root`.
    * `:root` - display filenames relative to this directory (files outside it
      keep their absolute path). Defaults to `:runtime_root`, else the current
      working directory.
    * `:ignore_modules` - module atoms or Regexes (see `LiveCov.Stats.Ignore`).
    * `:skip_files` - Regexes on the display filename or absolute path.
    * `:empty_coverage` - the percentage reported for a file (or total) with no
      relevant lines; default `100.0` (nothing to miss; excoveralls'
      `default_coverage_value` is also 100).
    * `:generated_at` - `DateTime` stamped on the stats (default: now, UTC).

  Ignore comments (`coveralls-ignore-start`, `-stop`, `-next-line`) in the
  source turn lines into `nil` (not relevant). See `LiveCov.Stats.Ignore`.

  ## Percentages

  `coverage = hits / (hits + misses) * 100`, rounded half-up to one decimal,
  except that a file or total with at least one miss is never shown as `100.0`
  (it is capped at `99.9`). With no relevant lines the value is `:empty_coverage`.

  ## Missing sources

  When a source file cannot be read, the file is still reported: each line up
  to the highest line with data gets `""` as text, `missing_source?` is `true`,
  and the mapped absolute path is listed in `missing_sources`.
  """

  alias LiveCov.Stats.{Ignore, Line, Source}

  defstruct coverage: 0.0,
            sloc: 0,
            hits: 0,
            misses: 0,
            files: [],
            missing_sources: [],
            skipped_files: [],
            ignored_modules: [],
            skipped_modules: [],
            root: nil,
            generated_at: nil,
            exact: true

  @type t :: %__MODULE__{
          coverage: float(),
          sloc: non_neg_integer(),
          hits: non_neg_integer(),
          misses: non_neg_integer(),
          files: [Source.t()],
          missing_sources: [String.t()],
          skipped_files: [String.t()],
          ignored_modules: [atom()],
          skipped_modules: [{atom(), String.t()}],
          root: String.t() | nil,
          generated_at: DateTime.t(),
          exact: boolean()
        }

  @type module_data :: %{
          required(:module) => atom(),
          required(:source) => String.t() | charlist() | nil,
          required(:lines) => %{optional(non_neg_integer()) => non_neg_integer()},
          optional(:functions) => [{String.t(), non_neg_integer(), non_neg_integer()}]
        }

  @known_opts [
    :compile_root,
    :runtime_root,
    :path_map,
    :root,
    :ignore_modules,
    :skip_files,
    :empty_coverage,
    :generated_at
  ]

  @doc "The options `build/2` takes."
  @spec known_opts() :: [atom]
  def known_opts, do: @known_opts

  @doc """
  Builds the statistics. Returns `%LiveCov.Stats{}`, or
  `{:error, {kind, message}}` when the input or an option is malformed (the
  message names the offending entry and how to fix it).
  """
  @spec build([module_data()], keyword()) :: t() | {:error, {atom(), String.t()}}
  def build(module_data, opts \\ [])

  def build(module_data, opts) when is_list(module_data) and is_list(opts) do
    with {:ok, cfg} <- config(opts),
         {:ok, entries} <- validate_entries(module_data) do
      do_build(entries, cfg)
    end
  end

  def build(module_data, opts) when is_list(opts) do
    {:error,
     {:invalid_module_data,
      "expected a list of module line data maps, got: #{short(module_data)}"}}
  end

  def build(_module_data, opts) do
    {:error, {:invalid_option, "options must be a keyword list, got: #{short(opts)}"}}
  end

  @doc "The total coverage percentage of `stats`."
  @spec total(t()) :: float()
  def total(%__MODULE__{coverage: c}), do: c

  @doc """
  `hits / (hits + misses) * 100` rounded half-up to one decimal, never `100.0`
  while `misses > 0`; `empty` when there are no relevant lines.

      iex> LiveCov.Stats.percent(2, 1)
      66.7
      iex> LiveCov.Stats.percent(9999, 1)
      99.9
      iex> LiveCov.Stats.percent(0, 0)
      100.0
  """
  @spec percent(non_neg_integer(), non_neg_integer(), float()) :: float()
  def percent(hits, misses, empty \\ 100.0)
  def percent(0, 0, empty), do: empty

  def percent(hits, misses, _empty) do
    total = hits + misses
    tenths = div(hits * 2000 + total, total * 2)
    tenths = if tenths == 1000 and misses > 0, do: 999, else: tenths
    tenths / 10
  end

  ## --- options -----------------------------------------------------------

  defp config(opts) do
    with :ok <- check_keyword(opts),
         {:ok, maps} <- path_maps(opts),
         {:ok, mods} <- Ignore.normalize_module_patterns(Keyword.get(opts, :ignore_modules)),
         {:ok, files} <- Ignore.normalize_file_patterns(Keyword.get(opts, :skip_files)),
         {:ok, root} <- root(opts),
         {:ok, empty} <- empty_coverage(opts),
         {:ok, at} <- generated_at(opts) do
      {:ok,
       %{
         path_maps: maps,
         ignore_modules: mods,
         skip_files: files,
         root: root,
         empty: empty,
         generated_at: at
       }}
    end
  end

  defp check_keyword(opts) do
    cond do
      not Keyword.keyword?(opts) ->
        {:error, {:invalid_option, "options must be a keyword list, got: #{short(opts)}"}}

      (unknown = Keyword.keys(opts) -- @known_opts) != [] ->
        {:error,
         {:invalid_option,
          "unknown option(s) #{inspect(unknown)}; valid options are #{inspect(@known_opts)}"}}

      true ->
        :ok
    end
  end

  defp path_maps(opts), do: LiveCov.PathMap.from_opts(opts)

  defp root(opts) do
    case Keyword.get(opts, :root, Keyword.get(opts, :runtime_root)) do
      nil ->
        case File.cwd() do
          {:ok, cwd} -> {:ok, cwd}
          _ -> {:ok, nil}
        end

      r when is_binary(r) ->
        {:ok, r |> Path.expand() |> trim_slash()}

      other ->
        {:error, {:invalid_option, ":root must be a directory path string, got: #{short(other)}"}}
    end
  end

  defp empty_coverage(opts) do
    case Keyword.get(opts, :empty_coverage, 100.0) do
      n when is_number(n) and n >= 0 and n <= 100 ->
        {:ok, n / 1}

      other ->
        {:error,
         {:invalid_option, ":empty_coverage must be a number 0..100, got: #{short(other)}"}}
    end
  end

  defp generated_at(opts) do
    case Keyword.get(opts, :generated_at) do
      nil ->
        {:ok, DateTime.utc_now() |> DateTime.truncate(:second)}

      %DateTime{} = dt ->
        {:ok, dt}

      other ->
        {:error, {:invalid_option, ":generated_at must be a DateTime, got: #{short(other)}"}}
    end
  end

  defp trim_slash(p), do: LiveCov.PathMap.trim_slash(p)

  ## --- input validation -----------------------------------------------

  defp validate_entries(list) do
    list
    |> Enum.with_index()
    |> LiveCov.Util.map_ok(fn {entry, i} ->
      with {:error, why} <- validate_entry(entry),
           do: {:error, {:invalid_module_data, "entry #{i}: #{why}"}}
    end)
  end

  defp validate_entry(%{module: mod, lines: lines} = e) when is_atom(mod) and is_map(lines) do
    source = Map.get(e, :source)
    functions = Map.get(e, :functions) || []

    cond do
      not (is_nil(source) or is_binary(source) or is_list(source)) ->
        {:error, "#{inspect(mod)}: :source must be a path string, got: #{short(source)}"}

      is_list(source) and not charlist?(source) ->
        {:error, "#{inspect(mod)}: :source must be a path string, got: #{short(source)}"}

      bad =
          Enum.find(lines, fn {l, c} ->
            not (is_integer(l) and l >= 0 and is_integer(c) and c >= 0)
          end) ->
        {:error,
         "#{inspect(mod)}: :lines must map non-negative integer line numbers to non-negative integer counts, found #{short(bad)}"}

      not is_list(functions) ->
        {:error,
         "#{inspect(mod)}: :functions must be a list of {name, line, count}, got: #{short(functions)}"}

      bad = Enum.find(functions, &(not valid_function?(&1))) ->
        {:error,
         "#{inspect(mod)}: :functions entries must be {name_string, line, count} with non-negative integers, found #{short(bad)}"}

      true ->
        source = if is_list(source), do: List.to_string(source), else: source

        {:ok,
         %{
           module: mod,
           source: source,
           lines: lines,
           functions: functions,
           exact: Map.get(e, :exact, true) != false
         }}
    end
  end

  defp validate_entry(other) do
    {:error,
     "expected %{module: atom, source: path, lines: %{line => count}, functions: [...]}, got: #{short(other)}"}
  end

  defp charlist?(l), do: match?({:ok, _}, safe_to_string(l))

  defp safe_to_string(l) do
    {:ok, List.to_string(l)}
  rescue
    _ -> :error
  end

  defp valid_function?({name, line, count}) do
    (is_binary(name) or is_atom(name)) and is_integer(line) and line >= 0 and is_integer(count) and
      count >= 0
  end

  defp valid_function?(_), do: false

  defp short(term), do: inspect(term, limit: 5, printable_limit: 80)

  ## --- building --------------------------------------------------------

  defp do_build(entries, cfg) do
    {ignored, entries} =
      Enum.split_with(entries, &Ignore.module_ignored?(&1.module, cfg.ignore_modules))

    {no_source, entries} = Enum.split_with(entries, &(&1.source in [nil, ""]))

    groups = Enum.group_by(entries, &resolve_path(&1.source, cfg))

    {files, skipped} =
      Enum.reduce(groups, {[], []}, fn {path, mods}, {files, skipped} ->
        name = display_name(path, cfg.root)

        if Ignore.file_skipped?([name, path], cfg.skip_files) do
          {files, [name | skipped]}
        else
          {[build_source(path, name, mods, cfg) | files], skipped}
        end
      end)

    files = Enum.sort_by(files, & &1.filename)
    hits = Enum.reduce(files, 0, &(&1.hits + &2))
    misses = Enum.reduce(files, 0, &(&1.misses + &2))

    %__MODULE__{
      coverage: percent(hits, misses, cfg.empty),
      sloc: hits + misses,
      hits: hits,
      misses: misses,
      files: files,
      missing_sources: for(f <- files, f.missing_source?, do: f.path),
      skipped_files: Enum.sort(skipped),
      ignored_modules: ignored |> Enum.map(& &1.module) |> Enum.uniq() |> Enum.sort(),
      skipped_modules:
        no_source
        |> Enum.map(&{&1.module, "no source path recorded for the module"})
        |> Enum.uniq()
        |> Enum.sort(),
      root: cfg.root,
      generated_at: cfg.generated_at,
      # In adaptive mode (`mode: :coverage`) counts of removed bump sites are frozen: the
      # report still tells hit from missed exactly, but counts are lower bounds.
      exact: Enum.all?(entries, & &1.exact)
    }
  end

  defp resolve_path(source, cfg),
    do: source |> LiveCov.PathMap.map(cfg.path_maps) |> Path.expand(cfg.root || "/")

  defp display_name(path, root), do: LiveCov.PathMap.display_name(path, root)

  defp build_source(path, name, mods, cfg) do
    counts =
      Enum.reduce(mods, %{}, fn %{lines: lines}, acc ->
        Enum.reduce(lines, acc, fn
          {0, _}, acc -> acc
          {l, c}, acc -> Map.update(acc, l, c, &max(&1, c))
        end)
      end)

    max_line = counts |> Map.keys() |> Enum.max(fn -> 0 end)

    {texts, missing?, digest, nl?, markers?} =
      case File.read(path) do
        {:ok, raw} ->
          {texts, nl?} = split_lines(scrub_utf8(raw))
          texts = pad_lines(texts, max_line)
          markers? = :binary.match(raw, "coveralls-ignore-") != :nomatch
          {texts, false, md5_hex(raw), nl?, markers?}

        {:error, _} ->
          texts = List.duplicate("", max_line)
          text = Enum.join(texts, "\n") <> if(max_line > 0, do: "\n", else: "")
          {texts, true, md5_hex(text), true, false}
      end

    ignored = if markers?, do: Ignore.ignored_lines(texts), else: MapSet.new()

    {lines, hits, misses} = make_lines(texts, counts, ignored)

    modules = mods |> Enum.map(& &1.module) |> Enum.uniq() |> Enum.sort()

    %Source{
      filename: name,
      coverage: percent(hits, misses, cfg.empty),
      sloc: hits + misses,
      hits: hits,
      misses: misses,
      source: lines,
      path: path,
      compile_path: mods |> Enum.map(& &1.source) |> Enum.uniq() |> Enum.sort() |> hd(),
      modules: modules,
      functions: functions(mods, ignored),
      missing_source?: missing?,
      digest: digest,
      trailing_newline?: nl?
    }
  end

  defp make_lines(texts, counts, ignored) do
    {lines, _n, hits, misses} =
      Enum.reduce(texts, {[], 1, 0, 0}, fn text, {acc, n, h, m} ->
        count = if MapSet.member?(ignored, n), do: nil, else: Map.get(counts, n)

        case count do
          nil -> {[%Line{coverage: nil, source: text} | acc], n + 1, h, m}
          0 -> {[%Line{coverage: 0, source: text} | acc], n + 1, h, m + 1}
          c -> {[%Line{coverage: c, source: text} | acc], n + 1, h + 1, m}
        end
      end)

    {Enum.reverse(lines), hits, misses}
  end

  # One entry per {module, name}: entries on the same line are duplicates (max
  # count); entries on different lines are clauses (first line, summed counts).
  defp functions(mods, ignored) do
    mods
    |> Enum.flat_map(fn %{module: mod, functions: fs} ->
      for {name, line, count} <- fs, line > 0, not MapSet.member?(ignored, line) do
        {mod, to_string(name), line, count}
      end
    end)
    |> Enum.group_by(fn {mod, name, _, _} -> {mod, name} end, fn {_, _, l, c} -> {l, c} end)
    |> Enum.map(fn {{mod, name}, entries} ->
      per_line =
        Enum.reduce(entries, %{}, fn {l, c}, acc -> Map.update(acc, l, c, &max(&1, c)) end)

      %{
        module: mod,
        name: name,
        line: per_line |> Map.keys() |> Enum.min(),
        count: per_line |> Map.values() |> Enum.sum()
      }
    end)
    |> Enum.sort_by(&{&1.line, &1.module, &1.name})
  end

  defp split_lines(""), do: {[], false}

  defp split_lines(raw) do
    parts = :binary.split(raw, "\n", [:global])

    case List.last(parts) do
      "" -> {Enum.drop(parts, -1), true}
      _ -> {parts, false}
    end
  end

  defp pad_lines(texts, max_line) do
    n = length(texts)
    if max_line > n, do: texts ++ List.duplicate("", max_line - n), else: texts
  end

  defp md5_hex(bin), do: :erlang.md5(bin) |> Base.encode16(case: :lower)

  @doc false
  # Replaces invalid UTF-8 bytes with U+FFFD so every format can emit the text.
  def scrub_utf8(bin) do
    if is_binary(:unicode.characters_to_binary(bin)) do
      bin
    else
      bin
      |> String.chunk(:valid)
      |> Enum.map(fn chunk ->
        if String.valid?(chunk), do: chunk, else: String.duplicate("\uFFFD", byte_size(chunk))
      end)
      |> IO.iodata_to_binary()
    end
  end
end
