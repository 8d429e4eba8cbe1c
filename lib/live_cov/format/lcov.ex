defmodule LiveCov.Format.LCOV do
  @moduledoc false
  # LCOV tracefile (`lcov.info`), as read by `genhtml`, Codecov, Coveralls and
  # most CI coverage tools. One record per source file:
  #
  #     TN:
  #     SF:/app/lib/report_app/calc.ex
  #     FN:2,ReportApp.Calc.add/2
  #     FNDA:5,ReportApp.Calc.add/2
  #     FNF:1
  #     FNH:1
  #     DA:3,5
  #     LF:1
  #     LH:1
  #     end_of_record
  #
  # Functions come from the input's `functions`; names are qualified with their
  # module (`Mod.fun/arity`, Erlang `mod:fun/arity`). Entries of the same
  # function in one file are merged (first line, summed count: one entry per
  # clause sums to the calls of the function). A function's `FN:` line is its first
  # executable line (the first `DA:` line at or after the line it starts on): genhtml 2.x
  # refuses a function on a line without line data.
  #
  # Options:
  #
  #   * `:paths` - `:absolute` (default; `SF:` is the path the source was read
  #     from, so `genhtml` finds it) or `:relative` (the display filename).
  #   * `:test_name` - the `TN:` value (default empty); characters other than
  #     letters, digits and `_` are replaced by `_`.

  @behaviour LiveCov.Format

  @impl true
  def name, do: :lcov
  @impl true
  def extension, do: "info"
  @impl true
  def filename, do: "lcov.info"

  @impl true
  def render(%LiveCov.Stats{} = stats, opts \\ []) do
    tn =
      opts |> Keyword.get(:test_name, "") |> to_string() |> String.replace(~r/[^A-Za-z0-9_]/, "_")

    relative? = Keyword.get(opts, :paths, :absolute) == :relative

    Enum.map(stats.files, fn f ->
      fns = f.functions |> merged_functions() |> anchored(executable_lines(f.source))

      [
        "TN:",
        tn,
        "\nSF:",
        line_safe(if(relative?, do: f.filename, else: f.path)),
        ?\n,
        Enum.map(fns, fn {name, line, _} -> ["FN:", Integer.to_string(line), ?,, name, ?\n] end),
        Enum.map(fns, fn {name, _, count} ->
          ["FNDA:", Integer.to_string(count), ?,, name, ?\n]
        end),
        "FNF:",
        Integer.to_string(length(fns)),
        "\nFNH:",
        Integer.to_string(Enum.count(fns, fn {_, _, c} -> c > 0 end)),
        ?\n,
        da_lines(f.source),
        "LF:",
        Integer.to_string(f.sloc),
        "\nLH:",
        Integer.to_string(f.hits),
        "\nend_of_record\n"
      ]
    end)
  end

  defp da_lines(lines) do
    {out, _} =
      Enum.map_reduce(lines, 1, fn
        %{coverage: nil}, n -> {[], n + 1}
        %{coverage: c}, n -> {["DA:", Integer.to_string(n), ?,, Integer.to_string(c), ?\n], n + 1}
      end)

    out
  end

  defp executable_lines(lines) do
    for {%{coverage: c}, n} <- Enum.with_index(lines, 1), c != nil, do: n
  end

  defp anchored(fns, executable) do
    fns
    |> Enum.map(fn {name, line, count} ->
      {name, Enum.find(executable, line, &(&1 >= line)), count}
    end)
    |> Enum.sort_by(fn {name, line, _} -> {line, name} end)
  end

  defp merged_functions(functions) do
    functions
    |> Enum.map(fn f -> {fn_name(f), f.line, f.count} end)
    |> Enum.group_by(&elem(&1, 0))
    |> Enum.map(fn {name, entries} ->
      {name, entries |> Enum.map(&elem(&1, 1)) |> Enum.min(),
       entries |> Enum.map(&elem(&1, 2)) |> Enum.sum()}
    end)
    |> Enum.sort_by(fn {name, line, _} -> {line, name} end)
  end

  # Commas separate fields and newlines records: neither may appear in a name.
  defp fn_name(f),
    do: f |> LiveCov.Format.Text.qualified_name() |> String.replace([",", "\r", "\n"], "_")

  defp line_safe(path), do: String.replace(path, ["\r", "\n"], "_")
end
