defmodule LiveCov.AgentSecurityTest do
  # Security of the agent over real HTTP on 127.0.0.1: authentication, input limits, hostile
  # input, and a bounded fuzz loop. After every test the node's instrumentation and counts must
  # be exactly what they were.
  use ExUnit.Case, async: false

  alias LiveCov.{Agent, Counter, Instrumented}
  alias LiveCov.Test.{FixtureBuild, HTTP}

  @token "security-test-token-abcdef0123456789"
  @max_body 4_096

  setup_all do
    {:ok, _} = Application.ensure_all_started(:live_cov)
    _ = Agent.stop()
    LiveCov.stop()
    dir = FixtureBuild.agent_app("agent_sec")
    {:ok, info} = Agent.start(port: 0, token: @token, max_body_bytes: @max_body)
    assert %{instrumented: [_, _]} = LiveCov.start(:agent_app)
    apply(:agent_app_calc, :loop, [4])
    apply(:agent_app_text, :greet, [~c"x"])

    on_exit(fn ->
      _ = Agent.stop()
      LiveCov.stop()
      FixtureBuild.remove_agent_app(dir)
    end)

    {:ok, url: info.url, port: info.port}
  end

  setup do
    # Every test starts from and must leave this state.
    before = fingerprint()
    on_exit(fn -> assert fingerprint() == before, "the node's coverage state changed" end)
    {:ok, before: before}
  end

  # Instrumented modules, their slots and their counts.
  defp fingerprint do
    for info <- Instrumented.modules() do
      {:ok, counts} = Counter.read(info.slot)
      {info.module, info.slot, counts}
    end
  end

  @protected [
    {:get, "/status", nil},
    {:post, "/instrument", ~s({"application":"agent_app"})},
    {:post, "/stop", ""},
    {:post, "/stop", ~s({"application":"agent_app"})},
    {:get, "/coverage", nil},
    {:get, "/report/lcov", nil},
    {:get, "/report/html", nil},
    {:get, "/snapshot", nil},
    {:get, "/snapshot?reset=true", nil},
    {:post, "/reset", ""},
    {:get, "/metrics", nil},
    {:get, "/no/such/route", nil},
    {:delete, "/reset", nil},
    {:post, "/health", ""}
  ]

  describe "authentication" do
    test "no token, wrong tokens and wrong schemes are 401 on every route but health", %{url: url} do
      wrong = [
        [],
        [{"authorization", "Bearer wrong-token-wrong-token"}],
        [{"authorization", "Bearer " <> @token <> "x"}],
        [{"authorization", "Bearer " <> binary_part(@token, 0, byte_size(@token) - 1)}],
        [{"authorization", "Bearer " <> String.upcase(@token)}],
        [{"authorization", "Bearer"}],
        [{"authorization", "Bearer "}],
        [{"authorization", @token}],
        [{"authorization", "Basic " <> Base.encode64("user:" <> @token)}],
        [{"authorization", "Token " <> @token}],
        [{"authorization", "Bearer " <> @token <> " extra"}],
        [{"x-token", @token}],
        [{"authorization", "Bearer " <> @token}, {"authorization", "Bearer nope"}]
      ]

      for {method, path, body} <- @protected, headers <- wrong do
        assert {401, resp_headers, resp} = http(url, method, path, headers, body),
               "#{method} #{path} with #{inspect(headers)}"

        assert resp_headers["www-authenticate"] =~ "Bearer"
        assert resp_headers["content-type"] == "application/json"
        assert %{"error" => %{"kind" => "unauthorized"}} = LiveCov.JSON.decode!(resp)
      end
    end

    test "health answers with or without a token; the token works elsewhere", %{url: url} do
      for headers <- [[], [{"authorization", "Bearer " <> @token}], [{"authorization", "junk"}]] do
        assert {200, _, body} = http(url, :get, "/health", headers, nil)
        assert %{"status" => "ok"} = LiveCov.JSON.decode!(body)
      end

      # The scheme is case-insensitive and surrounding blanks are ignored.
      for value <- ["Bearer " <> @token, "bearer " <> @token, "BEARER   " <> @token <> "  "] do
        assert {200, _, _} = http(url, :get, "/status", [{"authorization", value}], nil)
      end
    end
  end

  describe "hostile input" do
    test "bodies over the limit are refused with 413 before they are read", %{port: port} do
      for path <- ["/instrument", "/stop", "/reset"], auth <- [auth(), []] do
        # Only the head is sent: the answer comes before any of the body is read. Without a
        # token too: the size check comes first.
        head =
          "POST #{path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" <>
            "content-length: #{@max_body + 1}\r\n" <>
            Enum.map_join(auth, "", fn {k, v} -> "#{k}: #{v}\r\n" end) <> "\r\n"

        assert {413, _} = raw_request(port, head)
      end

      # Chunked bodies are limited too.
      chunk = String.duplicate("y", @max_body + 10)

      raw =
        "POST /reset HTTP/1.1\r\nhost: x\r\nauthorization: Bearer #{@token}\r\n" <>
          "transfer-encoding: chunked\r\nconnection: close\r\n\r\n" <>
          Integer.to_string(byte_size(chunk), 16) <> "\r\n" <> chunk <> "\r\n0\r\n\r\n"

      assert {status, _} = raw_request(port, raw)
      assert status in 400..499
    end

    test "malformed JSON and non-object bodies are 400", %{url: url} do
      deep = String.duplicate("[", 100_000) |> binary_part(0, @max_body - 10)

      for body <- [
            "{",
            "{\"application\":}",
            "nul",
            <<0xFF, 0xFE, 0x00>>,
            "{\"application\":\"agent_app\"} trailing",
            deep,
            "\"agent_app\"",
            "[\"agent_app\"]",
            "42"
          ] do
        for path <- ["/instrument", "/stop", "/reset"] do
          assert {400, _, resp} = http(url, :post, path, auth(), body), "#{path} #{inspect(body)}"
          assert %{"error" => %{"kind" => kind, "message" => _}} = LiveCov.JSON.decode!(resp)
          assert kind in ["malformed_json", "invalid_body"]
        end
      end
    end

    test "unknown applications and names that are not application names", %{url: url} do
      for {name, status} <- [
            {"no_such_app", 404},
            {"fz_" <> String.duplicate("a", 200), 404},
            {"../agent_app", 400},
            {"agent_app/../kernel", 400},
            {"/etc/passwd", 400},
            {"agent_app\u0000", 400},
            {"Elixir.Kernel", 400},
            {String.duplicate("a", 300), 400},
            {"", 400}
          ] do
        body = LiveCov.JSON.encode!(%{application: name})

        for path <- ["/instrument", "/stop"] do
          assert {^status, _, resp} = http(url, :post, path, auth(), body), "#{path} #{name}"
          assert %{"error" => %{"message" => msg}} = LiveCov.JSON.decode!(resp)
          assert msg != ""
        end
      end

      # No atom was created for an unknown name.
      assert_raise ArgumentError, fn -> String.to_existing_atom("no_such_app") end
    end

    test "path traversal in report names is a clear 4xx and reads no file", %{port: port} do
      for path <- [
            "/report/..%2F..%2F..%2Fetc%2Fpasswd",
            "/report/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/report/..",
            "/report/.",
            "/report/lcov%00",
            "/report/lcov%2F..%2F..%2Fetc%2Fpasswd",
            "/report/LCOV",
            "/report/Elixir.File",
            "/report/%zz",
            "/report/../../../../etc/passwd",
            "/report/lcov/../../../etc/passwd",
            "/report//etc/passwd",
            "/report/lcov?compile_root=/&runtime_root=/etc/passwd%00",
            "/report/html?compile_root=/&runtime_root=/etc/passwd",
            "/report/coveralls?compile_root=/tmp&runtime_root=/etc/../etc",
            "/report/coveralls?compile_root=/tmp&runtime_root=etc",
            "/report/json?compile_root=/tmp&runtime_root=/&root=/no/such/dir"
          ] do
        req = "GET #{path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer #{@token}\r\n\r\n"
        assert {status, body} = raw_request(port, req), path
        assert status in 400..404, "#{path} -> #{status}"
        refute body =~ "root:x:0"

        # JSON from the agent; httpd itself refuses URIs it cannot parse (its own 400 page).
        if status != 400 or String.starts_with?(body, "{"),
          do: assert(%{"error" => %{"kind" => _, "message" => _}} = LiveCov.JSON.decode!(body))
      end

      # Raw, unnormalised request lines too.
      for line <- ["GET /report/../../etc/passwd HTTP/1.1", "GET ../../etc/passwd HTTP/1.1"] do
        req =
          line <> "\r\nhost: x\r\nauthorization: Bearer #{@token}\r\nconnection: close\r\n\r\n"

        assert {status, body} = raw_request(port, req)
        assert status in 400..404
        refute body =~ "root:x:0"
      end
    end

    test "malformed query strings and oversized headers are 4xx", %{url: url, port: port} do
      req =
        "GET /coverage?compile_root=%zz HTTP/1.1\r\nhost: x\r\nauthorization: Bearer #{@token}\r\n\r\n"

      # httpd refuses a URI it cannot parse itself (400, its own page).
      assert {400, _} = raw_request(port, req)
      assert {400, _, _} = http(url, :get, "/coverage?root=/tmp&root=/tmp", auth(), nil)
      assert {400, _, _} = http(url, :get, "/metrics?x=1", auth(), nil)

      huge = String.duplicate("h", 20_000)
      req = "GET /status HTTP/1.1\r\nhost: x\r\nx-big: #{huge}\r\nconnection: close\r\n\r\n"
      assert {status, _} = raw_request(port, req)
      assert status in 400..431
    end
  end

  describe "fuzz" do
    @tag timeout: 300_000
    test "random requests leave the node, the agent and the counts intact", %{
      url: url,
      port: port
    } do
      n = String.to_integer(System.get_env("LIVE_COV_FUZZ_N", "1500"))

      seed =
        String.to_integer(System.get_env("LIVE_COV_FUZZ_SEED", "#{:erlang.phash2(make_ref())}"))

      IO.puts("\n[agent fuzz] #{n} requests, LIVE_COV_FUZZ_SEED=#{seed}")
      procs_before = length(Process.list())

      results =
        1..n
        |> Task.async_stream(
          fn i ->
            :rand.seed(:exsss, {seed, i, 7})
            {kind, data} = fuzz_request()
            {kind, data, raw_request(port, data, if(kind == :garbage, do: 150, else: 5_000))}
          end,
          max_concurrency: 16,
          timeout: 60_000,
          ordered: false
        )
        |> Enum.map(fn {:ok, r} -> r end)

      well_formed = for {:well_formed, data, {status, _}} <- results, do: {status, data}
      statuses = Enum.frequencies(for {s, _} <- well_formed, do: s)
      IO.puts("[agent fuzz] well-formed: #{length(well_formed)}, statuses: #{inspect(statuses)}")

      # Every complete request was answered, and never with a server error (httpd itself
      # answers 501 to methods it does not implement, before the agent sees them).
      bad =
        for {status, data} <- well_formed, not acceptable?(status, data) do
          {status, data |> :binary.split("\r\n") |> hd()}
        end

      assert bad == [], "unexpected answers: #{inspect(Enum.take(bad, 5))}"

      # The agent still serves, with the same data.
      assert {200, _, _} = http(url, :get, "/health", [], nil)
      assert {200, _, body} = http(url, :get, "/status", auth(), nil)
      assert length(LiveCov.JSON.decode!(body)["modules"]) == 2
      assert %{running: 0, queued: 0} = LiveCov.Agent.Flight.info()

      # No process leak once the connections are closed.
      assert wait_until(fn -> length(Process.list()) <= procs_before + 25 end),
             "processes: #{procs_before} before, #{length(Process.list())} after"
    end
  end

  ## The fuzzer: random requests over raw TCP. Authenticated ones never mutate state: their
  ## bodies are never valid JSON, their application names never exist, and they never ask
  ## for a snapshot reset.

  @paths [
    "/health",
    "/status",
    "/instrument",
    "/stop",
    "/coverage",
    "/report/lcov",
    "/report/html",
    "/report/json",
    "/report/nope",
    "/report",
    "/snapshot",
    "/reset",
    "/metrics",
    "/",
    "/%73tatus",
    "/report/%2e%2e",
    "//status",
    "/status/../metrics"
  ]
  @methods ~w(GET GET GET POST POST PUT DELETE HEAD OPTIONS PATCH TRACE BREW)

  defp fuzz_request do
    case :rand.uniform(10) do
      1 -> {:garbage, random_bytes(:rand.uniform(400))}
      2 -> {:garbage, "GET /status HTTP/1.1\r\n" <> random_bytes(:rand.uniform(200))}
      _ -> {:well_formed, well_formed_request()}
    end
  end

  defp well_formed_request do
    method = Enum.random(@methods)
    path = if :rand.uniform(5) == 1, do: random_path(), else: Enum.random(@paths)
    auth = Enum.random([:none, :wrong, :junk, :valid, :valid])
    query = if :rand.uniform(3) == 1, do: "?" <> random_query(), else: ""

    {path, query} =
      if auth == :valid and resets?(path, query), do: {path, ""}, else: {path, query}

    body =
      case {auth, :rand.uniform(6)} do
        {:valid, 1} -> LiveCov.JSON.encode!(%{application: "fz_" <> random_name()})
        {:valid, _} -> <<1>> <> random_bytes(:rand.uniform(300))
        {_, 1} -> ~s({"application":"agent_app"})
        {_, 2} -> random_bytes(@max_body + :rand.uniform(1000))
        {_, _} -> random_bytes(:rand.uniform(300) - 1)
      end

    body = if method in ["GET", "HEAD", "DELETE"] and :rand.uniform(2) == 1, do: "", else: body

    headers =
      [{"host", "127.0.0.1"}, {"connection", "close"}, {"content-length", "#{byte_size(body)}"}] ++
        auth_header(auth) ++
        for(_ <- 1..:rand.uniform(4)//1, :rand.uniform(2) == 1, do: random_header())

    head = Enum.map_join(headers, "", fn {k, v} -> "#{k}: #{v}\r\n" end)
    # An oversize body is refused before it is read: send only its head (sending the body
    # too would race the server's close with a TCP reset).
    body = if byte_size(body) > @max_body, do: "", else: body
    "#{method} #{path}#{query} HTTP/1.1\r\n#{head}\r\n#{body}"
  end

  # Would this authenticated request dump-and-reset? (then the fuzzer drops its query)
  defp resets?(path, query) do
    String.contains?(URI.decode(path), "snapshot") and
      (String.contains?(URI.decode(query), "reset") or String.contains?(query, "%"))
  rescue
    _ -> true
  end

  @httpd_methods ~w(GET HEAD POST PUT DELETE PATCH TRACE)

  defp acceptable?(status, data) do
    [method | _] = String.split(data, " ", parts: 2)

    cond do
      not is_integer(status) -> false
      status in 200..499 -> true
      status == 501 -> method not in @httpd_methods
      true -> false
    end
  end

  defp auth_header(:none), do: []
  defp auth_header(:valid), do: [{"authorization", "Bearer " <> @token}]
  defp auth_header(:wrong), do: [{"authorization", "Bearer " <> random_name()}]
  defp auth_header(:junk), do: [{"authorization", printable(:rand.uniform(60))}]

  defp random_header,
    do:
      {"x-" <> random_name(),
       printable(:rand.uniform(if :rand.uniform(10) == 1, do: 3000, else: 40))}

  defp random_path do
    segments =
      for _ <- 1..:rand.uniform(4),
          do: Enum.random([random_name(), "..", ".", "%2e%2e", "%00", "%ff", "report", "lcov"])

    "/" <> Enum.join(segments, "/")
  end

  defp random_query do
    Enum.map_join(1..:rand.uniform(3), "&", fn _ ->
      Enum.random(["compile_root", "runtime_root", "root", "reset", random_name(), "%zz"]) <>
        "=" <> Enum.random(["/", "..", "%2F", "true", "false", "%zz", random_name(), ""])
    end)
  end

  defp random_name do
    len = :rand.uniform(12)
    for _ <- 1..len, into: "", do: <<Enum.random(?a..?z)>>
  end

  # Header-safe printable bytes (no CR/LF).
  defp printable(n), do: for(_ <- 1..n, into: "", do: <<Enum.random(32..126)>>)

  defp random_bytes(0), do: ""
  defp random_bytes(n), do: :rand.bytes(n)

  ## Helpers

  defp auth, do: [{"authorization", "Bearer " <> @token}]

  defp wait_until(fun, tries \\ 50) do
    cond do
      fun.() -> true
      tries == 0 -> false
      true -> Process.sleep(100) && wait_until(fun, tries - 1)
    end
  end

  # Sends raw bytes to the agent on 127.0.0.1 and reads the answer: {status | nil, body}.
  defp raw_request(port, data, timeout \\ 5_000) do
    {:ok, sock} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false], 5_000)
    _ = :gen_tcp.send(sock, data)
    resp = recv_all(sock, timeout, "")
    :gen_tcp.close(sock)

    case resp do
      "HTTP/1." <> <<_, " ", code::binary-size(3), _::binary>> ->
        body =
          case :binary.split(resp, "\r\n\r\n") do
            [_, b] -> b
            _ -> ""
          end

        {String.to_integer(code), body}

      _ ->
        {nil, resp}
    end
  end

  defp recv_all(sock, timeout, acc) do
    if complete?(acc) do
      acc
    else
      case :gen_tcp.recv(sock, 0, timeout) do
        {:ok, data} -> recv_all(sock, timeout, acc <> data)
        {:error, _} -> acc
      end
    end
  end

  defp complete?(resp) do
    with [head, body] <- :binary.split(resp, "\r\n\r\n"),
         [_, len] <- Regex.run(~r/\r\ncontent-length:\s*(\d+)/i, head) do
      byte_size(body) >= String.to_integer(len)
    else
      _ -> false
    end
  end

  defp http(url, method, path, headers, body),
    do: HTTP.request(method, url <> path, headers: headers, body: body)
end
