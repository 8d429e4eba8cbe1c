# LiveCov demo: line coverage of a running HTTP service, taken without restarting it.
#
#   scripts/demo.sh                            # installs what is missing, then runs this
#   cd examples/demo_app && mix run ../demo.exs
#
# `mix run` starts examples/demo_app (a key-value and calculator API on OTP's :inets httpd).
# This script then does what an operator does from a remote console: instruments the
# running application, sends it HTTP traffic, prints the per-file table, writes the HTML
# and LCOV reports, and stops coverage; the service keeps answering throughout.
#
# Environment: DEMO_APP_PORT (0 = any free port), LIVE_COV_DEMO_OUT (report directory,
# default live_cov_out/demo in the repository).

defmodule DemoScript do
  @moduledoc false

  @traffic [
    {:get, "/health", nil},
    {:put, "/kv/language", "elixir"},
    {:put, "/kv/runtime", "beam"},
    {:get, "/kv/language", nil},
    {:get, "/kv", nil},
    {:get, "/kv/missing", nil},
    {:delete, "/kv/runtime", nil},
    {:get, "/calc/add?a=2&b=3", nil},
    {:get, "/calc/mul?a=6&b=7", nil},
    {:get, "/calc/div?a=1&b=0", nil},
    {:get, "/calc/add?a=two&b=3", nil}
  ]

  def main do
    out = System.get_env("LIVE_COV_DEMO_OUT") || Path.expand("../live_cov_out/demo", __DIR__)
    base = "http://127.0.0.1:#{DemoApp.port()}"
    md5_before = DemoApp.Router.module_info(:md5)
    step("demo_app is running at #{base}")

    {micros, summary} = :timer.tc(fn -> LiveCov.start(:demo_app) end)

    step(
      "LiveCov.start(:demo_app): #{length(summary.instrumented)} modules instrumented " <>
        "in #{div(micros, 1000)} ms, the service kept running"
    )

    Enum.each(summary.skipped, &IO.puts("    skipped #{inspect(&1.target)}: #{&1.message}"))

    step("HTTP traffic")
    Enum.each(@traffic, &send_request(base, &1))

    step("LiveCov.report(): lines executed since LiveCov.start")
    stats = LiveCov.report()

    stats
    |> LiveCov.Format.Terminal.render(threshold: 50, sort: :filename, colors: IO.ANSI.enabled?())
    |> IO.write()

    {:ok, paths} = LiveCov.write([:html, :lcov], out)
    step("HTML report: #{Enum.find(paths, &String.ends_with?(&1, ".html"))}")
    step("LCOV report: #{Enum.find(paths, &String.ends_with?(&1, ".info"))}")

    %{restored: restored} = LiveCov.stop()
    {status, _} = request(base, {:get, "/health", nil})
    same? = DemoApp.Router.module_info(:md5) == md5_before

    step(
      "LiveCov.stop(): #{length(restored)} modules restored (original code: #{same?}); " <>
        "GET /health -> #{status}"
    )
  end

  defp step(text), do: IO.puts("==> " <> text)

  defp send_request(base, {method, path, _} = req) do
    {status, body} = request(base, req)
    method = method |> Atom.to_string() |> String.upcase() |> String.pad_trailing(6)
    IO.puts("    #{method} #{String.pad_trailing(path, 22)} #{status} #{body}")
  end

  defp request(base, {method, path, body}) do
    url = String.to_charlist(base <> path)
    req = if body, do: {url, [], ~c"text/plain", body}, else: {url, []}

    {:ok, {{_, status, _}, _headers, resp}} =
      :httpc.request(method, req, [], body_format: :binary)

    {status, resp}
  end
end

DemoScript.main()
