Code.require_file("../../fixtures/report_app/report_fixture.exs", __DIR__)

defmodule LiveCov.Format.TerminalTest do
  use ExUnit.Case, async: true

  alias LiveCov.Format.Terminal
  alias LiveCov.ReportFixture, as: Fx

  defp render(opts), do: Fx.stats_with_missing() |> Terminal.render(opts) |> IO.iodata_to_binary()

  test "plain table sorted by coverage then filename, with total" do
    out = render(colors: false)

    assert out ==
             """
             ----------------
             COV    FILE                                        LINES RELEVANT   MISSED
              50.0% lib/report_app/gone.ex                          3        2        1  (source missing)
              66.7% lib/report_app/shapes.ex                       15        3        1
              66.7% src/report_app_erl.erl                          9        3        1
              75.0% lib/report_app/calc.ex                         19        4        1
             100.0% lib/report_app/ignored.ex                      18        2        0
             [TOTAL]  71.4%
             ----------------
             Coverage 71.4% is below the threshold of 90%.
             """
  end

  test "sort: :filename" do
    out = render(colors: false, sort: :filename)
    names = Regex.scan(~r/^ *[0-9.]+% (\S+)/m, out, capture: :all_but_first) |> List.flatten()
    assert names == Enum.sort(names)
  end

  test "colours against the threshold" do
    out = render(threshold: 70)
    red = IO.ANSI.red()
    green = IO.ANSI.green()
    assert out =~ red <> " 50.0%"
    assert out =~ red <> " 66.7%"
    assert out =~ green <> " 75.0%"
    assert out =~ green <> "100.0%"
    assert out =~ "[TOTAL] " <> green <> " 71.4%"
    assert out =~ "meets the threshold of 70%"
    refute render(colors: false) =~ "\e["
  end

  test "long filenames widen the column" do
    data = [
      %{module: M, source: "/nowhere/" <> String.duplicate("x", 60) <> ".ex", lines: %{1 => 1}}
    ]

    out =
      LiveCov.Stats.build(data, root: "/nowhere")
      |> Terminal.render(colors: false)
      |> IO.iodata_to_binary()

    [header | _] = out |> String.split("\n") |> tl()
    [row | _] = out |> String.split("\n") |> Enum.drop(2)
    assert String.length(header) == String.length(row) - String.length("  (source missing)")
  end

  test "empty stats" do
    out = LiveCov.Stats.build([], []) |> Terminal.render(colors: false) |> IO.iodata_to_binary()
    assert out =~ "[TOTAL] 100.0%"
  end
end
