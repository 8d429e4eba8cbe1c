defmodule LiveCov.GatewayE2ETest do
  @moduledoc """
  The gateway end to end, on real nodes (OTP `:peer`):

    * three instrumented nodes, each with a `LiveCov.Agent`, in one service `shop`, and one
      of them also pulled over `:erpc` as a second service `direct`;
    * the gateway runs on its own node; two runs are started (one resetting the agents, one
      measuring deltas without reset); traffic is sent between faults: node B is killed
      (`kill -9`) mid-run and started again, node C's agent is stopped and started again,
      and the gateway's node itself is killed (`kill -9`) and started again on the same data
      directory;
    * the runs are finished: the published LCOV, the API's numbers, the Coveralls POST (after a
      503 and a retry) and the dashboard's numbers (headless Chromium, no console errors, a
      screenshot in `tmp/test_output/`) all equal what is computed directly from the nodes'
      own snapshots.
  """
  use ExUnit.Case, async: false

  alias LiveCov.Format.LCOV
  alias LiveCov.Snapshot
  alias LiveCov.Test.{HTTP, Peers}

  import LiveCov.Test.FixtureBuild, only: [tmp_dir: 1]
  import LiveCov.Test.Peers, only: [free_port: 0]

  @moduletag :gateway
  @moduletag timeout: 300_000

  @agent_token "gateway-e2e-agent-token-0123456789"
  @gw_token "gateway-e2e-gateway-token-0123456789"
  @out Path.expand("../../tmp/test_output", __DIR__)

  @cart """
  -module(gw_shop_cart).
  -export([add/2, total/1, discount/2]).

  add(Cart, Item) ->
      [Item | Cart].

  total(Cart) ->
      lists:sum([P || {_, P} <- Cart]).

  discount(Total, Code) ->
      case Code of
          "HALF" ->
              Total div 2;
          "TENOFF" when Total > 10 ->
              Total - 10;
          _ ->
              Total
      end.
  """

  @search """
  -module(gw_shop_search).
  -export([find/2, suggest/1]).

  find(Term, Items) ->
      [I || I <- Items, string:find(I, Term) =/= nomatch].

  suggest([]) ->
      none;
  suggest([First | _]) ->
      {ok, First}.
  """

  @app """
  {application, gw_shop,
   [{description, "LiveCov gateway e2e fixture"}, {vsn, "1.0.0"},
    {modules, [gw_shop_cart, gw_shop_search]}, {registered, []},
    {applications, [kernel, stdlib]}]}.
  """

  setup_all do
    Peers.ensure_distributed!("live_cov_gw_e2e")
    {:ok, _} = Application.ensure_all_started(:live_cov)
    root = tmp_dir("gw_e2e")
    src = Path.join(root, "src")
    ebin = Path.join(root, "ebin")
    File.mkdir_p!(src)
    File.mkdir_p!(ebin)

    for {name, text} <- [{"gw_shop_cart.erl", @cart}, {"gw_shop_search.erl", @search}] do
      File.write!(Path.join(src, name), text)

      {:ok, _} =
        :compile.file(String.to_charlist(Path.join(src, name)), [
          :debug_info,
          outdir: String.to_charlist(ebin)
        ])
    end

    File.write!(Path.join(ebin, "gw_shop.app"), @app)
    true = :code.add_patha(String.to_charlist(ebin))
    on_exit(fn -> :code.del_path(String.to_charlist(ebin)) end)
    File.mkdir_p!(@out)
    %{root: root, src: src}
  end

  ## Nodes

  defp start_peer(name) do
    # Hidden: killing a node then never makes `global` disconnect the others (OTP 25's
    # prevent_overlapping_partitions), which would stop their :peer control connection.
    {_pid, node} = Peers.start(name, args: [~c"-hidden"], host: ~c"127.0.0.1", tries: 50)
    {:ok, _} = :erpc.call(node, Application, :ensure_all_started, [:live_cov])
    :ok = :erpc.call(node, Logger, :configure, [[level: :error]])
    node
  end

  # An instrumented shop node with an agent on `port`.
  defp shop_node(name, port) do
    node = start_peer(name)
    summary = :erpc.call(node, LiveCov, :start, [:gw_shop])
    assert Enum.sort(summary.instrumented) == [:gw_shop_cart, :gw_shop_search]
    {:ok, _} = :erpc.call(node, LiveCov.Agent, :start, [[port: port, token: @agent_token]])
    node
  end

  defp kill_node!(node) do
    os_pid = :erpc.call(node, System, :pid, [])
    {_, 0} = System.cmd("kill", ["-9", os_pid])
    wait_until(fn -> node not in Node.list(:connected) end, "#{node} to go down")
  end

  # Traffic: one call per {module, function, args}.
  defp traffic(node, calls), do: for({m, f, a} <- calls, do: :erpc.call(node, m, f, a))

  defp direct(node), do: :erpc.call(node, LiveCov, :snapshot, [])

  ## HTTP

  defp http(method, url, body \\ nil) do
    {status, _, resp} = HTTP.request(method, url, headers: [HTTP.bearer(@gw_token)], body: body)
    {status, resp}
  end

  defp api!(url, path) do
    {200, body} = http(:get, url <> path)
    LiveCov.JSON.decode!(body)
  end

  defp wait_until(fun, what, tries \\ 200) do
    cond do
      fun.() -> :ok
      tries == 0 -> flunk("timed out waiting for #{what}")
      true -> Process.sleep(50) && wait_until(fun, what, tries - 1)
    end
  end

  defp statuses(url),
    do: Map.new(api!(url, "/api/status")["sources"], &{&1["name"], &1})

  ## A Coveralls-compatible endpoint that fails once with 503, then accepts

  defp coveralls_stub do
    {:ok, listen} =
      :gen_tcp.listen(0, [
        :binary,
        packet: :http_bin,
        active: false,
        reuseaddr: true,
        ip: {127, 0, 0, 1}
      ])

    {:ok, port} = :inet.port(listen)
    parent = self()
    pid = spawn_link(fn -> stub_loop(listen, parent, 1) end)
    :ok = :gen_tcp.controlling_process(listen, pid)
    on_exit(fn -> :gen_tcp.close(listen) end)
    "http://127.0.0.1:#{port}/api/v1/jobs"
  end

  defp stub_loop(listen, parent, n) do
    case :gen_tcp.accept(listen) do
      {:ok, sock} ->
        {:ok, len} = read_headers(sock, 0)
        :ok = :inet.setopts(sock, packet: :raw)
        {:ok, body} = if len > 0, do: :gen_tcp.recv(sock, len, 10_000), else: {:ok, ""}
        status = if n == 1, do: "503 Service Unavailable", else: "200 OK"
        send(parent, {:coveralls, status, body})
        reply = ~s({"message":"ok"})

        :gen_tcp.send(
          sock,
          "HTTP/1.1 #{status}\r\ncontent-type: application/json\r\ncontent-length: " <>
            "#{byte_size(reply)}\r\nconnection: close\r\n\r\n" <> reply
        )

        :gen_tcp.close(sock)
        stub_loop(listen, parent, n + 1)

      {:error, _} ->
        :ok
    end
  end

  defp read_headers(sock, len) do
    case :gen_tcp.recv(sock, 0, 10_000) do
      {:ok, {:http_header, _, :"Content-Length", _, v}} ->
        read_headers(sock, String.to_integer(v))

      {:ok, :http_eoh} ->
        {:ok, len}

      {:ok, _} ->
        read_headers(sock, len)
    end
  end

  ## The scenario

  @cart_calls [
    {:gw_shop_cart, :add, [[], {:apple, 3}]},
    {:gw_shop_cart, :total, [[{:a, 1}, {:b, 2}]]},
    {:gw_shop_cart, :discount, [40, ~c"HALF"]}
  ]
  @search_calls [
    {:gw_shop_search, :find, ["ap", ["apple", "grape", "kiwi"]]},
    {:gw_shop_search, :suggest, [["kiwi"]]}
  ]
  @tenoff [{:gw_shop_cart, :discount, [40, ~c"TENOFF"]}]
  # Only before the runs: a line no run traffic hits, so a reset is always visible.
  @pre_only [{:gw_shop_search, :suggest, [[]]}]

  test "three agents, faults, runs: published LCOV and dashboard equal the nodes' own sum",
       %{root: root, src: src} do
    [pa, pb, pc, pg] = for _ <- 1..4, do: free_port()
    tag = System.unique_integer([:positive])
    a = shop_node(:"gw_a_#{tag}", pa)
    b = shop_node(:"gw_b_#{tag}", pb)
    c = shop_node(:"gw_c_#{tag}", pc)
    stub = coveralls_stub()
    pub = Path.join(root, "published")

    gw_config = [
      data_dir: Path.join(root, "gateway_data"),
      port: pg,
      token: @gw_token,
      interval: 300,
      timeout: 3_000,
      backoff: 200,
      max_backoff: 1_000,
      title: "LiveCov e2e",
      source_roots: [src],
      report_opts: [root: src],
      agents:
        for {name, port} <- [{"shop-a", pa}, {"shop-b", pb}, {"shop-c", pc}] do
          [name: name, url: "http://127.0.0.1:#{port}", token: @agent_token, service: "shop"]
        end,
      nodes: [[name: "direct-a", node: a, service: "direct"]],
      publishers: [
        [type: :directory, dir: pub],
        [type: :coveralls, url: stub, retries: 3, backoff: 100, max_backoff: 200]
      ]
    ]

    g = start_peer(:"gw_gateway_#{tag}")
    {:ok, %{url: url}} = :erpc.call(g, LiveCov.Gateway, :start, [gw_config])

    # Before any run: traffic everywhere, pulled.
    for n <- [a, b, c], do: traffic(n, @cart_calls ++ @pre_only)
    wait_until(fn -> Enum.all?(statuses(url), fn {_, s} -> s["status"] == "up" end) end, "pulls")
    {200, _} = http(:post, url <> "/api/pull", "{}")

    # Run 2 measures deltas without reset; run 1 resets the shop agents.
    {201, r2} = http(:post, url <> "/runs", ~s({"name":"no-reset"}))
    %{"id" => run2} = LiveCov.JSON.decode!(r2)
    {201, r1} = http(:post, url <> "/runs", ~s({"name":"reset","reset":true,"services":["shop"]}))
    %{"id" => run1, "status" => "running", "reset" => true} = LiveCov.JSON.decode!(r1)
    assert Snapshot.empty?(direct(a)) and Snapshot.empty?(direct(b))

    # Phase 1, pulled; B's life 1 is then killed.
    traffic(a, @cart_calls)
    traffic(b, @search_calls ++ @tenoff)
    traffic(c, @cart_calls ++ @search_calls)
    {200, _} = http(:post, url <> "/api/pull", "{}")
    b_life1 = direct(b)
    refute Snapshot.empty?(b_life1)
    kill_node!(b)

    # Phase 2: C's agent stops (its node keeps counting), B is down.
    :ok = :erpc.call(c, LiveCov.Agent, :stop, [])
    traffic(a, @search_calls)
    traffic(c, @tenoff)

    wait_until(
      fn ->
        s = statuses(url)
        s["shop-b"]["status"] == "down" and s["shop-c"]["status"] == "down"
      end,
      "B and C reported down"
    )

    shop_before_kill = shop_snapshot(url)
    assert map_size(shop_before_kill.counts) > 0

    # The gateway's node is killed while B is down: B's life 1 now exists only in the
    # gateway's persisted state.
    kill_node!(g)

    b = shop_node(:"gw_b_#{tag}", pb)
    {:ok, _} = :erpc.call(c, LiveCov.Agent, :start, [[port: pc, token: @agent_token]])
    traffic(b, @cart_calls)
    traffic(a, @tenoff)

    g = start_peer(:"gw_gateway2_#{tag}")
    {:ok, %{url: ^url}} = :erpc.call(g, LiveCov.Gateway, :start, [gw_config])

    # Nothing pulled was lost: every counter at least what it was before the kill.
    after_restart = shop_snapshot(url)

    for {hash, bin} <- shop_before_kill.counts do
      later = Map.fetch!(after_restart.counts, hash)
      assert Enum.zip_with(decode(later), decode(bin), &(&1 >= &2)) |> Enum.all?()
    end

    assert %{"status" => "running"} = api!(url, "/api/runs/#{run1}")

    # Phase 4, then the runs finish.
    traffic(c, @search_calls)
    traffic(b, @search_calls)
    {200, f1} = http(:post, url <> "/runs/#{run1}/finish", "{}")
    {200, f2} = http(:post, url <> "/runs/#{run2}/finish", "{}")
    f1 = LiveCov.JSON.decode!(f1)
    f2 = LiveCov.JSON.decode!(f2)

    # What the nodes say themselves: A and C were reset at run 1's start, B restarted.
    a_final = direct(a)
    expected_shop = Snapshot.merge([a_final, b_life1, direct(b), direct(c)])
    stats_opts = [loaded: MapSet.new(), root: src]
    expected = LiveCov.SnapshotReport.report(expected_shop, stats_opts)
    expected_direct = LiveCov.SnapshotReport.report(a_final, stats_opts)
    assert expected.hits > 0

    # The published LCOV is the nodes' sum, exactly.
    lcov = File.read!(Path.join([pub, run1, "shop", "lcov.info"]))
    assert lcov == IO.iodata_to_binary(LCOV.render(expected, []))
    assert da_lines(lcov) == da_lines(IO.iodata_to_binary(LCOV.render(expected, [])))

    for f <- ["cobertura.xml", "coverage.html", "coverage.json"],
        do: assert(File.exists?(Path.join([pub, run1, "shop", f])))

    # The API's numbers, for both runs.
    numbers = fn s ->
      %{
        "coverage" => s.coverage,
        "sloc" => s.sloc,
        "hits" => s.hits,
        "misses" => s.misses,
        "files" => length(s.files)
      }
    end

    assert f1["results"]["shop"] == numbers.(expected)
    assert f2["results"]["shop"] == numbers.(expected)
    assert f2["results"]["direct"] == numbers.(expected_direct)
    assert Enum.all?(f1["publish"] ++ f2["publish"], & &1["ok"]), inspect(f1["publish"])

    run_api = api!(url, "/api/runs/#{run1}")

    assert run_api["files"]["shop"] ==
             Enum.map(expected.files, fn f ->
               %{
                 "filename" => f.filename,
                 "coverage" => f.coverage,
                 "sloc" => f.sloc,
                 "hits" => f.hits,
                 "misses" => f.misses
               }
             end)

    # Coveralls: refused once with 503, retried, accepted; the same coverage arrays.
    assert_received {:coveralls, "503" <> _, _}
    assert_received {:coveralls, "200" <> _, body}
    doc = LiveCov.JSON.decode!(body)
    assert doc["service_job_id"] == run1 and doc["flag_name"] == "shop"

    assert Map.new(doc["source_files"], &{&1["name"], &1["coverage"]}) ==
             Map.new(expected.files, fn f -> {f.filename, Enum.map(f.source, & &1.coverage)} end)

    dashboard_checks(url, run1, expected)
  end

  defp shop_snapshot(url) do
    {200, bin} = http(:get, url <> "/api/services/shop/snapshot")
    {:ok, snap} = Snapshot.decode(bin)
    snap
  end

  defp decode(bin), do: for(<<c::little-64 <- bin>>, do: c)

  defp da_lines(lcov) do
    lcov
    |> String.split("\n")
    |> Enum.reduce({nil, %{}}, fn
      "SF:" <> file, {_, acc} -> {file, acc}
      "DA:" <> rest, {file, acc} -> {file, Map.put(acc, {file, rest}, true)}
      _, state -> state
    end)
    |> elem(1)
  end

  ## The dashboard in headless Chromium

  defp dashboard_checks(url, run1, expected) do
    chromium = System.find_executable("chromium") || System.find_executable("chromium-browser")

    if chromium == nil do
      IO.puts(:stderr, "\n!!! chromium not installed: dashboard browser checks SKIPPED\n")
    else
      services = api!(url, "/api/services")["services"]
      shop = Enum.find(services, &(&1["name"] == "shop"))

      # The front page: service totals and the run's coverage, as the API has them.
      {dom, errors} = browse(chromium, url <> "/", screenshot: Path.join(@out, "dashboard.png"))
      assert errors == [], Enum.join(errors, "\n")
      row = row(dom, "shop")
      assert attr(row, "data-coverage") == pct(shop["coverage"])

      for k <- ["sloc", "hits", "misses", "files"],
          do: assert(attr(row, "data-#{k}") == to_string(shop[k]))

      assert dom =~
               ~s(data-run="#{run1}" data-service="shop" data-coverage="#{pct(expected.coverage)}")

      assert dom =~ ~s(id="runs-chart")
      assert dom =~ ~s(class="ago")

      # The run page: totals and every file, equal to the nodes' sum.
      {dom, errors} =
        browse(chromium, url <> "/runs/#{run1}", screenshot: Path.join(@out, "dashboard_run.png"))

      assert errors == [], Enum.join(errors, "\n")
      assert dom =~ ~s(id="total-coverage" data-coverage="#{pct(expected.coverage)}")
      assert dom =~ ~s(<span id="total-sloc">#{expected.sloc}</span>)
      assert dom =~ ~s(<span id="total-hits">#{expected.hits}</span>)
      assert dom =~ "#{length(expected.files)} / #{length(expected.files)} files"

      for f <- expected.files do
        r = row(dom, f.filename)
        assert attr(r, "data-coverage") == pct(f.coverage)

        assert {attr(r, "data-sloc"), attr(r, "data-hits"), attr(r, "data-misses")} ==
                 {"#{f.sloc}", "#{f.hits}", "#{f.misses}"}
      end

      # The source view: per-line hit counts.
      [f | _] = expected.files
      page = url <> "/runs/#{run1}/source?service=shop&file=" <> URI.encode_www_form(f.filename)
      {dom, errors} = browse(chromium, page, screenshot: Path.join(@out, "dashboard_source.png"))
      assert errors == [], Enum.join(errors, "\n")

      for {line, n} <- Enum.with_index(f.source, 1), line.coverage != nil do
        assert dom =~
                 ~s(id="L#{n}"><td class="ln">#{n}</td><td class="hits">#{line.coverage}</td>)
      end

      # The service page.
      {dom, errors} = browse(chromium, url <> "/services/shop", [])
      assert errors == [], Enum.join(errors, "\n")
      assert dom =~ ~s(id="total-coverage" data-coverage="#{pct(shop["coverage"])}")
    end
  end

  defp browse(chromium, url, opts) do
    profile = tmp_dir("gw_chrome")

    base =
      ~w(--headless --no-sandbox --disable-gpu --disable-background-networking
         --disable-component-update --disable-sync --no-first-run --enable-logging=stderr --v=0) ++
        ["--user-data-dir=#{profile}"]

    {dom, err} = chrome(chromium, base ++ ["--virtual-time-budget=3000", "--dump-dom", url])

    if shot = opts[:screenshot] do
      File.rm(shot)

      {_, err2} =
        chrome(chromium, base ++ ["--screenshot=#{shot}", "--window-size=1280,1400", url])

      assert <<0x89, "PNG", _::binary>> = File.read!(shot)
      {dom, console(err) ++ console(err2)}
    else
      {dom, console(err)}
    end
  end

  defp chrome(chromium, args) do
    err = Path.join(System.tmp_dir!(), "gw_chrome_err_#{System.unique_integer([:positive])}")

    try do
      {out, status} = System.cmd("sh", ["-c", ~s("$0" "$@" 2>"#{err}") | [chromium | args]])
      assert status == 0, File.read!(err)
      {out, File.read!(err)}
    after
      File.rm(err)
    end
  end

  defp console(stderr), do: stderr |> String.split("\n") |> Enum.filter(&(&1 =~ ":CONSOLE"))

  defp row(dom, name) do
    [row] = Regex.run(~r/<tr[^>]*data-name="#{Regex.escape(name)}".*?<\/tr>/s, dom)
    row
  end

  defp attr(html, name) do
    [_, v] = Regex.run(~r/#{name}="([^"]*)"/, html)
    v
  end

  defp pct(f), do: :erlang.float_to_binary(f / 1, decimals: 1)
end
