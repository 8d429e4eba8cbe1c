# Reading counts while code runs: exact takes under load, and what harvesting the runtime's
# line counters (the native backend, OTP 27+) costs.
#
#     mix live_cov.bench harvest [--quick]
#     mix run bench/harvest.exs [--quick] [--seconds S] [--sites N]
#
# 1. Dump under load. One process per scheduler calls a function of its own copy of a small
#    module for S seconds: one copy instrumented by LiveCov (default backend), one by `:cover`,
#    both running at the same time in this BEAM. Every 2 ms LiveCov takes its counts
#    (`LiveCov.dump_and_reset/0`) and `:cover` does what its users do for the same
#    (`:cover.analyse/3`, then `:cover.reset/1`). At the end, what each tool reported is
#    compared with the calls the processes made: a bump counted between the read and the reset
#    is lost.
# 2. Harvest cost (native backend only). A generated corpus of N sites (default 100,000) is
#    instrumented; one harvest of all of them is timed (median of 21), as ms per 100,000
#    sites. Then the hot loop of one process is timed with and without a harvest of the corpus
#    every second.

Code.require_file("support/bench_helpers.exs", __DIR__)

defmodule LiveCov.Bench.Harvest do
  @moduledoc false

  import LiveCov.Bench.Helpers, only: [cpu_model: 0, fmt_int: 1]

  def main(argv) do
    {opts, _, invalid} =
      OptionParser.parse(argv, strict: [quick: :boolean, seconds: :integer, sites: :integer])

    if invalid != [] do
      IO.puts(:stderr, "harvest.exs: unknown options #{inspect(invalid)}")
      System.halt(2)
    end

    quick = Keyword.get(opts, :quick, false)
    seconds = Keyword.get(opts, :seconds, if(quick, do: 2, else: 5))
    sites = Keyword.get(opts, :sites, if(quick, do: 20_000, else: 100_000))

    dir =
      Path.join(System.tmp_dir!(), "live_cov_bench_harvest_#{System.unique_integer([:positive])}")

    File.mkdir_p!(dir)
    :code.add_patha(String.to_charlist(dir))
    {:ok, _} = Application.ensure_all_started(:live_cov)
    {:ok, backend} = LiveCov.Counter.resolve()

    IO.puts("""
    ## Counts read while code runs

    Machine: #{cpu_model()}, #{System.schedulers_online()} schedulers. OTP #{System.otp_release()} \
    (#{:erlang.system_info(:emu_flavor)}), Elixir #{System.version()}. LiveCov's default \
    backend here: `:#{backend}`.
    """)

    try do
      dump_under_load(dir, seconds)

      if backend == :native,
        do: harvest_cost(dir, sites),
        else:
          IO.puts(
            "(No harvest on this runtime: the NIF backend counts into the table directly.)\n"
          )
    after
      LiveCov.stop()
      File.rm_rf(dir)
    end
  end

  ## 1. Dump under load

  defp dump_under_load(dir, seconds) do
    compile!(dir, :harvest_lc, loop_source(:harvest_lc))
    compile!(dir, :harvest_cover, loop_source(:harvest_cover))
    %{instrumented: [:harvest_lc]} = LiveCov.start(:harvest_lc)
    {:ok, _} = :cover.start()
    {:ok, :harvest_cover} = :cover.compile_beam(:harvest_cover)

    procs = System.schedulers_online()
    deadline = System.monotonic_time(:millisecond) + seconds * 1000
    parent = self()

    workers =
      for mod <- [:harvest_lc, :harvest_cover], _ <- 1..procs do
        spawn_link(fn -> send(parent, {:calls, mod, spin(mod, deadline, 0)}) end)
      end

    %{live_cov: {lc_reads, lc_counted}, cover: {cover_reads, cover_counted}} =
      read_both(deadline, %{live_cov: {0, 0}, cover: {0, 0}})

    calls = collect(length(workers), %{})
    # What is left after the workers stopped.
    lc_total = lc_counted + lc_count(LiveCov.dump_and_reset())
    cover_total = cover_counted + cover_count()
    :cover.stop()

    IO.puts("""
    ### Dump every 2 ms while #{procs} processes per tool call their module (#{seconds} s)

    | tool | reads | calls made | calls counted | lost | lost % |
    |---|--:|--:|--:|--:|--:|
    #{row("LiveCov `dump_and_reset/0`", lc_reads, calls[:harvest_lc], lc_total)}
    #{row("`:cover` `analyse/3` then `reset/1`", cover_reads, calls[:harvest_cover], cover_total)}

    Both read in the same loop, alternately, while both sets of processes run. LiveCov takes
    each counter in one atomic step (after a harvest of the runtime's counters, which it never
    resets); `:cover` reads then resets, and what ran in between is gone.
    """)
  end

  defp row(name, reads, made, counted) do
    lost = made - counted

    "| #{name} | #{fmt_int(reads)} | #{fmt_int(made)} | #{fmt_int(counted)} | #{fmt_int(lost)} | #{Float.round(100 * lost / max(made, 1), 3)} |"
  end

  defp spin(mod, deadline, n) do
    if rem(n, 1000) == 0 and System.monotonic_time(:millisecond) >= deadline do
      n
    else
      mod.tick()
      spin(mod, deadline, n + 1)
    end
  end

  # Alternates the two tools' reads (each one every 2 ms) until the deadline.
  defp read_both(deadline, acc) do
    if System.monotonic_time(:millisecond) >= deadline do
      acc
    else
      {r1, c1} = acc.live_cov
      lc = lc_count(LiveCov.dump_and_reset())
      {r2, c2} = acc.cover
      cv = cover_count()
      Process.sleep(2)
      read_both(deadline, %{live_cov: {r1 + 1, c1 + lc}, cover: {r2 + 1, c2 + cv}})
    end
  end

  # `tick/0` has one site: its count is the calls.
  defp lc_count(snapshot), do: Enum.sum(LiveCov.Snapshot.counts(snapshot, :harvest_lc) || [])

  defp cover_count do
    {:ok, lines} = :cover.analyse(:harvest_cover, :calls, :line)
    :ok = :cover.reset(:harvest_cover)
    lines |> Enum.filter(fn {{_, l}, _} -> l == 3 end) |> Enum.map(&elem(&1, 1)) |> Enum.sum()
  end

  defp collect(0, acc), do: acc

  defp collect(n, acc) do
    receive do
      {:calls, mod, calls} -> collect(n - 1, Map.update(acc, mod, calls, &(&1 + calls)))
    end
  end

  ## 2. Harvest cost

  defp harvest_cost(dir, sites) do
    per_module = 2_000
    mods = for i <- 1..max(div(sites, per_module), 1), do: :"harvest_corpus_#{i}"
    for m <- mods, do: compile!(dir, m, corpus_source(m, per_module))
    {t_instr, %{instrumented: got}} = :timer.tc(fn -> LiveCov.start(mods) end)
    true = length(got) == length(mods)

    total =
      LiveCov.Cover.modules()
      |> Enum.map(&LiveCov.ModuleInfo.size(LiveCov.Instrumented.lookup(&1)))
      |> Enum.sum()

    for m <- mods, f <- 1..per_module//7, do: apply(m, :"f#{f}", [])

    times = for _ <- 1..21, do: elem(:timer.tc(fn -> LiveCov.Counter.harvest() end), 0)
    median_us = Enum.at(Enum.sort(times), 10)
    per_100k = median_us / 1000 * 100_000 / total

    {quiet, busy} = hot_with_harvest(mods)

    IO.puts("""
    ### Harvest cost (native backend)

    | corpus | sites | instrumenting | one harvest of all (median of 21) | ms per 100,000 sites |
    |---|--:|--:|--:|--:|
    | #{length(mods)} generated modules | #{fmt_int(total)} | #{Float.round(t_instr / 1_000_000, 2)} s | #{Float.round(median_us / 1000, 2)} ms | #{Float.round(per_100k, 2)} |

    | hot loop of one process (ns per call, median of 9 runs of 1 s) | without harvests | with a harvest of all #{fmt_int(total)} sites every second | difference |
    |---|--:|--:|--:|
    | `harvest_lc:tick/0` (1 line) | #{Float.round(quiet, 2)} | #{Float.round(busy, 2)} | #{Float.round(busy - quiet, 2)} (#{Float.round(100 * (busy - quiet) / quiet, 1)} %) |
    """)
  end

  defp hot_with_harvest(_mods) do
    quiet = median(for _ <- 1..9, do: ns_per_call(1000))

    ticker = spawn_link(fn -> tick_harvest() end)
    busy = median(for _ <- 1..9, do: ns_per_call(1000))
    Process.unlink(ticker)
    Process.exit(ticker, :kill)
    {quiet, busy}
  end

  defp tick_harvest do
    LiveCov.Counter.harvest()
    Process.sleep(1000)
    tick_harvest()
  end

  defp ns_per_call(ms) do
    deadline = System.monotonic_time(:millisecond) + ms
    t0 = System.monotonic_time(:nanosecond)
    n = spin(:harvest_lc, deadline, 0)
    (System.monotonic_time(:nanosecond) - t0) / n
  end

  defp median(list), do: list |> Enum.sort() |> Enum.at(div(length(list), 2))

  ## Fixtures

  defp loop_source(mod) do
    """
    -module(#{mod}).
    -export([tick/0]).
    tick() -> ok.
    """
  end

  defp corpus_source(mod, n) do
    exports = Enum.map_join(1..n, ",", &"f#{&1}/0")
    funs = Enum.map_join(1..n, "\n", &"f#{&1}() -> #{&1}.")
    "-module(#{mod}).\n-export([#{exports}]).\n#{funs}\n"
  end

  defp compile!(dir, mod, source) do
    src = Path.join(dir, "#{mod}.erl")
    File.write!(src, source)

    {:ok, ^mod} =
      :compile.file(String.to_charlist(src), [:debug_info, outdir: String.to_charlist(dir)])

    {:module, ^mod} = :code.load_file(mod)
  end
end

LiveCov.Bench.Harvest.main(System.argv())
