Code.require_file("../../fixtures/report_app/report_fixture.exs", __DIR__)

defmodule LiveCov.Format.LCOVTest do
  use ExUnit.Case, async: true

  alias LiveCov.Format.LCOV
  alias LiveCov.ReportFixture, as: Fx

  # A small LCOV reader: %{sf => %{da: %{line => count}, fn: %{name => line},
  # fnda: %{name => count}, fnf:, fnh:, lf:, lh:}}
  def parse(text) do
    text
    |> String.split("\n", trim: true)
    |> Enum.reduce({%{}, nil}, fn line, {acc, cur} ->
      case String.split(line, ":", parts: 2) do
        ["TN", _] ->
          {acc, cur}

        ["SF", path] ->
          {acc, %{sf: path, da: %{}, fn: %{}, fnda: %{}}}

        ["FN", rest] ->
          [l, name] = String.split(rest, ",", parts: 2)
          {acc, put_in(cur, [:fn, name], String.to_integer(l))}

        ["FNDA", rest] ->
          [c, name] = String.split(rest, ",", parts: 2)
          {acc, put_in(cur, [:fnda, name], String.to_integer(c))}

        ["DA", rest] ->
          [l, c] = String.split(rest, ",")
          {acc, put_in(cur, [:da, String.to_integer(l)], String.to_integer(c))}

        [key, n] when key in ~w(FNF FNH LF LH) ->
          {acc, Map.put(cur, key |> String.downcase() |> String.to_atom(), String.to_integer(n))}

        ["end_of_record"] ->
          {Map.put(acc, cur.sf, cur), nil}
      end
    end)
    |> elem(0)
  end

  test "round-trip: parsed LCOV equals the stats" do
    stats = Fx.stats_with_missing()
    text = stats |> LCOV.render([]) |> IO.iodata_to_binary()
    parsed = parse(text)
    assert map_size(parsed) == length(stats.files)

    for f <- stats.files do
      rec = Map.fetch!(parsed, f.path)

      expected_da =
        for {%{coverage: c}, i} <- Enum.with_index(f.source, 1), c != nil, into: %{}, do: {i, c}

      assert rec.da == expected_da
      assert {rec.lf, rec.lh} == {f.sloc, f.hits}
      assert rec.fnf == length(f.functions)
      assert rec.fnh == Enum.count(f.functions, &(&1.count > 0))
      assert map_size(rec.fn) == rec.fnf
    end

    hits = parsed |> Map.values() |> Enum.map(& &1.lh) |> Enum.sum()
    found = parsed |> Map.values() |> Enum.map(& &1.lf) |> Enum.sum()
    assert {found, hits} == {stats.sloc, stats.hits}
  end

  # The fixture's functions start on their `def` lines; FN: names the first executable line.
  test "exact record for calc.ex" do
    stats = Fx.stats()
    text = stats |> LCOV.render([]) |> IO.iodata_to_binary()
    path = Path.join(Fx.dir(), "lib/report_app/calc.ex")

    assert text =~
             """
             TN:
             SF:#{path}
             FN:5,ReportApp.Calc.add/2
             FN:9,ReportApp.Calc.divide/2
             FN:17,ReportApp.Calc.sum/1
             FNDA:4,ReportApp.Calc.add/2
             FNDA:2,ReportApp.Calc.divide/2
             FNDA:1,ReportApp.Calc.sum/1
             FNF:3
             FNH:3
             DA:5,4
             DA:9,0
             DA:13,2
             DA:17,1
             LF:4
             LH:3
             end_of_record
             """
  end

  test "Erlang functions use mod:fun/arity" do
    text = Fx.stats() |> LCOV.render([]) |> IO.iodata_to_binary()
    assert text =~ "FN:5,report_app_erl:classify/1\n"
  end

  test "relative paths and test name" do
    text =
      Fx.stats()
      |> LCOV.render(paths: :relative, test_name: "live run #1")
      |> IO.iodata_to_binary()

    assert text =~ "SF:lib/report_app/calc.ex\n"
    assert text =~ "TN:live_run__1\n"
  end

  test "names with commas or newlines cannot corrupt the file" do
    data = [
      %{module: M, source: "/x/a.ex", lines: %{1 => 1}, functions: [{"bad,name\n/0", 1, 1}]}
    ]

    text = data |> LiveCov.Stats.build(root: "/x") |> LCOV.render([]) |> IO.iodata_to_binary()
    assert text =~ "FN:1,M.bad_name_/0\n"
    assert parse(text)["/x/a.ex"].fnda == %{"M.bad_name_/0" => 1}
  end
end
