defmodule LiveCov.Report.Writer do
  @moduledoc false
  # Renders several report formats and writes them to a directory.
  #
  #     {:ok, paths} = LiveCov.Report.Writer.write(stats, [:html, :lcov, :cobertura], "cover")
  #
  # Every file is written atomically (to a temporary file in the same directory,
  # then renamed), so a reader never sees a half-written report.
  #
  # Formats are names (`:lcov`, `"lcov"`, …; see `LiveCov.Format`) or modules
  # implementing `LiveCov.Format`. All formats are validated before anything is
  # written.
  #
  # Options:
  #
  #   * `:format_opts` - per-format options, e.g. `[lcov: [paths: :relative]]`;
  #     merged over the remaining (shared) options given to `write/4`.
  #   * `:filenames` - per-format file names overriding the defaults, e.g.
  #     `[lcov: "app.lcov"]`.
  #   * `:split` - for formats that support it (`:annotated`), write one file per
  #     source (default `false`).
  #
  # The terminal format is written without ANSI colours unless
  # `format_opts: [terminal: [colors: true]]` is given.
  #
  # Returns `{:ok, [absolute_path]}` in format order, or `{:error, {kind, msg}}`
  # with kind `:unknown_format`, `:invalid_stats`, `:invalid_option`,
  # `:render_failed`, `:mkdir_failed` or `:write_failed`.

  alias LiveCov.Formats

  @writer_opts [:format_opts, :filenames, :split]

  @doc "Renders `formats` of `stats` into `dir`. See the module doc."
  @spec write(LiveCov.Stats.t(), [atom() | String.t() | module()] | atom(), Path.t(), keyword()) ::
          {:ok, [Path.t()]} | {:error, {atom(), String.t()}}
  def write(stats, formats, dir, opts \\ [])

  def write(%LiveCov.Stats{} = stats, formats, dir, opts) when is_binary(dir) and is_list(opts) do
    formats = List.wrap(formats)

    with :ok <- check_opts(opts),
         {:ok, mods} <- resolve(formats),
         {:ok, dir} <- mkdir(dir) do
      shared = Keyword.drop(opts, @writer_opts)
      per_format = Keyword.get(opts, :format_opts, [])
      names = Keyword.get(opts, :filenames, [])

      mods
      |> Enum.reduce_while({:ok, []}, fn mod, {:ok, acc} ->
        fopts =
          Keyword.merge(
            defaults(mod),
            Keyword.merge(shared, Keyword.get(per_format, mod.name(), []))
          )

        case render_and_write(
               mod,
               stats,
               dir,
               fopts,
               Keyword.get(names, mod.name()),
               opts[:split] == true
             ) do
          {:ok, paths} -> {:cont, {:ok, acc ++ paths}}
          err -> {:halt, err}
        end
      end)
    end
  end

  def write(%LiveCov.Stats{}, _formats, dir, opts) when not is_binary(dir) or not is_list(opts) do
    {:error,
     {:invalid_option,
      "dir must be a path string and opts a keyword list, got: #{inspect(dir)}, #{inspect(opts, limit: 5)}"}}
  end

  def write(other, _formats, _dir, _opts) do
    {:error,
     {:invalid_stats,
      "expected a %LiveCov.Stats{} (from LiveCov.Stats.build/2), got: #{inspect(other, limit: 5, printable_limit: 80)}"}}
  end

  defp check_opts(opts) do
    cond do
      not Keyword.keyword?(opts) ->
        {:error,
         {:invalid_option, "opts must be a keyword list, got: #{inspect(opts, limit: 5)}"}}

      not Keyword.keyword?(Keyword.get(opts, :format_opts, [])) ->
        {:error,
         {:invalid_option, ":format_opts must be a keyword list like [lcov: [paths: :relative]]"}}

      not valid_filenames?(Keyword.get(opts, :filenames, [])) ->
        {:error,
         {:invalid_option,
          ":filenames must be a keyword list of plain file names like [lcov: \"app.info\"]"}}

      true ->
        :ok
    end
  end

  defp valid_filenames?(names) do
    Keyword.keyword?(names) and
      Enum.all?(names, fn {_, n} ->
        is_binary(n) and n != "" and Path.basename(n) == n and n not in [".", ".."]
      end)
  end

  defp defaults(LiveCov.Format.Terminal), do: [colors: false]
  defp defaults(_), do: []

  defp resolve([]),
    do: {:error, {:unknown_format, "no formats given; valid formats are #{valid()}"}}

  defp resolve(formats) do
    Enum.reduce_while(formats, {:ok, []}, fn f, {:ok, acc} ->
      case Formats.fetch(f) do
        {:ok, mod} -> {:cont, {:ok, acc ++ [mod]}}
        err -> {:halt, err}
      end
    end)
    |> case do
      {:ok, mods} -> {:ok, Enum.uniq(mods)}
      err -> err
    end
  end

  defp valid,
    do: Formats.formats() |> Map.keys() |> Enum.sort() |> Enum.map_join(", ", &inspect/1)

  defp mkdir(dir) do
    dir = Path.expand(dir)

    case File.mkdir_p(dir) do
      :ok ->
        {:ok, dir}

      {:error, reason} ->
        {:error,
         {:mkdir_failed, "cannot create report directory #{dir}: #{:file.format_error(reason)}"}}
    end
  end

  defp render_and_write(mod, stats, dir, fopts, filename, split?) do
    case render(mod, stats, fopts, filename, split?) do
      {:ok, outputs} ->
        Enum.reduce_while(outputs, {:ok, []}, fn {rel, data}, {:ok, acc} ->
          path = Path.join(dir, rel)

          case atomic_write(path, data) do
            :ok -> {:cont, {:ok, acc ++ [path]}}
            err -> {:halt, err}
          end
        end)

      err ->
        err
    end
  end

  defp render(mod, stats, fopts, filename, split?) do
    if split? and function_exported?(mod, :render_files, 2) do
      {:ok, mod.render_files(stats, fopts)}
    else
      {:ok, [{filename || mod.filename(), mod.render(stats, fopts)}]}
    end
  rescue
    e ->
      {:error,
       {:render_failed,
        "format #{inspect(mod)} failed to render: #{Exception.message(e)}; check its options"}}
  end

  @doc """
  Writes `data` to `path` atomically: a temporary file in the same directory,
  then `rename`. Creates missing parent directories.
  """
  @spec atomic_write(Path.t(), iodata()) :: :ok | {:error, {atom(), String.t()}}
  def atomic_write(path, data) do
    case LiveCov.AtomicFile.write(path, data) do
      :ok -> :ok
      {:error, why} -> {:error, {:write_failed, LiveCov.AtomicFile.describe(why)}}
    end
  end
end
