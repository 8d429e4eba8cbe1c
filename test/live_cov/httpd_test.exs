defmodule LiveCov.HTTPDTest do
  # The httpd plumbing shared by the agent and the gateway; both use it over real HTTP in
  # their own tests (agent_test, gateway_test).
  use ExUnit.Case, async: true

  import ExUnit.CaptureLog

  require Record

  alias LiveCov.HTTPD
  alias LiveCov.Test.HTTP

  Record.defrecordp(:mod, Record.extract(:mod, from_lib: "inets/include/httpd.hrl"))

  defp mod_data(method, config) do
    db = :ets.new(:httpd_test_db, [:set, :public])
    :ets.insert(db, {:httpd_test_key, config})

    mod(
      data: [],
      config_db: db,
      method: method,
      request_uri: ~c"/p?q=1",
      parsed_header: [{~c"x-a", ~c"b"}],
      entity_body: ~c"body"
    )
  end

  defp no_crash(kind, reason, _stack),
    do: flunk("the handler crashed: #{inspect({kind, reason})}")

  defp respond(req, config), do: {200, [{"content-type", "text/plain"}], inspect({req, config})}

  test "serve/4 hands the request and the stored config to the handler" do
    assert {:proceed, [response: {:response, headers, body}]} =
             HTTPD.serve(mod_data(~c"POST", :cfg), :httpd_test_key, &respond/2, &no_crash/3)

    assert body ==
             inspect(
               {%{method: "POST", uri: "/p?q=1", headers: [{"x-a", "b"}], body: "body"}, :cfg}
             )

    assert {:code, 200} in headers
    assert {:content_type, ~c"text/plain"} in headers
    assert {:content_length, Integer.to_charlist(byte_size(body))} in headers
    assert {~c"cache-control", ~c"no-store"} in headers
  end

  test "serve/4: a HEAD answer has no body; an answer already given is kept" do
    assert {:proceed, [response: {:response, headers, ""}]} =
             HTTPD.serve(mod_data(~c"HEAD", nil), :httpd_test_key, &respond/2, &no_crash/3)

    assert {:content_length, ~c"0"} in headers

    answered = mod(mod_data(~c"GET", nil), data: [{:response, :x}])

    assert HTTPD.serve(answered, :httpd_test_key, &respond/2, &no_crash/3) ==
             {:proceed, [response: :x]}
  end

  test "serve/4: a crash of the handler is answered by on_crash" do
    on_crash = fn kind, reason, stack ->
      assert is_list(stack)
      {500, [], inspect({kind, reason})}
    end

    for {fun, expected} <- [
          {fn _, _ -> raise ArgumentError, "x" end, {:error, %ArgumentError{message: "x"}}},
          {fn _, _ -> throw(:t) end, {:throw, :t}},
          {fn _, _ -> exit(:e) end, {:exit, :e}}
        ] do
      assert {:proceed, [response: {:response, headers, body}]} =
               HTTPD.serve(mod_data(~c"GET", nil), :httpd_test_key, fun, on_crash)

      assert {:code, 500} in headers
      assert body == inspect(expected)
    end
  end

  test "start/2 listens (the actual port with port 0); url/2" do
    assert HTTPD.url({127, 0, 0, 1}, 80) == "http://127.0.0.1:80"
    assert HTTPD.url({0, 0, 0, 0, 0, 0, 0, 1}, 8080) == "http://[::1]:8080"

    root = String.to_charlist(System.tmp_dir!())

    config = [
      port: 0,
      server_name: ~c"live_cov_httpd_test",
      server_root: root,
      document_root: root,
      modules: [LiveCov.HTTPDTest.Handler]
    ]

    {:ok, _} = Application.ensure_all_started(:inets)
    assert {:ok, pid, port} = HTTPD.start({127, 0, 0, 1}, config)
    on_exit(fn -> :inets.stop(:stand_alone, pid) end)
    assert is_integer(port) and port > 0

    assert {200, headers, "GET /x"} = HTTP.request(:get, HTTPD.url({127, 0, 0, 1}, port) <> "/x")
    assert headers["x-content-type-options"] == "nosniff"

    # A port something else listens on.
    {:ok, socket} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, busy} = :inet.port(socket)
    Process.flag(:trap_exit, true)

    capture_log(fn ->
      assert {:error, reason} = HTTPD.start({127, 0, 0, 1}, Keyword.put(config, :port, busy))
      assert inspect(reason) =~ "eaddrinuse"
    end)
  end

  defmodule Handler do
    @moduledoc false
    def unquote(:do)(mod_data) do
      LiveCov.HTTPD.serve(
        mod_data,
        :unused,
        fn req, _ -> {200, [], "#{req.method} #{req.uri}"} end,
        fn _, _, _ -> {500, [], ""} end
      )
    end
  end
end
