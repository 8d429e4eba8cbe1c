defmodule LiveCov.Format.Annotated do
  @moduledoc false
  # Annotated source listings in the layout of `:cover.analyse_to_file/1`
  # (`*.COVER.out`): each executable line is prefixed by its count, lines that
  # were never run by `     0..|`, other lines by `        |`.
  #
  #     File generated from /app/lib/report_app/calc.ex by LiveCov 2024-01-01T00:00:00Z
  #
  #     ****************************************************************************
  #
  #             |  defmodule ReportApp.Calc do
  #             |    def add(a, b) do
  #          5..|      a + b
  #          0..|      never_run()
  #
  # `render/2` concatenates every file; `render_files/2` returns one
  # `annotated/<filename>.COVER.out` per source (used by `LiveCov.Report.Writer`
  # with `split: true`). Ignored lines show as not executable.

  @behaviour LiveCov.Format

  @stars String.duplicate("*", 76)

  @impl true
  def name, do: :annotated
  @impl true
  def extension, do: "COVER.out"
  @impl true
  def filename, do: "coverage.COVER.out"

  @impl true
  def render(%LiveCov.Stats{} = stats, opts \\ []) do
    stats.files
    |> Enum.map(&render_source(&1, stats, opts))
    |> Enum.intersperse("\n")
  end

  @impl true
  def render_files(%LiveCov.Stats{} = stats, opts \\ []) do
    Enum.map(stats.files, fn f ->
      {Path.join("annotated", safe_relative(f.filename) <> ".COVER.out"),
       render_source(f, stats, opts)}
    end)
  end

  @doc "Annotated listing of one `LiveCov.Stats.Source`."
  def render_source(%LiveCov.Stats.Source{} = f, stats, _opts \\ []) do
    missing = if f.missing_source?, do: " (source file missing: line texts unavailable)", else: ""

    [
      "File generated from ",
      f.path,
      " by LiveCov ",
      LiveCov.Format.Text.timestamp(stats),
      missing,
      "\n\n",
      @stars,
      "\n\n",
      Enum.map(f.source, &line/1)
    ]
  end

  defp line(%{coverage: nil, source: s}), do: ["        |  ", s, ?\n]

  defp line(%{coverage: n, source: s}) when n < 1_000_000,
    do: [pad6(Integer.to_string(n)), "..|  ", s, ?\n]

  defp line(%{coverage: n, source: s}) when n < 10_000_000,
    do: [Integer.to_string(n), ".|  ", s, ?\n]

  defp line(%{coverage: n, source: s}), do: [Integer.to_string(n), "|  ", s, ?\n]

  defp pad6(digits), do: [:binary.copy(" ", 6 - byte_size(digits)), digits]

  # Keeps generated paths inside the output directory.
  @doc false
  def safe_relative(name) do
    name
    |> Path.split()
    |> Enum.reject(&(&1 in ["/", ".", ".."]))
    |> case do
      [] -> "unnamed"
      parts -> Path.join(parts)
    end
  end
end
