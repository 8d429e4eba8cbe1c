defmodule LiveCov.CoverOracleTest do
  @moduledoc """
  The oracle suite: `LiveCov.Cover` must answer exactly what OTP's `:cover`
  answers for the same fixture corpus and workload (see `LiveCov.Test.Oracle`).

  `oracle_erl_maybe` (the `maybe` expression) is only loadable on OTP 25 when the
  VM runs with `ERL_FLAGS="-enable-feature maybe_expr"`; without it its tests are
  skipped.

  On a runtime whose `:cover` counts with the VM's native line counters (OTP 27+ with the
  JIT), LiveCov's default backend counts with them too: every analysis is identical. With
  `backend: :nif` (the matrix runs the suite a second time with `LIVE_COV_BACKEND=nif`),
  every analysis has the same keys, the same line-level counts, and the same counts
  everywhere but in the places the test "native line counters: ..." lists (their values are
  masked in the other tests, their keys are not).
  """
  use ExUnit.Case, async: false

  alias LiveCov.Test.Oracle

  @moduletag :oracle
  @moduletag timeout: 120_000

  @maybe_enabled Oracle.maybe_enabled?()
  @all_modules Oracle.fixture_modules(true)
  @results {__MODULE__, :results}

  # Where LiveCov's NIF counters (one counter per site, bumped by a call) and the native line
  # counters of OTP 27+ (an `executable_line` instruction per site) attribute counts to
  # different sites, on the runtimes of the matrix. All of them are sites on one line, the
  # `defprotocol` line, where Elixir generates `impl_for/1` and `struct_impl_for/1` and
  # inlines the latter into the former: the compiler keeps one `executable_line` for the
  # inlined, shared code, so the native counters count every entry under one site's id
  # (impl_for/1 clause 12), while LiveCov's bump calls, never shared, count each clause that
  # ran. The line's count is the same for both, so are all line-level analyses and reports.
  @native_differences %{
    {27, "1.18"} => [
      {{LiveCovOracle.Shape, :impl_for, 1, 1}, 0, 7},
      {{LiveCovOracle.Shape, :impl_for, 1, 3}, 0, 1},
      {{LiveCovOracle.Shape, :impl_for, 1, 12}, 15, 0},
      {{LiveCovOracle.Shape, :struct_impl_for, 1, 1}, 0, 7}
    ],
    {29, "1.20"} => [
      {{LiveCovOracle.Shape, :impl_for, 1, 1}, 0, 7},
      {{LiveCovOracle.Shape, :impl_for, 1, 3}, 0, 1},
      {{LiveCovOracle.Shape, :impl_for, 1, 12}, 15, 0},
      {{LiveCovOracle.Shape, :struct_impl_for, 1, 1}, 0, 7}
    ]
  }
  @native LiveCov.Runtime.native_coverage?()
  @runtime {LiveCov.Runtime.otp_release(),
            System.version() |> Version.parse!() |> then(&"#{&1.major}.#{&1.minor}")}

  setup_all do
    if Process.whereis(:cover_server) do
      raise "the cover oracle needs :cover for itself: do not run it under `mix test --cover`"
    end

    build = Oracle.build!()

    on_exit(fn ->
      :persistent_term.erase(@results)
      Oracle.cleanup(build)
    end)

    %{cover: cover, live_cov: live} = Oracle.run_both(build, Oracle.live_backend())

    if Map.has_key?(cover, :crashed) do
      raise "the :cover half of the oracle crashed (fixture bug):\n" <> cover.crashed
    end

    # Known count differences of native runtimes are masked (values only) everywhere but in
    # the test that lists them.
    differences = if @native, do: differences(cover, live), else: []
    masked = masked_keys(differences)

    # The results are large: ExUnit copies the context into every test, so
    # they live in a persistent term and the tests fetch them on demand.
    :persistent_term.put(@results, %{
      build: build,
      cover: Oracle.mask(cover, masked),
      live: Oracle.mask(live, masked),
      raw: %{cover: cover, live: live, differences: differences}
    })

    :ok
  end

  defp differences(cover, %{crashed: _}), do: Oracle.clause_count_differences(cover, cover)
  defp differences(cover, live), do: Oracle.clause_count_differences(cover, live)

  # A differing clause changes its function's and its module's values too.
  defp masked_keys(differences) do
    Enum.flat_map(differences, fn {{m, f, a, _c} = clause, _, _} -> [clause, {m, f, a}, m] end)
  end

  # The oracle results (`%{build: .., cover: .., live: ..}`), fetched without copying.
  defp r, do: :persistent_term.get(@results)

  # -- helpers ---------------------------------------------------------------

  defp live!(%{live: %{crashed: text}}), do: flunk("LiveCov.Cover crashed:\n" <> text)
  defp live!(%{live: live}), do: live

  # The message is only built on failure (assert/2 would build it eagerly).
  defp assert_same(label, expected, got), do: assert_all_same([{label, expected, got}])

  # Checks every `{label, expected, got}` and reports all mismatches at once.
  defp assert_all_same(triples) do
    case for {label, e, g} <- triples, e != g, do: Oracle.explain(label, e, g) do
      [] -> :ok
      texts -> flunk("#{length(texts)} mismatch(es)\n\n" <> Enum.join(texts, "\n"))
    end
  end

  defp zero?({:ok, {_m, v}}), do: zero_value?(v)
  defp zero?({:ok, list}) when is_list(list), do: Enum.all?(list, fn {_, v} -> zero_value?(v) end)
  defp zero?(_), do: false

  defp zero_value?(0), do: true
  defp zero_value?(:known_difference), do: true
  defp zero_value?({0, _}), do: true
  defp zero_value?(_), do: false

  defp line_of(file, snippet) do
    path = Path.join(Oracle.fixtures_root(), file)

    path
    |> File.read!()
    |> String.split("\n")
    |> Enum.find_index(&String.contains?(&1, snippet))
    |> case do
      nil -> flunk("#{snippet} not found in #{path}")
      i -> i + 1
    end
  end

  defp calls_at(cover, mod, line) do
    {:ok, lines} = cover.analyse[{mod, :calls, :line}]
    for {{^mod, ^line}, n} <- lines, do: n
  end

  # -- the corpus and the :cover half (self-checks) ----------------------------

  test "fixtures are built with debug info and loaded from the build dir" do
    build = r().build
    assert build.modules == Oracle.fixture_modules(@maybe_enabled)
    assert build.warnings == []

    for {mod, path} <- build.beams do
      assert :code.which(mod) == path

      assert {:ok, {^mod, [abstract_code: {:raw_abstract_v1, _}]}} =
               :beam_lib.chunks(path, [:abstract_code])
    end
  end

  test ":cover half: includes and -file switches, unexecuted lines, OTP-8188" do
    cover = r().cover
    # Functions from oracle_erl_inc.hrl are not instrumented; the explicit
    # -file attribute is dropped by epp:interpret_file_attribute/1, so
    # from_other_file/1 is; Elixir's @file makes a real switch.
    {:ok, funs} = cover.analyse[{:oracle_erl_data, :calls, :function}]
    names = for {{_, f, a}, _} <- funs, do: {f, a}
    refute {:inc_scale, 1} in names
    refute {:inc_unused, 1} in names
    assert {:from_other_file, 1} in names
    assert {:scaled, 1} in names

    {:ok, flow} = cover.analyse[{LiveCovOracle.Flow, :calls, :function}]
    flow_names = for {{_, f, a}, _} <- flow, do: {f, a}
    refute {:from_other_file, 1} in flow_names
    assert {:after_other_file, 1} in flow_names

    # Some lines stay unexecuted on purpose in every hand-written fixture.
    for mod <- [
          :oracle_erl_control,
          :oracle_erl_data,
          LiveCovOracle.Flow,
          LiveCovOracle.CounterServer
        ] do
      {:ok, lines} = cover.analyse[{mod, :coverage, :line}]
      assert Enum.any?(lines, &match?({_, {0, 1}}, &1)), "#{inspect(mod)} has no unexecuted line"
      assert Enum.any?(lines, &match?({_, {1, 0}}, &1)), "#{inspect(mod)} has no executed line"
    end

    # OTP-8188: fix_last(1) twice and fix_last(2) once all bump the shared line.
    line = line_of("erlang/oracle_erl_control.erl", "2 -> b; 3 -> c end, done(R)")
    assert calls_at(cover, :oracle_erl_control, line) == [3]

    # Counting resumes identically after reset/0.
    {rerun_workload, rerun} = cover.rerun
    assert rerun_workload == cover.workload
    assert rerun == cover.analyse
  end

  # -- LiveCov.Cover against :cover ---------------------------------------------

  if not @native, do: @tag(skip: "OTP 27+ with the JIT (native line counters)")

  test "native line counters: none with the native backend; the NIF backend's listed, explained" do
    %{cover: cover, live: live, differences: differences} = r().raw
    live = live!(%{live: live})

    # Line level: identical for every module, both analyses.
    for {{m, _analysis, :line} = key, expected} <- cover.analyse do
      assert Map.fetch!(live.analyse, key) == expected, "#{inspect(m)}: line level differs"
    end

    # Every difference is a count moved between sites of one line (see @native_differences).
    for {m, diffs} <- Enum.group_by(differences, fn {{m, _, _, _}, _, _} -> m end) do
      {:ok, lines} = cover.analyse[{m, :calls, :line}]
      {:ok, forms} = LiveCov.Instrument.Forms.fetch(m)
      {:ok, _, sites, _} = LiveCov.Instrument.Rewrite.transform(forms.forms, m)
      clauses = MapSet.new(diffs, fn {{_, f, a, c}, _, _} -> {f, a, c} end)
      on = for {f, a, c, l} <- sites, {f, a, c} in clauses, l != 0, uniq: true, do: l
      assert [line] = on, "#{inspect(m)}: the differing clauses span lines #{inspect(on)}"
      assert {{^m, ^line}, _} = List.keyfind(lines, {m, line}, 0)

      assert diffs |> Enum.map(&elem(&1, 1)) |> Enum.sum() ==
               diffs |> Enum.map(&elem(&1, 2)) |> Enum.sum()
    end

    case {LiveCov.Counter.resolve(), Map.fetch(@native_differences, @runtime)} do
      {{:ok, :native}, _} ->
        assert differences == [], "the native backend counts as :cover does"

      {{:ok, :nif}, {:ok, listed}} ->
        assert differences == listed

      {{:ok, :nif}, :error} ->
        IO.puts("\nnative count differences on #{inspect(@runtime)}: #{inspect(differences)}")
    end
  end

  test "workload return values are equal" do
    ctx = r()
    assert_same("workload", ctx.cover.workload, live!(ctx).workload)
  end

  test "start/0, compile_beam/1, modules/0 and is_compiled/1 are equal" do
    ctx = r()
    live = live!(ctx)

    assert_all_same(
      for key <- [:start, :compile, :modules, :is_compiled] do
        {inspect(key), Map.fetch!(ctx.cover, key), Map.fetch!(live, key)}
      end
    )
  end

  for mod <- @all_modules, analysis <- Oracle.analyses(), level <- Oracle.levels() do
    if mod == :oracle_erl_maybe and not @maybe_enabled do
      @tag skip: "needs ERL_FLAGS=\"-enable-feature maybe_expr\" on OTP 25"
    end

    test "#{inspect(mod)} analyse #{analysis} #{level}" do
      ctx = r()
      key = {unquote(mod), unquote(analysis), unquote(level)}
      expected = Map.fetch!(ctx.cover.analyse, key)
      assert {:ok, _} = expected

      assert_same(
        "analyse(#{inspect(elem(key, 0))}, #{elem(key, 1)}, #{elem(key, 2)})",
        expected,
        Map.fetch!(live!(ctx).analyse, key)
      )
    end
  end

  for mod <- @all_modules do
    if mod == :oracle_erl_maybe and not @maybe_enabled do
      @tag skip: "needs ERL_FLAGS=\"-enable-feature maybe_expr\" on OTP 25"
    end

    test "#{inspect(mod)} analyse/1 and analyse/2 short forms" do
      ctx = r()
      mod = unquote(mod)
      live = live!(ctx)
      keys = for {k, _} <- ctx.cover.forms, is_tuple(k), elem(k, 1) == mod, do: k
      assert length(keys) == 7

      assert_all_same(
        for key <- keys do
          {inspect(key), Map.fetch!(ctx.cover.forms, key), Map.get(live.forms, key, :__missing__)}
        end
      )
    end
  end

  test "analyse/0, analyse/1 (analysis | level) and analyse/2 (analysis, level)" do
    ctx = r()
    live = live!(ctx)

    keys =
      [:analyse_0] ++
        for(x <- Oracle.analyses() ++ Oracle.levels(), do: {:analyse_1, x}) ++
        for a <- Oracle.analyses(), l <- Oracle.levels(), do: {:analyse_2, a, l}

    assert_all_same(
      for key <- keys do
        expected = Map.fetch!(ctx.cover.forms, key)
        assert {:result, [_ | _], []} = expected
        {inspect(key), expected, Map.get(live.forms, key, :__missing__)}
      end
    )
  end

  test "analyse over a list and :_ gives {:result, ok, fail}" do
    ctx = r()
    live = live!(ctx)

    keys =
      for {k, _} <- ctx.cover.forms,
          is_tuple(k),
          elem(k, 1) in [
            :_,
            :list2,
            :list_with_missing,
            :list_with_duplicates,
            :all_mods,
            :empty_list,
            :only_missing
          ],
          do: k

    assert length(keys) == 4 * 8 + 8

    # cover lists the failures in reverse order and keeps duplicates.
    assert {:result, _, [not_cover_compiled: :lists, not_cover_compiled: :oracle_no_such_module]} =
             ctx.cover.forms[{:analyse_3, :list_with_missing, :calls, :line}]

    assert {:result, [_ | _], [not_cover_compiled: :lists, not_cover_compiled: :lists]} =
             ctx.cover.forms[{:analyse_3, :list_with_duplicates, :calls, :line}]

    assert_all_same(
      for key <- Enum.sort(keys) do
        expected = Map.fetch!(ctx.cover.forms, key)
        assert {:result, ok, fail} = expected
        assert is_list(ok) and is_list(fail)
        {inspect(key), expected, Map.get(live.forms, key, :__missing__)}
      end
    )
  end

  test "non-compiled modules give {:error, {:not_cover_compiled, m}}" do
    ctx = r()

    for m <- Oracle.not_compiled() do
      errors = ctx.cover.errors[m]
      assert errors.analyse_1 == {:error, {:not_cover_compiled, m}}
      assert errors.reset_1 == {:error, {:not_cover_compiled, m}}
      assert errors.is_compiled == false
      assert Enum.all?(errors.analyse_3, &(&1 == {:error, {:not_cover_compiled, m}}))
    end

    assert_same("errors", ctx.cover.errors, live!(ctx).errors)
  end

  test "reset/1 zeroes one module only" do
    ctx = r()
    {mod, :ok, after_reset} = ctx.cover.reset_one
    assert mod == Oracle.reset_module()

    for {{m, _, _} = key, result} <- after_reset do
      if m == mod do
        assert zero?(result), "#{inspect(key)} not zero after reset: #{inspect(result)}"
      else
        assert result == ctx.cover.analyse[key],
               "#{inspect(key)} changed by reset(#{inspect(mod)})"
      end
    end

    assert_same("reset(#{inspect(mod)})", ctx.cover.reset_one, live!(ctx).reset_one)
  end

  test "reset/0 zeroes every module under both" do
    ctx = r()
    {:ok, after_reset} = ctx.cover.reset_all
    assert Enum.all?(after_reset, fn {_key, result} -> zero?(result) end)
    assert_same("reset()", ctx.cover.reset_all, live!(ctx).reset_all)
  end

  test "counting after reset/0 matches a fresh run" do
    ctx = r()
    assert_same("rerun after reset", ctx.cover.rerun, live!(ctx).rerun)
  end

  test "stop/0 restores the original beams" do
    ctx = r()
    assert ctx.cover.stop == :ok
    assert Enum.all?(ctx.cover.restored, fn {_, restored?} -> restored? end)
    live = live!(ctx)

    assert_all_same([
      {"stop()", ctx.cover.stop, live.stop},
      {"originals restored", ctx.cover.restored, live.restored}
    ])
  end

  test "compile_beam_directory/0,1 on the fixture dir" do
    ctx = r()
    cover = Oracle.run_directory(:cover, ctx.build)
    expected_ok = for m <- ctx.build.modules, do: {:ok, m}
    assert cover.compile_beam_directory_1 == Enum.sort(expected_ok)
    assert cover.compile_beam_directory_0 == Enum.sort(expected_ok)
    assert cover.missing_dir == {:error, :enoent}
    assert cover.start_2 == {:ok, :pid}

    live =
      try do
        Oracle.run_directory(Oracle.live_backend(), ctx.build)
      rescue
        e -> flunk("LiveCov.Cover crashed:\n" <> Exception.format(:error, e, __STACKTRACE__))
      end

    assert_all_same(
      for {key, expected} <- Enum.sort(cover) do
        {inspect(key), expected, Map.get(live, key, :__missing__)}
      end
    )
  end
end
