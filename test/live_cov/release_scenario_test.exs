defmodule LiveCov.ReleaseScenarioTest do
  # The operator's scenario: a real `mix release` of examples/demo_app runs as a daemon;
  # coverage is switched on, read, reported and switched off through `bin/demo_app rpc`
  # while the test sends HTTP traffic, and the service never stops answering.
  use ExUnit.Case, async: false

  import LiveCov.Test.Peers, only: [free_port: 0]

  @moduletag :release
  @moduletag timeout: 900_000

  @repo Path.expand("../..", __DIR__)
  @modules ~w(DemoApp DemoApp.Application DemoApp.Calc DemoApp.Http DemoApp.Router DemoApp.Server DemoApp.Store)
  @files ~w(demo_app.ex demo_app/application.ex demo_app/calc.ex demo_app/http.ex demo_app/router.ex demo_app/server.ex demo_app/store.ex)

  setup_all do
    {:ok, _} = Application.ensure_all_started(:inets)
    tmp = Path.join(System.tmp_dir!(), "live_cov_release_#{System.unique_integer([:positive])}")
    build = Path.join(tmp, "build/demo_app")
    runtime = Path.join(tmp, "srv/demo_app")
    rel = Path.join(tmp, "rel")
    on_exit(fn -> File.rm_rf(tmp) end)

    # Build the release from a copy whose dependency points at this repository.
    File.mkdir_p!(Path.dirname(build))
    File.cp_r!(Path.join(@repo, "examples/demo_app"), build)
    File.rm_rf!(Path.join(build, "_build"))
    mix_exs = Path.join(build, "mix.exs")
    File.write!(mix_exs, String.replace(File.read!(mix_exs), ~s("../.."), inspect(@repo)))

    {out, status} =
      System.cmd(System.find_executable("mix"), ~w(release --overwrite --path #{rel}),
        cd: build,
        env: [{"MIX_ENV", "prod"}, {"MIX_BUILD_PATH", Path.join(tmp, "_build")}],
        stderr_to_stdout: true
      )

    assert status == 0, out

    # "Deploy": the sources now live elsewhere; the build tree is gone.
    File.mkdir_p!(runtime)
    File.cp_r!(Path.join(build, "lib"), Path.join(runtime, "lib"))
    File.rm_rf!(Path.join(build, "lib"))

    port = free_port()

    env = [
      {"RELEASE_NODE", "live_cov_demo_#{System.unique_integer([:positive])}"},
      {"RELEASE_COOKIE", "live_cov_release_test"},
      {"RELEASE_DISTRIBUTION", "sname"},
      {"DEMO_APP_PORT", Integer.to_string(port)}
    ]

    ctx = %{bin: Path.join(rel, "bin/demo_app"), env: env, port: port, tmp: tmp}
    pid_file = Path.join(tmp, "os_pid")
    {out, status} = System.cmd(ctx.bin, ["daemon"], env: env, stderr_to_stdout: true)
    assert status == 0, out
    on_exit(fn -> stop_release(ctx, pid_file) end)

    os_pid = wait_for_rpc(ctx, "IO.write(System.pid())", 60)
    File.write!(pid_file, os_pid)
    assert {200, _} = wait_for_http(port, "/health", 30)

    Map.merge(ctx, %{build: build, runtime: runtime, os_pid: os_pid})
  end

  test "instrument, drive, report with mapped sources and stop a running release", ctx do
    which_before = rpc!(ctx, "IO.write(:code.which(DemoApp.Calc))")
    md5_before = rpc!(ctx, "IO.write(Base.encode16(DemoApp.Calc.module_info(:md5)))")

    assert which_before ==
             Path.join(ctx.tmp, "rel/lib/demo_app-0.1.0/ebin/Elixir.DemoApp.Calc.beam")

    # 1. Coverage on, on the live node.
    started = rpc!(ctx, "IO.write(inspect(LiveCov.start(:demo_app), limit: :infinity))")
    assert started =~ "instrumented: [#{Enum.join(@modules, ", ")}]"
    assert started =~ "skipped: []"
    refute rpc!(ctx, "IO.write(Base.encode16(DemoApp.Calc.module_info(:md5)))") == md5_before

    # 2. Traffic, from outside.
    assert {200, ~s({"status":"ok"})} = http(ctx.port, :get, "/health")
    assert {201, _} = http(ctx.port, :put, "/kv/answer", "42")
    assert {200, ~s({"key":"answer","value":"42"})} = http(ctx.port, :get, "/kv/answer")
    assert {404, _} = http(ctx.port, :get, "/kv/question")
    assert {200, body} = http(ctx.port, :get, "/calc/add?a=40&b=2")
    assert body =~ ~s("result":42)
    assert {422, _} = http(ctx.port, :get, "/calc/div?a=1&b=0")

    # 3. Read the total: something, not everything, is covered.
    {total, ""} = ctx |> rpc!("IO.write(LiveCov.total_coverage())") |> Float.parse()
    assert total > 0 and total < 100

    # 4. Reports, with the sources mapped from where they were compiled to where they are.
    map = "compile_root: #{inspect(ctx.build)}, runtime_root: #{inspect(ctx.runtime)}"
    out_dir = Path.join(ctx.tmp, "report")

    assert rpc!(ctx, "IO.write(length(LiveCov.report().missing_sources))") == "7"
    assert rpc!(ctx, "IO.write(inspect(LiveCov.report(#{map}).missing_sources))") == "[]"
    assert rpc!(ctx, "IO.write(LiveCov.total_coverage(#{map}))") == Float.to_string(total)

    written =
      rpc!(ctx, "IO.write(inspect(LiveCov.write([:html, :lcov], #{inspect(out_dir)}, #{map})))")

    html = Path.join(out_dir, "coverage.html")
    lcov = Path.join(out_dir, "lcov.info")
    assert written == inspect({:ok, [html, lcov]})

    lcov_text = File.read!(lcov)
    html_text = File.read!(html)

    for file <- @files do
      assert lcov_text =~ "SF:#{Path.join([ctx.runtime, "lib", file])}\n"
      assert html_text =~ "lib/#{file}"
    end

    refute lcov_text =~ ctx.build
    # calc.ex line 15, `def apply_op("add", a, b)`, ran once; line 16 (sub) never.
    assert lcov_text =~ "DA:15,1\nDA:16,0\n"
    assert html_text =~ "Integer arithmetic for the /calc routes."

    # 5. Coverage off: original code back, nothing restarted, the service still answers.
    stopped = rpc!(ctx, "IO.write(inspect(LiveCov.stop(), limit: :infinity))")
    assert stopped =~ "restored: [#{Enum.join(@modules, ", ")}]"
    assert stopped =~ "still_running: []"

    assert {200, _} = http(ctx.port, :get, "/health")
    assert {200, ~s({"key":"answer","value":"42"})} = http(ctx.port, :get, "/kv/answer")
    assert rpc!(ctx, "IO.write(:code.which(DemoApp.Calc))") == which_before
    assert rpc!(ctx, "IO.write(Base.encode16(DemoApp.Calc.module_info(:md5)))") == md5_before
    assert rpc!(ctx, "IO.write(inspect(LiveCov.modules()))") == "[]"
    assert rpc!(ctx, "IO.write(System.pid())") == ctx.os_pid
  end

  defp rpc!(ctx, expr) do
    {out, status} = System.cmd(ctx.bin, ["rpc", expr], env: ctx.env, stderr_to_stdout: true)
    assert status == 0, "bin/demo_app rpc #{expr} failed (#{status}): #{out}"
    out
  end

  defp wait_for_rpc(ctx, expr, tries) do
    case System.cmd(ctx.bin, ["rpc", expr], env: ctx.env, stderr_to_stdout: true) do
      {out, 0} ->
        out

      {out, _} when tries <= 1 ->
        flunk("the release did not come up: #{out}")

      _ ->
        retry(fn -> wait_for_rpc(ctx, expr, tries - 1) end)
    end
  end

  defp wait_for_http(port, path, tries) do
    case http(port, :get, path) do
      {200, _} = ok -> ok
      _ when tries <= 1 -> flunk("the service does not answer on port #{port}")
      _ -> retry(fn -> wait_for_http(port, path, tries - 1) end)
    end
  end

  defp http(port, method, path, body \\ nil) do
    url = String.to_charlist("http://127.0.0.1:#{port}#{path}")
    req = if body, do: {url, [], ~c"text/plain", body}, else: {url, []}

    case :httpc.request(method, req, [timeout: 10_000], body_format: :binary) do
      {:ok, {{_, status, _}, _, resp}} -> {status, resp}
      {:error, reason} -> {:error, reason}
    end
  end

  # `bin/demo_app stop`, then wait for the VM to exit; kill it by its pid if it does not.
  defp stop_release(ctx, pid_file) do
    System.cmd(ctx.bin, ["stop"], env: ctx.env, stderr_to_stdout: true)

    with {:ok, os_pid} <- File.read(pid_file),
         false <- wait_exit(os_pid, 40) do
      System.cmd("kill", ["-9", os_pid], stderr_to_stdout: true)
    end

    :ok
  end

  defp wait_exit(os_pid, tries) do
    cond do
      not alive?(os_pid) -> true
      tries <= 0 -> false
      true -> retry(fn -> wait_exit(os_pid, tries - 1) end)
    end
  end

  defp retry(fun) do
    Process.sleep(300)
    fun.()
  end

  defp alive?(os_pid),
    do: match?({_, 0}, System.cmd("kill", ["-0", os_pid], stderr_to_stdout: true))
end
