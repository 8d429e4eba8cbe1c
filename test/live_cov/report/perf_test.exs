defmodule LiveCov.Report.PerfTest do
  @moduledoc """
  Rendering every format for 1,000 modules x 100 lines must take under a
  second in total. Tagged `:perf` (run with `--include perf`).
  """
  use ExUnit.Case, async: false

  alias LiveCov.{Format, Stats}

  @moduletag :perf
  @moduletag timeout: 120_000

  @modules 1_000
  @lines 100

  setup do
    dir = Path.join(System.tmp_dir!(), "live_cov_perf_#{System.unique_integer([:positive])}")
    File.mkdir_p!(Path.join(dir, "lib"))
    on_exit(fn -> File.rm_rf!(dir) end)

    data =
      for m <- 1..@modules do
        path = Path.join([dir, "lib", "mod_#{m}.ex"])

        text = for l <- 1..@lines, into: "", do: line(l, m) <> "\n"

        File.write!(path, text)

        # two of three lines executable, one in five of those never run
        lines =
          for l <- 1..@lines,
              rem(l, 3) != 0,
              into: %{},
              do: {l, if(rem(l, 5) == 0, do: 0, else: l * m)}

        functions = for l <- 1..@lines//10, do: {"fun_#{l}/1", l, rem(l, 7)}
        %{module: :"Elixir.Perf.Mod#{m}", source: path, lines: lines, functions: functions}
      end

    %{dir: dir, data: data}
  end

  # Typical Elixir lines, with the usual share of characters that HTML, XML
  # and JSON must escape.
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

  defp line(l, m) do
    @templates
    |> Enum.at(rem(l, length(@templates)))
    |> String.replace("L", Integer.to_string(l))
    |> String.replace("M", Integer.to_string(m))
  end

  # CPU time of the whole VM (this test runs alone, async: false): unlike wall
  # time it does not grow when other programs load the machine.
  defp measure(fun) do
    {cpu0, _} = :erlang.statistics(:runtime)
    t0 = System.monotonic_time(:microsecond)
    result = fun.()
    {cpu1, _} = :erlang.statistics(:runtime)
    {cpu1 - cpu0, div(System.monotonic_time(:microsecond) - t0, 1000), result}
  end

  test "render every format for 1,000 modules x 100 lines in under 1 s", %{dir: dir, data: data} do
    {build_cpu, build_wall, stats} = measure(fn -> Stats.build(data, root: dir) end)
    assert length(stats.files) == @modules
    assert stats.sloc == @modules * 67

    timings =
      for {name, mod} <- Enum.sort(Format.formats()) do
        {cpu, wall, bytes} = measure(fn -> stats |> mod.render([]) |> IO.iodata_length() end)
        {name, cpu, wall, bytes}
      end

    total_cpu = timings |> Enum.map(&elem(&1, 1)) |> Enum.sum()
    total_wall = timings |> Enum.map(&elem(&1, 2)) |> Enum.sum()

    rows =
      Enum.map_join(timings, "\n", fn {n, cpu, wall, b} ->
        "[perf]   #{String.pad_trailing(to_string(n), 10)} cpu #{String.pad_leading(to_string(cpu), 5)} ms" <>
          "  wall #{String.pad_leading(to_string(wall), 5)} ms  #{div(b, 1024)} KiB"
      end)

    IO.puts("""

    [perf] #{@modules} modules x #{@lines} lines
    [perf] Stats.build (reads #{@modules} files): cpu #{build_cpu} ms, wall #{build_wall} ms
    #{rows}
    [perf] all formats: cpu #{total_cpu} ms, wall #{total_wall} ms
    """)

    assert total_cpu < 1_000, "rendering all formats took #{total_cpu} ms of CPU time"
  end
end
