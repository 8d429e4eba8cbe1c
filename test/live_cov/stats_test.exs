Code.require_file("../fixtures/report_app/report_fixture.exs", __DIR__)

defmodule LiveCov.StatsTest do
  use ExUnit.Case, async: true

  alias LiveCov.ReportFixture, as: Fx
  alias LiveCov.Stats
  alias LiveCov.Stats.{Ignore, Line, Source}

  doctest LiveCov.Stats
  doctest LiveCov.Stats.Ignore

  defp file(stats, name), do: Enum.find(stats.files, &(&1.filename == name))

  defp tmp_dir(ctx) do
    dir =
      Path.join(System.tmp_dir!(), "live_cov_stats_#{ctx}_#{System.unique_integer([:positive])}")

    File.rm_rf!(dir)
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    dir
  end

  describe "fixture app" do
    test "per-file counts, percentages and totals match the hand-computed values" do
      stats = Fx.stats()
      assert %Stats{} = stats

      got = for f <- stats.files, do: {f.filename, f.coverage, f.sloc, f.hits, f.misses}
      assert got == Fx.expected_files()

      assert {stats.sloc, stats.hits, stats.misses, stats.coverage} == {12, 9, 3, 75.0}
      assert Stats.total(stats) == 75.0
      assert stats.missing_sources == []
    end

    test "exact per-line coverage for every file" do
      stats = Fx.stats()

      for {name, expected} <- Fx.expected_lines() do
        assert Enum.map(file(stats, name).source, & &1.coverage) == expected, name
      end
    end

    test "line texts come from the runtime sources, one Line per source line" do
      calc = file(Fx.stats(), "lib/report_app/calc.ex")
      assert length(calc.source) == 19
      assert %Line{coverage: 4, source: "    a + b"} = Enum.at(calc.source, 4)
      assert %Line{coverage: nil, source: "defmodule ReportApp.Calc do"} = hd(calc.source)
      assert calc.path == Path.join(Fx.dir(), "lib/report_app/calc.ex")
      assert calc.compile_path == "/build/report_app/lib/report_app/calc.ex"
      assert calc.trailing_newline?
      raw = File.read!(calc.path)
      assert Source.text(calc) == raw
      assert calc.digest == :erlang.md5(raw) |> Base.encode16(case: :lower)
    end

    test "line 0 is ignored" do
      calc = file(Fx.stats(), "lib/report_app/calc.ex")
      # line 0 carried count 7: it must not appear anywhere
      assert calc.sloc == 4
      refute Enum.any?(calc.source, &(&1.coverage == 7))
    end

    test "two modules in one file become one Source" do
      shapes = file(Fx.stats(), "lib/report_app/shapes.ex")
      assert shapes.modules == [ReportApp.Shapes.Circle, ReportApp.Shapes.Square]
      assert length(Fx.stats().files) == 4

      assert Enum.map(shapes.functions, &{&1.module, &1.name, &1.line, &1.count}) == [
               {ReportApp.Shapes.Circle, "area/1", 2, 2},
               {ReportApp.Shapes.Square, "area/1", 8, 3},
               {ReportApp.Shapes.Square, "perimeter/1", 12, 0}
             ]
    end

    test "clause entries of one function merge (first line, summed count)" do
      calc = file(Fx.stats(), "lib/report_app/calc.ex")

      assert Enum.map(calc.functions, &{&1.name, &1.line, &1.count}) == [
               {"add/2", 4, 4},
               {"divide/2", 8, 2},
               {"sum/1", 16, 1}
             ]
    end

    test "files are sorted by filename" do
      names = Enum.map(Fx.stats().files, & &1.filename)
      assert names == Enum.sort(names)
    end
  end

  describe "ignore comments" do
    test "start/stop region and next-line become nil" do
      ign = file(Fx.stats(), "lib/report_app/ignored.ex")
      # line 8 (inside start/stop) and 15 (after next-line) had count 0 in the data
      assert Enum.at(ign.source, 7).coverage == nil
      assert Enum.at(ign.source, 14).coverage == nil
      assert {ign.sloc, ign.hits, ign.misses, ign.coverage} == {2, 2, 0, 100.0}
      # debug_only/1 starts on an ignored line: dropped
      assert Enum.map(ign.functions, & &1.name) == ["used/1", "maybe/1"]
    end

    test "ignored_lines/1 rules" do
      lines = [
        "a",
        "# coveralls-ignore-next-line",
        "b",
        "c",
        "  # coveralls-ignore-start",
        "d",
        "# coveralls-ignore-stop",
        "e",
        "% coveralls-ignore-next-line",
        "f",
        "\"coveralls-ignore-start is only a marker inside a comment\"",
        "g"
      ]

      assert Ignore.ignored_lines(lines) |> Enum.sort() == [2, 3, 5, 6, 7, 9, 10]
    end

    test "an unterminated start ignores to end of file" do
      assert Ignore.ignored_lines(["a", "# coveralls-ignore-start", "b", "c"]) |> Enum.sort() == [
               2,
               3,
               4
             ]
    end
  end

  describe "module and file filters" do
    test "ignore_modules with atoms and regexes" do
      stats = Fx.stats(ignore_modules: [ReportApp.Calc, ~r/^ReportApp\.Shapes\.Sq/])
      assert file(stats, "lib/report_app/calc.ex") == nil
      shapes = file(stats, "lib/report_app/shapes.ex")
      assert shapes.modules == [ReportApp.Shapes.Circle]
      assert {shapes.sloc, shapes.hits} == {1, 1}
      assert stats.ignored_modules == [ReportApp.Calc, ReportApp.Shapes.Square]
      assert {stats.sloc, stats.hits, stats.misses} == {6, 5, 1}
    end

    test "ignore_modules regex sees Erlang module names without a colon" do
      stats = Fx.stats(ignore_modules: [~r/^report_app_erl$/])
      assert file(stats, "src/report_app_erl.erl") == nil
    end

    test "skip_files matches the display name or the absolute path" do
      stats = Fx.stats(skip_files: [~r/\.erl$/, ~r{/lib/report_app/shapes}])

      assert Enum.map(stats.files, & &1.filename) == [
               "lib/report_app/calc.ex",
               "lib/report_app/ignored.ex"
             ]

      assert stats.skipped_files == ["lib/report_app/shapes.ex", "src/report_app_erl.erl"]
      assert {stats.sloc, stats.hits, stats.coverage} == {6, 5, 83.3}
    end

    test "string patterns are compiled as regexes" do
      stats = Fx.stats(skip_files: ["erl$"])
      refute file(stats, "src/report_app_erl.erl")
    end
  end

  describe "path mapping and root" do
    test "without mapping the compile-time paths are missing" do
      stats =
        Stats.build(Fx.module_data(),
          generated_at: ~U[2024-01-01 00:00:00Z],
          root: "/build/report_app"
        )

      assert length(stats.missing_sources) == 4
      assert Enum.all?(stats.files, & &1.missing_source?)
      # counts survive; without the text, ignore comments cannot apply, so the
      # two ignored zero-count lines of ignored.ex count as misses
      assert {stats.sloc, stats.hits, stats.misses} == {12 + 2, 9, 3 + 2}
    end

    test "path_map pairs work like compile_root/runtime_root" do
      a = Fx.stats()

      b =
        Stats.build(Fx.module_data(), path_map: [{"/build/report_app/", Fx.dir()}], root: Fx.dir())

      assert Enum.map(a.files, &{&1.filename, &1.path}) ==
               Enum.map(b.files, &{&1.filename, &1.path})
    end

    test "prefixes match whole path segments only" do
      data = [%{module: M, source: "/build/report_app2/x.ex", lines: %{1 => 1}, functions: []}]
      stats = Stats.build(data, compile_root: "/build/report_app", runtime_root: "/elsewhere")
      assert [%{path: "/build/report_app2/x.ex", missing_source?: true}] = stats.files
    end

    test "root makes filenames relative; files outside keep absolute paths" do
      stats = Fx.stats(root: Path.join(Fx.dir(), "lib"))
      names = Enum.map(stats.files, & &1.filename)
      assert "report_app/calc.ex" in names
      assert Path.join(Fx.dir(), "src/report_app_erl.erl") in names
    end

    test "relative source paths are expanded against root" do
      data = [%{module: M, source: ~c"lib/report_app/calc.ex", lines: %{5 => 1}, functions: []}]
      stats = Stats.build(data, root: Fx.dir())

      assert [%{filename: "lib/report_app/calc.ex", missing_source?: false, hits: 1}] =
               stats.files
    end
  end

  describe "missing sources and odd files" do
    test "a missing source keeps its line data with blank text" do
      stats = Fx.stats_with_missing()
      gone = file(stats, "lib/report_app/gone.ex")
      assert gone.missing_source?
      assert Enum.map(gone.source, & &1.coverage) == [nil, 1, 0]
      assert Enum.map(gone.source, & &1.source) == ["", "", ""]
      assert {gone.sloc, gone.hits, gone.misses, gone.coverage} == {2, 1, 1, 50.0}
      assert stats.missing_sources == [Path.join(Fx.dir(), "lib/report_app/gone.ex")]
      assert {stats.sloc, stats.hits, stats.misses, stats.coverage} == {14, 10, 4, 71.4}
    end

    test "data past the end of the file pads with blank lines" do
      dir = tmp_dir("pad")
      path = Path.join(dir, "short.ex")
      File.write!(path, "one\ntwo")
      stats = Stats.build([%{module: M, source: path, lines: %{2 => 1, 4 => 0}}], root: dir)
      [f] = stats.files

      assert Enum.map(f.source, &{&1.coverage, &1.source}) == [
               {nil, "one"},
               {1, "two"},
               {nil, ""},
               {0, ""}
             ]

      refute f.trailing_newline?
    end

    test "CRLF and invalid UTF-8 do not break anything" do
      dir = tmp_dir("crlf")
      path = Path.join(dir, "win.ex")
      raw = "a\r\nb\xFF\r\n"
      File.write!(path, raw)
      [f] = Stats.build([%{module: M, source: path, lines: %{2 => 3}}], root: dir).files
      assert Enum.map(f.source, & &1.source) == ["a\r", "b\uFFFD\r"]
      assert String.valid?(Source.text(f))
      assert f.digest == :erlang.md5(raw) |> Base.encode16(case: :lower)
    end

    test "empty file with no data" do
      dir = tmp_dir("empty")
      path = Path.join(dir, "empty.ex")
      File.write!(path, "")
      stats = Stats.build([%{module: M, source: path, lines: %{}}], root: dir)
      assert [%{source: [], sloc: 0, coverage: 100.0}] = stats.files
      assert stats.coverage == 100.0
    end

    test "modules without a source path are listed, not fatal" do
      stats = Stats.build([%{module: NoSrc, source: nil, lines: %{1 => 1}}], [])
      assert stats.files == []
      assert [{NoSrc, _why}] = stats.skipped_modules
    end
  end

  describe "combining and percentages" do
    test "two modules reporting the same line combine by max" do
      path = Path.join(Fx.dir(), "lib/report_app/shapes.ex")

      data = [
        %{module: A, source: path, lines: %{9 => 1, 13 => 0}},
        %{module: B, source: path, lines: %{9 => 3, 13 => 0, 3 => 0}}
      ]

      [f] = Stats.build(data, root: Fx.dir()).files
      assert Enum.at(f.source, 8).coverage == 3
      assert {f.sloc, f.hits, f.misses} == {3, 1, 2}
      assert f.coverage == 33.3
    end

    test "rounding" do
      assert Stats.percent(1, 2) == 33.3
      assert Stats.percent(2, 1) == 66.7
      assert Stats.percent(1, 7) == 12.5
      assert Stats.percent(1, 0) == 100.0
      assert Stats.percent(0, 5) == 0.0
      # never 100.0 while something is missed
      assert Stats.percent(1999, 1) == 99.9
      assert Stats.percent(0, 0) == 100.0
      assert Stats.percent(0, 0, 0.0) == 0.0
    end

    test "empty_coverage option" do
      stats = Stats.build([], empty_coverage: 0)
      assert stats.coverage == 0.0
      assert Stats.build([], []).coverage == 100.0
    end
  end

  describe "bad input returns errors" do
    test "malformed module data" do
      assert {:error, {:invalid_module_data, msg}} = Stats.build(:nope, [])
      assert msg =~ "list"
      assert {:error, {:invalid_module_data, msg}} = Stats.build([%{foo: 1}], [])
      assert msg =~ "entry 0"

      assert {:error, {:invalid_module_data, msg}} =
               Stats.build([%{module: M, source: "/x.ex", lines: %{-1 => 2}}], [])

      assert msg =~ "M" and msg =~ "non-negative"

      assert {:error, {:invalid_module_data, _}} =
               Stats.build([%{module: M, source: "/x.ex", lines: %{1 => :x}}], [])

      assert {:error, {:invalid_module_data, msg}} =
               Stats.build([%{module: M, source: "/x.ex", lines: %{}, functions: [:bad]}], [])

      assert msg =~ "functions"

      assert {:error, {:invalid_module_data, _}} =
               Stats.build([%{module: M, source: 42, lines: %{}}], [])
    end

    test "malformed options" do
      assert {:error, {:invalid_option, msg}} = Stats.build([], bogus: 1)
      assert msg =~ "bogus"
      assert {:error, {:invalid_option, _}} = Stats.build([], compile_root: "/a")
      assert {:error, {:invalid_option, msg}} = Stats.build([], ignore_modules: [1])
      assert msg =~ "ignore_modules"
      assert {:error, {:invalid_option, _}} = Stats.build([], skip_files: "x")
      assert {:error, {:invalid_option, _}} = Stats.build([], skip_files: ["("])
      assert {:error, {:invalid_option, _}} = Stats.build([], root: 1)
      assert {:error, {:invalid_option, _}} = Stats.build([], empty_coverage: 200)
      assert {:error, {:invalid_option, _}} = Stats.build([], path_map: [:x])
      assert {:error, {:invalid_option, _}} = Stats.build([], :notalist)
    end
  end
end
