defmodule LiveCov.Analyse do
  @moduledoc false
  # Turns a module's sites and counts into analyses.
  #
  # `cover/4` gives exactly what the running OTP's `:cover.analyse/3` gives for the same sites
  # and counts (levels `:module`, `:function`, `:clause`, `:line`; analyses `:calls`,
  # `:coverage`). At line level OTP 25 gives one entry per site, so a line used by several
  # clauses appears several times; OTP 27+ gives one entry per line (calls summed, a line
  # covered when any of its sites ran). `lines/2` gives the per-line view the reports use.

  alias LiveCov.ModuleInfo

  @type analysis :: :calls | :coverage
  @type level :: :module | :function | :clause | :line

  @doc "Cover-compatible analysis of one module."
  @spec cover(ModuleInfo.t(), [non_neg_integer], analysis, level) :: term
  def cover(%ModuleInfo{module: m} = info, counts, analysis, :line) do
    entries =
      info
      |> keyed(counts)
      |> Enum.map(fn {{_f, _a, _c, line}, n} -> {{m, line}, line_value(analysis, n)} end)
      |> Enum.sort()

    case LiveCov.Runtime.generation() do
      :otp25 -> entries
      :otp27 -> per_line(entries, analysis)
    end
  end

  def cover(info, counts, analysis, :clause) do
    info
    |> keyed(counts)
    |> Enum.sort()
    |> Enum.chunk_by(fn {{f, a, c, _}, _} -> {f, a, c} end)
    |> Enum.map(&clause_value(info.module, analysis, &1))
  end

  def cover(info, counts, analysis, :function) do
    info
    |> cover(counts, analysis, :clause)
    |> Enum.chunk_by(fn {{m, f, a, _c}, _} -> {m, f, a} end)
    |> Enum.map(fn [{{m, f, a, _}, _} | _] = group ->
      {{m, f, a}, group |> Enum.map(&elem(&1, 1)) |> merge(analysis)}
    end)
  end

  def cover(info, counts, analysis, :module) do
    case info |> cover(counts, analysis, :function) |> Enum.map(&elem(&1, 1)) do
      # As cover: a module without any site is {0, 0} whatever the analysis.
      [] -> {info.module, {0, 0}}
      values -> {info.module, merge(values, analysis)}
    end
  end

  @doc """
  Per-line counts of a module: `%{line => count}` where a line's count is the largest count
  of the sites on it (a line executed once is counted once even when several clauses put a
  site on it). Line 0 (compiler-generated code) is left out.
  """
  @spec lines(ModuleInfo.t(), [non_neg_integer]) :: %{pos_integer => non_neg_integer}
  def lines(info, counts) do
    info
    |> keyed(counts)
    |> Enum.reduce(%{}, fn
      {{_, _, _, 0}, _}, acc -> acc
      {{_, _, _, line}, n}, acc -> Map.update(acc, line, n, &max(&1, n))
    end)
  end

  @doc """
  Per-function counts: `[{"name/arity", first_line, count}]`. A function's count is how often
  it was entered: the sum over its clauses of each clause's first site (its lowest line),
  line 0 (compiler-generated code) left out. Functions whose sites are all on line 0 are
  left out.
  """
  @spec functions(ModuleInfo.t(), [non_neg_integer]) :: [
          {String.t(), pos_integer, non_neg_integer}
        ]
  def functions(info, counts) do
    info
    |> keyed(counts)
    |> Enum.reject(fn {{_, _, _, line}, _} -> line == 0 end)
    |> Enum.sort()
    |> Enum.chunk_by(fn {{f, a, c, _}, _} -> {f, a, c} end)
    |> Enum.map(fn [{{f, a, _c, line}, n} | _] -> {{f, a}, line, n} end)
    |> Enum.group_by(fn {fa, _, _} -> fa end)
    |> Enum.map(fn {{f, a}, clauses} ->
      first = clauses |> Enum.map(&elem(&1, 1)) |> Enum.min()
      {"#{f}/#{a}", first, clauses |> Enum.map(&elem(&1, 2)) |> Enum.sum()}
    end)
    |> Enum.sort_by(fn {name, line, _} -> {line, name} end)
  end

  defp keyed(%ModuleInfo{} = info, counts), do: Enum.zip(ModuleInfo.site_list(info), counts)

  # Sorted entries, one per line: calls summed, covered when any site on the line is.
  defp per_line(entries, analysis) do
    entries
    |> Enum.chunk_by(fn {key, _} -> key end)
    |> Enum.map(fn [{key, _} | _] = same ->
      {key, same |> Enum.map(&elem(&1, 1)) |> merge_line(analysis)}
    end)
  end

  defp merge_line(values, :calls), do: Enum.sum(values)
  defp merge_line(values, :coverage), do: if({1, 0} in values, do: {1, 0}, else: {0, 1})

  defp line_value(:calls, n), do: n
  defp line_value(:coverage, 0), do: {0, 1}
  defp line_value(:coverage, _), do: {1, 0}

  # Calls of a clause = count of its first (lowest-line) site, as cover does.
  defp clause_value(m, :calls, [{{f, a, c, _}, n} | _]), do: {{m, f, a, c}, n}

  defp clause_value(m, :coverage, [{{f, a, c, _}, _} | _] = sites) do
    not_cov = Enum.count(sites, fn {_, n} -> n == 0 end)
    {{m, f, a, c}, {length(sites) - not_cov, not_cov}}
  end

  defp merge(values, :calls), do: Enum.sum(values)

  defp merge(values, :coverage) do
    Enum.reduce(values, {0, 0}, fn {c, n}, {ca, na} -> {ca + c, na + n} end)
  end
end
