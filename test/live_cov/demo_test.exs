defmodule LiveCov.DemoTest do
  # Runs the README's demo (scripts/demo.sh without its apt/toolchain setup step) in a
  # subprocess and checks what it prints and writes.
  use ExUnit.Case, async: false

  @moduletag timeout: 600_000
  @repo Path.expand("../..", __DIR__)

  # The demo's traffic leaves these lines executed (checked against OTP's cover with the same
  # traffic). demo_app.ex, application.ex and server.ex ran before LiveCov.start only. Each
  # Elixir release compiles the same source to slightly different executable lines.
  @header """
  ----------------
  COV    FILE                                        LINES RELEVANT   MISSED
  """
  @tables %{
    "1.14" => """
      0.0% lib/demo_app.ex                                18        1        1
      0.0% lib/demo_app/application.ex                    34        6        6
     60.0% lib/demo_app/calc.ex                           36       10        4
     64.7% lib/demo_app/http.ex                           45       17        6
     75.0% lib/demo_app/router.ex                         69       24        6
      0.0% lib/demo_app/server.ex                         36       10       10
     76.9% lib/demo_app/store.ex                          39       13        3
    [TOTAL]  55.6%
    ----------------
    Coverage 55.6% meets the threshold of 50%.
    """,
    "1.18" => """
      0.0% lib/demo_app.ex                                18        1        1
      0.0% lib/demo_app/application.ex                    34        6        6
     60.0% lib/demo_app/calc.ex                           36       10        4
     64.7% lib/demo_app/http.ex                           45       17        6
     76.9% lib/demo_app/router.ex                         69       26        6
      0.0% lib/demo_app/server.ex                         36       10       10
     76.9% lib/demo_app/store.ex                          39       13        3
    [TOTAL]  56.6%
    ----------------
    Coverage 56.6% meets the threshold of 50%.
    """,
    "1.20" => """
      0.0% lib/demo_app.ex                                18        1        1
      0.0% lib/demo_app/application.ex                    34        7        7
     60.0% lib/demo_app/calc.ex                           36       10        4
     66.7% lib/demo_app/http.ex                           45       18        6
     77.8% lib/demo_app/router.ex                         69       27        6
      0.0% lib/demo_app/server.ex                         36       10       10
     76.9% lib/demo_app/store.ex                          39       13        3
    [TOTAL]  57.0%
    ----------------
    Coverage 57.0% meets the threshold of 50%.
    """
  }
  @elixir System.version() |> Version.parse!() |> then(&"#{&1.major}.#{&1.minor}")

  setup do
    tmp = Path.join(System.tmp_dir!(), "live_cov_demo_#{System.unique_integer([:positive])}")
    File.mkdir_p!(tmp)
    on_exit(fn -> File.rm_rf(tmp) end)
    %{tmp: tmp}
  end

  test "scripts/demo.sh instruments the running service, reports and stops", %{tmp: tmp} do
    out_dir = Path.join(tmp, "report")

    env = [
      {"MIX_ENV", "dev"},
      {"MIX_BUILD_PATH", Path.join(tmp, "build")},
      {"DEMO_APP_PORT", "0"},
      {"LIVE_COV_DEMO_OUT", out_dir}
    ]

    {out, status} =
      System.cmd(Path.join(@repo, "scripts/demo.sh"), ["--no-setup"],
        env: env,
        stderr_to_stdout: true
      )

    assert status == 0, out
    assert out =~ ~r{==> demo_app is running at http://127\.0\.0\.1:\d+\n}

    assert out =~
             ~r/==> LiveCov.start\(:demo_app\): 7 modules instrumented in \d+ ms, the service kept running\n/

    for line <- [
          ~s(GET    /health                200 {"status":"ok"}),
          ~s(PUT    /kv/language           201 {"key":"language","value":"elixir"}),
          ~s(GET    /kv                    200 {"keys":["language","runtime"]}),
          ~s(GET    /kv/missing            404 {"error":"no key missing"}),
          ~s(DELETE /kv/runtime            200 {"deleted":"runtime"}),
          ~s(GET    /calc/mul?a=6&b=7      200 {"a":6,"b":7,"op":"mul","result":42}),
          ~s(GET    /calc/div?a=1&b=0      422 {"error":"division_by_zero"})
        ] do
      assert out =~ "    " <> line <> "\n"
    end

    case Map.fetch(@tables, @elixir) do
      {:ok, table} ->
        assert out =~ @header <> table

      :error ->
        assert out =~ @header
        assert out =~ ~r/\[TOTAL\]  \d+\.\d%\n/
    end

    html = Path.join(out_dir, "coverage.html")
    assert out =~ "==> HTML report: #{html}\n"
    assert out =~ "==> LCOV report: #{Path.join(out_dir, "lcov.info")}\n"

    assert out =~
             "==> LiveCov.stop(): 7 modules restored (original code: true); GET /health -> 200\n"

    assert File.read!(html) =~ "lib/demo_app/router.ex"
    lcov = File.read!(Path.join(out_dir, "lcov.info"))
    assert lcov =~ "SF:#{Path.join(@repo, "examples/demo_app/lib/demo_app/calc.ex")}\n"
  end
end
