defmodule LiveCov.Format.Text do
  @moduledoc false
  # Text pieces the report formats share: percentages, XML/HTML escaping, timestamps and
  # module-qualified function names.

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
