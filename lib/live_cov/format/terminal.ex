defmodule LiveCov.Format.Terminal do
  @moduledoc false
  # Summary table for a terminal, in the layout excoveralls users know:
  #
  #     ----------------
  #     COV    FILE                                        LINES RELEVANT   MISSED
  #      50.0% lib/report_app/two.ex                          14        4        2
  #      83.3% lib/report_app/calc.ex                         20        6        1
  #     [TOTAL]  70.0%
  #     ----------------
  #
  # Rows are sorted by coverage ascending (worst first), ties by filename; pass
  # `sort: :filename` for alphabetical order. Files whose source could not be read
  # are marked `(source missing)`.
  #
  # Options:
  #
  #   * `:threshold` - minimum acceptable percentage (default `90`). Percentages at
  #     or above it are green, below it red; a final line says whether the total
  #     passes.
  #   * `:colors` - `false` disables ANSI colours (default `true`).
  #   * `:sort` - `:coverage` (default) or `:filename`.

  @behaviour LiveCov.Format

  import LiveCov.Format.Text, only: [pct: 1]

  @impl true
  def name, do: :terminal
  @impl true
  def extension, do: "txt"
  @impl true
  def filename, do: "coverage.txt"

  @impl true
  def render(%LiveCov.Stats{} = stats, opts \\ []) do
    threshold = Keyword.get(opts, :threshold, 90)
    colors? = Keyword.get(opts, :colors, true) != false

    files =
      case Keyword.get(opts, :sort, :coverage) do
        :filename -> Enum.sort_by(stats.files, & &1.filename)
        _ -> Enum.sort_by(stats.files, &{&1.coverage, &1.filename})
      end

    width = files |> Enum.map(&String.length(&1.filename)) |> Enum.max(fn -> 0 end) |> max(40)

    header = [
      "COV    ",
      String.pad_trailing("FILE", width),
      "    LINES RELEVANT   MISSED\n"
    ]

    rows =
      Enum.map(files, fn f ->
        [
          color(String.pad_leading(pct(f.coverage), 5) <> "%", f.coverage, threshold, colors?),
          " ",
          String.pad_trailing(f.filename, width),
          String.pad_leading(Integer.to_string(length(f.source)), 9),
          String.pad_leading(Integer.to_string(f.sloc), 9),
          String.pad_leading(Integer.to_string(f.misses), 9),
          if(f.missing_source?, do: "  (source missing)", else: ""),
          "\n"
        ]
      end)

    verdict =
      if stats.coverage >= threshold do
        color(
          "Coverage #{pct(stats.coverage)}% meets the threshold of #{threshold}%.",
          100.0,
          0,
          colors?
        )
      else
        color(
          "Coverage #{pct(stats.coverage)}% is below the threshold of #{threshold}%.",
          0.0,
          1,
          colors?
        )
      end

    [
      "----------------\n",
      header,
      rows,
      "[TOTAL] ",
      color(
        String.pad_leading(pct(stats.coverage), 5) <> "%",
        stats.coverage,
        threshold,
        colors?
      ),
      "\n----------------\n",
      verdict,
      "\n",
      if(stats.exact,
        do: [],
        else: "Counts are lower bounds (mode: :coverage); hit and missed lines are exact.\n"
      )
    ]
  end

  defp color(text, _value, _threshold, false), do: text

  defp color(text, value, threshold, true) do
    code = if value >= threshold, do: IO.ANSI.green(), else: IO.ANSI.red()
    [code, text, IO.ANSI.reset()]
  end
end
