defmodule LiveCov.PublishTest do
  # LiveCov.publish/2 against a real local :inets httpd playing a Coveralls-like endpoint that
  # can refuse, fail, be slow, then accept.
  use ExUnit.Case, async: false

  alias LiveCov.PublishTest.FakeEndpoint
  alias LiveCov.Test.FixtureBuild

  defmodule FakeEndpoint do
    @moduledoc false
    # httpd callback: answers from a script of responses kept in an Elixir Agent, and records
    # every request it gets.
    require Record
    Record.defrecordp(:mod, Record.extract(:mod, from_lib: "inets/include/httpd.hrl"))

    @state __MODULE__.State

    def start do
      {:ok, _} = Elixir.Agent.start_link(fn -> %{script: [], requests: []} end, name: @state)

      {:ok, pid} =
        :inets.start(
          :httpd,
          [
            port: 0,
            bind_address: {127, 0, 0, 1},
            server_name: ~c"fake_coveralls",
            server_root: ~c"/tmp",
            document_root: ~c"/tmp",
            modules: [__MODULE__]
          ],
          :stand_alone
        )

      port =
        Enum.find_value(Supervisor.which_children(pid), fn
          {{:httpd_instance_sup, _, p, _}, _, _, _} -> p
          _ -> nil
        end)

      {pid, "http://127.0.0.1:#{port}"}
    end

    # Responses to give, in order: {status, body} or {status, body, headers} or {:sleep, ms,
    # response}. The last one repeats.
    def script(responses),
      do: Elixir.Agent.update(@state, &%{&1 | script: responses, requests: []})

    def requests, do: Elixir.Agent.get(@state, &Enum.reverse(&1.requests))

    def unquote(:do)(m) do
      req = %{
        method: to_string(mod(m, :method)),
        uri: to_string(mod(m, :request_uri)),
        headers: Map.new(mod(m, :parsed_header), fn {k, v} -> {to_string(k), to_string(v)} end),
        body: :erlang.iolist_to_binary(mod(m, :entity_body))
      }

      response =
        Elixir.Agent.get_and_update(@state, fn s ->
          {r, rest} =
            case s.script do
              [r] -> {r, [r]}
              [r | rest] -> {r, rest}
            end

          {r, %{s | script: rest, requests: [req | s.requests]}}
        end)

      respond(response)
    end

    defp respond({:sleep, ms, response}) do
      Process.sleep(ms)
      respond(response)
    end

    defp respond({status, body}), do: respond({status, body, []})

    defp respond({status, body, headers}) do
      headers =
        [
          {:code, status},
          {:content_type, ~c"application/json"},
          {:content_length, Integer.to_charlist(byte_size(body))}
        ] ++
          Enum.map(headers, fn {k, v} -> {String.to_charlist(k), String.to_charlist(v)} end)

      {:proceed, [{:response, {:response, headers, body}}]}
    end
  end

  setup_all do
    {:ok, _} = Application.ensure_all_started(:live_cov)
    LiveCov.stop()
    dir = FixtureBuild.agent_app("agent_publish")
    assert %{instrumented: [_, _]} = LiveCov.start(:agent_app)
    apply(:agent_app_calc, :loop, [2])
    {pid, url} = FakeEndpoint.start()

    on_exit(fn ->
      :inets.stop(:stand_alone, pid)
      LiveCov.stop()
      FixtureBuild.remove_agent_app(dir)
    end)

    {:ok, url: url <> "/api/v1/jobs"}
  end

  test "posts the Coveralls JSON of the node's coverage", %{url: url} do
    FakeEndpoint.script([{200, ~s({"message":"Job #1","url":"https://x/jobs/1"})}])

    assert {:ok, %{status: 200, attempts: 1, bytes: bytes, body: body}} =
             LiveCov.publish(url,
               service_name: "integration",
               service_job_id: "1742",
               extra: %{"git" => %{"branch" => "main"}, "source_files" => "overridden?"},
               headers: [{"x-ci-token", "s3cret"}]
             )

    assert body =~ "Job #1"
    assert [req] = FakeEndpoint.requests()
    assert req.method == "POST"
    assert req.uri == "/api/v1/jobs"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-ci-token"] == "s3cret"
    assert req.headers["user-agent"] =~ "live_cov/"
    assert byte_size(req.body) == bytes

    doc = LiveCov.JSON.decode!(req.body)
    assert doc["service_name"] == "integration"
    assert doc["service_job_id"] == "1742"
    assert doc["git"] == %{"branch" => "main"}
    # The report's own fields win over :extra.
    assert is_list(doc["source_files"])
    names = Enum.map(doc["source_files"], & &1["name"])
    assert Enum.any?(names, &String.ends_with?(&1, "agent_app_calc.erl"))
    calc = Enum.find(doc["source_files"], &String.ends_with?(&1["name"], "agent_app_calc.erl"))
    assert Enum.any?(calc["coverage"], &(is_integer(&1) and &1 > 0))
    assert calc["source"] =~ "-module(agent_app_calc)."
  end

  test "retries 5xx answers with exponential backoff, then succeeds", %{url: url} do
    FakeEndpoint.script([{500, "oops"}, {503, "busy"}, {502, "bad gw"}, {201, "{}"}])
    t0 = System.monotonic_time(:millisecond)
    assert {:ok, %{status: 201, attempts: 4}} = LiveCov.publish(url, backoff: 20, retries: 3)
    elapsed = System.monotonic_time(:millisecond) - t0
    # Waits of at least 20, 40 and 80 ms.
    assert elapsed >= 140
    assert length(FakeEndpoint.requests()) == 4
  end

  test "gives up after the retries with a clear error", %{url: url} do
    FakeEndpoint.script([{503, ~s({"error":"maintenance"})}])
    assert {:error, {:unavailable, msg}} = LiveCov.publish(url, backoff: 1, retries: 2)
    assert msg =~ url
    assert msg =~ "after 3 attempt(s)"
    assert msg =~ "503"
    assert msg =~ "maintenance"
    assert length(FakeEndpoint.requests()) == 3
  end

  test "a refusal (4xx) is not retried and says why", %{url: url} do
    FakeEndpoint.script([{422, ~s({"message":"Couldn't find a repository matching this job."})}])
    assert {:error, {:refused, msg}} = LiveCov.publish(url, backoff: 1, retries: 5)
    assert msg =~ "422"
    assert msg =~ "Couldn't find a repository"
    assert msg =~ "not retried"
    assert length(FakeEndpoint.requests()) == 1

    FakeEndpoint.script([{401, ~s({"message":"bad token"})}])
    assert {:error, {:refused, msg}} = LiveCov.publish(url, backoff: 1)
    assert msg =~ "401"
  end

  test "429 with Retry-After and 408 are retried", %{url: url} do
    FakeEndpoint.script([
      {429, "slow down", [{"retry-after", "0"}]},
      {408, "timeout"},
      {200, "{}"}
    ])

    assert {:ok, %{attempts: 3}} = LiveCov.publish(url, backoff: 1)
  end

  test "a slow endpoint times out and is retried", %{url: url} do
    FakeEndpoint.script([{:sleep, 600, {200, "late"}}, {200, "{}"}])
    assert {:ok, %{attempts: 2}} = LiveCov.publish(url, timeout: 150, backoff: 1)
  end

  test "an endpoint that is not there is unavailable after the retries" do
    {:ok, l} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(l)
    :gen_tcp.close(l)

    assert {:error, {:unavailable, msg}} =
             LiveCov.publish("http://127.0.0.1:#{port}/jobs", backoff: 1, retries: 1)

    assert msg =~ "connection error"
    assert msg =~ "after 2 attempt(s)"
  end

  test "multipart encoding puts the JSON in a json_file field", %{url: url} do
    FakeEndpoint.script([{200, "{}"}])
    assert {:ok, _} = LiveCov.publish(url, encoding: :multipart, repo_token: "tok")
    [req] = FakeEndpoint.requests()
    assert "multipart/form-data; boundary=" <> boundary = req.headers["content-type"]
    assert req.body =~ ~s(name="json_file"; filename="coveralls.json")
    [_, part] = String.split(req.body, "\r\n\r\n", parts: 2)
    json = part |> String.split("\r\n--" <> boundary <> "--") |> hd()
    assert %{"repo_token" => "tok", "source_files" => [_ | _]} = LiveCov.JSON.decode!(json)
  end

  test "bad arguments are clear errors and send nothing", %{url: url} do
    FakeEndpoint.script([{200, "{}"}])
    assert {:error, {:invalid_url, _}} = LiveCov.publish("ftp://x/y")
    assert {:error, {:invalid_url, _}} = LiveCov.publish("not a url")
    assert {:error, {:invalid_url, _}} = LiveCov.publish(nil)
    assert {:error, {:invalid_option, m}} = LiveCov.publish(url, colour: :red)
    assert m =~ "unknown option"
    assert {:error, {:invalid_option, _}} = LiveCov.publish(url, retries: -1)
    assert {:error, {:invalid_option, _}} = LiveCov.publish(url, encoding: :xml)
    assert {:error, {:invalid_option, _}} = LiveCov.publish(url, extra: [1])
    assert {:error, {:invalid_option, _}} = LiveCov.publish(url, headers: [{"a", 1}])
    assert {:error, {:invalid_option, _}} = LiveCov.publish(url, compile_root: "/x")
    assert FakeEndpoint.requests() == []
  end

  test "the backoff is exponential and bounded" do
    s = %{backoff: 100, max_backoff: 1_000}
    assert LiveCov.Publish.delay(s, 1, nil) in 100..125
    assert LiveCov.Publish.delay(s, 2, nil) in 200..250
    assert LiveCov.Publish.delay(s, 3, nil) in 400..500
    assert LiveCov.Publish.delay(s, 10, nil) == 1_000
    assert LiveCov.Publish.delay(s, 1_000, nil) == 1_000
    # Retry-After is honoured within the bound, ignored past it.
    assert LiveCov.Publish.delay(s, 1, 700) == 700
    assert LiveCov.Publish.delay(s, 1, 60_000) in 100..125
  end
end
