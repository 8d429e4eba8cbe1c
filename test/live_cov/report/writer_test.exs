Code.require_file("../../fixtures/report_app/report_fixture.exs", __DIR__)

defmodule LiveCov.Report.WriterTest do
  use ExUnit.Case, async: true

  alias LiveCov.Report.Writer
  alias LiveCov.ReportFixture, as: Fx

  setup do
    dir = Path.join(System.tmp_dir!(), "live_cov_writer_#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm_rf!(dir) end)
    %{dir: dir, stats: Fx.stats()}
  end

  defmodule Custom do
    @behaviour LiveCov.Format
    def name, do: :custom
    def extension, do: "txt"
    def filename, do: "custom.txt"

    def render(stats, opts),
      do: ["total=", to_string(stats.coverage), " ", inspect(opts[:greeting])]
  end

  defmodule Broken do
    @behaviour LiveCov.Format
    def name, do: :broken
    def extension, do: "txt"
    def filename, do: "broken.txt"
    def render(_stats, _opts), do: raise("kaput")
  end

  test "writes every format with default names, in order", %{dir: dir, stats: stats} do
    formats = [:terminal, :annotated, :html, :lcov, :cobertura, :coveralls, :json]
    assert {:ok, paths} = Writer.write(stats, formats, dir)

    assert Enum.map(paths, &Path.relative_to(&1, dir)) ==
             ~w(coverage.txt coverage.COVER.out coverage.html lcov.info cobertura.xml coveralls.json coverage.json)

    for {fmt, path} <- Enum.zip(formats, paths) do
      mod = LiveCov.Formats.formats()[fmt]
      expected = mod.render(stats, if(fmt == :terminal, do: [colors: false], else: []))
      assert File.read!(path) == IO.iodata_to_binary(expected), "#{fmt}"
    end

    refute File.read!(Path.join(dir, "coverage.txt")) =~ "\e["
    # no temp files left behind
    assert dir |> File.ls!() |> Enum.filter(&(&1 =~ ".tmp-")) == []
  end

  test "per-format options, file names and string names", %{dir: dir, stats: stats} do
    assert {:ok, [lcov, term]} =
             Writer.write(stats, ["lcov", :terminal], dir,
               format_opts: [lcov: [paths: :relative], terminal: [colors: true]],
               filenames: [lcov: "app.info"]
             )

    assert Path.basename(lcov) == "app.info"
    assert File.read!(lcov) =~ "SF:lib/report_app/calc.ex"
    assert File.read!(term) =~ "\e["
  end

  test "shared options reach every format; custom modules work", %{dir: dir, stats: stats} do
    assert {:ok, [path]} = Writer.write(stats, [Custom], dir, greeting: "hi")
    assert File.read!(path) == ~s(total=75.0 "hi")
  end

  test "split: true writes one annotated file per source", %{dir: dir, stats: stats} do
    assert {:ok, paths} = Writer.write(stats, [:annotated], dir, split: true)
    assert length(paths) == 4
    assert Path.join(dir, "annotated/lib/report_app/calc.ex.COVER.out") in paths
    assert Enum.all?(paths, &File.regular?/1)
  end

  test "overwrites existing reports atomically", %{dir: dir, stats: stats} do
    File.mkdir_p!(dir)
    File.write!(Path.join(dir, "lcov.info"), "old")
    assert {:ok, [path]} = Writer.write(stats, :lcov, dir)
    assert File.read!(path) =~ "end_of_record"
  end

  test "unknown format: clear error listing the valid ones, nothing written", %{
    dir: dir,
    stats: stats
  } do
    assert {:error, {:unknown_format, msg}} = Writer.write(stats, [:lcov, :pdf], dir)
    assert msg =~ ":pdf"
    assert msg =~ ":cobertura, :coveralls, :html, :json, :lcov, :terminal"
    refute File.exists?(Path.join(dir, "lcov.info"))
    assert {:error, {:unknown_format, _}} = Writer.write(stats, [], dir)
  end

  test "bad arguments are errors", %{dir: dir, stats: stats} do
    assert {:error, {:invalid_stats, _}} = Writer.write(%{}, [:lcov], dir)
    assert {:error, {:invalid_stats, _}} = Writer.write({:error, {:x, "y"}}, [:lcov], dir)
    assert {:error, {:invalid_option, _}} = Writer.write(stats, [:lcov], :dir)

    assert {:error, {:invalid_option, _}} =
             Writer.write(stats, [:lcov], dir, filenames: [lcov: "../x"])

    assert {:error, {:invalid_option, _}} = Writer.write(stats, [:lcov], dir, format_opts: :x)
  end

  test "render failures and unwritable directories are errors", %{dir: dir, stats: stats} do
    assert {:error, {:render_failed, msg}} = Writer.write(stats, [Broken], dir)
    assert msg =~ "kaput"

    File.mkdir_p!(dir)
    file = Path.join(dir, "a_file")
    File.write!(file, "")
    assert {:error, {:mkdir_failed, msg}} = Writer.write(stats, [:lcov], Path.join(file, "sub"))
    assert msg =~ "a_file"
  end

  test "atomic_write reports write failures", %{dir: dir} do
    File.mkdir_p!(Path.join(dir, "taken"))
    # renaming a file over a non-empty directory fails
    File.write!(Path.join([dir, "taken", "x"]), "")
    assert {:error, {:write_failed, _}} = Writer.atomic_write(Path.join(dir, "taken"), "data")
    assert dir |> File.ls!() |> Enum.filter(&(&1 =~ ".tmp-")) == []
  end
end
