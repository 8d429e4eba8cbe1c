defmodule LiveCov.StatsExactTest do
  # Reports of adaptive-mode data say that counts are lower bounds.
  use ExUnit.Case, async: true

  alias LiveCov.Stats
  alias LiveCov.Format.{HTML, JSON, Terminal}

  defp data(exact) do
    [
      %{
        module: M,
        source: "/nonexistent/m.ex",
        lines: %{1 => 3, 2 => 0},
        functions: [],
        exact: exact
      }
    ]
  end

  test "exact data: no note" do
    stats = Stats.build(data(true))
    assert stats.exact
    refute IO.iodata_to_binary(Terminal.render(stats, colors: false)) =~ "lower bounds"
    refute IO.iodata_to_binary(HTML.render(stats, [])) =~ "lower bounds"
    assert LiveCov.JSON.decode!(JSON.render(stats, []))["exact"] == true
  end

  test "adaptive data: every human format says counts are lower bounds" do
    stats = Stats.build(data(false) ++ [%{module: N, source: "/x/n.ex", lines: %{1 => 1}}])
    refute stats.exact
    assert {stats.hits, stats.misses} == {2, 1}
    assert IO.iodata_to_binary(Terminal.render(stats, colors: false)) =~ "lower bounds"
    assert IO.iodata_to_binary(HTML.render(stats, [])) =~ "lower bounds"
    assert LiveCov.JSON.decode!(JSON.render(stats, []))["exact"] == false
  end
end
