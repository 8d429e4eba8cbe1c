defmodule LiveCov.GatewayTest do
  @moduledoc """
  Unit tests of the gateway: configuration, the per-source data rules (replace, fold a
  previous life into the retired total), the store, runs, backoff, and the HTTP API and
  dashboard against an agent running in this VM. The multi-node end-to-end test is
  `LiveCov.GatewayE2ETest`.
  """
  use ExUnit.Case, async: false

  alias LiveCov.Gateway
  alias LiveCov.Gateway.{Config, Runs, Source, Store, View}
  alias LiveCov.Snapshot
  alias LiveCov.Test.{FixtureBuild, HTTP}

  @token "gateway-unit-token-0123456789"
  @agent_token "gateway-unit-agent-token-0123"
  @mod :gw_unit_fx
  @fx_source """
  -module(gw_unit_fx).
  -export([sign/1, twice/1]).

  sign(X) when X > 0 ->
      pos;
  sign(0) ->
      zero;
  sign(_) ->
      neg.

  twice(X) ->
      Y = X * 2,
      Y.
  """

  setup_all do
    {:ok, _} = Application.ensure_all_started(:live_cov)
    dir = tmp("gw_unit_fx")
    src = Path.join(dir, "gw_unit_fx.erl")
    File.write!(src, @fx_source)

    {:ok, @mod} =
      :compile.file(String.to_charlist(src), [:debug_info, outdir: String.to_charlist(dir)])

    :code.add_patha(String.to_charlist(dir))
    {:module, @mod} = :code.load_file(@mod)

    on_exit(fn ->
      _ = Gateway.stop()
      _ = LiveCov.Agent.stop()
      LiveCov.stop()
      :code.del_path(String.to_charlist(dir))
      File.rm_rf(dir)
    end)

    {:ok, fx_dir: dir}
  end

  setup do
    _ = Gateway.stop()
    LiveCov.stop()
    %{instrumented: [@mod]} = LiveCov.start(@mod)
    on_exit(fn -> Gateway.stop() end)
    :ok
  end

  defp tmp(tag), do: FixtureBuild.tmp_dir(tag)

  defp config(extra \\ []) do
    Keyword.merge(
      [data_dir: tmp("gw_data"), agents: [[url: "http://127.0.0.1:1", service: "s"]]],
      extra
    )
  end

  ## Configuration

  describe "config" do
    test "the sample config in examples/ is valid" do
      System.put_env("LIVE_COV_AGENT_TOKEN", @agent_token)
      on_exit(fn -> System.delete_env("LIVE_COV_AGENT_TOKEN") end)
      assert {:ok, %Config{} = c} = Config.load("examples/gateway.exs")
      assert [%{name: "api-1", service: "api", token: @agent_token} | _] = c.sources
      assert Config.services(c) == ["api"]
      assert [%{type: :directory, formats: [:lcov, :cobertura, :html, :json]}] = c.publishers
      assert Config.stats_opts(c)[:path_map] == [{"/build/my_app", "/srv/checkouts/my_app"}]
    end

    test "defaults" do
      assert {:ok, c} = Config.new(config())

      assert {c.port, c.bind, c.interval, c.timeout, c.backoff} ==
               {9570, {127, 0, 0, 1}, 10_000, 5_000, 10_000}

      assert [%{kind: :agent, name: "http://127.0.0.1:1", token: nil}] = c.sources
    end

    test "bad configurations are refused with the option named" do
      bad = [
        {[data_dir: nil], "data_dir: required"},
        {[colour: :red], "unknown gateway option"},
        {[agents: [[url: "ftp://x"]]], "agents[0].url"},
        {[agents: [[url: "http://a:1", toke: "x"]]], "unknown key(s) [:toke]"},
        {[agents: [[url: "http://a:1", token: "short"]]], "too short"},
        {[agents: [], nodes: []], "no sources"},
        {[agents: [[url: "http://a:1"], [url: "http://a:1"]]], "used twice"},
        {[bind: "0.0.0.0"], "token: required when binding 0.0.0.0"},
        {[interval: 0], "interval"},
        {[publishers: [[type: :ftp]]], "publishers[0].type"},
        {[publishers: [[type: :directory, dir: "/x", formats: [:pdf]]]], ":pdf is not a format"},
        {[source_roots: [42]], "source_roots"},
        {[report_opts: [root: 5]], "report_opts"},
        {[nodes: [[node: 5]]], "nodes[0].node"},
        {[agents: [[url: "http://a:1", token: {:system, "LC_GW_NO_SUCH"}]]], "LC_GW_NO_SUCH"}
      ]

      for {opts, expected} <- bad do
        assert {:error, {:invalid_gateway_config, msg}} = Config.new(config(opts)),
               "#{inspect(opts)} was accepted"

        assert msg =~ expected, "#{inspect(opts)}: #{msg}"
      end

      assert {:error, {:invalid_gateway_config, _}} = Config.new(:nope)
    end

    test "config files: missing, broken, valid" do
      dir = tmp("gw_cfg")
      assert {:error, {_, m1}} = Config.load(Path.join(dir, "none.exs"))
      assert m1 =~ "does not exist"
      File.write!(Path.join(dir, "broken.exs"), "[data_dir: ")
      assert {:error, {_, m2}} = Config.load(Path.join(dir, "broken.exs"))
      assert m2 =~ "could not be evaluated"

      File.write!(
        Path.join(dir, "ok.exs"),
        inspect(data_dir: dir, nodes: [[node: :"a@127.0.0.1", service: "w"]])
      )

      assert {:ok, %{sources: [%{kind: :node, name: "a@127.0.0.1"}]}} =
               Config.load(Path.join(dir, "ok.exs"))
    end
  end

  ## Source data rules

  defp snap_after(calls) do
    Enum.each(calls, fn {f, a} -> apply(@mod, f, a) end)
    snap = LiveCov.snapshot()
    {:ok, bin} = Snapshot.encode(snap)
    {snap, bin}
  end

  defp fx(fun, arg), do: apply(@mod, fun, [arg])

  defp hits(snap), do: Snapshot.counts(snap, @mod, loaded: MapSet.new())

  describe "source" do
    test "a later snapshot of the same life replaces the previous one" do
      s = Source.new(%{name: "a", kind: :agent, service: "s"})
      {s1, b1} = snap_after(sign: [1])
      {s2, b2} = snap_after(sign: [1], sign: [0])
      s = s |> Source.absorb(s1, b1, 1) |> Source.absorb(s2, b2, 2)
      assert s.retired == nil
      assert hits(Source.total(s)) == hits(s2)
      assert s.lives == 1 and s.pulls == 2 and s.status == :up
    end

    test "a new life (other os pid) folds the previous one into the retired total" do
      s = Source.new(%{name: "a", kind: :agent, service: "s"})
      {s1, b1} = snap_after(sign: [1], twice: [2])
      [o] = s1.provenance
      LiveCov.reset()
      {s2, _} = snap_after(sign: [-1])
      s2 = %{s2 | provenance: [%{o | os_pid: "999999"}]}
      {:ok, b2} = Snapshot.encode(s2)

      s = s |> Source.absorb(s1, b1, 1) |> Source.absorb(s2, b2, 2)
      assert s.lives == 2
      assert hits(Source.total(s)) == Enum.zip_with(hits(s1), hits(s2), &+/2)
      assert hits(s.retired) == hits(s1)
    end

    test "a new life with the same node and os pid (a container restart) is told by its boot id" do
      s = Source.new(%{name: "a", kind: :agent, service: "s"})
      {s1, b1} = snap_after(sign: [1])
      [o] = s1.provenance
      assert o.labels["live_cov_boot"] == LiveCov.Capture.boot_id()
      # The restarted node already ran more than before on every line: counts alone would not
      # show the restart, the boot id does.
      {s2, _} = snap_after(sign: [1], sign: [1], twice: [2])
      s2 = %{s2 | provenance: [%{o | labels: Map.put(o.labels, "live_cov_boot", "other")}]}
      {:ok, b2} = Snapshot.encode(s2)
      assert Source.monotonic?(s1, s2)

      s = s |> Source.absorb(s1, b1, 1) |> Source.absorb(s2, b2, 2)
      assert s.lives == 2
      assert hits(s.retired) == hits(s1)
    end

    test "counters going down (reset elsewhere, same pid) also fold" do
      s = Source.new(%{name: "a", kind: :agent, service: "s"})
      {s1, b1} = snap_after(sign: [1], sign: [1])
      LiveCov.reset()
      {s2, b2} = snap_after(sign: [0])
      refute Source.monotonic?(s1, s2)
      s = s |> Source.absorb(s1, b1, 1) |> Source.absorb(s2, b2, 2)
      assert hits(Source.total(s)) == Enum.zip_with(hits(s1), hits(s2), &+/2)
    end

    test "a build that disappeared is not monotonic; an empty snapshot follows anything" do
      {s1, _} = snap_after(sign: [1])
      refute Source.monotonic?(s1, %Snapshot{})
      assert Source.monotonic?(%Snapshot{}, s1)
      assert Source.monotonic?(s1, s1)
    end

    test "reset: true folds the dumped snapshot at once; the next pull is not a new life" do
      s = Source.new(%{name: "a", kind: :agent, service: "s"})
      {s1, b1} = snap_after(sign: [1])
      s = Source.absorb(s, s1, b1, 1, reset: true)
      assert s.current == nil and hits(s.retired) == hits(s1)
      LiveCov.reset()
      {s2, b2} = snap_after(sign: [0])
      s = Source.absorb(s, s2, b2, 2)
      assert s.lives == 1
      assert hits(Source.total(s)) == Enum.zip_with(hits(s1), hits(s2), &+/2)
    end

    test "dump/restore keeps the data; build ids and backoff" do
      s = Source.new(%{name: "a", kind: :agent, service: "s", token: "secret"})
      {s1, b1} = snap_after(twice: [1])
      s = s |> Source.absorb(s1, b1, 1) |> Source.retire()
      {s2, b2} = snap_after(twice: [1])
      s = Source.absorb(s, s2, b2, 2)
      dumped = Source.dump(s)
      refute Map.has_key?(dumped, :token)

      {:ok, r} = Source.restore(Source.new(%{name: "a", kind: :agent, service: "s"}), dumped)
      assert hits(Source.total(r)) == hits(Source.total(s))
      assert r.status == :stale
      assert Source.build_id(s1) == Source.build_id(s2)
      assert Source.build_id(s1) =~ ~r/^[0-9a-f]{12}$/
      assert Enum.map(1..6, &Source.backoff(&1, 100, 1_000)) == [100, 200, 400, 800, 1000, 1000]
    end
  end

  ## Store

  describe "store" do
    test "state round-trips; a corrupted file is moved aside and the previous one used" do
      dir = tmp("gw_store")
      assert {:ok, %{}} = Store.load(dir)
      :ok = Store.save(dir, %{seq: 1})
      :ok = Store.save(dir, %{seq: 2})
      assert {:ok, %{seq: 2}} = Store.load(dir)

      File.write!(Store.state_path(dir), "garbage")
      ExUnit.CaptureLog.capture_log(fn -> assert {:ok, %{seq: 1}} = Store.load(dir) end)
      assert [_] = Path.wildcard(Store.state_path(dir) <> ".corrupt-*")

      assert Store.safe("../a b") == "%2E%2E%2Fa%20b"
    end
  end

  ## Runs

  describe "runs" do
    test "parameters are validated" do
      assert {:ok, %{name: "run", reset: false, services: ["a", "b"]}} =
               Runs.params(%{}, ["a", "b"])

      assert {:ok, %{services: ["b"], reset: true}} =
               Runs.params(%{"services" => ["b"], "reset" => true}, ["a", "b"])

      assert {:error, {:unknown_service, _}} = Runs.params(%{"services" => ["x"]}, ["a"])
      assert {:error, {:invalid_body, m}} = Runs.params(%{"nope" => 1}, ["a"])
      assert m =~ "unknown field"
      assert {:error, {:invalid_body, _}} = Runs.params(%{"reset" => "yes"}, ["a"])
      assert {:error, {:invalid_body, _}} = Runs.params(%{"labels" => %{"a" => 1}}, ["a"])
      assert {:error, {:invalid_body, _}} = Runs.params([], ["a"])
    end

    test "a run measures the growth of its sources' totals, across a restart" do
      s = Source.new(%{name: "a", kind: :agent, service: "svc"})
      {s0, b0} = snap_after(sign: [1])
      s = Source.absorb(s, s0, b0, 1)
      {:ok, params} = Runs.params(%{"name" => "t"}, ["svc"])
      run = Runs.new("r1", params, [s], 2)

      {s1, b1} = snap_after(sign: [0])
      s = Source.absorb(s, s1, b1, 3)
      # the source restarts: its new life counts from zero
      [o] = s1.provenance
      LiveCov.reset()
      {s2, _} = snap_after(sign: [-1])
      s2 = %{s2 | provenance: [%{o | os_pid: "12345678"}]}
      {:ok, b2} = Snapshot.encode(s2)
      s = Source.absorb(s, s2, b2, 4)

      assert {:ok, %{"svc" => measured}} = Runs.measure(run, %{"a" => s})
      expected = hits(s1) |> Enum.zip_with(hits(s0), &-/2) |> Enum.zip_with(hits(s2), &+/2)
      assert hits(measured) == expected
    end
  end

  ## The running gateway

  defp start_agent do
    _ = LiveCov.Agent.stop()
    {:ok, info} = LiveCov.Agent.start(port: 0, token: @agent_token)
    on_exit(fn -> LiveCov.Agent.stop() end)
    info.url
  end

  defp start_gateway(agent_url, fx_dir, extra \\ []) do
    data = tmp("gw_data")

    opts =
      Keyword.merge(
        [
          data_dir: data,
          port: 0,
          interval: 200,
          timeout: 2_000,
          source_roots: [fx_dir],
          report_opts: [root: fx_dir],
          agents: [[name: "local", url: agent_url, token: @agent_token, service: "svc"]],
          publishers: [[type: :directory, dir: Path.join(data, "published")]]
        ],
        extra
      )

    {:ok, info} = Gateway.start(opts)
    info
  end

  defp http(method, url, opts \\ []),
    do: HTTP.request(method, url, Keyword.put_new(opts, :timeout, 30_000))

  defp json!(body), do: LiveCov.JSON.decode!(body)

  defp wait_until(fun, tries \\ 100) do
    cond do
      fun.() -> :ok
      tries == 0 -> flunk("condition not met in time")
      true -> Process.sleep(50) && wait_until(fun, tries - 1)
    end
  end

  describe "gateway over HTTP" do
    test "pulls, runs with reset, publishes; API and pages agree", %{fx_dir: fx_dir} do
      agent = start_agent()
      fx(:sign, 1)
      info = start_gateway(agent, fx_dir)
      assert {:error, {:already_started, _}} = Gateway.start(config())
      wait_until(fn -> match?(%{sources: [%{status: :up}]}, Gateway.status()) end)

      {201, _, body} = http(:post, info.url <> "/runs", body: ~s({"name":"unit","reset":true}))
      %{"id" => id, "status" => "running"} = json!(body)
      fx(:sign, 0)
      fx(:twice, 3)
      {200, _, body} = http(:post, info.url <> "/runs/#{id}/finish")
      run = json!(body)
      assert %{"status" => "finished", "results" => %{"svc" => result}} = run
      # sign(0) and twice/1: 3 of 5 lines (sign(1) ran before the reset)
      assert result == %{
               "coverage" => 60.0,
               "sloc" => 5,
               "hits" => 3,
               "misses" => 2,
               "files" => 1
             }

      assert [%{"ok" => true, "detail" => paths}] = run["publish"]
      lcov = File.read!(Enum.find(paths, &String.ends_with?(&1, "lcov.info")))
      assert lcov =~ "SF:" and lcov =~ "DA:5,0\n" and lcov =~ "DA:7,1\n"

      {409, _, body} = http(:post, info.url <> "/runs/#{id}/finish")
      assert %{"error" => %{"kind" => "conflict"}} = json!(body)

      # the service total has everything, before and after the reset
      {200, _, body} = http(:get, info.url <> "/api/services/svc")
      svc = json!(body)
      assert {svc["hits"], svc["misses"]} == {4, 1}
      assert [%{"filename" => "gw_unit_fx.erl", "hits" => 4}] = svc["files"]

      {200, _, body} = http(:get, info.url <> "/api/services/svc/source?file=gw_unit_fx.erl")
      lines = json!(body)["lines"]
      assert %{"line" => 5, "hits" => 1, "text" => "    pos;"} = Enum.at(lines, 4)
      assert %{"hits" => nil} = Enum.at(lines, 0)

      {200, headers, page} = http(:get, info.url <> "/services/svc")
      assert headers["content-security-policy"] =~ "script-src 'self'"

      assert page =~
               ~s(id="total-coverage" data-coverage="#{LiveCov.Format.Text.pct(svc["coverage"])}")

      assert page =~ ~s(data-file="gw_unit_fx.erl" data-coverage="80.0">80.0%)

      {200, _, page} = http(:get, info.url <> "/")
      assert page =~ ~s(data-run="#{id}" data-service="svc" data-coverage="60.0")
      assert page =~ ~s(<svg class="chart" id="runs-chart")

      {200, _, page} =
        http(:get, info.url <> "/runs/#{id}/source?service=svc&file=gw_unit_fx.erl")

      assert page =~ ~s(<tr class="line miss" id="L5">)

      {:ok, {{_, 200, _}, _, ""}} =
        :httpc.request(:head, {String.to_charlist(info.url <> "/"), []}, [], body_format: :binary)

      {200, h, css} = http(:get, info.url <> "/assets/gateway.css")
      assert h["content-type"] =~ "text/css" and css =~ ":root"

      {200, _, bin} = http(:get, info.url <> "/api/services/svc/snapshot")
      assert {:ok, %Snapshot{}} = Snapshot.decode(bin)
    end

    test "errors: JSON for the API, pages otherwise; POST needs JSON or the token", %{
      fx_dir: fx_dir
    } do
      info = start_gateway(start_agent(), fx_dir)

      assert {404, _, body} = http(:get, info.url <> "/api/services/nope")
      assert %{"error" => %{"kind" => "not_found", "message" => m}} = json!(body)
      assert m =~ ~s(services: ["svc"])
      assert {404, h, page} = http(:get, info.url <> "/nowhere")
      assert h["content-type"] =~ "text/html" and page =~ "no page or route"
      assert {405, _, _} = http(:get, info.url <> "/runs")
      assert {415, _, _} = http(:post, info.url <> "/runs", type: "text/plain", body: "x")
      assert {400, _, body} = http(:post, info.url <> "/runs", body: "{nope")
      assert %{"error" => %{"kind" => "malformed_json"}} = json!(body)
      assert {404, _, _} = http(:post, info.url <> "/runs", body: ~s({"services":["x"]}))
      assert {404, _, _} = http(:post, info.url <> "/runs/r9-0000/finish")
      assert {400, _, _} = http(:get, info.url <> "/api/services/svc/source")
    end

    test "a port in use is a clear error and the caller survives", %{fx_dir: fx_dir} do
      {:ok, listener} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
      on_exit(fn -> :gen_tcp.close(listener) end)
      {:ok, port} = :inet.port(listener)

      opts =
        [data_dir: tmp("gw_data"), port: port, source_roots: [fx_dir]] ++
          Keyword.take(config(), [:agents])

      ExUnit.CaptureLog.capture_log(fn ->
        assert {:error, {:listen_failed, msg}} = Gateway.start(opts)
        assert msg =~ "127.0.0.1:#{port}"
      end)

      refute Gateway.running?()
      assert {:error, {:not_running, _}} = Gateway.stop()
    end

    test "the puller names what went wrong" do
      url = start_agent()

      agent =
        Source.new(%{
          name: "x",
          kind: :agent,
          service: "s",
          url: url,
          token: "wrong-token-0123456789"
        })

      assert {:error, {:unauthorized, m}} = LiveCov.Gateway.Puller.fetch(agent, 2_000)
      assert m =~ "refused the token"

      assert {:ok, %Snapshot{}, _} =
               LiveCov.Gateway.Puller.fetch(%{agent | token: @agent_token}, 2_000)

      node = Source.new(%{name: "n", kind: :node, service: "s", node: :"nowhere_gw@127.0.0.1"})
      assert {:error, {kind, _}} = LiveCov.Gateway.Puller.fetch(node, 500)
      assert kind in [:node_error, :unreachable]
    end

    test "a reset pull whose answer was lost: the retry with its key gets that dump" do
      url = start_agent()
      agent = Source.new(%{name: "x", kind: :agent, service: "s", url: url, token: @agent_token})
      LiveCov.reset()
      fx(:sign, 1)
      fx(:sign, 0)
      key = "gw-test-#{System.unique_integer([:positive])}"

      # The agent dumped for the first attempt, whose answer never arrived ...
      lost = LiveCov.dump_and_reset(key: key)
      assert Enum.sum(hits(lost)) > 0
      # ... the retry gets the same counts, and nothing is dumped twice.
      assert {:ok, snap, _} = LiveCov.Gateway.Puller.fetch(agent, 2_000, reset: true, key: key)
      assert hits(snap) == hits(lost)
      assert {:ok, again, _} = LiveCov.Gateway.Puller.fetch(agent, 2_000, reset: true)
      assert Enum.sum(hits(again)) == 0

      # Transport failures of a reset pull are retried (same key) before giving up.
      {:ok, listener} = :gen_tcp.listen(0, [])
      {:ok, port} = :inet.port(listener)
      :ok = :gen_tcp.close(listener)
      gone = %{agent | url: "http://127.0.0.1:#{port}"}
      {us, result} = :timer.tc(fn -> LiveCov.Gateway.Puller.fetch(gone, 1_000, reset: true) end)
      assert {:error, {:unreachable, _}} = result
      assert us >= 2 * 250_000
    end

    test "with a token, POST and the snapshot need it", %{fx_dir: fx_dir} do
      info = start_gateway(start_agent(), fx_dir, token: @token)
      assert {401, _, _} = http(:post, info.url <> "/runs", body: "{}")
      assert {401, _, _} = http(:get, info.url <> "/api/services/svc/snapshot")

      auth = [{"authorization", "Bearer " <> @token}]
      assert {201, _, _} = http(:post, info.url <> "/runs", body: "{}", headers: auth)
      assert {200, _, _} = http(:get, info.url <> "/api/services/svc/snapshot", headers: auth)
      assert {200, _, _} = http(:get, info.url <> "/api/status")
    end

    test "files outside the source roots show numbers but no text", %{fx_dir: fx_dir} do
      fx(:sign, 1)
      info = start_gateway(start_agent(), fx_dir, source_roots: [tmp("elsewhere")])
      Gateway.pull()
      {200, _, body} = http(:get, info.url <> "/api/services/svc")
      [%{"filename" => name, "hits" => 1}] = json!(body)["files"]

      {200, _, body} =
        http(:get, info.url <> "/api/services/svc/source?file=#{URI.encode_www_form(name)}")

      doc = json!(body)
      assert doc["source_shown"] == false
      assert Enum.all?(doc["lines"], &(&1["text"] == ""))
    end

    test "a source that fails keeps its data and backs off; state survives a restart",
         %{fx_dir: fx_dir} do
      agent = start_agent()
      fx(:twice, 1)
      info = start_gateway(agent, fx_dir, backoff: 300, max_backoff: 600)
      Gateway.pull()
      {:ok, {_, before}} = View.service_snapshot("svc")
      LiveCov.Agent.stop()

      ExUnit.CaptureLog.capture_log(fn ->
        wait_until(fn ->
          match?(%{sources: [%{status: :down, failures: f}]} when f >= 2, Gateway.status())
        end)
      end)

      [src] = Gateway.status().sources
      assert src.last_error =~ "unreachable"
      {:ok, {_, still}} = View.service_snapshot("svc")
      assert still.counts == before.counts

      # restart the gateway on the same data dir: the data is back before any pull
      :ok = Gateway.stop()
      assert View.state() == nil

      ExUnit.CaptureLog.capture_log(fn ->
        {:ok, _} =
          Gateway.start(
            data_dir: info.data_dir,
            port: 0,
            interval: 60_000,
            agents: [[name: "local", url: agent, service: "svc"]]
          )
      end)

      {:ok, {_, restored}} = View.service_snapshot("svc")
      assert restored.counts == before.counts
      assert [%{status: status, last_ok: last_ok}] = Gateway.status().sources
      assert status in [:stale, :down] and is_integer(last_ok)
    end
  end
end
