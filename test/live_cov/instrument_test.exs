Code.require_file("../fixtures/instr/instr_fixtures.exs", __DIR__)

defmodule LiveCov.InstrumentTest.FakeBump do
  @moduledoc false
  # Stands in for LiveCov.Native in these tests: counts bumps in ETS.
  @table :live_cov_instrument_test_bumps

  def table, do: @table

  def bump(slot, index) do
    :ets.update_counter(@table, {slot, index}, 1, {{slot, index}, 0})
    :ok
  end

  def counts(slot, n), do: for(i <- 0..(n - 1)//1, do: count(slot, i))

  defp count(slot, index) do
    case :ets.lookup(@table, {slot, index}) do
      [{_, c}] -> c
      [] -> 0
    end
  end
end

defmodule LiveCov.InstrumentTest do
  # Loads and reloads modules, uses cover: global state.
  use ExUnit.Case, async: false

  # Fixtures compiled while the tests run.
  @compile {:no_warn_undefined, [:instr_erl, LiveCovFixture.InstrEx]}

  alias LiveCov.Instrument
  alias LiveCov.Instrument.{Forms, Rewrite}
  alias LiveCov.InstrumentTest.FakeBump
  alias LiveCov.Test.InstrFixtures

  @slot 7

  setup_all do
    %{beams: InstrFixtures.build!()}
  end

  setup %{beams: beams} do
    :cover.stop()
    if :ets.whereis(FakeBump.table()) != :undefined, do: :ets.delete(FakeBump.table())
    :ets.new(FakeBump.table(), [:named_table, :public, :set])

    on_exit(fn ->
      :cover.stop()

      for module <- [:instr_erl, LiveCovFixture.InstrEx], Map.has_key?(beams, module) do
        InstrFixtures.reload_original!(module)
      end
    end)
  end

  defp instrumented!(module, slot \\ @slot, opts \\ []) do
    {:ok, forms} = Forms.fetch(module)
    {:ok, munged, sites, _clauses} = Rewrite.transform(forms.forms, module)
    {:ok, binary} = Instrument.compile(forms, munged, slot, [bump_module: FakeBump] ++ opts)
    {forms, binary, sites}
  end

  defp erl_workload do
    m = :instr_erl
    m.bools(true, false)
    m.bools(false, false)
    m.comps([1, 2, 3, 5])
    send(self(), {:a, 1})
    m.recv(0)
    m.recv(0)
    m.after_only()
    m.tries(1)
    m.tries(2)
    m.same_line(1)
    m.same_line(3)
    m.nested(1)
    m.funs([1, 2])
    m.ifs(0)
    m.ifs(-1)
    m.misc(1)
    m.misc(:a)
    m.multi(0)
    m.multi(5)
    m.multi(100)
    m.guards(1)
    m.guards(1.0)
    m.incl(0)
    m.maps(%{a: 0, b: 0})
    m.bins(<<1, 2, 3>>)
    :ok
  end

  defp ex_workload do
    m = LiveCovFixture.InstrEx
    m.with_else(%{a: 1, b: 2})
    m.with_else(%{a: -1, b: 2})
    m.with_else(%{})
    m.fors([1, 2, 3])
    m.conds(11)
    m.conds(6)
    m.pipeline([1, 2, 3])
    m.defaults(1)
    m.defaults(1, 1)
    m.multi(0)
    m.multi(-1)
    m.tries(fn -> raise ArgumentError end)
    m.tries(fn -> throw(:x) end)
    m.tries(fn -> :ok end)
    send(self(), {:b, 2})
    m.recv(0)
    m.strings("x")
    m.cases({:ok, 0})
    m.uses_private(nil)
    :ok
  end

  describe "compile + load + restore, against cover's counters" do
    for {module, workload} <- [
          instr_erl: :erl_workload,
          "Elixir.LiveCovFixture.InstrEx": :ex_workload
        ],
        optimize <- [:coverage, :full] do
      test "#{inspect(module)}, optimize: #{optimize}: every bump counts what cover counts",
           %{beams: beams} do
        module = unquote(module)
        {forms, binary, sites} = instrumented!(module, @slot, optimize: unquote(optimize))
        n = length(sites)

        assert :ok = Instrument.load(module, binary, forms.beam_path)
        assert :code.which(module) == beams[module]
        unquote(workload)()
        ours = FakeBump.counts(@slot, n)
        assert Enum.sum(ours) > 0

        assert {:ok, []} = Instrument.restore(module, forms.binary, forms.beam_path)
        assert :code.which(module) == beams[module]
        unquote(workload)()
        assert FakeBump.counts(@slot, n) == ours, "the original code must not bump"

        {:ok, _} = :cover.start()
        {:ok, ^module} = :cover.compile_beam(forms.beam_path)
        unquote(workload)()
        covers = LiveCov.Test.CoverCounts.counts(module, n)
        :ok = :cover.stop()

        assert ours == covers
      end
    end
  end

  describe "compile/4" do
    test "NIF bumps are remote calls LiveCov.Native.bump(slot, index)" do
      a = :erl_anno.new(0)

      assert Instrument.site_fun(3, backend: :nif).(9, 4) ==
               {:call, a, {:remote, a, {:atom, a, LiveCov.Native}, {:atom, a, :bump}},
                [{:integer, a, 3}, {:integer, a, 9}]}

      {:ok, forms} = Forms.fetch(:instr_erl)
      {:ok, munged, _sites, _} = Rewrite.transform(forms.forms, :instr_erl)
      assert {:ok, binary} = Instrument.compile(forms, munged, 12, backend: :nif)
      {:ok, {:instr_erl, [imports: imports]}} = :beam_lib.chunks(binary, [:imports])
      assert {LiveCov.Native, :bump, 2} in imports
      refute {FakeBump, :bump, 2} in imports
      # keeps the source from the original compile_info
      {:ok, {:instr_erl, [compile_info: info]}} = :beam_lib.chunks(binary, [:compile_info])
      assert info[:source] == forms.source
    end

    test "native sites are cover's line counters: no call, force_line_counters" do
      assert Instrument.site_fun(3, backend: :native).(9, 4) == {:executable_line, 4, 10}
      assert :force_line_counters in Instrument.compile_options(backend: :native)
      refute :force_line_counters in Instrument.compile_options(backend: :nif)

      if LiveCov.Runtime.native_coverage?() do
        {:ok, forms} = Forms.fetch(:instr_erl)
        {:ok, munged, _sites, _} = Rewrite.transform(forms.forms, :instr_erl)
        assert {:ok, binary} = Instrument.compile(forms, munged, 12, backend: :native)
        {:ok, {:instr_erl, [imports: imports]}} = :beam_lib.chunks(binary, [:imports])
        refute {LiveCov.Native, :bump, 2} in imports
      end
    end

    test "optimize: picks the compile profile; both bump the same sites" do
      profile = Instrument.compile_options(backend: :nif)
      assert :no_lint in profile and :no_type_opt in profile and :no_ssa_opt_sink in profile
      # Every option names a pass this compiler has (an unknown option would be ignored).
      for opt <- profile -- [:no_lint, :no_type_opt, :no_module_opt, :no_share_opt] do
        "no_" <> pass = Atom.to_string(opt)
        assert known_ssa_pass?(String.to_atom(pass)), "#{opt}: no such compiler pass"
      end

      assert Instrument.compile_options(optimize: :coverage, backend: :nif) == profile
      assert Instrument.compile_options(optimize: :full, backend: :nif) == []

      assert_raise ArgumentError, ~r/optimize: :fast is not a LiveCov compile profile/, fn ->
        Instrument.compile_options(optimize: :fast)
      end

      {_, coverage, _} = instrumented!(:instr_erl, @slot, optimize: :coverage)
      {_, full, _} = instrumented!(:instr_erl, @slot, optimize: :full)
      assert coverage != full

      bumps = fn binary ->
        {:beam_file, _, _, _, _, code} = :beam_disasm.file(binary)

        for {:function, _, _, _, instrs} <- code,
            instr <- instrs,
            is_tuple(instr) and elem(instr, 0) in [:call_ext, :call_ext_last, :call_ext_only],
            Enum.member?(Tuple.to_list(instr), {:extfunc, FakeBump, :bump, 2}),
            reduce: 0,
            do: (n -> n + 1)
      end

      assert bumps.(coverage) == bumps.(full)
      assert bumps.(coverage) > 0
    end

    test "a compile error is returned, not raised or printed" do
      {:ok, forms} = Forms.fetch(:instr_erl)
      {:ok, munged, _sites, _} = Rewrite.transform(forms.forms, :instr_erl)

      broken =
        munged ++
          [
            {:function, 999, :broken, 0,
             [{:clause, 999, [], [], [{:call, 999, {:atom, 999, :nope}, []}]}]}
          ]

      assert {:error, {:compile_failed, msg}} = Instrument.compile(forms, broken, 1)
      assert msg =~ ":instr_erl"
      assert msg =~ "nope/0"
    end
  end

  describe "load/3 and restore/3 with processes in old code" do
    test "refuse to purge running code; report who still runs instrumented code" do
      InstrFixtures.reload_original!(:instr_erl)
      {forms, binary, sites} = instrumented!(:instr_erl)
      path = forms.beam_path

      # a process parked in the original code
      original_user = spawn_waiting(fn -> apply(:instr_erl, :recv, [:infinity]) end)
      assert :ok = Instrument.load(:instr_erl, binary, path)

      assert {:error, {:old_code_in_use, msg}} = Instrument.load(:instr_erl, binary, path)
      assert msg =~ inspect(original_user)
      assert {:error, {:old_code_in_use, _}} = Instrument.restore(:instr_erl, forms.binary, path)
      assert Process.alive?(original_user), "nothing is ever killed"
      finish(original_user)

      # a process parked in the instrumented code
      instrumented_user = spawn_waiting(fn -> apply(:instr_erl, :recv, [:infinity]) end)
      assert {:ok, [^instrumented_user]} = Instrument.restore(:instr_erl, forms.binary, path)
      assert :code.which(:instr_erl) == path
      before = Enum.sum(FakeBump.counts(@slot, length(sites)))
      finish(instrumented_user)
      assert Enum.sum(FakeBump.counts(@slot, length(sites))) > before, "old code keeps bumping"
      assert :code.soft_purge(:instr_erl)
    end

    test "a load failure is an error tuple" do
      assert {:error, {:load_failed, msg}} =
               Instrument.load(
                 :instr_not_a_module,
                 "not a beam",
                 ~c"/tmp/instr_not_a_module.beam"
               )

      assert msg =~ "instr_not_a_module"
    end
  end

  describe "load_many/1" do
    defp tiny(module, extra \\ []) do
      forms =
        [
          {:attribute, 1, :module, module},
          {:attribute, 2, :export, [f: 0, wait: 0]},
          {:function, 3, :f, 0, [{:clause, 3, [], [], [{:atom, 3, module}]}]},
          {:function, 4, :wait, 0,
           [
             {:clause, 4, [], [],
              [{:receive, 4, [{:clause, 4, [{:atom, 4, :go}], [], [{:atom, 4, :ok}]}]}]}
           ]}
        ] ++ extra

      {:ok, ^module, binary} = :compile.forms(forms, [:binary])
      binary
    end

    test "loads every module, in chunks, the same as load/3 would" do
      mods = for i <- 1..7, do: :"lc_load_many_#{i}"
      items = for m <- mods, do: {m, tiny(m), ~c"/tmp/#{m}.beam"}
      assert Instrument.load_many(items) == List.duplicate(:ok, 7)
      for m <- mods, do: assert(apply(m, :f, []) == m)
      assert Instrument.load_many([]) == []
    end

    test "a module that cannot load gets its own error; the rest of its chunk loads" do
      :ok = Instrument.load(:lc_load_many_busy, tiny(:lc_load_many_busy))
      parked = spawn_waiting(fn -> apply(:lc_load_many_busy, :wait, []) end)
      # A newer version is loaded: the parked process now runs old code.
      :ok = Instrument.load(:lc_load_many_busy, tiny(:lc_load_many_busy))

      items = [
        {:lc_load_many_ok, tiny(:lc_load_many_ok), nil},
        {:lc_load_many_busy, tiny(:lc_load_many_busy), nil},
        {:lc_load_many_bad, "not a beam", ~c"/tmp/lc_load_many_bad.beam"}
      ]

      assert [:ok, {:error, {:old_code_in_use, msg}}, {:error, {:load_failed, _}}] =
               Instrument.load_many(items)

      assert msg =~ inspect(parked)
      assert apply(:lc_load_many_ok, :f, []) == :lc_load_many_ok
      send(parked, :go)
    end
  end

  describe "instrument_many/2" do
    test "keeps the order and isolates crashes" do
      results =
        Instrument.instrument_many(1..12 |> Enum.to_list(), fn
          3 -> raise "boom"
          5 -> throw(:ball)
          7 -> exit(:bye)
          i -> Process.sleep(12 - i) && {:ok, i * 10}
        end)

      assert length(results) == 12

      crashes = %{3 => "boom", 5 => ":ball", 7 => ":bye"}

      for {result, i} <- Enum.with_index(results, 1) do
        case crashes do
          %{^i => text} ->
            assert {:error, {:crashed, msg}} = result
            assert msg =~ text

          _ ->
            assert result == {:ok, i * 10}
        end
      end
    end

    test "runs the whole pipeline for several modules", %{beams: beams} do
      modules = [:instr_erl, :instr_maybe, LiveCovFixture.InstrEx, :no_such_module_xyz]

      results =
        Instrument.instrument_many(modules, fn module ->
          target = Map.get(beams, module, module)

          with {:ok, forms} <- Forms.fetch(target),
               {:ok, munged, sites, _} <- Rewrite.transform(forms.forms, forms.module),
               {:ok, _bin} <- Instrument.compile(forms, munged, 1, bump_module: FakeBump) do
            {:ok, length(sites)}
          end
        end)

      assert [{:ok, n1}, {:ok, n2}, {:ok, n3}, {:error, {:no_beam, _}}] = results
      assert n1 > 0 and n2 > 0 and n3 > 0
    end
  end

  defp spawn_waiting(fun) do
    pid = spawn(fun)
    wait_until(fn -> Process.info(pid, :status) == {:status, :waiting} end)
    pid
  end

  defp finish(pid) do
    ref = Process.monitor(pid)
    send(pid, {:a, :done})
    assert_receive {:DOWN, ^ref, :process, ^pid, :normal}
  end

  defp wait_until(fun, tries \\ 200) do
    cond do
      fun.() -> :ok
      tries == 0 -> flunk("condition not reached")
      true -> Process.sleep(5) && wait_until(fun, tries - 1)
    end
  end

  # The SSA optimiser's sub-passes, from the compiler's own `time` report.
  defp known_ssa_pass?(pass) do
    forms = [{:attribute, 1, :module, :lc_pass_probe}, {:attribute, 1, :export, []}]

    {_result, output} =
      ExUnit.CaptureIO.with_io(fn -> :compile.forms(forms, [:time, :binary]) end)

    String.contains?(output, " #{pass} ")
  end
end
