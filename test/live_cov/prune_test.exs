defmodule LiveCov.PruneTest do
  use ExUnit.Case, async: false

  # Fixtures compiled while the tests run.
  @compile {:no_warn_undefined, [:prune_full, :prune_loop, LiveCovOracle.Workload]}

  alias LiveCov.{Counts, Instrumented, ModuleInfo, Pipeline, Prune}
  alias LiveCov.Test.{FixtureBuild, Oracle, Peers}

  import LiveCov.Test.FixtureBuild, only: [prune_fixtures: 1]

  setup_all :prune_fixtures

  setup do
    LiveCov.stop()
    FixtureBuild.manual_prune!()
  end

  defp site_counts(module) do
    info = Instrumented.lookup(module)
    {info, Counts.of(info)}
  end

  defp beam_md5(module), do: module.module_info(:md5)

  describe "fully hit modules" do
    test "go back to their original code", %{fixtures: dir} do
      original_md5 = beam_md5(:prune_full)
      beam = Path.join(dir, "prune_full.beam") |> String.to_charlist()
      assert %{instrumented: [:prune_full]} = LiveCov.start(:prune_full, mode: :coverage)
      refute beam_md5(:prune_full) == original_md5
      assert Instrumented.lookup(:prune_full).mode == :coverage

      assert {:two, [2, 4]} = pf().run(1)
      assert %{restored: [:prune_full], failed: [], deferred: []} = LiveCov.prune()

      assert beam_md5(:prune_full) == original_md5
      assert :code.which(:prune_full) == beam
      assert {:two, [2, 4]} = pf().run(1)

      # Frozen, still reported as covered.
      {info, counts} = site_counts(:prune_full)
      assert Enum.all?(counts, &(&1 >= 1))
      assert MapSet.size(info.pruned) == ModuleInfo.size(info)
      assert info.instrumented == info.original

      assert [%{module: :prune_full, code: :original, remaining: 0}] =
               LiveCov.prune_status().modules

      assert LiveCov.total_coverage() == 100.0

      # Nothing more to do, and stop works on a module already on its original.
      assert %{pruned: [], restored: []} = LiveCov.prune()
      assert %{restored: [:prune_full], failed: []} = LiveCov.stop()
      assert beam_md5(:prune_full) == original_md5
    end

    test "stay instrumented, without any bump, with keep_instrumented" do
      original_md5 = beam_md5(:prune_full)
      LiveCov.start(:prune_full, mode: :coverage, prune: [keep_instrumented: true])
      pf().run(1)
      assert %{pruned: [%{module: :prune_full, remaining: 0}], restored: []} = LiveCov.prune()
      refute beam_md5(:prune_full) == original_md5

      info = Instrumented.lookup(:prune_full)
      {:ok, {_, [imports: imports]}} = :beam_lib.chunks(info.instrumented, [:imports])
      refute {LiveCov.Native, :bump, 2} in imports

      {_, before} = site_counts(:prune_full)
      pf().run(5)
      assert {_, ^before} = site_counts(:prune_full)

      # Asking for originals again restores it at the next pass.
      :ok = Prune.configure(keep_instrumented: false)
      assert %{restored: [:prune_full]} = LiveCov.prune()
      assert beam_md5(:prune_full) == original_md5
    end
  end

  describe "partial pruning" do
    test "keeps the slot and indices; removed counters stop, the others keep counting" do
      LiveCov.start(:prune_loop, mode: :coverage)
      before = Instrumented.lookup(:prune_loop)
      :fizz = pl().work(3)
      {_, c1} = site_counts(:prune_loop)

      assert %{pruned: [%{module: :prune_loop, newly_pruned: n}]} = LiveCov.prune()
      assert n == Enum.count(c1, &(&1 > 0))

      info = Instrumented.lookup(:prune_loop)
      assert info.slot == before.slot and info.site_data == before.site_data
      assert info.prunes == 1 and is_integer(info.pruned_at)

      for _ <- 1..10, do: :fizz = pl().work(3)
      assert {_, ^c1} = site_counts(:prune_loop)

      :buzz = pl().work(5)
      :buzz = pl().work(10)
      {_, c2} = site_counts(:prune_loop)
      assert Enum.sum(c2) == Enum.sum(c1) + 2

      assert %{pruned: [%{module: :prune_loop}]} = LiveCov.prune()
      assert Instrumented.lookup(:prune_loop).prunes == 2

      status = LiveCov.prune_status()

      assert [%{action: :pruned, module: :prune_loop}, %{action: :pruned, module: :prune_loop}] =
               Enum.take(status.history, 2)

      assert %{at: %DateTime{}, compile_ms: ms} = hd(status.history)
      assert is_integer(ms)
      assert status.passes >= 2 and status.recompiled >= 2
      assert [%{module: :prune_loop, code: :pruned, versions: 2}] = status.modules
      assert status.exact_counts == false

      [data] = LiveCov.module_data()
      assert data.exact == false
      assert data.pruned_lines != []
      assert Enum.all?(data.pruned_lines, &(data.lines[&1] > 0))
    end

    test "reset keeps removed sites hit and zeroes the others" do
      LiveCov.start(:prune_loop, mode: :coverage)
      :fizz = pl().work(3)
      LiveCov.prune()
      :buzz = pl().work(5)
      {info, before} = site_counts(:prune_loop)

      :ok = LiveCov.reset()
      {_, after_reset} = site_counts(:prune_loop)

      for {{b, a}, i} <- Enum.with_index(Enum.zip(before, after_reset)) do
        if MapSet.member?(info.pruned, i), do: assert(a == b and a >= 1), else: assert(a == 0)
      end
    end

    test "counts mode modules are never pruned" do
      LiveCov.start(:prune_loop)
      pl().work(3)
      assert %{pruned: [], restored: []} = LiveCov.prune()
      info = Instrumented.lookup(:prune_loop)
      assert info.mode == :counts and info.prunes == 0 and info.cache == nil
      assert [data] = LiveCov.module_data()
      assert data.exact and data.pruned_lines == []
    end

    test "max_per_pass leaves the rest for a retry soon after" do
      LiveCov.start([:prune_loop, :prune_full],
        mode: :coverage,
        prune: [interval: nil, retry: 30, max_per_pass: 1, concurrency: 1]
      )

      pl().work(3)
      pf().run(1)
      # Modules are taken in module order.
      assert %{restored: [:prune_full], pruned: [], waiting: [:prune_loop]} = LiveCov.prune()
      assert eventually(fn -> Instrumented.lookup(:prune_loop).prunes == 1 end)
      assert LiveCov.prune_status().options.max_per_pass == 1
    end

    test "a stale prune (module instrumented again meanwhile) changes nothing" do
      LiveCov.start(:prune_loop, mode: :coverage)
      info = Instrumented.lookup(:prune_loop)
      {:ok, bin} = Prune.compile(info, MapSet.new([0]))
      LiveCov.start(:prune_loop, mode: :coverage)

      assert {:error, {:not_instrumented, msg}} =
               Pipeline.prune(:prune_loop, info.slot, MapSet.new([0]), bin)

      assert msg =~ "prune_loop"
      assert Instrumented.lookup(:prune_loop).prunes == 0
    end
  end

  describe "under load" do
    test "no process is killed; a module held by a process on old code is deferred" do
      parent = self()
      LiveCov.start(:prune_loop, mode: :coverage, prune: [interval: nil])

      remotes =
        for i <- 1..4 do
          pid = spawn(:prune_loop, :remote_loop, [parent, i])
          {pid, Process.monitor(pid)}
        end

      local = spawn(:prune_loop, :local_loop, [parent])
      local_ref = Process.monitor(local)
      Process.sleep(50)

      # First swap: the current version becomes old; `local` still runs it.
      assert %{pruned: [%{module: :prune_loop}], failed: []} = LiveCov.prune()

      # `local` reaches a new line in the old version: there is something to prune, but the
      # old version cannot be purged while `local` runs it.
      send(local, {:work, 7})
      assert_receive {:worked, :seven}

      for _ <- 1..5 do
        assert %{deferred: [%{module: :prune_loop, pids: pids}], pruned: []} = LiveCov.prune()
        assert local in pids
        Process.sleep(10)
      end

      status = LiveCov.prune_status()
      assert [%{module: :prune_loop, pids: [^local], attempts: attempts}] = status.deferred
      assert attempts >= 5

      for {pid, _} <- [{local, local_ref} | remotes], do: assert(Process.alive?(pid))

      send(local, :stop)
      assert_receive {:stopped, ^local}
      assert_receive {:DOWN, ^local_ref, :process, ^local, :normal}

      assert %{pruned: [%{module: :prune_loop}], deferred: []} = wait_pruned()
      assert LiveCov.prune_status().deferred == []

      for {pid, _} <- remotes, do: assert(Process.alive?(pid))

      for {pid, ref} <- remotes do
        send(pid, :stop)
        assert_receive {:stopped, ^pid, n} when n > 1
        assert_receive {:DOWN, ^ref, :process, ^pid, :normal}
      end

      # Everything but never/0 has run; then never/0, and the original is back.
      wait_pruned()
      {info, _} = site_counts(:prune_loop)
      assert ModuleInfo.size(info) - MapSet.size(info.pruned) == 1
      :never_called = pl().never()
      assert %{restored: [:prune_loop]} = wait_pruned()
      assert :code.which(:prune_loop) |> to_string() =~ "prune_loop.beam"
    end

    test "background passes while processes loop through the module" do
      parent = self()
      original_md5 = beam_md5(:prune_loop)
      LiveCov.start(:prune_loop, mode: :coverage, prune: [interval: 5, retry: 5])

      procs =
        for i <- 1..6 do
          pid = spawn(:prune_loop, :remote_loop, [parent, i * 1000])
          {pid, Process.monitor(pid)}
        end

      # Reaching new lines over time forces a stream of reloads.
      for n <- [3, 5, 7, 8] do
        Process.sleep(40)
        pl().work(n)
      end

      Process.sleep(100)
      for {pid, _} <- procs, do: assert(Process.alive?(pid))
      refute_received {:DOWN, _, _, _, _}

      for {pid, ref} <- procs do
        send(pid, :stop)
        assert_receive {:stopped, ^pid, _}
        assert_receive {:DOWN, ^ref, :process, ^pid, :normal}
      end

      local = spawn(:prune_loop, :local_loop, [parent])
      send(local, {:work, 1})
      send(local, :stop)
      assert_receive {:stopped, ^local}
      pl().never()
      assert eventually(fn -> beam_md5(:prune_loop) == original_md5 end)
      status = LiveCov.prune_status()
      assert status.passes >= 3
      assert Enum.any?(status.history, &(&1.action == :original))
    end
  end

  describe "on the oracle corpus" do
    setup do
      build = Oracle.build!()
      # Stop first: restoring after the cleanup would load the corpus again.
      on_exit(fn ->
        LiveCov.stop()
        Oracle.cleanup(build)
      end)

      {:ok, build: build}
    end

    test "covered lines and sites are the same as in counts mode", %{build: build} do
      phases = [
        fn -> wl().erl_control() end,
        fn -> wl().shapes() end,
        fn -> {wl().erl_data(), wl().flow()} end,
        fn -> {wl().counter_server(), wl().macros()} end,
        fn -> wl().run(build.maybe?, build.versioned) end,
        fn -> wl().run(build.maybe?, build.versioned) end
      ]

      counts = run_mode(build, :counts, phases)
      coverage = run_mode(build, :coverage, phases)

      assert coverage.results == counts.results
      assert coverage.lines == counts.lines
      assert coverage.sites == counts.sites
      assert coverage.line_analysis == counts.line_analysis

      # Sites never removed counted exactly.
      for {m, pruned} <- coverage.pruned,
          {n, i} <- Enum.with_index(coverage.counts[m]),
          not MapSet.member?(pruned, i) do
        assert n == Enum.at(counts.counts[m], i), "#{inspect(m)} site #{i}"
      end

      # Every module ran some of its lines, none all of them (the corpus keeps lines unrun).
      assert Enum.all?(coverage.code, &(&1 == :pruned))
      assert Enum.all?(coverage.pruned, fn {_, p} -> MapSet.size(p) > 0 end)
    end

    test "any subset of removed sites compiles and behaves like the original", %{build: build} do
      expected = wl().run(build.maybe?, build.versioned)
      LiveCov.start(build.modules, mode: :coverage)

      for seed <- 1..3 do
        :rand.seed(:exsss, {seed, seed, seed})

        for info <- Instrumented.modules() do
          pruned =
            for i <- 0..(ModuleInfo.size(info) - 1)//1,
                :rand.uniform(2) == 1,
                into: MapSet.new(),
                do: i

          assert {:ok, bin} = Prune.compile(info, pruned, true), inspect(info.module)
          assert {:ok, _} = Pipeline.prune(info.module, info.slot, pruned, bin)
        end

        assert wl().run(build.maybe?, build.versioned) == expected
      end
    end
  end

  describe "across nodes" do
    @describetag :peer

    test "every covered node runs the same pruned version, then the original" do
      Peers.ensure_distributed!("live_cov_prune")
      {_pid, peer} = Peers.start(:"lcp_#{System.unique_integer([:positive])}")
      original_md5 = beam_md5(:prune_full)

      LiveCov.start([:prune_loop, :prune_full], mode: :coverage)
      assert {[^peer], []} = LiveCov.Nodes.start_nodes(peer)
      assert md5_on(peer, :prune_loop) == beam_md5(:prune_loop)

      # Hit on the peer only: pruned everywhere.
      :fizz = :erpc.call(peer, :prune_loop, :work, [3])
      assert %{pruned: [%{module: :prune_loop, newly_pruned: 1}]} = LiveCov.prune()
      info = Instrumented.lookup(:prune_loop)
      [fizz] = MapSet.to_list(info.pruned)
      assert md5_on(peer, :prune_loop) == beam_md5(:prune_loop)
      {_, counts} = site_counts(:prune_loop)
      assert Enum.at(counts, fizz) == 1

      # A reset zeroes every node; the removed site stays hit (on this node's table).
      :ok = LiveCov.reset()
      {_, counts} = site_counts(:prune_loop)
      assert Enum.at(counts, fizz) == 1
      assert {:ok, local} = LiveCov.Counter.read(info.slot)
      assert Enum.at(local, fizz) == 1

      {:two, _} = :erpc.call(peer, :prune_full, :run, [1])
      assert %{restored: [:prune_full]} = LiveCov.prune()
      assert beam_md5(:prune_full) == original_md5
      assert md5_on(peer, :prune_full) == original_md5
    end
  end

  test "options are checked" do
    assert {:error, {:invalid_option, msg}} = LiveCov.start(:prune_loop, mode: :fast)
    assert msg =~ ":fast"

    assert {:error, {:invalid_option, msg}} =
             LiveCov.start(:prune_loop, mode: :coverage, prune: [interval: -1])

    assert msg =~ "interval"
    assert {:error, {:invalid_option, msg}} = Prune.configure(every: 5)
    assert msg =~ ":every"
    assert LiveCov.modules() == []
  end

  ## Helpers

  defp md5_on(node, module), do: :erpc.call(node, module, :module_info, [:md5])

  # Fixture modules are compiled at run time: called through functions, not literals.
  defp pl, do: :prune_loop
  defp pf, do: :prune_full
  defp wl, do: LiveCovOracle.Workload

  defp run_mode(build, mode, phases) do
    Oracle.load_originals!(build)
    # Both modes count with the backend adaptive mode uses, so sites compare one to one.
    {:ok, backend} = LiveCov.Counter.resolve(nil, :coverage)
    summary = LiveCov.start(build.modules, mode: mode, backend: backend)
    assert Enum.sort(summary.instrumented) == Enum.sort(build.modules)

    results =
      for phase <- phases do
        result = phase.()

        if mode == :coverage do
          assert %{failed: [], deferred: deferred} = LiveCov.prune()
          assert deferred == [], inspect(deferred)
        end

        result
      end

    infos = Instrumented.modules()
    counts = Counts.collect(infos)
    data = LiveCov.module_data()

    out = %{
      results: results,
      counts: counts,
      lines:
        Map.new(data, &{&1.module, for({l, n} <- &1.lines, n > 0, into: MapSet.new(), do: l)}),
      sites:
        Map.new(infos, fn info ->
          hit =
            for {s, n} <- Enum.zip(LiveCov.ModuleInfo.site_list(info), counts[info.module]),
                n > 0,
                do: s

          {info.module, MapSet.new(hit)}
        end),
      line_analysis:
        Map.new(
          infos,
          &{&1.module, LiveCov.Analyse.cover(&1, counts[&1.module], :coverage, :line)}
        ),
      pruned: Map.new(infos, &{&1.module, &1.pruned}),
      code: Enum.map(LiveCov.prune_status().modules, & &1.code)
    }

    LiveCov.stop()
    out
  end

  defp wait_pruned(tries \\ 50) do
    case LiveCov.prune() do
      %{deferred: [_ | _]} when tries > 0 ->
        Process.sleep(10)
        wait_pruned(tries - 1)

      summary ->
        summary
    end
  end

  defp eventually(fun, tries \\ 100) do
    cond do
      fun.() -> true
      tries == 0 -> false
      true -> Process.sleep(20) && eventually(fun, tries - 1)
    end
  end
end
