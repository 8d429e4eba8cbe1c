defmodule LiveCov.MixToolTest do
  # `mix test --cover` of test/fixtures/mix_project, in a copy, in a subprocess.
  use ExUnit.Case, async: false

  @moduletag timeout: 600_000
  @repo Path.expand("../..", __DIR__)
  @fixture Path.join(@repo, "test/fixtures/mix_project")

  # Hand-computed coverage of the fixture (test/fixtures/mix_project), from the lines cover
  # (and LiveCov) count: one per expression line of a clause body; a body that is a literal
  # tuple counts on the clause's line, because Elixir gives the literal no line of its own.
  #
  #   calc.ex    add/2 l.5 hit, sub/2 l.9 missed, safe_div(_, 0) l.12 missed,
  #              safe_div/2 l.16 hit                         -> 2/4 = 50.0%, 19 lines
  #   greeter.ex greet/1 l.5, l.6 hit, farewell/1 l.10 missed -> 2/3 = 66.7%, 12 lines
  #   unused.ex  shout/1 l.5 missed                          -> 0/1 =  0.0%,  7 lines
  #   ignored.ex left out by ignore_modules: [FixtureApp.Ignored]
  #   total 4/8 = 50.0%
  @table """
  ----------------
  COV    FILE                                        LINES RELEVANT   MISSED
    0.0% lib/fixture_app/unused.ex                       7        1        1
   50.0% lib/fixture_app/calc.ex                        19        4        2
   66.7% lib/fixture_app/greeter.ex                     12        3        1
  [TOTAL]  50.0%
  ----------------
  """

  @calc_da "DA:5,1\nDA:9,0\nDA:12,0\nDA:16,1\nLF:4\nLH:2\n"

  setup_all do
    dir =
      Path.join(System.tmp_dir!(), "live_cov_mix_project_#{System.unique_integer([:positive])}")

    File.rm_rf!(dir)
    on_exit(fn -> File.rm_rf(dir) end)
    File.cp_r!(@fixture, dir)
    File.rm_rf!(Path.join(dir, "_build"))
    File.rm_rf!(Path.join(dir, "cover"))

    mix_exs = Path.join(dir, "mix.exs")
    text = File.read!(mix_exs)
    patched = String.replace(text, ~s(path: "../../.."), "path: #{inspect(@repo)}")
    assert patched != text
    File.write!(mix_exs, patched)

    {out, status} = mix(dir, ["compile"])
    assert status == 0, out
    %{project: dir}
  end

  setup %{project: dir} do
    File.rm_rf!(Path.join(dir, "cover"))
    :ok
  end

  test "above the threshold: table, reports, exit status 0", %{project: dir} do
    {out, status} = mix(dir, ~w(test --cover), [{"FIXTURE_THRESHOLD", "40"}])
    assert status == 0, out
    assert LiveCov.Test.ExUnitSummary.parse(out) == {3, 0}
    assert out =~ "Instrumenting modules with LiveCov ..."
    assert out =~ @table <> "Coverage 50.0% meets the threshold of 40%.\n"
    assert out =~ ~s(Generated html, lcov coverage results in "cover" directory)

    lcov = File.read!(Path.join(dir, "cover/lcov.info"))
    calc = Path.join(dir, "lib/fixture_app/calc.ex")
    assert lcov =~ "SF:#{calc}\nFN:5,FixtureApp.Calc.add/2\n"
    assert lcov =~ @calc_da
    assert lcov =~ "SF:#{Path.join(dir, "lib/fixture_app/greeter.ex")}\n"
    assert lcov =~ "SF:#{Path.join(dir, "lib/fixture_app/unused.ex")}\n"
    refute lcov =~ "ignored.ex"
    assert lcov |> String.split("end_of_record") |> length() == 4

    html = File.read!(Path.join(dir, "cover/coverage.html"))
    assert html =~ "lib/fixture_app/calc.ex"
    assert html =~ "lib/fixture_app/unused.ex"
    refute html =~ "ignored.ex"
  end

  test "below the threshold: the message and exit status 3, reports still written",
       %{project: dir} do
    {out, status} = mix(dir, ~w(test --cover), [{"FIXTURE_THRESHOLD", "60"}])
    assert status == 3, out
    assert LiveCov.Test.ExUnitSummary.parse(out) == {3, 0}
    assert out =~ @table <> "Coverage 50.0% is below the threshold of 60%.\n"
    assert out =~ "Coverage test failed, threshold not met (exit status 3)."
    assert File.exists?(Path.join(dir, "cover/lcov.info"))
    assert File.exists?(Path.join(dir, "cover/coverage.html"))
  end

  test "--export-coverage, then mix live_cov.report from the export", %{project: dir} do
    {out, status} = mix(dir, ~w(test --cover --export-coverage part1))
    assert status == 0, out
    assert File.regular?(Path.join(dir, "cover/part1.livecov.json"))
    assert File.regular?(Path.join(dir, "cover/part1.livecov"))
    assert File.regular?(Path.join(dir, "cover/part1.coverdata"))
    assert out =~ "Exported LiveCov data to cover/part1.livecov.json (with the sources)"
    refute out =~ "[TOTAL]"
    refute File.exists?(Path.join(dir, "cover/lcov.info"))

    # The sources travel in the export: rename the project's lib, the report is unchanged.
    File.rename!(Path.join(dir, "lib"), Path.join(dir, "lib_moved"))

    try do
      {out, status} =
        mix(
          dir,
          ~w(live_cov.report --input cover/part1.livecov.json --format lcov --output out)
        )

      assert status == 0, out
      assert out =~ @table
      assert out =~ "Wrote out/lcov.info"
      lcov = File.read!(Path.join(dir, "out/lcov.info"))
      assert lcov =~ "SF:#{Path.join(dir, "lib/fixture_app/calc.ex")}\n"
      assert lcov =~ @calc_da
      refute lcov =~ "ignored.ex"

      {out, status} =
        mix(dir, ~w(live_cov.report -i cover/part1.livecov.json -o out --threshold 60))

      assert status == 3, out
      assert out =~ "Coverage 50.0% is below the threshold of 60.0%."
      assert File.exists?(Path.join(dir, "out/coverage.html"))
    after
      File.rename!(Path.join(dir, "lib_moved"), Path.join(dir, "lib"))
    end

    # A second partition; the two snapshots merge: every count doubles.
    {out, status} = mix(dir, ~w(test --cover --export-coverage part2))
    assert status == 0, out

    {out, status} =
      mix(
        dir,
        ~w(live_cov.report -i cover/part1.livecov -i cover/part2.livecov --format lcov -o merged)
      )

    assert status == 0, out
    lcov = File.read!(Path.join(dir, "merged/lcov.info"))
    assert lcov =~ "DA:5,2\nDA:9,0\nDA:12,0\nDA:16,2\nLF:4\nLH:2\n"
  end

  test "Elixir's own mix test.coverage reads the .coverdata export of this OTP", %{project: dir} do
    File.rm_rf!(Path.join(dir, "cover"))
    {out, status} = mix(dir, ~w(test --cover --export-coverage only))
    assert status == 0, out
    assert File.regular?(Path.join(dir, "cover/only.coverdata"))

    # mix test.coverage (Mix's task, real :cover underneath) imports every cover/*.coverdata.
    {out, status} = mix(dir, ~w(test.coverage), [{"FIXTURE_THRESHOLD", "40"}])
    assert status == 0, out
    assert out =~ "Importing cover results: cover/only.coverdata"
    assert out =~ ~r/\d+\.\d\d%\s*\|\s*FixtureApp\.Calc\s*\|?\n/
    assert out =~ ~r/\d+\.\d\d%\s*\|\s*Total\s*\|?\n/
    refute out =~ "case_clause"
  end

  test "mix live_cov.report in a fresh VM without --input explains what to do",
       %{project: dir} do
    {out, status} = mix(dir, ~w(live_cov.report --format lcov))
    assert status == 1
    assert out =~ "no module is instrumented on this node"
    assert out =~ "--input"
  end

  defp mix(dir, args, env \\ []) do
    env = [{"MIX_ENV", "test"}, {"MIX_BUILD_PATH", Path.join(dir, "_build_test")} | env]
    System.cmd(System.find_executable("mix"), args, cd: dir, env: env, stderr_to_stdout: true)
  end
end
