defmodule LiveCov.Format do
  @moduledoc """
  Behaviour of a coverage report format: a pure function from
  `%LiveCov.Stats{}` to iodata.

  Built-in formats:

  | name | module | default file |
  |---|---|---|
  | `:terminal` | `LiveCov.Format.Terminal` | `coverage.txt` |
  | `:annotated` | `LiveCov.Format.Annotated` | `coverage.COVER.out` (or one file per source) |
  | `:html` | `LiveCov.Format.HTML` | `coverage.html` |
  | `:lcov` | `LiveCov.Format.LCOV` | `lcov.info` |
  | `:cobertura` | `LiveCov.Format.Cobertura` | `cobertura.xml` |
  | `:coveralls` | `LiveCov.Format.Coveralls` | `coveralls.json` |
  | `:json` | `LiveCov.Format.JSON` | `coverage.json` |

  A custom format is any module implementing this behaviour; pass the module
  wherever a format name is accepted.
  """

  @doc "Renders the whole report."
  @callback render(stats :: LiveCov.Stats.t(), opts :: keyword()) :: iodata()

  @doc "Short name, e.g. `:lcov`."
  @callback name() :: atom()

  @doc "File extension without the dot, e.g. `\"info\"`."
  @callback extension() :: String.t()

  @doc "Default output file name used by `LiveCov.Report.Writer`."
  @callback filename() :: String.t()

  @doc """
  Optional: render to several files, `[{relative_path, iodata}]`. When a format
  exports it and the writer is asked for `split: true`, the writer uses it.
  """
  @callback render_files(stats :: LiveCov.Stats.t(), opts :: keyword()) :: [{Path.t(), iodata()}]

  @optional_callbacks render_files: 2

  @formats %{
    terminal: LiveCov.Format.Terminal,
    annotated: LiveCov.Format.Annotated,
    html: LiveCov.Format.HTML,
    lcov: LiveCov.Format.LCOV,
    cobertura: LiveCov.Format.Cobertura,
    coveralls: LiveCov.Format.Coveralls,
    json: LiveCov.Format.JSON
  }

  @doc "The built-in formats, `name => module`."
  @spec formats() :: %{atom() => module()}
  def formats, do: @formats

  @doc """
  Resolves a format given as a name (atom or string) or a module implementing
  this behaviour.
  """
  @spec fetch(atom() | String.t() | module()) :: {:ok, module()} | {:error, {atom(), String.t()}}
  def fetch(name) when is_atom(name) and is_map_key(@formats, name),
    do: {:ok, Map.fetch!(@formats, name)}

  def fetch(name) when is_binary(name) do
    case Enum.find(@formats, fn {k, _} -> Atom.to_string(k) == String.downcase(name) end) do
      {_, mod} -> {:ok, mod}
      nil -> unknown(name)
    end
  end

  def fetch(mod) when is_atom(mod) do
    if Code.ensure_loaded?(mod) and function_exported?(mod, :render, 2) and
         function_exported?(mod, :name, 0) and function_exported?(mod, :filename, 0) do
      {:ok, mod}
    else
      unknown(mod)
    end
  end

  def fetch(other), do: unknown(other)

  defp unknown(name) do
    valid = @formats |> Map.keys() |> Enum.sort() |> Enum.map_join(", ", &inspect/1)

    {:error,
     {:unknown_format,
      "unknown report format #{inspect(name)}; valid formats are #{valid}, or a module implementing LiveCov.Format"}}
  end

  ## --- helpers shared by the formats (not part of the behaviour) ----------

  @doc false
  # "75.0" for 75.0
  def pct(f) when is_float(f), do: :erlang.float_to_binary(f, decimals: 1)
  def pct(i) when is_integer(i), do: pct(i / 1)

  @doc false
  # Escapes &, <, >, " and ' for HTML/XML text and attributes, and drops the
  # control characters XML 1.0 forbids. Returns a binary (the input itself when
  # nothing needs escaping). Work is done by C-level binary scans, so escaping
  # a whole file at once is cheap even for large reports.
  def escape_xml(bin) when is_binary(bin) do
    case :binary.match(bin, pattern(:xml_all)) do
      :nomatch ->
        bin

      _ ->
        bin =
          bin
          |> :binary.replace("&", "&amp;", [:global])
          |> :binary.replace("<", "&lt;", [:global])
          |> :binary.replace(">", "&gt;", [:global])
          |> :binary.replace("\"", "&quot;", [:global])
          |> :binary.replace("'", "&#39;", [:global])

        case :binary.match(bin, pattern(:xml_ctrl)) do
          :nomatch -> bin
          _ -> bin |> :binary.split(pattern(:xml_ctrl), [:global]) |> IO.iodata_to_binary()
        end
    end
  end

  @doc false
  # Escapes a list of lines (no newlines inside) in one pass: joins, escapes,
  # splits. Same result as mapping escape_xml/1, far fewer calls.
  def escape_xml_lines([]), do: []

  def escape_xml_lines(lines) do
    lines |> Enum.join("\n") |> escape_xml() |> :binary.split("\n", [:global])
  end

  defp pattern(name) do
    case :persistent_term.get({__MODULE__, name}, nil) do
      nil ->
        ctrl = for c <- 0..31, c not in [?\t, ?\n, ?\r], do: <<c>>
        chars = if name == :xml_all, do: ["&", "<", ">", "\"", "'" | ctrl], else: ctrl
        compiled = :binary.compile_pattern(chars)
        :persistent_term.put({__MODULE__, name}, compiled)
        compiled

      compiled ->
        compiled
    end
  end

  @doc false
  # ISO-8601 timestamp of the stats.
  def timestamp(%LiveCov.Stats{generated_at: %DateTime{} = dt}), do: DateTime.to_iso8601(dt)
  def timestamp(_), do: DateTime.utc_now() |> DateTime.truncate(:second) |> DateTime.to_iso8601()

  @doc false
  # Function name qualified with its module ("MyApp.Calc.add/2", "my_mod:f/1")
  # unless the name already carries it.
  def qualified_name(%{module: mod, name: name}) do
    m = LiveCov.Stats.Ignore.module_name(mod)
    elixir? = match?("Elixir." <> _, Atom.to_string(mod))
    sep = if elixir?, do: ".", else: ":"

    if String.starts_with?(name, m <> sep), do: name, else: m <> sep <> name
  end
end
