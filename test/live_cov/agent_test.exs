defmodule LiveCov.AgentTest do
  # The agent over real HTTP (:httpc against the :inets httpd on 127.0.0.1), driving real
  # instrumentation of the agent_app fixture application (test/fixtures/agent_app).
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog

  alias LiveCov.Agent
  alias LiveCov.Agent.{Flight, Handler}
  alias LiveCov.Test.{FixtureBuild, HTTP}

  @token "agent-test-token-0123456789"

  setup_all do
    {:ok, _} = Application.ensure_all_started(:live_cov)
    _ = Agent.stop()
    dir = FixtureBuild.agent_app("agent_app")

    on_exit(fn ->
      _ = Agent.stop()
      LiveCov.stop()
      FixtureBuild.remove_agent_app(dir)
    end)

    {:ok, app_dir: dir}
  end

  setup do
    _ = Agent.stop()
    LiveCov.stop()
    {:ok, info} = Agent.start(port: 0, token: @token)
    on_exit(fn -> Agent.stop() end)
    {:ok, url: info.url}
  end

  ## Starting and stopping

  describe "start/stop/config" do
    test "refuses to start without a token, with a clear message" do
      Agent.stop()
      assert {:error, {:invalid_agent_config, msg}} = Agent.start(port: 0)
      assert msg =~ "needs a token"
      refute Agent.running?()
    end

    test "auth: false only on a loopback bind" do
      Agent.stop()

      assert {:error, {:invalid_agent_config, msg}} =
               Agent.start(port: 0, auth: false, bind: "0.0.0.0")

      assert msg =~ "not a loopback address"

      assert {:ok, info} = Agent.start(port: 0, auth: false)
      assert info.auth == false
      assert {200, _, body} = http(info.url, :get, "/status", token: nil)
      assert %{"node" => _} = LiveCov.JSON.decode!(body)
    end

    test "bad options are refused with the option named" do
      Agent.stop()

      assert {:error, {:invalid_agent_config, m1}} = Agent.start(port: 0, token: "short")
      assert m1 =~ "too short"
      assert {:error, {:invalid_agent_config, m2}} = Agent.start(token: @token, bind: "nowhere")
      assert m2 =~ "bind"
      assert {:error, {:invalid_agent_config, m3}} = Agent.start(token: @token, colour: :red)
      assert m3 =~ "unknown agent option"
      assert {:error, {:invalid_agent_config, m4}} = Agent.start(token: @token, port: 70_000)
      assert m4 =~ "port"

      assert {:error, {:invalid_agent_config, m5}} =
               Agent.start(token: {:system, "LC_NO_SUCH_VAR"})

      assert m5 =~ "LC_NO_SUCH_VAR"
    end

    test "the token may come from the environment" do
      Agent.stop()
      System.put_env("LIVE_COV_AGENT_TEST_TOKEN", @token)
      on_exit(fn -> System.delete_env("LIVE_COV_AGENT_TEST_TOKEN") end)
      assert {:ok, info} = Agent.start(port: 0, token: {:system, "LIVE_COV_AGENT_TEST_TOKEN"})
      assert {200, _, _} = http(info.url, :get, "/status")
    end

    test "a second start is refused; stop frees the port", %{url: url} do
      assert {:error, {:already_started, msg}} = Agent.start(port: 0, token: @token)
      assert msg =~ url
      assert Agent.url() == url
      assert %{auth: true, port: port} = Agent.config()
      refute Map.has_key?(Agent.config(), :token)

      assert :ok = Agent.stop()
      assert {:error, {:not_running, _}} = Agent.stop()
      assert Agent.config() == nil
      refute agent_listening?(port)
    end

    # Nothing answers on `port` any more, or (another test's listener took the freed port
    # meanwhile) what answers is not a LiveCov agent.
    defp agent_listening?(port) do
      case :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false], 1_000) do
        {:error, :econnrefused} ->
          false

        {:ok, socket} ->
          :ok = :gen_tcp.send(socket, "GET /health HTTP/1.0\r\n\r\n")
          answer = :gen_tcp.recv(socket, 0, 1_000)
          :gen_tcp.close(socket)
          match?({:ok, text} when is_binary(text), answer) and elem(answer, 1) =~ ~s("node")
      end
    end

    test "a port in use is a clear error" do
      Agent.stop()
      {:ok, listener} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
      on_exit(fn -> :gen_tcp.close(listener) end)
      {:ok, port} = :inet.port(listener)
      assert {:error, {:listen_failed, msg}} = Agent.start(port: port, token: @token)
      assert msg =~ "127.0.0.1:#{port}"
      assert msg =~ "in use"
      refute Agent.running?()
    end

    test "boot/0 starts the agent from config :live_cov, :agent and never fails the node" do
      Agent.stop()
      on_exit(fn -> Application.delete_env(:live_cov, :agent) end)

      Application.put_env(:live_cov, :agent, port: 0, token: @token)
      assert :ok = Agent.boot()
      assert Agent.running?()
      assert {200, _, _} = http(Agent.url(), :get, "/status")
      Agent.stop()

      Application.put_env(:live_cov, :agent, port: 0)
      log = capture_log(fn -> assert :ok = Agent.boot() end)
      assert log =~ "LiveCov agent not started"
      assert log =~ "needs a token"
      refute Agent.running?()

      Application.put_env(:live_cov, :agent, enabled: false, token: @token)
      assert :ok = Agent.boot()
      refute Agent.running?()
    end
  end

  ## Routes

  describe "health and status" do
    test "GET /health needs no token", %{url: url} do
      assert {200, headers, body} = http(url, :get, "/health", token: nil)
      assert headers["content-type"] =~ "application/json"
      assert LiveCov.JSON.decode!(body) == %{"status" => "ok", "node" => Atom.to_string(node())}
    end

    test "GET /status: applications, modules with md5 and sites, git commit", %{url: url} do
      instrument_app!(url)
      Application.put_env(:live_cov, :git_commit, "abc1234")
      on_exit(fn -> Application.delete_env(:live_cov, :git_commit) end)

      assert {200, _, body} = http(url, :get, "/status")
      status = LiveCov.JSON.decode!(body)
      assert status["node"] == Atom.to_string(node())
      assert status["mode"] == "counts"
      assert status["git_commit"] == "abc1234"
      assert status["git_commit_source"] == "config"
      assert status["agent_version"] == LiveCov.Agent.Status.version()
      assert status["loaded_applications"]["agent_app"] == "1.2.3"

      assert [app] = status["applications"]
      assert app["name"] == "agent_app"
      assert app["version"] == "1.2.3"
      assert app["modules"] == ["agent_app_calc", "agent_app_text"]
      assert app["modules_total"] == 2

      mods = Map.new(status["modules"], &{&1["module"], &1})
      info = LiveCov.Instrumented.lookup(:agent_app_calc)
      assert mods["agent_app_calc"]["md5"] == Base.encode16(info.md5, case: :lower)
      assert mods["agent_app_calc"]["sites"] == LiveCov.ModuleInfo.size(info)
      assert mods["agent_app_calc"]["application"] == "agent_app"
    end

    test "the git commit can come from a VERSION file", %{url: url} do
      dir = tmp_dir()
      path = Path.join(dir, "VERSION")
      File.write!(path, "9f8e7d6c\nbuilt by CI\n")
      Application.put_env(:live_cov, :version_file, path)
      on_exit(fn -> Application.delete_env(:live_cov, :version_file) end)

      assert {200, _, body} = http(url, :get, "/status")
      status = LiveCov.JSON.decode!(body)
      assert status["git_commit"] == "9f8e7d6c"
      assert status["git_commit_source"] == path
    end
  end

  describe "instrument and stop" do
    test "POST /instrument instruments an application, POST /stop restores it", %{url: url} do
      assert {200, _, body} =
               http(url, :post, "/instrument", body: ~s({"application":"agent_app"}))

      summary = LiveCov.JSON.decode!(body)
      assert summary["applications"] == ["agent_app"]
      assert Enum.sort(summary["instrumented"]) == ["agent_app_calc", "agent_app_text"]
      assert summary["skipped"] == []
      assert Enum.sort(LiveCov.modules()) == [:agent_app_calc, :agent_app_text]

      assert :odd = apply(:agent_app_calc, :classify, [3])

      assert {:ok, counts} =
               LiveCov.Counter.read(LiveCov.Instrumented.lookup(:agent_app_calc).slot)

      assert Enum.sum(counts) > 0

      assert {200, _, body} = http(url, :post, "/stop", body: ~s({"application":"agent_app"}))
      stopped = LiveCov.JSON.decode!(body)
      assert Enum.sort(stopped["restored"]) == ["agent_app_calc", "agent_app_text"]
      assert stopped["failed"] == []
      assert LiveCov.modules() == []
    end

    test "POST /instrument takes a list and mode: coverage", %{url: url} do
      assert {200, _, body} =
               http(url, :post, "/instrument",
                 body: ~s({"applications":["agent_app"],"mode":"coverage"})
               )

      assert %{"applications" => ["agent_app"], "backend" => "nif"} = LiveCov.JSON.decode!(body)
      assert LiveCov.Instrumented.lookup(:agent_app_calc).mode == :coverage
    end

    test "POST /instrument with a backend; /status says which one counts", %{url: url} do
      assert {200, _, body} =
               http(url, :post, "/instrument",
                 body: ~s({"application":"agent_app","backend":"nif"})
               )

      assert %{"backend" => "nif"} = LiveCov.JSON.decode!(body)
      assert {200, _, body} = http(url, :get, "/status")
      status = LiveCov.JSON.decode!(body)
      assert status["backend"] == "nif"
      assert Enum.all?(status["modules"], &(&1["backend"] == "nif"))
      assert %{"harvests" => _, "lost" => %{}, "reset_elsewhere" => %{}} = status["harvest"]
    end

    test "POST /stop without a body stops everything", %{url: url} do
      instrument_app!(url)
      assert {200, _, body} = http(url, :post, "/stop")
      assert length(LiveCov.JSON.decode!(body)["restored"]) == 2
      assert LiveCov.modules() == []
    end

    test "bad instrument requests are 4xx and change nothing", %{url: url} do
      for {body, status, kind} <- [
            {"", 400, "invalid_body"},
            {"[1,2]", 400, "invalid_body"},
            {~s({"application":"agent_app","colour":1}), 400, "invalid_body"},
            {~s({"application":"agent_app","mode":"fast"}), 400, "invalid_body"},
            {~s({"application":"agent_app","backend":"fastest"}), 400, "invalid_body"},
            {~s({"application":"agent_app","backend":["nif"]}), 400, "invalid_body"},
            {~s({"application":"agent_app","mode":"coverage","backend":"native"}), 400,
             "invalid_option"},
            {~s({"application":"agent_app","applications":["x"]}), 400, "invalid_body"},
            {~s({"applications":[]}), 400, "invalid_body"},
            {~s({"application":42}), 400, "invalid_body"},
            {~s({"application":"no_such_app_here"}), 404, "unknown_application"},
            {~s({"application":"stdlib"}), 403, "refused_application"},
            {~s({"application":"live_cov"}), 403, "refused_application"},
            {~s({"application":"../../etc/passwd"}), 400, "invalid_body"},
            {"{\"application\":", 400, "malformed_json"}
          ] do
        assert {^status, headers, resp} = http(url, :post, "/instrument", body: body),
               "#{body} -> expected #{status}"

        assert headers["content-type"] == "application/json"
        assert %{"error" => %{"kind" => ^kind, "message" => msg}} = LiveCov.JSON.decode!(resp)
        assert is_binary(msg) and msg != ""
      end

      assert LiveCov.modules() == []
    end
  end

  describe "coverage and reports" do
    setup %{url: url} do
      instrument_app!(url)
      apply(:agent_app_calc, :loop, [3])
      apply(:agent_app_calc, :classify, [-1])
      :ok
    end

    test "GET /coverage has the numbers of LiveCov.report/1", %{url: url} do
      assert {200, _, body} = http(url, :get, "/coverage")
      cov = LiveCov.JSON.decode!(body)
      stats = LiveCov.report()
      assert cov["coverage"] == stats.coverage
      assert cov["sloc"] == stats.sloc
      assert cov["hits"] == stats.hits
      assert cov["misses"] == stats.misses
      assert length(cov["files"]) == 2

      for {f, s} <- Enum.zip(cov["files"], stats.files) do
        assert f["filename"] == s.filename

        assert {f["coverage"], f["hits"], f["misses"], f["sloc"]} ==
                 {s.coverage, s.hits, s.misses, s.sloc}
      end
    end

    test "GET /report/:format renders every format with its content type", %{url: url} do
      expect = %{
        "html" => {"text/html", "<html"},
        "lcov" => {"text/plain", "SF:"},
        "cobertura" => {"application/xml", "<coverage"},
        "coveralls" => {"application/json", "source_files"},
        "json" => {"application/json", "\"files\""},
        "terminal" => {"text/plain", "agent_app_calc.erl"},
        "annotated" => {"text/plain", "agent_app_calc"}
      }

      for {format, {type, marker}} <- expect do
        assert {200, headers, body} = http(url, :get, "/report/" <> format)
        assert headers["content-type"] =~ type, format
        assert body =~ marker, format
        assert headers["content-disposition"] =~ "filename="
      end

      # Same data as a local rendering.
      {200, _, lcov} = http(url, :get, "/report/lcov")
      assert lcov == IO.iodata_to_binary(LiveCov.Format.LCOV.render(LiveCov.report(), []))
      # The terminal format has no colours over HTTP.
      {200, _, text} = http(url, :get, "/report/terminal")
      refute text =~ "\e["
    end

    test "compile_root/runtime_root map paths; one without the other is a 400", %{
      url: url,
      app_dir: _
    } do
      src = Path.expand("test/fixtures/agent_app/src")
      tmp = tmp_dir()
      File.cp_r!(src, Path.join(tmp, "src"))

      q = URI.encode_query(%{compile_root: Path.dirname(src), runtime_root: tmp})
      assert {200, _, body} = http(url, :get, "/report/json?" <> q)
      files = LiveCov.JSON.decode!(body)["files"]
      assert Enum.all?(files, &String.starts_with?(&1["path"], tmp))
      assert Enum.all?(files, &(&1["missing_source"] == false))

      assert {400, _, body} = http(url, :get, "/coverage?compile_root=/x")
      assert %{"error" => %{"kind" => "invalid_option"}} = LiveCov.JSON.decode!(body)
      assert {400, _, body} = http(url, :get, "/coverage?colour=red")
      assert %{"error" => %{"kind" => "unknown_parameter"}} = LiveCov.JSON.decode!(body)
    end

    test "report defaults come from the agent's report_opts", %{app_dir: _} do
      Agent.stop()
      src = Path.expand("test/fixtures/agent_app/src")
      tmp = tmp_dir()
      File.cp_r!(src, Path.join(tmp, "src"))

      {:ok, info} =
        Agent.start(
          port: 0,
          token: @token,
          report_opts: [compile_root: Path.dirname(src), runtime_root: tmp]
        )

      assert {200, _, body} = http(info.url, :get, "/report/json")
      assert Enum.all?(LiveCov.JSON.decode!(body)["files"], &String.starts_with?(&1["path"], tmp))
    end

    test "clients that accept gzip get compressed bodies", %{url: url} do
      {200, plain_headers, plain} = http(url, :get, "/report/html")
      refute Map.has_key?(plain_headers, "content-encoding")
      assert plain_headers["vary"] == "accept-encoding"

      for accept <- ["gzip", "deflate, gzip;q=0.8", "*"] do
        assert {200, headers, zipped} =
                 http(url, :get, "/report/html", headers: [{"accept-encoding", accept}])

        assert headers["content-encoding"] == "gzip"
        assert byte_size(zipped) < byte_size(plain)
        # Same report (the timestamp aside).
        strip = &Regex.replace(~r/\d{4}-\d\d-\d\dT[\d:]+Z/, &1, "")
        assert strip.(:zlib.gunzip(zipped)) == strip.(plain)
      end

      assert {200, headers, _} =
               http(url, :get, "/report/html", headers: [{"accept-encoding", "gzip;q=0"}])

      refute Map.has_key?(headers, "content-encoding")

      # Small bodies are sent as they are.
      {200, _, snap} = http(url, :get, "/snapshot")

      {200, headers, data} = http(url, :get, "/snapshot", headers: [{"accept-encoding", "gzip"}])

      data = if headers["content-encoding"] == "gzip", do: :zlib.gunzip(data), else: data
      assert headers["content-encoding"] == if(byte_size(snap) >= 1024, do: "gzip")
      assert {:ok, a} = LiveCov.Snapshot.decode(data)
      assert {:ok, b} = LiveCov.Snapshot.decode(snap)
      assert a.counts == b.counts

      # Prometheus asks for gzip.
      {200, _, text} = http(url, :get, "/metrics")

      {200, headers, zipped} = http(url, :get, "/metrics", headers: [{"accept-encoding", "gzip"}])

      assert headers["content-encoding"] == "gzip"
      assert :zlib.gunzip(zipped) == text
    end

    test "an unknown format is a 404 naming the valid ones", %{url: url} do
      assert {404, _, body} = http(url, :get, "/report/pdf")

      assert %{"error" => %{"kind" => "unknown_format", "message" => msg}} =
               LiveCov.JSON.decode!(body)

      assert msg =~ "lcov"
    end
  end

  describe "snapshot, reset, metrics" do
    setup %{url: url} do
      instrument_app!(url)
      apply(:agent_app_calc, :loop, [5])
      :ok
    end

    test "GET /snapshot is the LiveCov.Snapshot encoding of the counters", %{url: url} do
      slot = LiveCov.Instrumented.lookup(:agent_app_calc).slot
      {:ok, before} = LiveCov.Counter.read(slot)

      assert {200, headers, data} = http(url, :get, "/snapshot")
      assert headers["content-type"] == "application/octet-stream"
      assert headers["x-live-cov-modules"] == "2"
      assert {:ok, snap} = LiveCov.Snapshot.decode(data)
      assert headers["x-live-cov-content-hash"] == Base.encode16(snap.content_hash, case: :lower)
      assert LiveCov.Snapshot.modules(snap) == [:agent_app_calc, :agent_app_text]
      assert LiveCov.Snapshot.counts(snap, :agent_app_calc, loaded: MapSet.new()) == before
      # A plain snapshot resets nothing.
      assert LiveCov.Counter.read(slot) == {:ok, before}
    end

    test "GET /snapshot?reset=true dumps and resets in one step", %{url: url} do
      slot = LiveCov.Instrumented.lookup(:agent_app_calc).slot
      {:ok, before} = LiveCov.Counter.read(slot)
      assert Enum.sum(before) > 0

      assert {200, headers, data} = http(url, :get, "/snapshot?reset=true")
      assert headers["x-live-cov-reset"] == "true"
      {:ok, snap} = LiveCov.Snapshot.decode(data)
      assert LiveCov.Snapshot.counts(snap, :agent_app_calc, loaded: MapSet.new()) == before
      {:ok, after_reset} = LiveCov.Counter.read(slot)
      assert Enum.all?(after_reset, &(&1 == 0))

      assert {400, _, body} = http(url, :get, "/snapshot?reset=maybe")
      assert %{"error" => %{"kind" => "invalid_parameter"}} = LiveCov.JSON.decode!(body)
    end

    test "GET /snapshot?reset=true&key=K: a retry with the same key gets the same dump",
         %{url: url} do
      slot = LiveCov.Instrumented.lookup(:agent_app_calc).slot
      {:ok, before} = LiveCov.Counter.read(slot)
      assert Enum.sum(before) > 0
      key = "agent-test-#{System.unique_integer([:positive])}"

      # The first answer is "lost": the client retries with the same key.
      assert {200, h1, d1} = http(url, :get, "/snapshot?reset=true&key=#{key}")
      assert {200, h2, d2} = http(url, :get, "/snapshot?reset=true&key=#{key}")
      assert h1["x-live-cov-replayed"] == "false" and h2["x-live-cov-replayed"] == "true"
      assert d1 == d2
      {:ok, snap} = LiveCov.Snapshot.decode(d2)
      assert LiveCov.Snapshot.counts(snap, :agent_app_calc, loaded: MapSet.new()) == before
      {:ok, after_reset} = LiveCov.Counter.read(slot)
      assert Enum.all?(after_reset, &(&1 == 0))

      for bad <- ["/snapshot?key=#{key}", "/snapshot?reset=true&key=a%20b"] do
        assert {400, _, body} = http(url, :get, bad)
        assert %{"error" => %{"kind" => "invalid_parameter"}} = LiveCov.JSON.decode!(body)
      end
    end

    test "POST /reset zeroes the counters", %{url: url} do
      slot = LiveCov.Instrumented.lookup(:agent_app_calc).slot
      assert {200, _, body} = http(url, :post, "/reset")
      assert LiveCov.JSON.decode!(body) == %{"ok" => true}
      {:ok, counts} = LiveCov.Counter.read(slot)
      assert Enum.all?(counts, &(&1 == 0))
    end

    test "GET /metrics reports sites and hits per module and application", %{url: url} do
      assert {200, headers, text} = http(url, :get, "/metrics")
      assert headers["content-type"] =~ "version=0.0.4"
      info = LiveCov.Instrumented.lookup(:agent_app_calc)
      {:ok, counts} = LiveCov.Counter.read(info.slot)
      hit = Enum.count(counts, &(&1 > 0))

      assert text =~
               ~s(live_cov_module_sites{application="agent_app",module="agent_app_calc"} #{LiveCov.ModuleInfo.size(info)}\n)

      assert text =~
               ~s(live_cov_module_sites_hit{application="agent_app",module="agent_app_calc"} #{hit}\n)

      assert text =~ ~s(live_cov_application_sites{application="agent_app"} )
      assert text =~ "live_cov_modules 2\n"
    end
  end

  describe "routing" do
    test "unknown routes are 404, wrong methods 405 with Allow", %{url: url} do
      assert {404, _, body} = http(url, :get, "/nope")
      assert %{"error" => %{"kind" => "not_found"}} = LiveCov.JSON.decode!(body)
      assert {405, headers, body} = http(url, :delete, "/snapshot")
      assert headers["allow"] == "GET"
      assert %{"error" => %{"kind" => "method_not_allowed"}} = LiveCov.JSON.decode!(body)
      assert {405, _, _} = http(url, :get, "/reset")
      # A trailing slash is the same route.
      assert {200, _, _} = http(url, :get, "/status/")
    end
  end

  ## Isolation and concurrency

  describe "isolation" do
    test "a handler that crashes answers 500 JSON and nothing else is affected", %{url: url} do
      # A request httpd cannot describe (no config in its store) makes the router crash.
      bogus =
        {:mod, :undefined, [], :ip_comm, nil, :no_such_table, ~c"GET", [], ~c"/status",
         ~c"HTTP/1.1", ~c"GET /status HTTP/1.1", [], [], true}

      log =
        capture_log(fn ->
          assert {:proceed, [response: {:response, headers, body}]} = apply(Handler, :do, [bogus])
          assert {:code, 500} in headers
          assert %{"error" => %{"kind" => "internal_error"}} = LiveCov.JSON.decode!(body)
        end)

      assert log =~ "request handler crashed"
      assert {200, _, _} = http(url, :get, "/health")
    end

    test "a computation that crashes or is killed answers internal_error to every waiter" do
      {:ok, f} = Flight.start_link(name: nil, max_concurrent: 2)

      log =
        capture_log(fn ->
          assert {:error, {:internal_error, m}} = Flight.run(f, :a, fn -> raise "boom" end, 5_000)
          assert m =~ "boom"

          assert {:error, {:internal_error, _}} =
                   Flight.run(f, :b, fn -> Process.exit(self(), :kill) end, 5_000)
        end)

      assert log =~ "boom"
      assert {:ok, 1} = Flight.run(f, :c, fn -> {:ok, 1} end, 5_000)
    end

    test "concurrent identical computations are coalesced, distinct ones bounded" do
      {:ok, f} = Flight.start_link(name: nil, max_concurrent: 1)
      counter = :counters.new(1, [])
      parent = self()

      slow = fn ->
        :counters.add(counter, 1, 1)
        Process.sleep(200)
        {:ok, :erlang.list_to_binary(:lists.duplicate(1000, ?x))}
      end

      tasks = for _ <- 1..50, do: Task.async(fn -> Flight.run(f, :same, slow, 10_000) end)
      results = Task.await_many(tasks, 15_000)
      assert Enum.all?(results, &match?({:ok, <<"xxx", _::binary>>}, &1))
      # The first request runs at once; the 49 that arrive meanwhile share the next run.
      assert :counters.get(counter, 1) <= 2

      # Never a result computed before the request arrived: a request that comes while a
      # computation runs gets a later one.
      gen = :counters.new(1, [])

      next = fn ->
        :counters.add(gen, 1, 1)
        v = :counters.get(gen, 1)
        Process.sleep(100)
        {:ok, v}
      end

      first = Task.async(fn -> Flight.run(f, :fresh, next, 5_000) end)
      Process.sleep(30)
      second = Task.async(fn -> Flight.run(f, :fresh, next, 5_000) end)
      assert {:ok, 1} = Task.await(first)
      assert {:ok, 2} = Task.await(second)

      # max_concurrent 1: a second key waits for the first to finish.
      t0 = System.monotonic_time(:millisecond)

      tasks =
        for k <- [:k1, :k2],
            do:
              Task.async(fn ->
                Flight.run(
                  f,
                  k,
                  fn ->
                    send(parent, {:ran, k, System.monotonic_time(:millisecond)})
                    Process.sleep(150)
                    {:ok, k}
                  end,
                  10_000
                )
              end)

      assert [{:ok, :k1}, {:ok, :k2}] = Task.await_many(tasks, 5_000)
      assert_received {:ran, _, s1}
      assert_received {:ran, _, s2}
      assert abs(s2 - s1) >= 140
      assert System.monotonic_time(:millisecond) - t0 >= 290

      # A caller that gives up gets a timeout; the computation goes on for the others.
      assert {:error, {:timeout, _}} =
               Flight.run(f, :late, fn -> Process.sleep(300) && {:ok, 1} end, 50)

      assert %{queued: 0} = Flight.info(f)
    end

    test "a large counter table is snapshotted on a dirty scheduler", %{url: url} do
      instrument_app!(url)
      threshold = LiveCov.Native.dirty_threshold()
      {:ok, slot} = LiveCov.Table.register(threshold + 1_000)
      on_exit(fn -> LiveCov.Table.unregister(slot) end)

      # A normal-priority process that wants to run every millisecond.
      ticker = spawn_link(fn -> tick(System.monotonic_time(:millisecond), 0) end)

      for _ <- 1..5 do
        assert {200, _, data} = http(url, :get, "/snapshot")
        assert {:ok, _} = LiveCov.Snapshot.decode(data)
      end

      send(ticker, {:max_gap, self()})
      assert_receive {:max_gap, gap}, 5_000
      # Scheduling noise on a busy machine is tens of ms; a blocked scheduler is far more.
      assert gap < 500, "a normal process waited #{gap} ms during large snapshots"
    end
  end

  defp tick(last, max) do
    receive do
      {:max_gap, from} -> send(from, {:max_gap, max})
    after
      1 ->
        now = System.monotonic_time(:millisecond)
        tick(now, max(max, now - last))
    end
  end

  ## Helpers

  defp instrument_app!(url) do
    assert {200, _, _} = http(url, :post, "/instrument", body: ~s({"application":"agent_app"}))
  end

  defp tmp_dir, do: FixtureBuild.tmp_dir("agent")

  defp http(url, method, path, opts \\ []) do
    token = Keyword.get(opts, :token, @token)
    auth = if token, do: [HTTP.bearer(token)], else: []
    headers = auth ++ Keyword.get(opts, :headers, [])
    HTTP.request(method, url <> path, headers: headers, body: Keyword.get(opts, :body))
  end
end
