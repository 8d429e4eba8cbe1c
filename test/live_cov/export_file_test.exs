defmodule LiveCov.ExportFileTest do
  # The .livecov.json export (write, read, stats) and the report task reading snapshots.
  # Instruments modules and runs Mix in subprocesses: not async.
  use ExUnit.Case, async: false

  alias LiveCov.Test.FixtureBuild

  @repo Path.expand("../..", __DIR__)
  @fixture Path.join(@repo, "test/fixtures/mix_project")
  @fixture_sources ~w(calc.ex greeter.ex unused.ex ignored.ex)

  @calc_da "DA:5,1\nDA:9,0\nDA:12,0\nDA:16,1\nLF:4\nLH:2\n"

  defp tmp_dir(tag), do: FixtureBuild.tmp_dir(tag)

  defp write_json(dir, name, term) do
    path = Path.join(dir, name)
    File.write!(path, LiveCov.JSON.encode!(term))
    path
  end

  defp export_doc(modules, sources, root) do
    %{
      format: "live_cov_export",
      version: 1,
      generated_at: "2024-05-01T10:00:00Z",
      node: "nonode@nohost",
      root: root,
      modules: modules,
      sources: sources
    }
  end

  # The fixture's modules, compiled once (with their sources in a temporary lib/).
  setup_all do
    dir = tmp_dir("mixtool_export")
    lib = Path.join(dir, "lib/fixture_app")
    File.mkdir_p!(lib)

    sources =
      for f <- @fixture_sources do
        File.cp!(Path.join([@fixture, "lib/fixture_app", f]), Path.join(lib, f))
        Path.join(lib, f)
      end

    ebin = Path.join(dir, "ebin")
    File.mkdir_p!(ebin)
    {mods, _warnings} = LiveCov.Test.ElixirBuild.compile_to_path!(sources, ebin)
    %{dir: dir, lib: lib, ebin: ebin, mods: mods}
  end

  describe "export of instrumented modules" do
    setup %{ebin: ebin, mods: mods} do
      # Instrumenting again starts with fresh counters.
      %{instrumented: instrumented} = LiveCov.start(ebin)
      assert Enum.sort(instrumented) == Enum.sort(mods)
      on_exit(fn -> LiveCov.Pipeline.restore(mods) end)

      # The fixture's test suite.
      3 = apply(FixtureApp.Calc, :add, [1, 2])
      {:ok, 3} = apply(FixtureApp.Calc, :safe_div, [7, 2])
      "Hello, Ada!" = apply(FixtureApp.Greeter, :greet, ["Ada"])
      :ok
    end

    test "the export holds module data and sources; its report equals the live one", ctx do
      path = Path.join(ctx.dir, "out/run.livecov.json")
      assert {:ok, ^path} = LiveCov.ExportFile.write(path)

      json = path |> File.read!() |> LiveCov.JSON.decode!()
      assert json["format"] == "live_cov_export" and json["version"] == 1
      calc = Enum.find(json["modules"], &(&1["module"] == "Elixir.FixtureApp.Calc"))
      assert calc["lines"] == %{"5" => 1, "9" => 0, "12" => 0, "16" => 1}
      assert calc["source"] == Path.join(ctx.lib, "calc.ex")
      assert json["sources"][calc["source"]] == File.read!(calc["source"])

      assert {:ok, export} = LiveCov.ExportFile.read(path)
      opts = [root: ctx.dir, ignore_modules: [FixtureApp.Ignored]]
      from_export = LiveCov.ExportFile.stats(export, opts)
      live = LiveCov.report(opts)

      mine = fn stats ->
        for f <- stats.files, String.starts_with?(f.filename, "lib/fixture_app/") do
          {f.filename, f.coverage, f.hits, f.misses, f.path, length(f.source)}
        end
      end

      assert mine.(from_export) == mine.(live)

      assert mine.(from_export) == [
               {"lib/fixture_app/calc.ex", 50.0, 2, 2, Path.join(ctx.lib, "calc.ex"), 19},
               {"lib/fixture_app/greeter.ex", 66.7, 2, 1, Path.join(ctx.lib, "greeter.ex"), 12},
               {"lib/fixture_app/unused.ex", 0.0, 0, 1, Path.join(ctx.lib, "unused.ex"), 7}
             ]
    end

    test "embedded sources are used when the files are gone", ctx do
      path = Path.join(ctx.dir, "run.livecov.json")
      {:ok, _} = LiveCov.ExportFile.write(path)
      text = File.read!(Path.join(ctx.lib, "calc.ex"))
      moved = ctx.lib <> "_moved"
      File.rename!(ctx.lib, moved)

      stats =
        try do
          {:ok, export} = LiveCov.ExportFile.read(path)
          LiveCov.ExportFile.stats(export, root: ctx.dir)
        after
          File.rename!(moved, ctx.lib)
        end

      calc = Enum.find(stats.files, &(&1.filename == "lib/fixture_app/calc.ex"))
      refute calc.missing_source?
      assert Enum.map_join(calc.source, "\n", & &1.source) <> "\n" == text
      assert Enum.at(calc.source, 4).coverage == 1
      assert Enum.at(calc.source, 8).coverage == 0
      refute Enum.any?(stats.missing_sources, &String.contains?(&1, "fixture_app"))
    end

    test "mix live_cov.report without --input renders this node's counters", ctx do
      out = Path.join(ctx.dir, "report")
      Mix.shell(Mix.Shell.Process)
      on_exit(fn -> Mix.shell(Mix.Shell.IO) end)

      :ok =
        Mix.Tasks.LiveCov.Report.run(
          ~w(--format lcov --output #{out} --root #{ctx.dir} --no-summary)
        )

      lcov = File.read!(Path.join(out, "lcov.info"))
      assert lcov =~ "SF:#{Path.join(ctx.lib, "calc.ex")}\n"
      assert lcov =~ @calc_da
      assert_received {:mix_shell, :info, ["Wrote " <> _]}
    end
  end

  describe "mix live_cov.report from snapshot files" do
    setup ctx do
      {:ok, fixtures: dir} = LiveCov.Test.FixtureBuild.snapshot_fixtures(ctx)
      LiveCov.stop()
      # Imported data other tests left would be in the live report, not in the exports.
      LiveCov.Imported.clear()
      %{instrumented: [_, _]} = LiveCov.start(dir)
      :ok
    end

    test "renders a LiveCov snapshot and a .coverdata file like the live node" do
      LiveCov.Test.FixtureBuild.snapshot_work!()
      dir = tmp_dir("report_snapshot")
      snap_file = Path.join(dir, "run.lcsnap")
      cover_file = Path.join(dir, "run.coverdata")
      {:ok, _} = LiveCov.export(snap_file)
      :ok = LiveCov.Cover.export(cover_file)
      live = dir |> Path.join("live") |> tap(&File.mkdir_p!/1)
      {:ok, _} = LiveCov.write([:lcov], live)
      Mix.shell(Mix.Shell.Process)
      on_exit(fn -> Mix.shell(Mix.Shell.IO) end)

      for {input, name} <- [{snap_file, "from_snapshot"}, {cover_file, "from_coverdata"}] do
        out = Path.join(dir, name)

        :ok =
          Mix.Tasks.LiveCov.Report.run(
            ~w(--input #{input} --format lcov --output #{out} --no-summary)
          )

        assert da_lines(Path.join(out, "lcov.info")) == da_lines(Path.join(live, "lcov.info"))
      end
    end

    test "several inputs merge: the same builds sum; a JSON export cannot be merged" do
      LiveCov.Test.FixtureBuild.snapshot_work!()
      dir = tmp_dir("report_merge")
      [a, b] = for n <- ~w(a b), do: Path.join(dir, "#{n}.livecov")
      {:ok, _} = LiveCov.export(a)
      {:ok, _} = LiveCov.export(b)
      live = dir |> Path.join("live") |> tap(&File.mkdir_p!/1)
      {:ok, _} = LiveCov.write([:lcov], live)
      Mix.shell(Mix.Shell.Process)
      on_exit(fn -> Mix.shell(Mix.Shell.IO) end)

      doubled =
        live
        |> Path.join("lcov.info")
        |> da_lines()
        |> Enum.map(fn
          "DA:" <> rest ->
            [line, count] = String.split(rest, ",")
            "DA:#{line},#{2 * String.to_integer(count)}"

          other ->
            other
        end)

      assert Enum.any?(doubled, &(&1 =~ ~r/^DA:\d+,[1-9]/))

      # Two snapshots (repeated --input), then two .coverdata files (comma-separated).
      [c, d] = for n <- ~w(c d), do: Path.join(dir, "#{n}.coverdata")
      :ok = LiveCov.Cover.export(c)
      :ok = LiveCov.Cover.export(d)

      for {inputs, name} <- [{~w(-i #{a} --input #{b}), "snapshots"}, {~w(-i #{c},#{d}), "cd"}] do
        out = Path.join(dir, name)

        :ok =
          Mix.Tasks.LiveCov.Report.run(inputs ++ ~w(--format lcov --output #{out} --no-summary))

        assert da_lines(Path.join(out, "lcov.info")) == doubled
      end

      out = Path.join(dir, "merged")

      json = Path.join(dir, "x.livecov.json")
      {:ok, _} = LiveCov.ExportFile.write(json)

      assert_raise Mix.Error, ~r/cannot_merge.*x\.livecov\.json.*--export-coverage/, fn ->
        Mix.Tasks.LiveCov.Report.run(~w(-i #{a} -i #{json} --format lcov --output #{out}))
      end
    end
  end

  defp da_lines(path),
    do:
      path
      |> File.read!()
      |> String.split("\n")
      |> Enum.filter(&String.starts_with?(&1, ["SF:", "DA:"]))

  describe "read/1 and stats/2" do
    setup do
      %{dir: tmp_dir("mixtool_read")}
    end

    test "sources missing from the export are read from disk, mapped with compile/runtime roots",
         %{dir: dir} do
      runtime = Path.join(dir, "runtime")
      File.mkdir_p!(Path.join(runtime, "lib"))
      File.write!(Path.join(runtime, "lib/a.ex"), "defmodule A do\n  def f, do: 1\nend\n")

      mod = %{
        module: "Elixir.A",
        source: "/build/app/lib/a.ex",
        lines: %{"2" => 3},
        functions: [["f/0", 2, 3]]
      }

      path = write_json(dir, "a.json", export_doc([mod], %{}, "/build/app"))

      {:ok, export} = LiveCov.ExportFile.read(path)
      assert export.generated_at == ~U[2024-05-01 10:00:00Z]
      assert [%{module: A, lines: %{2 => 3}, functions: [{"f/0", 2, 3}]}] = export.modules

      stats = LiveCov.ExportFile.stats(export, compile_root: "/build/app", runtime_root: runtime)
      assert [%{filename: "lib/a.ex", path: p, hits: 1, missing_source?: false}] = stats.files
      assert p == Path.join(runtime, "lib/a.ex")

      # Without the mapping the file is reported with its source missing, not dropped.
      stats = LiveCov.ExportFile.stats(export)
      assert [%{filename: "lib/a.ex", missing_source?: true}] = stats.files
    end

    test "an embedded source wins over the disk and keeps the mapped runtime path", %{dir: dir} do
      mod = %{module: "Elixir.B", source: "/build/app/lib/b.ex", lines: %{"2" => 0}}
      sources = %{"/build/app/lib/b.ex" => "defmodule B do\n  def g, do: :ok\nend\n"}
      path = write_json(dir, "b.json", export_doc([mod], sources, "/build/app"))
      {:ok, export} = LiveCov.ExportFile.read(path)

      stats =
        LiveCov.ExportFile.stats(export, compile_root: "/build/app", runtime_root: "/srv/app")

      assert [%{filename: "lib/b.ex", path: "/srv/app/lib/b.ex", misses: 1} = f] = stats.files
      assert Enum.at(f.source, 1).source == "  def g, do: :ok"
      assert stats.coverage == 0.0
    end

    test "bad input is an error naming the file and the fix", %{dir: dir} do
      missing = Path.join(dir, "nope.json")
      assert {:error, {:cant_read, msg}} = LiveCov.ExportFile.read(missing)
      assert msg =~ missing

      not_json = Path.join(dir, "x.json")
      File.write!(not_json, "{oops")
      assert {:error, {:invalid_export, msg}} = LiveCov.ExportFile.read(not_json)
      assert msg =~ "not JSON"

      other = write_json(dir, "other.json", %{hello: 1})
      assert {:error, {:invalid_export, msg}} = LiveCov.ExportFile.read(other)
      assert msg =~ "not a LiveCov export"

      future = write_json(dir, "v9.json", %{export_doc([], %{}, "/") | version: 9})
      assert {:error, {:invalid_export, msg}} = LiveCov.ExportFile.read(future)
      assert msg =~ "version 9"

      bad_lines =
        write_json(
          dir,
          "bad.json",
          export_doc([%{module: "Elixir.A", lines: %{"x" => 1}}], %{}, "/")
        )

      assert {:error, {:invalid_export, msg}} = LiveCov.ExportFile.read(bad_lines)
      assert msg =~ "modules[0]"

      {:ok, export} =
        LiveCov.ExportFile.read(write_json(dir, "ok.json", export_doc([], %{}, "/")))

      assert {:error, {:invalid_option, _}} = LiveCov.ExportFile.stats(export, compile_root: "/a")
      assert {:error, {:invalid_option, _}} = LiveCov.ExportFile.stats(export, path_map: [:bad])
    end

    test "mix live_cov.report --input writes every requested format", %{dir: dir} do
      mod = %{module: "Elixir.C", source: "/p/lib/c.ex", lines: %{"2" => 1, "3" => 0}}
      sources = %{"/p/lib/c.ex" => "defmodule C do\n  def a, do: 1\n  def b, do: 2\nend\n"}
      input = write_json(dir, "c.json", export_doc([mod], sources, "/p"))
      out = Path.join(dir, "out")
      Mix.shell(Mix.Shell.Process)
      on_exit(fn -> Mix.shell(Mix.Shell.IO) end)

      :ok =
        Mix.Tasks.LiveCov.Report.run(
          ~w(--input #{input} --format lcov,cobertura --format json --output #{out})
        )

      assert File.read!(Path.join(out, "lcov.info")) =~
               "SF:/p/lib/c.ex\nFNF:0\nFNH:0\nDA:2,1\nDA:3,0\nLF:2\nLH:1\n"

      assert File.exists?(Path.join(out, "cobertura.xml"))
      assert File.exists?(Path.join(out, "coverage.json"))
      assert_received {:mix_shell, :info, [table]}
      assert table =~ " 50.0% lib/c.ex"

      assert_raise Mix.Error, ~r/unknown report format "pdf"/, fn ->
        Mix.Tasks.LiveCov.Report.run(~w(--input #{input} --format pdf --output #{out}))
      end

      assert_raise Mix.Error, ~r/cant_read/, fn ->
        Mix.Tasks.LiveCov.Report.run(~w(--input #{dir}/missing.json))
      end

      assert_raise Mix.Error, ~r/unexpected --bogus/, fn ->
        Mix.Tasks.LiveCov.Report.run(~w(--bogus))
      end
    end
  end
end
