defmodule LiveCov.ExUnitTest do
  use ExUnit.Case, async: false

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  setup_all :snapshot_fixtures

  setup do
    LiveCov.stop()
    :ok = LiveCov.ExUnit.start()
    LiveCov.ExUnit.clear()
    {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
    {:ok, :snap_fx2} = LiveCov.Cover.compile_beam(:snap_fx2)
    :ok
  end

  # Runs `fun` as a test named `name` would run under `use LiveCov.ExUnit`: the setup
  # callback, the test body, then the on_exit callback it registered.
  defp run_test(name, fun) do
    me = self()

    :ok =
      LiveCov.ExUnit.record(%{module: FakeTest, test: name}, fn _ref, cb ->
        send(me, {:cb, cb})
      end)

    fun.()
    assert_received {:cb, cb}
    cb.()
  end

  test "records what each test ran and says which tests covered a file:line" do
    run_test(:"test negative", fn -> apply(:snap_fx, :classify, [-1]) end)
    run_test(:"test even", fn -> apply(:snap_fx, :classify, [4]) end)
    run_test(:"test both", fn -> for n <- [-2, 6, 8], do: apply(:snap_fx, :classify, [n]) end)
    run_test(:"test nothing", fn -> :ok end)

    src = LiveCov.Instrumented.lookup(:snap_fx).source |> to_string()
    # Line 9: `negative`; line 14: `0 -> even`.
    names = fn file, line ->
      for %{test: t} <- LiveCov.ExUnit.tests_covering(file, line), do: t
    end

    assert names.(src, 9) == [:"test both", :"test negative"]
    assert names.(src, 14) == [:"test both", :"test even"]
    # A relative path matches as a suffix.
    assert names.("test/fixtures/snapshot/snap_fx.erl", 14) == [:"test both", :"test even"]
    assert names.(src, 11) == []
    assert names.("other.erl", 9) == []

    assert [%{module: FakeTest, count: 2, file: ^src}] =
             LiveCov.ExUnit.tests_covering(src, 14) |> Enum.filter(&(&1.test == :"test both"))

    assert LiveCov.ExUnit.covered_by(FakeTest, :"test negative") == %{src => %{9 => 1}}
    assert LiveCov.ExUnit.covered_by(FakeTest, :"test nothing") == %{}
    assert LiveCov.ExUnit.covered_by(FakeTest, :unknown) == nil
    assert map_size(LiveCov.ExUnit.results()) == 4

    # The stored delta is a snapshot of what the test ran.
    d = LiveCov.ExUnit.delta(FakeTest, :"test even")
    assert {:ok, {:snap_fx, 1}} = LiveCov.SnapshotReport.analyse(d, :snap_fx, :calls, :module)
    assert [%{labels: %{"test" => "FakeTest test even"}}] = d.provenance

    LiveCov.ExUnit.clear()
    assert LiveCov.ExUnit.results() == %{}
  end

  test "a reset during a test counts what ran since" do
    run_test(:"test reset", fn ->
      apply(:snap_fx, :classify, [-1])
      LiveCov.reset()
      apply(:snap_fx, :add, [1, 1])
    end)

    src = LiveCov.Instrumented.lookup(:snap_fx).source |> to_string()
    assert LiveCov.ExUnit.covered_by(FakeTest, :"test reset") == %{src => %{6 => 1}}
  end

  # Runs an ExUnit suite in a fresh `elixir` VM with :snap_fx instrumented and
  # LiveCov.ExUnit started; `body` defines the test module and prints what to check.
  defp run_suite(fixtures, body) do
    ebin = :code.lib_dir(:live_cov) |> Path.join("ebin")

    script = """
    Code.prepend_path(#{inspect(ebin)})
    Code.prepend_path(#{inspect(fixtures)})
    {:ok, _} = Application.ensure_all_started(:live_cov)
    {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
    LiveCov.ExUnit.start()
    ExUnit.start(autorun: false, formatters: [])
    """

    path =
      Path.join(System.tmp_dir!(), "live_cov_exunit_#{System.unique_integer([:positive])}.exs")

    File.write!(path, script <> body)
    {out, status} = System.cmd("elixir", [path], stderr_to_stdout: true)
    File.rm(path)
    assert status == 0, out
    out
  end

  @tag timeout: 120_000
  test "use LiveCov.ExUnit in a real ExUnit run", %{fixtures: fixtures} do
    out =
      run_suite(fixtures, """
      defmodule ClassifyTest do
        use ExUnit.Case
        use LiveCov.ExUnit
        test "negative", do: assert(:snap_fx.classify(-5) == :negative)
        test "zero", do: assert(:snap_fx.classify(0) == :zero)
        test "odd", do: assert(:snap_fx.classify(7) == :odd)
      end

      %{failures: 0} = ExUnit.run()
      src = to_string(LiveCov.Instrumented.lookup(:snap_fx).source)
      result = for l <- [9, 11, 15], do: {l, Enum.map(LiveCov.ExUnit.tests_covering(src, l), & &1.test)}
      IO.puts("RESULT " <> inspect(result))
      """)

    assert out =~ ~s(RESULT [{9, [:"test negative"]}, {11, [:"test zero"]}, {15, [:"test odd"]}])
  end

  @parameterize? Version.match?(System.version(), ">= 1.18.0")

  if not @parameterize?, do: @tag(skip: "parameterized test modules are ExUnit 1.18+")
  @tag timeout: 120_000
  test "each run of a parameterized module is recorded apart", %{fixtures: fixtures} do
    out =
      run_suite(fixtures, """
      defmodule ParamTest do
        use ExUnit.Case, parameterize: [%{n: -5}, %{n: 7}]
        use LiveCov.ExUnit
        test "classify", %{n: n}, do: assert(:snap_fx.classify(n) in [:negative, :odd])
      end

      %{failures: 0} = ExUnit.run()
      src = to_string(LiveCov.Instrumented.lookup(:snap_fx).source)
      result = for l <- [9, 15], do: {l, Enum.map(LiveCov.ExUnit.tests_covering(src, l), &{&1.test, &1.parameters})}
      expected = [{9, [{:"test classify", %{n: -5}}]}, {15, [{:"test classify", %{n: 7}}]}]
      IO.puts("RESULT " <> inspect(result == expected) <> " " <> inspect(result))
      IO.puts("KEYS " <> inspect(LiveCov.ExUnit.results() |> Map.keys() |> Enum.sort()))
      IO.puts("ONE " <> inspect(LiveCov.ExUnit.covered_by(ParamTest, :"test classify", %{n: 7}) |> Map.values()))
      """)

    assert out =~ "RESULT true "

    assert out =~
             ~s(KEYS [{ParamTest, :"test classify", %{n: -5}}, {ParamTest, :"test classify", %{n: 7}}])

    assert out =~ ~r/ONE \[%\{.*15 => 1.*\}\]/
  end
end
