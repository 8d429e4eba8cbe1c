Code.require_file("../../fixtures/report_app/report_fixture.exs", __DIR__)

defmodule LiveCov.Report.ConsumersTest do
  @moduledoc """
  Feeds our reports to the real third-party consumers:

    * genhtml (Debian `lcov`) must accept the LCOV output without warnings;
    * pycobertura must parse the Cobertura XML and agree with our totals;
    * headless Chromium must open the HTML page without console errors and show
      every per-file percentage.

  Tagged `:consumers`. When a tool is missing and these tests are not
  excluded, `scripts/install_report_consumers.sh` is run once (at load time);
  tests whose tool still cannot be installed are skipped with a loud message.
  """
  use ExUnit.Case, async: false

  alias LiveCov.Format.{Cobertura, HTML, LCOV}
  alias LiveCov.JSON, as: JSONText
  alias LiveCov.ReportFixture, as: Fx

  @moduletag :consumers
  @moduletag timeout: 300_000

  script = Path.expand("../../../scripts/install_report_consumers.sh", __DIR__)

  # Tries to install missing tools only when these tests are going to run:
  # explicitly included, or simply not excluded.
  config = ExUnit.configuration()

  tagged? = fn key ->
    config
    |> Keyword.get(key, [])
    |> Enum.any?(fn
      {:consumers, _} -> true
      :consumers -> true
      _ -> false
    end)
  end

  included? = tagged?.(:include) or not tagged?.(:exclude)

  find = fn ->
    %{
      genhtml: System.find_executable("genhtml"),
      # pip may put it outside PATH (e.g. /usr/local/bin under a minimal PATH)
      pycobertura:
        System.find_executable("pycobertura") ||
          Enum.find(
            ["/usr/local/bin/pycobertura", Path.expand("~/.local/bin/pycobertura")],
            &File.exists?/1
          ),
      chromium: System.find_executable("chromium") || System.find_executable("chromium-browser")
    }
  end

  tools = find.()

  tools =
    if included? and Enum.any?(tools, fn {_, v} -> v == nil end) do
      IO.puts(:stderr, "\n[consumers] some report consumers are missing; running #{script}")
      {out, status} = System.cmd("bash", [script], stderr_to_stdout: true)
      IO.puts(:stderr, out)
      if status != 0, do: IO.puts(:stderr, "[consumers] installer exited with #{status}")
      find.()
    else
      tools
    end

  @tools tools

  for {tool, nil} <- tools, included? do
    IO.puts(:stderr, """

    !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
    !!! SKIPPING #{tool} consumer test: #{tool} could not be installed.
    !!! Run scripts/install_report_consumers.sh (needs apt-get and pip).
    !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
    """)
  end

  setup do
    dir = Path.join(System.tmp_dir!(), "live_cov_consumers_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    %{dir: dir}
  end

  defp run(cmd, args, opts \\ []) do
    err = Path.join(System.tmp_dir!(), "live_cov_stderr_#{System.unique_integer([:positive])}")

    try do
      # stderr captured separately: the checks below are about stderr
      {out, status} = System.cmd("sh", ["-c", ~s("$0" "$@" 2>"#{err}") | [cmd | args]], opts)

      {out, File.read!(err), status}
    after
      File.rm(err)
    end
  end

  @tag skip: if(@tools.genhtml, do: false, else: "genhtml not installed")
  test "genhtml accepts our LCOV without errors or warnings", %{dir: dir} do
    stats = Fx.stats()
    info = Path.join(dir, "lcov.info")
    File.write!(info, LCOV.render(stats, []))

    {out, err, status} = run(@tools.genhtml, ["--output-directory", Path.join(dir, "html"), info])
    assert status == 0, out <> err
    refute err =~ ~r/WARNING|ERROR/i, err
    refute out =~ ~r/WARNING|ERROR/i, out

    # genhtml's own totals agree with ours
    # genhtml 1.x prints "lines......:", 2.x "lines.......:".
    assert out =~ ~r/lines\.+: 75\.0% \(9 of 12 lines\)/
    fns = Enum.flat_map(stats.files, & &1.functions)

    assert out =~
             ~r/functions\.+: 88\.9% \(#{Enum.count(fns, &(&1.count > 0))} of #{length(fns)} functions\)/

    calc_page = Path.join([dir, "html", "lib", "report_app", "calc.ex.gcov.html"])
    assert File.exists?(calc_page)
    assert File.read!(calc_page) =~ "a + b"
  end

  @tag skip: if(@tools.pycobertura, do: false, else: "pycobertura not installed")
  test "pycobertura parses our Cobertura and its totals equal ours", %{dir: dir} do
    stats = Fx.stats()
    xml = Path.join(dir, "cobertura.xml")
    File.write!(xml, Cobertura.render(stats, []))

    {out, err, status} = run(@tools.pycobertura, ["show", "--format", "json", xml])
    assert status == 0, out <> err
    {:ok, doc} = JSONText.decode(out)

    assert doc["total"]["Stmts"] == stats.sloc
    assert doc["total"]["Miss"] == stats.misses

    assert doc["total"]["Cover"] ==
             :erlang.float_to_binary(stats.hits / stats.sloc * 100, decimals: 2) <> "%"

    got = for f <- doc["files"], do: {f["Filename"], f["Stmts"], f["Miss"]}
    assert got == for(f <- stats.files, do: {f.filename, f.sloc, f.misses})

    # its HTML output reads the sources through <source> + filename
    html = Path.join(dir, "py.html")

    {out, err, status} =
      run(@tools.pycobertura, ["show", "-f", "html", "-s", Fx.dir(), "-o", html, xml])

    assert status == 0, out <> err
    assert File.read!(html) =~ "ReportApp.Calc"
  end

  describe "chromium" do
    @describetag skip: if(@tools.chromium, do: false, else: "chromium not installed")

    defp chromium(url, extra) do
      profile =
        Path.join(System.tmp_dir!(), "live_cov_chrome_#{System.unique_integer([:positive])}")

      File.mkdir_p!(profile)

      args = ~w(--headless --no-sandbox --disable-gpu --disable-background-networking
           --disable-component-update --disable-sync --no-first-run
           --enable-logging=stderr --v=0) ++ ["--user-data-dir=#{profile}" | extra] ++ [url]

      try do
        run(@tools.chromium, args)
      after
        File.rm_rf(profile)
      end
    end

    defp console_lines(stderr),
      do: stderr |> String.split("\n") |> Enum.filter(&(&1 =~ ":CONSOLE"))

    test "the detector sees console errors (self-check)", %{dir: dir} do
      page = Path.join(dir, "bad.html")
      File.write!(page, "<html><body><script>notDefinedAnywhere();</script></body></html>")
      {_dom, err, 0} = chromium("file://" <> page, ["--dump-dom"])
      assert [line] = console_lines(err)
      assert line =~ "notDefinedAnywhere"
    end

    test "opens the report with no console errors and shows every percentage", %{dir: dir} do
      stats = Fx.stats_with_missing()
      page = Path.join(dir, "coverage.html")
      File.write!(page, HTML.render(stats, []))

      {dom, err, status} = chromium("file://" <> page, ["--dump-dom"])
      assert status == 0, err
      assert console_lines(err) == []

      for f <- stats.files do
        assert dom =~ ~s(data-file="#{f.filename}">#{LiveCov.Format.Text.pct(f.coverage)}%</span>)
      end

      assert dom =~ ~s(id="total-coverage" class="pct cov-mid">71.4%</span>)
      # the inline script ran
      assert dom =~ ~s(<span id="shown-count" class="meta">5 / 5 files</span>)
    end

    test "the inline filter hides non-matching files", %{dir: dir} do
      page = Path.join(dir, "coverage.html")
      File.write!(page, HTML.render(Fx.stats(), []))

      {dom, err, 0} = chromium("file://" <> page <> "?filter=calc", ["--dump-dom"])
      assert console_lines(err) == []
      assert dom =~ "1 / 4 files"
      assert dom =~ ~s(<tr class="cov-mid" data-name="lib/report_app/calc.ex")
      assert dom =~ ~s(<tr class="cov-high hidden" data-name="lib/report_app/ignored.ex")
      assert dom =~ ~s(<section class="src-file cov-high hidden" id="f-2">)

      {dom, _err, 0} = chromium("file://" <> page <> "?missed=1", ["--dump-dom"])
      assert dom =~ "3 / 4 files"
    end

    test "renders to a screenshot", %{dir: dir} do
      page = Path.join(dir, "coverage.html")
      File.write!(page, HTML.render(Fx.stats(), []))
      png = Path.join(dir, "shot.png")

      {_out, err, 0} =
        chromium("file://" <> page, ["--screenshot=#{png}", "--window-size=1200,900"])

      assert console_lines(err) == []
      assert <<0x89, "PNG", _::binary>> = File.read!(png)
    end
  end
end
