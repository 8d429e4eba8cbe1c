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

        text =
          for l <- 1..@lines, into: "" do
            "    line_#{l}(x) |> Enum.map(&(&1 * 2)) # <escape> & \"me\" #{m}\n"
          end

        File.write!(path, text)

        # two of three lines executable, one in five of those never run
        lines = for l <- 1..@lines, rem(l, 3) != 0, into: %{}, do: {l, if(rem(l, 5) == 0, do: 0, else: l * m)}
        functions = for l <- 1..@lines//10, do: {"fun_#{l}/1", l, rem(l, 7)}
        %{module: :"Elixir.Perf.Mod#{m}", source: path, lines: lines, functions: functions}
      end

    %{dir: dir, data: data}
  end

  test "render every format for 1,000 modules x 100 lines in under 1 s", %{dir: dir, data: data} do
    {build_us, stats} = :timer.tc(fn -> Stats.build(data, root: dir) end)
    assert length(stats.files) == @modules
    assert stats.sloc == @modules * 67

    timings =
      for {name, mod} <- Enum.sort(Format.formats()) do
        {us, bytes} = :timer.tc(fn -> stats |> mod.render([]) |> IO.iodata_length() end)
        {name, us, bytes}
      end

    total_us = timings |> Enum.map(&elem(&1, 1)) |> Enum.sum()

    IO.puts("""

    [perf] #{@modules} modules x #{@lines} lines: Stats.build #{div(build_us, 1000)} ms (reads #{@modules} files)
    #{Enum.map_join(timings, "\n", fn {n, us, b} -> "[perf]   #{String.pad_trailing(to_string(n), 10)} #{String.pad_leading(to_string(div(us, 1000)), 5)} ms  #{div(b, 1024)} KiB" end)}
    [perf] all formats: #{div(total_us, 1000)} ms
    """)

    assert total_us < 1_000_000, "rendering took #{div(total_us, 1000)} ms"
  end
end
