# Rendering every report format for 1,000 modules × 100 lines (target: under a second in all).
#
#   mix run bench/report.exs [--modules N] [--lines N]
#
# Prints a markdown table: time to build the statistics (reading every source file) and to
# render each format, CPU time of the VM and wall clock, and the size of each output.

defmodule LiveCov.Bench.Report do
  alias LiveCov.{Formats, Stats}

  # Typical Elixir lines, with the usual share of characters HTML, XML and JSON must escape.
  @templates [
    ~S|  def fun_L(%{id: id} = state, opts \\ []) do|,
    ~S|    state \|> Map.put(:count, state.count + 1) \|> validate(opts)|,
    ~S|    Enum.map(list, &(&1 * 2))|,
    ~S|    Logger.debug("value=#{inspect(x)} for M")|,
    ~S|    case Keyword.get(opts, :mode, :fast) do|,
    ~S|      :fast -> {:ok, id <> "-" <> to_string(L)}|,
    ~S|      _ when L > 0 and L < 100 -> :error|,
    ~S|    end|,
    ~S|  end|,
    ~S|  # comment: <b>bold</b> & 'quoted'|
  ]

  def main(args) do
    {opts, _, _} = OptionParser.parse(args, strict: [modules: :integer, lines: :integer])
    modules = Keyword.get(opts, :modules, 1_000)
    lines = Keyword.get(opts, :lines, 100)

    dir =
      Path.join(System.tmp_dir!(), "live_cov_bench_report_#{System.unique_integer([:positive])}")

    try do
      data = corpus(dir, modules, lines)
      {build_cpu, build_wall, stats} = measure(fn -> Stats.build(data, root: dir) end)

      rows =
        for {name, mod} <- Enum.sort(Formats.formats()) do
          {cpu, wall, bytes} = measure(fn -> stats |> mod.render([]) |> IO.iodata_length() end)
          {name, cpu, wall, bytes}
        end

      total_cpu = rows |> Enum.map(&elem(&1, 1)) |> Enum.sum()
      total_wall = rows |> Enum.map(&elem(&1, 2)) |> Enum.sum()

      IO.puts("""
      ## Report rendering: #{modules} modules × #{lines} lines (#{stats.sloc} relevant lines)

      | step | CPU ms | wall ms | output |
      |---|--:|--:|--:|
      | `LiveCov.Stats.build/2` (reads #{modules} source files) | #{build_cpu} | #{build_wall} | |
      #{Enum.map_join(rows, "\n", fn {n, cpu, wall, b} -> "| render `#{inspect(n)}` | #{cpu} | #{wall} | #{div(b, 1024)} KiB |" end)}
      | **all formats** | **#{total_cpu}** | **#{total_wall}** | |

      Target: every format rendered in under 1 s in all — #{if total_cpu < 1000, do: "met", else: "MISSED"} (#{total_cpu} ms CPU).
      """)
    after
      File.rm_rf!(dir)
    end
  end

  defp corpus(dir, modules, lines) do
    File.mkdir_p!(Path.join(dir, "lib"))

    for m <- 1..modules do
      path = Path.join([dir, "lib", "mod_#{m}.ex"])
      File.write!(path, for(l <- 1..lines, into: "", do: line(l, m) <> "\n"))

      # Two of three lines executable, one in five of those never run.
      counts =
        for l <- 1..lines,
            rem(l, 3) != 0,
            into: %{},
            do: {l, if(rem(l, 5) == 0, do: 0, else: l * m)}

      functions = for l <- 1..lines//10, do: {"fun_#{l}/1", l, rem(l, 7)}
      %{module: :"Elixir.Perf.Mod#{m}", source: path, lines: counts, functions: functions}
    end
  end

  defp line(l, m) do
    @templates
    |> Enum.at(rem(l, length(@templates)))
    |> String.replace("L", Integer.to_string(l))
    |> String.replace("M", Integer.to_string(m))
  end

  # CPU time of the whole VM (steady on a shared machine) and wall clock.
  defp measure(fun) do
    {cpu0, _} = :erlang.statistics(:runtime)
    t0 = System.monotonic_time(:microsecond)
    result = fun.()
    {cpu1, _} = :erlang.statistics(:runtime)
    {cpu1 - cpu0, div(System.monotonic_time(:microsecond) - t0, 1000), result}
  end
end

LiveCov.Bench.Report.main(System.argv())
