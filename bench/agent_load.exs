# Agent load benchmark: many concurrent report requests against LiveCov's HTTP agent while the
# instrumented application keeps serving its own traffic.
#
#     mix run bench/agent_load.exs [--quick] [--clients 200] [--rounds 5] [--modules 100]
#                                  [--functions 40] [--formats lcov,cobertura,json,html,coveralls,terminal]
#     mix live_cov.bench agent_load
#
# This VM is the application node: it generates and compiles an application of M Erlang modules
# (F functions each, with debug_info and sources), instruments it with LiveCov, starts the agent
# on 127.0.0.1, and runs "application traffic": one worker per scheduler calling the
# instrumented code at a fixed rate (an operation every 2 ms) and timing each operation.
#
# The load comes from a second BEAM (a small HTTP client written here, raw :gen_tcp, one
# keep-alive connection per client), as a gateway or CI would: C clients connect, wait for a
# common start signal, then each sends R report requests back to back, cycling through the
# formats. Every request is timed from send to the last byte of the answer.
#
# Printed: request latency p50/p95/p99/max and errors (non-200 answers or connection errors),
# overall and per format; the application's operation latency without and during the load.
# Exit status 1 when a request failed.

Code.require_file("support/bench_helpers.exs", __DIR__)

defmodule LiveCov.Bench.AgentLoad do
  @moduledoc false

  import LiveCov.Bench.Helpers, only: [cpu_model: 0]

  @token "agent-load-bench-token-0123456789"

  def main(argv) do
    {opts, _, invalid} =
      OptionParser.parse(argv,
        strict: [
          quick: :boolean,
          clients: :integer,
          rounds: :integer,
          modules: :integer,
          functions: :integer,
          formats: :string,
          identity: :boolean
        ]
      )

    if invalid != [], do: raise(ArgumentError, "unknown options #{inspect(invalid)}")
    quick = Keyword.get(opts, :quick, false)
    clients = Keyword.get(opts, :clients, 200)
    rounds = Keyword.get(opts, :rounds, if(quick, do: 2, else: 5))
    nmods = Keyword.get(opts, :modules, if(quick, do: 30, else: 100))
    nfuns = Keyword.get(opts, :functions, 40)

    formats =
      opts
      |> Keyword.get(:formats, "lcov,cobertura,json,html,coveralls,terminal")
      |> String.split(",", trim: true)

    # Clients ask for gzip (as browsers, `curl --compressed` and Prometheus do) unless
    # --identity is given (as a plain :httpc client).
    encoding = if Keyword.get(opts, :identity, false), do: "identity", else: "gzip"

    {:ok, _} = Application.ensure_all_started(:live_cov)
    {app, dir, mods} = build_app(nmods, nfuns)
    %{instrumented: inst, skipped: []} = LiveCov.start(app)
    true = length(inst) == nmods
    sites = Enum.sum(for m <- inst, do: LiveCov.ModuleInfo.size(LiveCov.Instrumented.lookup(m)))

    {:ok, agent} =
      LiveCov.Agent.start(port: 0, token: @token, max_clients: max(256, clients + 16))

    # Some coverage to report: run every module once.
    for m <- mods, do: m.run(7)

    sizes =
      for f <- formats, into: %{} do
        {:ok, {200, body}} = get_once(agent.port, "/report/" <> f)
        {f, byte_size(body)}
      end

    baseline_s = if quick, do: 2, else: 4
    IO.puts(:stderr, "baseline traffic #{baseline_s} s ...")
    baseline = with_traffic(mods, fn -> Process.sleep(baseline_s * 1000) end)

    IO.puts(:stderr, "#{clients} clients × #{rounds} requests ...")

    {ops, {requests, wall_ms, from, to}} =
      with_traffic_result(mods, fn ->
        run_clients(agent.port, clients, rounds, formats, encoding)
      end)

    # Only the operations due while the clients were at it (not while their BEAM started).
    load = stats(for {at, us} <- ops, at >= from and at <= to, do: us)

    LiveCov.Agent.stop()
    LiveCov.stop()
    File.rm_rf!(dir)

    errors = Enum.count(requests, &(&1.status != 200))

    report(%{
      clients: clients,
      rounds: rounds,
      formats: formats,
      encoding: encoding,
      nmods: nmods,
      nfuns: nfuns,
      sites: sites,
      sizes: sizes,
      requests: requests,
      wall_ms: wall_ms,
      baseline: baseline,
      load: load,
      errors: errors
    })

    if errors > 0, do: System.halt(1)
  end

  ## The application: generated modules, instrumented, and its traffic

  defp build_app(nmods, nfuns) do
    dir =
      Path.join(System.tmp_dir!(), "live_cov_agent_load_#{System.unique_integer([:positive])}")

    src = Path.join(dir, "src")
    ebin = Path.join(dir, "ebin")
    File.mkdir_p!(src)
    File.mkdir_p!(ebin)

    mods =
      for i <- 1..nmods do
        mod = :"lc_load_mod_#{i}"
        path = Path.join(src, "#{mod}.erl")
        File.write!(path, module_source(mod, nfuns))

        {:ok, ^mod} =
          :compile.file(String.to_charlist(path), [
            :debug_info,
            :return_errors,
            outdir: String.to_charlist(ebin)
          ])

        mod
      end

    app = :lc_load_app

    File.write!(
      Path.join(ebin, "#{app}.app"),
      :io_lib.format("~p.~n", [
        {:application, app,
         [
           description: ~c"agent load bench app",
           vsn: ~c"1.0.0",
           modules: mods,
           registered: [],
           applications: [:kernel, :stdlib]
         ]}
      ])
    )

    :code.add_patha(String.to_charlist(ebin))
    for m <- mods, do: {:module, ^m} = :code.load_file(m)
    {app, dir, mods}
  end

  defp module_source(mod, nfuns) do
    funs =
      for j <- 1..nfuns do
        """
        f#{j}(X) when X > 1000000 ->
            X rem 1000;
        f#{j}(X) ->
            case (X + #{j}) rem 3 of
                0 -> X * 2 + 1;
                1 -> X + #{j};
                _ -> (X div 2) + 3
            end.
        """
      end

    exports = Enum.map_join(1..nfuns, ", ", &"f#{&1}/1")
    calls = Enum.map_join(1..nfuns, ", ", &"fun f#{&1}/1")

    """
    -module(#{mod}).
    -export([run/1, #{exports}]).

    run(X) ->
        lists:foldl(fun(F, Acc) -> F(Acc) end, X, [#{calls}]).

    #{Enum.join(funs, "\n")}
    """
  end

  # Runs `fun` while one worker per scheduler performs an operation every 2 ms; returns the
  # operations' latency stats.
  defp with_traffic(mods, fun) do
    {lat, _} = with_traffic_result(mods, fun)
    lat |> Enum.map(&elem(&1, 1)) |> stats()
  end

  defp with_traffic_result(mods, fun) do
    mods = List.to_tuple(mods)
    n = System.schedulers_online()
    parent = self()

    workers =
      for w <- 1..n do
        spawn_link(fn ->
          traffic_loop(parent, mods, w, 0, System.monotonic_time(:microsecond), [])
        end)
      end

    result = fun.()
    for w <- workers, do: send(w, :stop)
    lat = Enum.flat_map(workers, fn w -> receive do: ({:lat, ^w, l} -> l) end)
    {lat, result}
  end

  defp traffic_loop(parent, mods, seed, i, next, acc) do
    receive do
      :stop -> send(parent, {:lat, self(), acc})
    after
      max(0, div(next - System.monotonic_time(:microsecond), 1000)) ->
        t0 = System.monotonic_time(:microsecond)
        m = elem(mods, rem(seed + i, tuple_size(mods)))
        _ = m.run(seed + i)
        t1 = System.monotonic_time(:microsecond)
        # Latency counts from when the operation was due: queueing behind other work shows.
        at = System.os_time(:microsecond)
        traffic_loop(parent, mods, seed, i + 1, next + 2_000, [{at, t1 - min(t0, next)} | acc])
    end
  end

  ## The load generator (another BEAM)

  @client ~S"""
  [port, token, clients, rounds, formats, encoding, out] = System.argv()
  port = String.to_integer(port)
  clients = String.to_integer(clients)
  rounds = String.to_integer(rounds)
  formats = String.split(formats, ",") |> List.to_tuple()

  defmodule C do
    def connect(port), do: :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false, packet: :raw], 10_000)

    def request(sock, path, token, encoding) do
      req =
        "GET #{path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer #{token}\r\n" <>
          "accept-encoding: #{encoding}\r\n\r\n"

      with :ok <- :gen_tcp.send(sock, req), do: read(sock, "")
    end

    defp read(sock, acc) do
      case :binary.split(acc, "\r\n\r\n") do
        [head, body] ->
          [_, code] = Regex.run(~r/^HTTP\/1\.. (\d+)/, head)
          [_, len] = Regex.run(~r/\r\ncontent-length: *(\d+)/i, head)
          body(sock, String.to_integer(code), String.to_integer(len), body)

        [_] ->
          with {:ok, data} <- :gen_tcp.recv(sock, 0, 120_000), do: read(sock, acc <> data)
      end
    end

    defp body(_sock, code, len, got) when byte_size(got) >= len, do: {:ok, code, byte_size(got)}

    defp body(sock, code, len, got) do
      with {:ok, data} <- :gen_tcp.recv(sock, 0, 120_000), do: body(sock, code, len, got <> data)
    end
  end

  parent = self()

  pids =
    for c <- 1..clients do
      spawn_link(fn ->
        {:ok, sock} = C.connect(port)
        send(parent, {:ready, self()})
        receive do: (:go -> :ok)

        results =
          for r <- 1..rounds do
            f = elem(formats, rem(c + r, tuple_size(formats)))
            t0 = System.monotonic_time(:microsecond)
            res = C.request(sock, "/report/" <> f, token, encoding)
            us = System.monotonic_time(:microsecond) - t0

            case res do
              {:ok, code, bytes} -> %{format: f, status: code, us: us, bytes: bytes}
              other -> %{format: f, status: {:error, inspect(other)}, us: us, bytes: 0}
            end
          end

        send(parent, {:done, self(), results})
      end)
    end

  for p <- pids, do: receive(do: ({:ready, ^p} -> :ok))
  t0 = System.monotonic_time(:millisecond)
  from = System.os_time(:microsecond)
  for p <- pids, do: send(p, :go)
  results = Enum.flat_map(pids, fn p -> receive(do: ({:done, ^p, r} -> r)) end)
  wall = System.monotonic_time(:millisecond) - t0
  File.write!(out, :erlang.term_to_binary({results, wall, from, System.os_time(:microsecond)}))
  """

  defp run_clients(port, clients, rounds, formats, encoding) do
    out =
      Path.join(
        System.tmp_dir!(),
        "live_cov_agent_load_#{System.unique_integer([:positive])}.bin"
      )

    elixir = System.find_executable("elixir") || raise "elixir is not on PATH"

    args = [
      "--erl",
      "+P 1000000",
      "-e",
      @client,
      Integer.to_string(port),
      @token,
      Integer.to_string(clients),
      Integer.to_string(rounds),
      Enum.join(formats, ","),
      encoding,
      out
    ]

    {log, status} = System.cmd(elixir, args, stderr_to_stdout: true)
    if status != 0, do: raise("load generator failed (#{status}):\n#{log}")
    result = out |> File.read!() |> :erlang.binary_to_term()
    File.rm(out)
    result
  end

  defp get_once(port, path) do
    {:ok, s} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false], 5_000)

    :ok =
      :gen_tcp.send(
        s,
        "GET #{path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer #{@token}\r\n\r\n"
      )

    data = recv_all(s, "")
    :gen_tcp.close(s)
    [head, body] = :binary.split(data, "\r\n\r\n")
    [_, code] = Regex.run(~r/^HTTP\/1\.. (\d+)/, head)
    {:ok, {String.to_integer(code), body}}
  end

  defp recv_all(s, acc) do
    case :gen_tcp.recv(s, 0, 60_000) do
      {:ok, d} -> recv_all(s, acc <> d)
      {:error, :closed} -> acc
    end
  end

  ## Output

  defp report(r) do
    all = stats(Enum.map(r.requests, & &1.us))
    n = length(r.requests)
    cpu = :erlang.system_info(:logical_processors_available)

    IO.puts("""
    <!-- bench/agent_load.exs -->

    ## Agent under load: #{r.clients} concurrent clients × #{r.rounds} report requests (#{r.encoding})

    Machine: #{cpu_model()}, #{cpu} logical CPUs available. OTP #{System.otp_release()}, Elixir #{System.version()}, #{System.schedulers_online()} schedulers.
    Application: #{r.nmods} instrumented Erlang modules × #{r.nfuns} functions, #{r.sites} bump sites (LiveCov `mode: :counts`), one
    traffic worker per scheduler running an operation every 2 ms. Load generator: a second BEAM on the
    same machine, #{r.clients} keep-alive connections to the agent on 127.0.0.1, started together; each
    client sends #{r.rounds} `GET /report/<format>` back to back, formats in rotation
    (#{Enum.join(r.formats, ", ")}), `accept-encoding: #{r.encoding}`. Latency: from sending the
    request to its last byte.

    | requests | errors | p50 | p95 | p99 | max | wall | requests/s | bytes received |
    |--:|--:|--:|--:|--:|--:|--:|--:|--:|
    | #{n} | #{r.errors} | #{ms(all.p50)} | #{ms(all.p95)} | #{ms(all.p99)} | #{ms(all.max)} | #{Float.round(r.wall_ms / 1000, 2)} s | #{Float.round(n * 1000 / max(r.wall_ms, 1), 1)} | #{kb(Enum.sum(Enum.map(r.requests, & &1.bytes)))} |

    Per format:

    | format | report size (uncompressed) | requests | errors | p50 | p95 | p99 | max |
    |---|--:|--:|--:|--:|--:|--:|--:|
    #{Enum.map_join(r.formats, "\n", fn f -> format_row(f, r) end)}

    Application operations (latency from when each was due, so queueing shows):

    | phase | operations | p50 | p95 | p99 | max |
    |---|--:|--:|--:|--:|--:|
    | traffic alone | #{r.baseline.n} | #{ms(r.baseline.p50)} | #{ms(r.baseline.p95)} | #{ms(r.baseline.p99)} | #{ms(r.baseline.max)} |
    | traffic during the load | #{r.load.n} | #{ms(r.load.p50)} | #{ms(r.load.p95)} | #{ms(r.load.p99)} | #{ms(r.load.max)} |

    Errors: #{error_summary(r.requests)}.
    """)
  end

  defp format_row(f, r) do
    reqs = Enum.filter(r.requests, &(&1.format == f))
    s = stats(Enum.map(reqs, & &1.us))
    errs = Enum.count(reqs, &(&1.status != 200))

    "| #{f} | #{kb(r.sizes[f])} | #{length(reqs)} | #{errs} | #{ms(s.p50)} | #{ms(s.p95)} | #{ms(s.p99)} | #{ms(s.max)} |"
  end

  defp error_summary(requests) do
    case Enum.frequencies(for %{status: s} <- requests, s != 200, do: s) do
      empty when map_size(empty) == 0 -> "none"
      freq -> inspect(freq)
    end
  end

  defp stats([]), do: %{n: 0, p50: 0, p95: 0, p99: 0, max: 0}

  defp stats(us) do
    sorted = us |> Enum.sort() |> List.to_tuple()
    n = tuple_size(sorted)
    at = fn q -> elem(sorted, min(n - 1, trunc(Float.ceil(q * n)) - 1)) end
    %{n: n, p50: at.(0.50), p95: at.(0.95), p99: at.(0.99), max: elem(sorted, n - 1)}
  end

  defp ms(us) when us >= 1_000_000, do: "#{Float.round(us / 1_000_000, 2)} s"
  defp ms(us) when us >= 10_000, do: "#{round(us / 1000)} ms"
  defp ms(us), do: "#{Float.round(us / 1000, 2)} ms"

  defp kb(nil), do: "?"
  defp kb(b) when b >= 1_048_576, do: "#{Float.round(b / 1_048_576, 2)} MiB"
  defp kb(b), do: "#{Float.round(b / 1024, 1)} KiB"
end

LiveCov.Bench.AgentLoad.main(System.argv())
