defmodule LiveCov.Agent.MetricsTest do
  # LiveCov.Agent.Metrics: the Prometheus text exposition, checked with Prometheus' own parser
  # (`promtool check metrics`, Debian's `prometheus` package; or the `prometheus_client` Python
  # parser). scripts/install_agent_tools.sh installs them.
  use ExUnit.Case, async: false

  alias LiveCov.Agent.Metrics
  alias LiveCov.{Counter, Instrumented}
  alias LiveCov.Test.FixtureBuild

  @token "metrics-test-token-0123456789"

  @sample_line ~r/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? -?[0-9.e+]+$/

  describe "render/2 (pure)" do
    test "families, labels, totals and percentages" do
      rows = [
        %{application: "my_app", module: "Elixir.MyApp.Calc", sites: 40, hit: 30},
        %{application: "my_app", module: "my_mod", sites: 10, hit: 10},
        %{application: "other", module: "Elixir.Other", sites: 3, hit: 1},
        %{application: "", module: "loose", sites: 0, hit: 0}
      ]

      text = Metrics.render(rows, [{"node", "a@b"}, {"version", "1.0.0"}])
      lines = String.split(text, "\n", trim: true)

      assert ~s(live_cov_module_sites{application="my_app",module="Elixir.MyApp.Calc"} 40) in lines

      assert ~s(live_cov_module_sites_hit{application="my_app",module="Elixir.MyApp.Calc"} 30) in lines

      assert ~s(live_cov_module_coverage_percent{application="my_app",module="Elixir.MyApp.Calc"} 75.0) in lines

      assert ~s(live_cov_module_coverage_percent{application="other",module="Elixir.Other"} 33.333) in lines
      # No sites: nothing to miss.
      assert ~s(live_cov_module_coverage_percent{application="",module="loose"} 100) in lines
      assert ~s(live_cov_application_sites{application="my_app"} 50) in lines
      assert ~s(live_cov_application_sites_hit{application="my_app"} 40) in lines
      assert ~s(live_cov_application_coverage_percent{application="my_app"} 80.0) in lines
      # Modules of no application are in the totals, not in an application series.
      refute Enum.any?(lines, &(&1 =~ ~s(live_cov_application_sites{application=""})))
      assert "live_cov_sites 53" in lines
      assert "live_cov_sites_hit 41" in lines
      assert "live_cov_coverage_percent 77.358" in lines
      assert "live_cov_modules 4" in lines
      assert ~s(live_cov_info{node="a@b",version="1.0.0"} 1) in lines

      # Every family has HELP and TYPE before its samples; every other line is a sample.
      for line <- lines do
        assert String.starts_with?(line, "# HELP ") or String.starts_with?(line, "# TYPE ") or
                 Regex.match?(@sample_line, line),
               line
      end

      assert length(for "# TYPE " <> _ <- lines, do: 1) == 11
      assert_valid_exposition(text)
    end

    test "label values are escaped" do
      rows = [%{application: "a\"pp", module: "we\\ird\nname", sites: 2, hit: 1}]
      text = Metrics.render(rows)
      assert text =~ ~S(live_cov_module_sites{application="a\"pp",module="we\\ird\nname"} 2)
      assert_valid_exposition(text)
    end

    test "nothing instrumented is still a valid exposition" do
      text = Metrics.render([])
      assert text =~ "live_cov_sites 0\n"
      assert text =~ "live_cov_coverage_percent 100\n"
      assert_valid_exposition(text)
    end
  end

  describe "render/0 and GET /metrics (live)" do
    setup do
      {:ok, _} = Application.ensure_all_started(:live_cov)
      LiveCov.stop()
      dir = FixtureBuild.agent_app("agent_metrics")
      assert %{instrumented: [_, _]} = LiveCov.start(:agent_app)

      on_exit(fn ->
        LiveCov.Agent.stop()
        LiveCov.stop()
        FixtureBuild.remove_agent_app(dir)
      end)

      :ok
    end

    test "counts of the instrumented modules, per module and application" do
      apply(:agent_app_calc, :classify, [7])
      apply(:agent_app_text, :greet, [~c"x"])

      rows = Map.new(Metrics.rows(), &{&1.module, &1})

      for mod <- [:agent_app_calc, :agent_app_text] do
        info = Instrumented.lookup(mod)
        {:ok, counts} = Counter.read(info.slot)
        row = rows[Atom.to_string(mod)]
        assert row.application == "agent_app"
        assert row.sites == LiveCov.ModuleInfo.size(info)
        assert row.hit == Enum.count(counts, &(&1 > 0))
        assert row.hit > 0 and row.hit < row.sites
      end

      text = Metrics.render()
      assert text =~ ~s(live_cov_info{node="#{node()}",version=")
      assert_valid_exposition(text)

      # Hits move as the application runs.
      before = rows["agent_app_calc"].hit
      apply(:agent_app_calc, :loop, [3])
      assert Map.new(Metrics.rows(), &{&1.module, &1})["agent_app_calc"].hit > before
    end

    test "GET /metrics serves the same text with the exposition content type" do
      {:ok, info} = LiveCov.Agent.start(port: 0, token: @token)
      apply(:agent_app_calc, :add, [1, 2])

      {:ok, {{_, 200, _}, headers, body}} =
        :httpc.request(
          :get,
          {String.to_charlist(info.url <> "/metrics"),
           [{~c"authorization", String.to_charlist("Bearer " <> @token)}]},
          [],
          body_format: :binary
        )

      assert {~c"content-type", ~c"text/plain; version=0.0.4; charset=utf-8"} in headers
      assert body == Metrics.render()
      assert_valid_exposition(body)
    end
  end

  ## Validation with Prometheus' parser

  defp assert_valid_exposition(text) do
    case validator() do
      {:promtool, exe} ->
        {out, status} = run_with_input(exe, ["check", "metrics"], text)
        assert status == 0, "promtool check metrics failed:\n#{out}\n--- input ---\n#{text}"

      {:python, exe} ->
        script = """
        import sys
        from prometheus_client.parser import text_string_to_metric_families
        n = sum(len(f.samples) for f in text_string_to_metric_families(sys.stdin.read()))
        print(n)
        """

        {out, status} = run_with_input(exe, ["-c", script], text)
        assert status == 0, "prometheus_client could not parse the exposition:\n#{out}\n#{text}"

      nil ->
        IO.puts(
          "\n[metrics_test] neither promtool nor python prometheus_client found: run " <>
            "scripts/install_agent_tools.sh to validate with Prometheus' parser"
        )
    end
  end

  defp validator do
    cond do
      exe = System.find_executable("promtool") ->
        {:promtool, exe}

      (py = System.find_executable("python3")) &&
          match?(
            {_, 0},
            System.cmd(py, ["-c", "import prometheus_client.parser"], stderr_to_stdout: true)
          ) ->
        {:python, py}

      true ->
        nil
    end
  end

  # Feeds `input` on stdin (System.cmd has no stdin): through a temporary file and sh.
  defp run_with_input(exe, args, input) do
    path =
      Path.join(System.tmp_dir!(), "live_cov_metrics_#{System.unique_integer([:positive])}.txt")

    File.write!(path, input)

    try do
      cmd = Enum.map_join([exe | args], " ", &shell_quote/1) <> " < " <> shell_quote(path)
      System.cmd("sh", ["-c", cmd], stderr_to_stdout: true)
    after
      File.rm(path)
    end
  end

  defp shell_quote(s), do: "'" <> String.replace(s, "'", "'\\''") <> "'"
end
