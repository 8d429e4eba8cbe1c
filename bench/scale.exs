# Scale benchmark: LiveCov against OTP's cover at every step, side by side, in one run.
#
#     mix live_cov.bench scale [--quick]                  # this program only
#     mix live_cov.bench scale -- --modules 2000          # options after `--`
#     mix run bench/scale.exs [--quick] [options]
#
# Options: --quick (200 modules, fewer reps), --modules N (corpus size, default 1,000),
# --reps R (timed reps of the hot path and the workload), --iterations N (hot-path loop
# iterations), --schedulers S.
#
# The default corpus is 1,000 modules, not 2,000, to keep a full run under 10 minutes on a
# 2-core machine: cover's analysis, export and compile bookkeeping grow with the square of
# the number of modules (each per-module step scans its whole ETS tables), so at 2,000
# modules its steps alone take about 15 minutes. `--modules 2000` runs the full size. The
# generated corpus is kept in the system temp directory and reused by later runs.
#
# The program only orchestrates. Every tool runs in its own child BEAM (`:cover.local_only/0`
# is global to a node): `plain` (no instrumentation: the floor), `cover_default`,
# `cover_local_only`, `live_cov` (empty instrumentation cache) and, after it, `live_cov_warm`
# (a fresh BEAM on the cache the `live_cov` child filled: the next test run, a node
# restart). The children run one at a time, phase by phase, so a burst of load elsewhere on a
# shared machine hits the tools alike; the hot path and the workload go rep by rep in turn.
# Every figure is timed by the wall clock and by the CPU time of the child BEAM (all its
# threads, from /proc/self/task/*/schedstat); on a shared machine the CPU figure is the
# steadier one.
#
# 1. hot bump: bench/support/hot_path_bench.erl compiled twice (one copy instrumented, one
#    plain twin), 11 lines per loop iteration, 1 process then one per scheduler; ns per bump
#    net of the twin (bench/hot_path.exs has the detailed breakdown of this figure).
# 2. workload: bench/support/scale_workload.erl (tokenizer, parser and evaluator of a toy
#    language over a generated program), instrumented copy vs plain twin.
# 3. instrumentation of (a) Elixir's own mix, ex_unit, eex and iex beams and (b) a generated
#    corpus (bench/support/scale_corpus.ex) of N Elixir modules of ~100 executable lines.
#    The floor, in the plain child: read the abstract code and compile:forms it without
#    instrumentation, in parallel (one task per scheduler). In parts (each app, then the
#    corpus 100 beams at a time), the tools taking turns part by part; each tool's time is
#    the sum of its parts.
# 4. analysis of every instrumented module at line level (`analyse(:coverage, :line)`,
#    whose results are checked equal across the tools), a whole-table read, a report.
# 5. export / import / merge of the coverage data.
# 6. memory per bump site: counters + metadata (ETS) after instrumenting everything, and
#    again after the analyses (cover then keeps a second per-site table).

Code.require_file("support/bench_helpers.exs", __DIR__)

defmodule LiveCov.Bench.Scale do
  @moduledoc false

  @tag "#LIVE_COV_SCALE#"
  @support Path.expand("support", __DIR__)
  @children ["plain", "cover_default", "cover_local_only", "live_cov"]
  @timed ["cover_default", "cover_local_only", "live_cov"]
  @names %{
    "plain" => "no instrumentation",
    "cover_default" => "`:cover` default",
    "cover_local_only" => "`:cover` local_only",
    "live_cov" => "LiveCov",
    "live_cov_warm" => "LiveCov, warm cache"
  }

  def main(argv) do
    case argv do
      ["--child", tool | rest] -> LiveCov.Bench.Scale.Child.main(tool, child_opts(rest))
      _ -> orchestrate(opts(argv))
    end
  end

  defp opts(argv) do
    {opts, _rest, invalid} =
      OptionParser.parse(argv,
        strict: [
          quick: :boolean,
          modules: :integer,
          reps: :integer,
          iterations: :integer,
          schedulers: :integer
        ]
      )

    if invalid != [] do
      IO.puts(:stderr, "scale.exs: unknown options #{inspect(invalid)}")
      System.halt(2)
    end

    quick = Keyword.get(opts, :quick, false)

    %{
      quick: quick,
      modules: Keyword.get(opts, :modules, if(quick, do: 200, else: 1000)),
      reps: Keyword.get(opts, :reps, if(quick, do: 5, else: 11)),
      # ~2 ns a bump where the runtime counts lines natively: 10× the loop there keeps each
      # timed run well above the clocks' resolution.
      iterations:
        Keyword.get(
          opts,
          :iterations,
          if(quick, do: 50_000, else: 100_000) *
            if(LiveCov.Runtime.native_coverage?(), do: 10, else: 1)
        ),
      schedulers: Keyword.get(opts, :schedulers, default_schedulers())
    }
  end

  defp child_opts(argv) do
    {opts, _, _} =
      OptionParser.parse(argv,
        strict: [
          corpus: :string,
          modules: :integer,
          cache: :string,
          iterations: :integer,
          schedulers: :integer,
          work: :string
        ]
      )

    Map.new(opts)
  end

  defp default_schedulers do
    case :erlang.system_info(:logical_processors_available) do
      n when is_integer(n) -> n
      _ -> :erlang.system_info(:logical_processors)
    end
    |> min(8)
    |> max(1)
  end

  ## Parent

  defp orchestrate(opts) do
    started = System.monotonic_time(:millisecond)
    load_before = load_average()
    ebin = live_cov_ebin()
    elixir = System.find_executable("elixir") || raise "elixir is not on PATH"
    Code.require_file(Path.join(@support, "scale_corpus.ex"))

    corpus_dir = Path.join(System.tmp_dir!(), "live_cov_scale_corpus_#{corpus_stamp(opts)}")
    log("corpus: #{opts.modules} modules in #{corpus_dir} ...")

    {corpus_ms, {how, corpus_ebin}} =
      ms(fn -> LiveCov.Bench.ScaleCorpus.build(corpus_dir, opts.modules) end)

    log("corpus #{how} in #{fmt(corpus_ms / 1000, 1)} s")

    run_dir = Path.join(System.tmp_dir!(), "live_cov_scale_#{System.pid()}")
    cache_dir = Path.join(run_dir, "cache")
    File.mkdir_p!(run_dir)

    base = %{
      elixir: elixir,
      ebin: ebin,
      opts: opts,
      corpus: corpus_ebin,
      cache: cache_dir,
      work: run_dir
    }

    try do
      children = for tool <- @children, do: {tool, start_child(base, tool)}
      results = run_phases(children, opts)
      log("warm cache: a fresh LiveCov BEAM on the cache the live_cov child filled ...")
      warm = start_child(base, "live_cov_warm")
      warm_result = ask(warm, "instrument")
      finish(warm)
      results = Map.put(results, "live_cov_warm", %{instrument: warm_result})
      secs = (System.monotonic_time(:millisecond) - started) / 1000
      print(results, opts, how, corpus_ms, secs, load_before)
      if failures(results) != [], do: System.halt(1)
    after
      File.rm_rf(run_dir)
    end
  end

  defp corpus_stamp(opts) do
    text = File.read!(Path.join(@support, "scale_corpus.ex"))
    hash = :erlang.phash2({text, System.version(), :erlang.system_info(:otp_release)})
    "#{opts.modules}_#{hash}"
  end

  defp run_phases(children, opts) do
    timed = for {tool, child} <- children, tool in @timed, do: {tool, child}

    log("hot path and workload: #{opts.reps} rounds, tools in turn ")

    samples =
      Enum.reduce(1..opts.reps, %{}, fn round, acc ->
        {front, back} = Enum.split(timed, rem(round, length(timed)))

        acc =
          Enum.reduce(back ++ front, acc, fn {tool, child}, acc ->
            hot = ask(child, "hot")
            work = ask(child, "workload")

            Map.update(acc, tool, %{hot: [hot], work: [work]}, fn m ->
              %{hot: [hot | m.hot], work: [work | m.work]}
            end)
          end)

        IO.write(:stderr, "#{round} ")
        acc
      end)

    IO.write(:stderr, "\n")

    phase = fn name ->
      log("#{name} ...")

      for {tool, child} <- children, into: %{} do
        r = ask(child, name)
        log("  #{tool}: #{summary(name, r)}")
        {tool, r}
      end
    end

    # Instrumentation part by part, the tools taking turns (in a rotating order), then each
    # child sums its parts.
    log("instrument, in parts, tools in turn ...")

    opts.modules
    |> LiveCov.Bench.Scale.Child.instrument_parts()
    |> Enum.with_index()
    |> Enum.each(fn {part, k} ->
      {front, back} = Enum.split(children, rem(k, length(children)))
      for {_tool, child} <- back ++ front, do: ask(child, "instrument_part:" <> part)
      IO.write(:stderr, ".")
    end)

    IO.write(:stderr, "\n")

    instrument =
      for {tool, child} <- children, into: %{} do
        r = ask(child, "instrument_done")
        log("  #{tool}: #{summary("instrument", r)}")
        {tool, r}
      end

    _ = phase.("exercise")
    analyse = phase.("analyse")
    export = phase.("export")
    final = for {tool, child} <- children, into: %{}, do: {tool, finish(child)}

    for {tool, _} <- children, into: %{} do
      {tool,
       %{
         hot: samples[tool][:hot] || [],
         work: samples[tool][:work] || [],
         instrument: instrument[tool],
         analyse: analyse[tool],
         export: export[tool],
         final: final[tool]
       }}
    end
  end

  defp summary("instrument", %{apps: a, corpus: c}),
    do:
      "apps #{secs(a.time.wall)} wall / #{secs(a.time.cpu)} CPU, " <>
        "corpus #{secs(c.time.wall)} wall / #{secs(c.time.cpu)} CPU"

  defp summary(_, _), do: "done"

  ## Children

  defp start_child(base, tool) do
    o = base.opts

    args =
      ["--erl", "+S #{o.schedulers} +sbwt none +sbwtdcpu none +sbwtdio none"] ++
        ["-pa", base.ebin, __ENV__.file, "--child", tool] ++
        ["--corpus", base.corpus, "--modules", "#{o.modules}", "--cache", base.cache] ++
        ["--iterations", "#{o.iterations}", "--schedulers", "#{o.schedulers}"] ++
        ["--work", Path.join(base.work, "child_" <> tool)]

    port =
      Port.open({:spawn_executable, base.elixir}, [
        :binary,
        :exit_status,
        {:line, 1_048_576},
        args: args
      ])

    child = %{tool: tool, port: port}
    log("started #{tool}")
    {:ok, :ready} = await(child, "ready")
    child
  end

  defp ask(child, command) do
    Port.command(child.port, command <> "\n")

    case await(child, command) do
      {:ok, result} -> result
      {:error, message} -> raise "#{child.tool}: #{message}"
    end
  end

  defp finish(child) do
    result = ask(child, "finish")
    Port.close(child.port)
    result
  catch
    _, _ -> nil
  end

  defp await(%{port: port, tool: tool} = child, tag, partial \\ "") do
    receive do
      {^port, {:data, {:noeol, chunk}}} ->
        await(child, tag, partial <> chunk)

      {^port, {:data, {:eol, chunk}}} ->
        line = partial <> chunk

        case String.split(line, " ", parts: 3) do
          [@tag, ^tag, payload] ->
            {:ok, payload |> Base.decode64!() |> :erlang.binary_to_term()}

          _ ->
            IO.puts(:stderr, "  [#{tool}] " <> line)
            await(child, tag)
        end

      {^port, {:exit_status, status}} ->
        {:error, "the #{tool} BEAM exited with status #{status} (its stderr is above)"}
    end
  end

  @doc false
  def reply(tag, term),
    do: IO.puts("#{@tag} #{tag} " <> Base.encode64(:erlang.term_to_binary(term)))

  ## Output

  defp print(results, opts, how, corpus_ms, secs, load_before) do
    r = results
    s = opts.schedulers
    sites = r["live_cov"].instrument.corpus.sites
    mods = r["live_cov"].instrument.corpus.ok
    app_mods = r["live_cov"].instrument.apps.ok

    IO.puts("""
    ## Scale: LiveCov vs `:cover`, every step, one run

    #{system_line(opts)}
    Corpus: #{opts.modules} generated Elixir modules (#{how}#{if how == :built, do: " in #{fmt(corpus_ms / 1000, 1)} s", else: ""}), \
    #{fmt_int(sites)} bump sites (#{fmt(sites / max(mods, 1), 1)} per module). Elixir apps: mix, ex_unit, eex, iex \
    (#{app_mods} modules instrumented by LiveCov). Each tool in its own BEAM with `+S #{s}`; \
    the tools take turns phase by phase (instrumentation: part by part, each app then 100 corpus beams at a time). **CPU** = CPU time of the tool's BEAM (all threads), \
    **wall** = wall clock; on this shared machine CPU is the figure to trust (see the notes).

    """)

    IO.puts(table(r, opts))
    IO.puts(targets(r))
    IO.puts(details(r, opts))

    IO.puts(
      "Total run time: #{fmt(secs, 1)} s. Load average (1 min) before / after: " <>
        "#{load_before} / #{load_average()}."
    )
  end

  # One row: label, then per tool {value, unit}, then a LiveCov/cover ratio column.
  defp table(r, opts) do
    s = opts.schedulers

    header = """
    | # | measure | no instrumentation | `:cover` default | `:cover` local_only | LiveCov | LiveCov ÷ default | LiveCov ÷ local_only |
    |---|---|--:|--:|--:|--:|--:|--:|
    """

    rows = [
      hot_row(r, :one, :cpu, "1", "hot bump, CPU ns/bump, 1 process"),
      hot_row(r, :all, :cpu, "1", "hot bump, CPU ns/bump, #{s} processes"),
      hot_row(r, :one, :wall, "1", "hot bump, wall ns/bump, 1 process"),
      work_row(r, :cpu, "2", "workload, CPU time (× plain)"),
      work_profile_row(
        r,
        :cpu,
        "2",
        "workload, LiveCov `optimize: :coverage` (default) vs `:full`, CPU (× plain)"
      ),
      work_row(r, :wall, "2", "workload, wall time (× plain)"),
      inst_row(r, :apps, :cpu, "3a", "instrument mix+ex_unit+eex+iex, CPU s"),
      inst_row(r, :apps, :wall, "3a", "instrument mix+ex_unit+eex+iex, wall s"),
      inst_row(r, :corpus, :cpu, "3b", "instrument corpus, CPU s"),
      inst_row(r, :corpus, :wall, "3b", "instrument corpus, wall s"),
      compiler_row(r),
      analyse_row(r, :line, "4", "line analysis of all modules, CPU ms"),
      analyse_row(r, :snapshot, "4", "whole-table read, CPU ms"),
      analyse_row(r, :report, "4", "report build, CPU ms"),
      export_row(r, :export, "5", "export, CPU ms"),
      export_size_row(r),
      export_row(r, :import, "5", "import, CPU ms"),
      export_row(r, :merge, "5", "merge, CPU ms"),
      memory_row(r, :meta, "6", "memory per bump site: counters + metadata, bytes"),
      memory_after_row(r),
      memory_row(r, :counters, "6", "… of which counters, bytes"),
      memory_row(r, :binaries, "6", "beam binaries kept, bytes per site"),
      memory_row(r, :code, "6", "loaded code growth, bytes per site")
    ]

    header <> Enum.join(rows, "\n") <> "\n"
  end

  defp cells(label, num, plain, values, ratios) do
    "| #{num} | #{label} | #{plain} | #{Enum.join(values, " | ")} | #{Enum.join(ratios, " | ")} |"
  end

  defp ratio_cells(lc, d, l) do
    [ratio(lc, d), ratio(lc, l)]
  end

  defp ratio(a, b) when is_number(a) and is_number(b) and b > 0, do: "#{fmt(a / b, 3)}×"
  defp ratio(_, _), do: "n/a"

  # Hot bump: ns per bump net of the twin.
  defp hot_ns(r, tool, mode, clock) do
    samples = r[tool].hot
    plain = samples |> Enum.map(&elem(&1[mode].plain, clock_i(clock))) |> median()
    instr = samples |> Enum.map(&elem(&1[mode].instr, clock_i(clock))) |> median()
    bumps = hd(samples)[mode].bumps
    {(instr - plain) / bumps, plain / bumps}
  end

  defp clock_i(:wall), do: 0
  defp clock_i(:cpu), do: 1

  defp hot_row(r, mode, clock, num, label) do
    vals = for t <- @timed, into: %{}, do: {t, hot_ns(r, t, mode, clock)}
    plain = vals |> Map.values() |> Enum.map(&elem(&1, 1)) |> median()
    lc = elem(vals["live_cov"], 0)

    cells(
      label,
      num,
      "#{fmt(plain, 2)} (per line)",
      for(t <- @timed, do: fmt(elem(vals[t], 0), 2)),
      ratio_cells(lc, elem(vals["cover_default"], 0), elem(vals["cover_local_only"], 0))
    )
  end

  # Workload: instrumented time as a multiple of the twin; overhead = instr − plain.
  defp work(r, tool, clock) do
    samples = r[tool].work
    plain = samples |> Enum.map(&elem(&1.plain, clock_i(clock))) |> median()
    instr = samples |> Enum.map(&elem(&1.instr, clock_i(clock))) |> median()
    %{plain: plain, instr: instr, x: instr / plain, over: instr - plain}
  end

  # The workload under LiveCov's two compile profiles, from the same LiveCov child.
  defp work_profile_row(r, clock, num, label) do
    samples = r["live_cov"].work
    med = fn key -> samples |> Enum.map(&elem(&1[key], clock_i(clock))) |> median() end
    {plain, instr, full} = {med.(:plain), med.(:instr), med.(:full)}

    cells(
      label,
      num,
      "#{fmt(plain / 1.0e6, 1)} ms (1.00×)",
      ["—", "—", "#{fmt(instr / plain, 2)}× vs #{fmt(full / plain, 2)}×"],
      ["overhead ratio #{ratio(instr - plain, full - plain)}", ""]
    )
  end

  defp work_row(r, clock, num, label) do
    w = for t <- @timed, into: %{}, do: {t, work(r, t, clock)}
    plain = w |> Map.values() |> Enum.map(& &1.plain) |> median()

    cells(
      label,
      num,
      "#{fmt(plain / 1.0e6, 1)} ms (1.00×)",
      for(t <- @timed, do: "#{fmt(w[t].x, 2)}×"),
      [
        "overhead #{ratio(w["live_cov"].over, w["cover_default"].over)}",
        "overhead #{ratio(w["live_cov"].over, w["cover_local_only"].over)}"
      ]
    )
  end

  defp inst_row(r, what, clock, num, label) do
    t = fn tool -> get_in(r, [tool, :instrument, what, :time, clock]) end
    floor = r["plain"].instrument[what]
    warm = t.("live_cov_warm")
    lc = t.("live_cov")

    cells(
      label,
      num,
      "floor #{secs(floor.time[clock])}",
      [
        secs(t.("cover_default")),
        secs(t.("cover_local_only")),
        "#{secs(lc)} (#{ratio(lc, floor.time[clock])} floor); warm cache #{secs(warm)}"
      ],
      [
        "#{ratio(lc, t.("cover_default"))} (warm #{ratio(warm, t.("cover_default"))})",
        "#{ratio(lc, t.("cover_local_only"))} (warm #{ratio(warm, t.("cover_local_only"))})"
      ]
    )
  end

  # What compile:forms alone costs more for instrumented forms (same modules, plain child).
  defp compiler_ratio(r, what) do
    f = r["plain"].instrument[what]
    f.sample_instrumented.cpu / f.sample_plain.cpu
  end

  defp compiler_row(r) do
    cells(
      "compile:forms alone, instrumented forms (LiveCov's profile) ÷ plain forms (CPU; apps / corpus sample)",
      "3",
      "1.00× / 1.00×",
      [
        "—",
        "—",
        "#{fmt(compiler_ratio(r, :apps), 2)}× / #{fmt(compiler_ratio(r, :corpus), 2)}×"
      ],
      ["", ""]
    )
  end

  defp memory_after_row(r) do
    v =
      for t <- @timed, into: %{} do
        m = r[t].analyse.memory
        sites = r[t].instrument.memory.sites
        base = Map.get(r[t].instrument.memory, :base, 0)
        {t, (m.meta - base) / max(sites, 1)}
      end

    cells(
      "… the same after the analyses (cover fills its collection tables)",
      "6",
      "—",
      for(t <- @timed, do: fmt(v[t], 1)),
      ratio_cells(v["live_cov"], v["cover_default"], v["cover_local_only"])
    )
  end

  defp analyse_row(r, what, num, label) do
    v = for t <- @timed, into: %{}, do: {t, median(Enum.map(r[t].analyse[what], &elem(&1, 1)))}
    lc = v["live_cov"]

    cells(
      label,
      num,
      "—",
      for(t <- @timed, do: fmt(v[t] / 1.0e6, 1)),
      ratio_cells(lc, v["cover_default"], v["cover_local_only"])
    )
  end

  defp export_row(r, what, num, label) do
    v = for t <- @timed, into: %{}, do: {t, elem(r[t].export[what], 1)}

    cells(
      label,
      num,
      "—",
      for(t <- @timed, do: fmt(v[t] / 1.0e6, 1)),
      ratio_cells(v["live_cov"], v["cover_default"], v["cover_local_only"])
    )
  end

  defp export_size_row(r) do
    v = for t <- @timed, into: %{}, do: {t, r[t].export.size}

    cells(
      "export file size",
      "5",
      "—",
      for(t <- @timed, do: mib(v[t])),
      ratio_cells(v["live_cov"], v["cover_default"], v["cover_local_only"])
    )
  end

  defp memory_row(r, what, num, label) do
    v =
      for t <- ["plain" | @timed], into: %{} do
        m = r[t].instrument.memory
        {t, if(m.sites > 0, do: Map.get(m, what, 0) / m.sites, else: nil)}
      end

    cells(
      label,
      num,
      "—",
      for(t <- @timed, do: if(v[t], do: fmt(v[t], 1), else: "n/a")),
      ratio_cells(v["live_cov"], v["cover_default"], v["cover_local_only"])
    )
  end

  ## Targets

  defp targets(r) do
    hot = for t <- @timed, into: %{}, do: {t, elem(hot_ns(r, t, :one, :cpu), 0)}
    hot_all = for t <- @timed, into: %{}, do: {t, elem(hot_ns(r, t, :all, :cpu), 0)}
    work = for t <- @timed, into: %{}, do: {t, work(r, t, :cpu)}
    inst = fn tool, what, clock -> get_in(r, [tool, :instrument, what, :time, clock]) end
    an = fn t -> median(Enum.map(r[t].analyse.line, &elem(&1, 1))) end

    mem = fn t ->
      m = r[t].instrument.memory
      m.meta / max(m.sites, 1)
    end

    mem_after = fn t ->
      m = r[t].instrument.memory
      (r[t].analyse.memory.meta - m.base) / max(m.sites, 1)
    end

    # Where `:cover` counts with the VM's line counters (OTP 27+ with the JIT), so does
    # LiveCov's default backend: the targets there are parity.
    native = LiveCov.Runtime.native_coverage?()
    {hot_max, local_max, work_max} = if native, do: {1.0, 1.0, 1.0}, else: {0.5, 1.0, 0.5}

    lines = [
      verdict(
        "hot bump ≤ #{hot_max}× `:cover` default (CPU, 1 process)",
        hot["live_cov"] / hot["cover_default"],
        hot_max,
        "per-scheduler processes: #{fmt(hot_all["live_cov"] / hot_all["cover_default"], 3)}×"
      ),
      verdict(
        "hot bump ≤ #{local_max}× `:cover` local_only (CPU, 1 process)",
        hot["live_cov"] / hot["cover_local_only"],
        local_max,
        "per-scheduler processes: #{fmt(hot_all["live_cov"] / hot_all["cover_local_only"], 3)}×"
      ),
      verdict(
        "workload overhead ≤ #{work_max}× `:cover` default's (CPU)",
        work["live_cov"].over / work["cover_default"].over,
        work_max,
        "LiveCov #{fmt(work["live_cov"].x, 2)}× plain, `:cover` default #{fmt(work["cover_default"].x, 2)}×, local_only #{fmt(work["cover_local_only"].x, 2)}×"
      )
    ]

    inst_lines =
      for {what, label} <- [apps: "Elixir apps", corpus: "corpus"], clock <- [:cpu, :wall] do
        lc = inst.("live_cov", what, clock)
        d = inst.("cover_default", what, clock)
        floor = r["plain"].instrument[what].time[clock]
        ifloor = floor * compiler_ratio(r, what)
        warm = inst.("live_cov_warm", what, clock)

        [
          verdict(
            "instrumentation (#{label}, #{clock}) ≤ 0.55× `:cover` default",
            lc / d,
            0.55,
            ""
          ),
          verdict(
            "instrumentation (#{label}, #{clock}) ≤ 1.15× the floor (read + compile:forms of the plain forms)",
            lc / floor,
            1.15,
            "÷ read + compile:forms of the *instrumented* forms: #{fmt(lc / ifloor, 3)}×"
          ),
          verdict("warm cache (#{label}, #{clock}) ≤ 0.1× `:cover` default", warm / d, 0.1, "")
        ]
      end

    tail = [
      verdict(
        "line analysis of all modules ≤ 0.2× `:cover` default (CPU)",
        an.("live_cov") / an.("cover_default"),
        0.2,
        "local_only: #{fmt(an.("live_cov") / an.("cover_local_only"), 3)}×"
      ),
      verdict(
        "memory per bump site ≤ 0.5× `:cover` default, right after instrumenting",
        mem.("live_cov") / mem.("cover_default"),
        0.5,
        "local_only: #{fmt(mem.("live_cov") / mem.("cover_local_only"), 3)}×"
      ),
      verdict(
        "memory per bump site ≤ 0.5× `:cover` default, after the analyses",
        mem_after.("live_cov") / mem_after.("cover_default"),
        0.5,
        "local_only: #{fmt(mem_after.("live_cov") / mem_after.("cover_local_only"), 3)}×"
      )
    ]

    "Targets (LiveCov ÷ `:cover`, same run):\n\n" <>
      Enum.join(lines ++ List.flatten(inst_lines) ++ tail, "\n") <> "\n"
  end

  defp verdict(label, value, limit, extra) do
    v = if value <= limit, do: "MET", else: "MISSED"
    extra = if extra == "", do: "", else: " (#{extra})"
    "* #{label}: #{fmt(value, 3)}× **#{v}**#{extra}"
  end

  defp details(r, opts) do
    checks =
      for t <- @timed ++ ["live_cov_warm"], check <- checks(r, t) do
        "* #{@names[t]}: #{check}"
      end

    hashes = for t <- @timed, into: %{}, do: {t, r[t].analyse.line_hash}

    same = hashes |> Map.values() |> Enum.uniq() |> length() == 1

    lc = r["live_cov"].instrument
    warm = r["live_cov_warm"].instrument
    floor = r["plain"].instrument

    """
    Checks:

    * line analysis of every corpus module: #{if same, do: "identical for all three tools (#{map_size(hashes)} results, same hash)", else: "**DIFFERENT** #{inspect(hashes)}"}
    #{Enum.join(checks, "\n")}

    <details><summary>Details</summary>

    Instrumented modules (ok / refused): #{for t <- @timed ++ ["live_cov_warm"], do: "#{@names[t]} apps #{r[t].instrument.apps.ok}/#{r[t].instrument.apps.failed}, corpus #{r[t].instrument.corpus.ok}/#{r[t].instrument.corpus.failed}; "}

    Floor (plain BEAM, #{opts.schedulers} tasks; CPU): apps #{secs(floor.apps.time.cpu)}, of which reading the abstract code #{secs(floor.apps.fetch.cpu)}; corpus #{secs(floor.corpus.time.cpu)}, of which #{secs(floor.corpus.fetch.cpu)}. Read + compile:forms of a sample, plain forms vs the same forms instrumented by LiveCov's Munge and compiled with LiveCov's compile profile #{inspect(LiveCov.Instrument.compile_options())} (vs the plain forms under that profile): apps (#{floor.apps.sample} modules) #{secs(floor.apps.sample_plain.cpu)} vs #{secs(floor.apps.sample_instrumented.cpu)} (#{secs(floor.apps.sample_plain_profile.cpu)}); corpus (#{floor.corpus.sample} modules) #{secs(floor.corpus.sample_plain.cpu)} vs #{secs(floor.corpus.sample_instrumented.cpu)} (#{secs(floor.corpus.sample_plain_profile.cpu)}).

    LiveCov instrumentation cache: cold run #{inspect(lc.cache)}; warm run #{inspect(warm.cache)}; entries #{lc.cache_info.entries}, #{mib(lc.cache_info.bytes)} on disk.

    Memory (bytes, after instrumenting apps + corpus + fixtures): #{for t <- @timed, do: "#{@names[t]} #{inspect(r[t].instrument.memory)}; "}

    Raw medians (CPU ms): #{for t <- @timed, do: "#{@names[t]}: line #{ms_list(r[t].analyse.line)}, read #{ms_list(r[t].analyse.snapshot)}, report #{ms_list(r[t].analyse.report)}; "}

    Export/import/merge (wall ms / CPU ms): #{for t <- @timed, do: "#{@names[t]}: #{inspect(Map.new(Map.take(r[t].export, [:export, :import, :merge]), fn {k, {w, c}} -> {k, {round(w / 1.0e6), round(c / 1.0e6)}} end))}; "}

    </details>
    """
  end

  defp checks(r, t) do
    case r[t] do
      %{final: %{checks: checks}} -> checks
      %{instrument: %{checks: checks}} -> checks
      _ -> []
    end
  end

  defp failures(r) do
    for {t, res} <- r, check <- checks(%{t => res}, t), String.contains?(check, "WRONG"), do: t
  end

  defp ms_list(list),
    do: list |> Enum.map(&round(elem(&1, 1) / 1.0e6)) |> inspect(charlists: :as_lists)

  ## Helpers

  defp system_line(opts) do
    "Machine: #{LiveCov.Bench.Helpers.cpu_model()}, #{default_schedulers()} logical CPUs available. " <>
      "OTP #{:erlang.system_info(:otp_release)} (erts #{:erlang.system_info(:version)}), " <>
      "Elixir #{System.version()}. #{opts.reps} reps of the hot path and the workload (median)."
  end

  defp live_cov_ebin do
    case :code.which(LiveCov.Native) do
      path when is_list(path) ->
        path |> List.to_string() |> Path.dirname()

      _ ->
        IO.puts(:stderr, "scale.exs: run it through mix: mix live_cov.bench scale")
        System.halt(2)
    end
  end

  defp load_average do
    case File.read("/proc/loadavg") do
      {:ok, text} -> text |> String.split() |> hd()
      _ -> "n/a"
    end
  end

  defp log(text), do: IO.puts(:stderr, "scale: " <> text)

  defp ms(fun) do
    t0 = System.monotonic_time(:millisecond)
    r = fun.()
    {System.monotonic_time(:millisecond) - t0, r}
  end

  def median([]), do: 0.0

  def median(list) do
    sorted = Enum.sort(list)
    n = length(sorted)
    mid = div(n, 2)

    if rem(n, 2) == 1,
      do: Enum.at(sorted, mid),
      else: (Enum.at(sorted, mid - 1) + Enum.at(sorted, mid)) / 2
  end

  defp secs(nil), do: "n/a"
  defp secs(ns), do: "#{fmt(ns / 1.0e9, 2)} s"
  defp mib(nil), do: "n/a"
  defp mib(bytes), do: "#{fmt(bytes / 1_048_576, 2)} MiB"
  def fmt(x, d), do: :erlang.float_to_binary(x / 1, decimals: d)

  defp fmt_int(n), do: LiveCov.Bench.Helpers.fmt_int(n)

  def support, do: @support
end

defmodule LiveCov.Bench.Scale.Child do
  @moduledoc false
  # Runs inside the child BEAM of one tool; answers one command per stdin line.

  alias LiveCov.Bench.Scale
  alias LiveCov.Instrument.{Forms, Munge}

  @apps [:mix, :ex_unit, :eex, :iex]
  @hot_plain :scale_hot_plain
  @hot_instr :scale_hot_instr
  @work_plain :scale_work_plain
  @work_instr :scale_work_instr
  # LiveCov only: the workload instrumented with `optimize: :full`, to show what the default
  # compile profile costs at run time.
  @work_full :scale_work_full
  @work_statements 400
  @work_rounds 20
  @analyse_reps 3
  # An analysis slower than this (wall) is not repeated: cover's take minutes at scale.
  @repeat_below_ns 3_000_000_000
  @compile_sample 300

  def main(tool, opts) do
    File.rm_rf!(opts.work)
    File.mkdir_p!(opts.work)
    Code.require_file(Path.join(Scale.support(), "scale_corpus.ex"))
    true = :code.add_patha(String.to_charlist(opts.corpus))
    state = setup(tool, opts)
    Scale.reply("ready", :ready)
    serve(state)
  end

  defp serve(state) do
    case IO.gets("") do
      :eof ->
        System.halt(3)

      line ->
        command = String.trim(line)
        {reply, state} = handle(command, state)
        Scale.reply(command, reply)
        if command == "finish", do: System.halt(0), else: serve(state)
    end
  end

  ## Setup

  defp setup(tool, opts) do
    cpu_source()
    {:ok, _} = Application.ensure_all_started(:live_cov)
    Application.put_env(:live_cov, :cache_dir, opts.cache)
    # Keep the tools' compiler output out of the bench's stdout.
    {:ok, quiet} = StringIO.open("")

    state = %{tool: tool, opts: opts, quiet: quiet, checks: [], calls: 0, rep: 0}

    case tool do
      "plain" ->
        state

      "live_cov_warm" ->
        state

      _ ->
        twins(opts.work)
        instrument_fixtures(tool, quiet)
        program = apply(@work_plain, :program, [@work_statements])
        state = Map.put(state, :program, program)
        # Warm-up: both copies run once before anything is timed.
        _ = run_hot(:one, @hot_plain, 10_000, opts.schedulers)
        _ = run_hot(:one, @hot_instr, 10_000, opts.schedulers)
        _ = apply(@work_plain, :run, [program, 2])
        _ = apply(@work_instr, :run, [program, 2])
        if tool == "live_cov", do: _ = apply(@work_full, :run, [program, 2])
        %{state | calls: 10_000}
    end
  end

  defp twins(dir) do
    for {file, names} <- [
          {"hot_path_bench.erl", [@hot_plain, @hot_instr]},
          {"scale_workload.erl", [@work_plain, @work_instr, @work_full]}
        ],
        name <- names do
      {:ok, forms} = :epp.parse_file(String.to_charlist(Path.join(Scale.support(), file)), [])

      renamed =
        Enum.map(forms, fn
          {:attribute, a, :module, _} -> {:attribute, a, :module, name}
          form -> form
        end)

      {:ok, ^name, binary} = :compile.forms(renamed, [:debug_info, :binary, :return_errors])
      File.write!(Path.join(dir, "#{name}.beam"), binary)
    end

    true = :code.add_patha(String.to_charlist(dir))

    for m <- [@hot_plain, @hot_instr, @work_plain, @work_instr, @work_full],
        do: {:module, ^m} = :code.load_file(m)
  end

  defp instrument_fixtures("live_cov", _quiet) do
    [{:ok, @hot_instr}, {:ok, @work_instr}] =
      LiveCov.Pipeline.instrument([@hot_instr, @work_instr])

    [{:ok, @work_full}] = LiveCov.Pipeline.instrument([@work_full], optimize: :full)
  end

  defp instrument_fixtures(cover, quiet) do
    {:ok, _} = :cover.start()
    Process.group_leader(Process.whereis(:cover_server), quiet)
    if cover == "cover_local_only", do: :ok = :cover.local_only()
    for m <- [@hot_instr, @work_instr], do: {:ok, ^m} = :cover.compile_beam(m)
  end

  ## Commands

  defp handle("hot", state) do
    s = state.opts.schedulers
    n = state.opts.iterations
    state = %{state | rep: state.rep + 1}

    reply =
      for mode <- [:one, :all], into: %{} do
        {plain, instr} =
          if rem(state.rep, 2) == 0 do
            p = run_hot(mode, @hot_plain, n, s)
            {p, run_hot(mode, @hot_instr, n, s)}
          else
            i = run_hot(mode, @hot_instr, n, s)
            {run_hot(mode, @hot_plain, n, s), i}
          end

        procs = if mode == :one, do: 1, else: s
        {mode, %{plain: plain, instr: instr, bumps: procs * (n * 11 + 1)}}
      end

    calls = state.calls + n * (1 + s)
    {reply, %{state | calls: calls}}
  end

  defp handle("workload", state) do
    run = fn mod -> timed(fn -> apply(mod, :run, [state.program, @work_rounds]) end) end

    {{tp, rp}, {ti, ri}} =
      if rem(state.rep, 2) == 0 do
        p = run.(@work_plain)
        {p, run.(@work_instr)}
      else
        i = run.(@work_instr)
        {run.(@work_plain), i}
      end

    state = if rp == ri, do: state, else: check(state, "workload: **WRONG** result differs")

    # LiveCov's child also times the `optimize: :full` copy, right after the pair.
    if state.tool == "live_cov" do
      {tf, rf} = run.(@work_full)
      state = if rp == rf, do: state, else: check(state, "workload (full): **WRONG** result")
      {%{plain: tp, instr: ti, full: tf}, state}
    else
      {%{plain: tp, instr: ti}, state}
    end
  end

  # Instrumentation goes in parts (each of the four apps, then the corpus in chunks of
  # @part_size beams) so that the orchestrator can have the tools take turns part by part: a
  # burst of load elsewhere on a shared machine then hits every tool alike.
  defp handle("instrument", state) do
    parts = for p <- instrument_parts(state.opts.modules), do: "instrument_part:" <> p
    state = Enum.reduce(parts, state, fn p, st -> elem(handle(p, st), 1) end)
    handle("instrument_done", state)
  end

  defp handle("instrument_part:" <> spec, state) do
    state =
      Map.put_new_lazy(state, :inst, fn ->
        %{apps: nil, corpus: nil, mem0: memory(state.tool), code0: :erlang.memory(:code)}
      end)

    {kind, targets} = part_targets(spec, state.opts)
    {r, state} = instrument(state, targets)
    {%{ok: r.ok}, put_in(state, [:inst, kind], add_part(state.inst[kind], r))}
  end

  defp handle("instrument_done", state) do
    %{apps: apps_r, corpus: corpus_r, mem0: mem0, code0: code0} = state.inst
    mem = memory(state.tool)
    code = :erlang.memory(:code) - code0

    {apps_r, corpus_r} =
      if state.tool == "plain",
        do: {floor_details(apps_r, app_dirs()), floor_details(corpus_r, [state.opts.corpus])},
        else: {apps_r, corpus_r}

    memory =
      mem
      |> Map.merge(%{
        meta: mem.meta - Map.get(mem0, :meta, 0),
        counters: mem.counters - Map.get(mem0, :counters, 0),
        binaries: mem.binaries - Map.get(mem0, :binaries, 0),
        code: code,
        sites: mem.sites - Map.get(mem0, :sites, 0),
        base: Map.get(mem0, :meta, 0)
      })

    reply = %{apps: apps_r, corpus: corpus_r, memory: memory}

    reply =
      if state.tool in ["live_cov", "live_cov_warm"] do
        cache = LiveCov.Cache.stats()
        info = LiveCov.Cache.info()

        checks =
          if state.tool == "live_cov_warm" do
            n = apps_r.ok + corpus_r.ok

            if cache.hits >= n and cache.misses == 0,
              do: ["warm cache: every one of #{n} modules loaded from the cache (no compile)"],
              else: ["warm cache: **WRONG** #{inspect(cache)} for #{n} modules"]
          else
            []
          end

        Map.merge(reply, %{cache: cache, cache_info: info, checks: checks})
      else
        reply
      end

    {reply, state}
  end

  defp handle("exercise", state) do
    if state.tool != "plain" do
      for i <- 1..state.opts.modules do
        m = LiveCov.Bench.ScaleCorpus.module_name(i)
        m.run(i)
        m.run(i * 7 + 1)
      end
    end

    {:ok, state}
  end

  defp handle("analyse", %{tool: "plain"} = state), do: {%{}, state}

  defp handle("analyse", state) do
    keep = MapSet.new(1..state.opts.modules, &LiveCov.Bench.ScaleCorpus.module_name/1)

    rep = fn ->
      :erlang.garbage_collect()
      {t_line, {:result, lines, _}} = timed(fn -> analyse(state.tool, :line) end)
      :erlang.garbage_collect()
      {t_snap, _} = timed(fn -> analyse(state.tool, :snapshot) end)
      :erlang.garbage_collect()
      {t_report, _} = timed(fn -> analyse(state.tool, :report) end)
      {t_line, t_snap, t_report, lines}
    end

    first = rep.()
    {{wall, _}, _, _, _} = first
    more = if wall < @repeat_below_ns, do: @analyse_reps - 1, else: 0
    results = [first | for(_ <- 1..more//1, do: rep.())]

    {_, _, _, lines} = hd(results)

    # The corpus modules ran the same calls under every tool (app modules may have run
    # differently: the tools themselves use some of them).
    hash =
      lines
      |> Enum.filter(fn {{m, _}, _} -> MapSet.member?(keep, m) end)
      |> Enum.sort()
      |> :erlang.phash2()

    # Checked before the export phase: imports add to the counts.
    state = check(state, hot_check(state.tool, state.calls))

    reply = %{
      memory: memory(state.tool),
      line: Enum.map(results, &elem(&1, 0)),
      snapshot: Enum.map(results, &elem(&1, 1)),
      report: Enum.map(results, &elem(&1, 2)),
      line_hash: hash
    }

    {reply, state}
  end

  defp handle("export", %{tool: "plain"} = state), do: {%{}, state}

  defp handle("export", state) do
    dir = state.opts.work
    {:ok, reply} = export(state.tool, dir)
    {reply, state}
  end

  defp handle("finish", state) do
    {%{checks: Enum.reverse(state.checks)}, state}
  end

  defp check(state, text), do: %{state | checks: [text | state.checks]}

  ## Instrumentation

  @part_size 100

  @doc false
  def instrument_parts(modules) do
    n = max(div(modules + @part_size - 1, @part_size), 1)
    for(app <- @apps, do: "apps:#{app}") ++ for(i <- 1..n, do: "corpus:#{i}:#{n}")
  end

  defp app_dirs, do: for(app <- @apps, do: Path.join(:code.lib_dir(app), "ebin"))

  defp part_targets("apps:" <> app, _opts),
    do: {:apps, [Path.join(:code.lib_dir(String.to_existing_atom(app)), "ebin")]}

  defp part_targets("corpus:" <> spec, opts) do
    [i, n] = spec |> String.split(":") |> Enum.map(&String.to_integer/1)
    beams = opts.corpus |> Path.join("*.beam") |> Path.wildcard() |> Enum.sort()
    size = div(length(beams) + n - 1, n)
    {:corpus, Enum.slice(beams, (i - 1) * size, size)}
  end

  # The parts of one kind add up: times, counts, sites.
  defp add_part(nil, r), do: r

  defp add_part(acc, r) do
    %{
      acc
      | time: %{wall: acc.time.wall + r.time.wall, cpu: acc.time.cpu + r.time.cpu},
        ok: acc.ok + r.ok,
        failed: acc.failed + r.failed,
        sites: acc.sites + r.sites
    }
  end

  defp beams_of(targets) do
    Enum.flat_map(targets, fn t ->
      if File.dir?(t), do: Path.wildcard(Path.join(t, "*.beam")), else: [t]
    end)
  end

  # The floor: read the abstract code and compile:forms it as is, in parallel.
  defp instrument(%{tool: "plain"} = state, targets) do
    beams = beams_of(targets)

    {time, ok} =
      timed(fn ->
        par(beams, fn beam -> with {:ok, f} <- fetch(beam), do: compile_plain(f, f.forms) end)
        |> Enum.count(&match?({:ok, {:ok, _}}, &1))
      end)

    {%{time: tm(time), ok: ok, failed: length(beams) - ok, sites: 0}, state}
  end

  defp instrument(%{tool: "live_cov" <> _} = state, targets) do
    {time, summary} = timed(fn -> LiveCov.start(targets) end)
    mods = summary.instrumented

    sites =
      mods |> Enum.map(&LiveCov.ModuleInfo.size(LiveCov.Instrumented.lookup(&1))) |> Enum.sum()

    r = %{time: tm(time), ok: length(mods), failed: length(summary.skipped), sites: sites}
    {r, Map.update(state, :modules, mods, &(&1 ++ mods))}
  end

  defp instrument(%{tool: "cover" <> _} = state, targets) do
    beams = targets |> beams_of() |> Enum.map(&String.to_charlist/1)
    {time, results} = timed(fn -> :cover.compile_beam(beams) end)

    mods = for {:ok, m} <- results, do: m
    r = %{time: tm(time), ok: length(mods), failed: length(results) - length(mods), sites: 0}
    {r, Map.update(state, :modules, mods, &(&1 ++ mods))}
  end

  defp par(items, fun) do
    Task.async_stream(items, fun,
      max_concurrency: System.schedulers_online(),
      timeout: :infinity,
      ordered: true
    )
  end

  # The plain child's details, once all parts are done: the floor's first part alone, and
  # on a sample, compile:forms of the plain forms vs of the same forms instrumented by
  # LiveCov's Munge (what the compiler alone costs more for instrumented code).
  defp floor_details(r, dirs) do
    beams = beams_of(dirs)
    {fetch, _} = timed(fn -> par(beams, &fetch/1) |> Stream.run() end)
    sample = Enum.take(beams, @compile_sample)

    {plain, _} =
      timed(fn ->
        par(sample, fn b -> with {:ok, f} <- fetch(b), do: compile_plain(f, f.forms) end)
        |> Stream.run()
      end)

    # Instrumented forms, compiled as LiveCov compiles them (its default compile profile).
    profile = LiveCov.Instrument.compile_options()

    {instr, _} =
      timed(fn ->
        par(sample, fn b ->
          with {:ok, f} <- fetch(b),
               {:ok, munged, _sites, _clauses} <- Munge.transform(f.forms, f.module) do
            patched =
              Munge.patch(munged, LiveCov.Instrument.site_fun(0, bump_module: LiveCov.Native))

            compile_plain(f, patched, profile)
          end
        end)
        |> Stream.run()
      end)

    # The plain forms under that profile too: what the profile alone saves.
    {plain_profile, _} =
      timed(fn ->
        par(sample, fn b -> with {:ok, f} <- fetch(b), do: compile_plain(f, f.forms, profile) end)
        |> Stream.run()
      end)

    Map.merge(r, %{
      fetch: tm(fetch),
      sample: length(sample),
      sample_plain: tm(plain),
      sample_instrumented: tm(instr),
      sample_plain_profile: tm(plain_profile)
    })
  end

  defp fetch(beam), do: Forms.fetch(String.to_charlist(beam))

  defp compile_plain(f, forms, extra \\ []) do
    source = if f.source, do: [{:source, f.source}], else: []

    case :compile.forms(forms, source ++ f.compile_options ++ extra ++ [:binary, :return_errors]) do
      {:ok, _, bin} -> {:ok, bin}
      {:ok, _, bin, _} -> {:ok, bin}
      other -> {:error, other}
    end
  end

  ## Analysis

  defp analyse("live_cov", :line), do: LiveCov.Cover.analyse(:coverage, :line)
  defp analyse("live_cov", :snapshot), do: LiveCov.Table.snapshot()
  defp analyse("live_cov", :report), do: LiveCov.report()
  defp analyse(_cover, :line), do: :cover.analyse(:coverage, :line)
  # cover has no raw counter read: every analysis first moves all counters into its tables.
  defp analyse(_cover, :snapshot), do: :cover.analyse(:calls, :module)
  # What `mix test --cover` builds with cover: line analysis, then per-module totals.
  defp analyse(_cover, :report) do
    {:result, ok, _} = :cover.analyse(:coverage, :line)

    ok
    |> Enum.group_by(fn {{m, _}, _} -> m end, fn {_, {c, n}} -> {c, n} end)
    |> Map.new(fn {m, list} ->
      {c, n} = Enum.reduce(list, {0, 0}, fn {c, n}, {ca, na} -> {ca + c, na + n} end)
      {m, if(c + n == 0, do: 100.0, else: c * 100 / (c + n))}
    end)
  end

  ## Export / import / merge

  defp export("live_cov", dir) do
    path = Path.join(dir, "all.lcsnap")
    {t_export, {:ok, _}} = timed(fn -> LiveCov.export(path) end)
    size = File.stat!(path).size
    {t_import, {:ok, _}} = timed(fn -> LiveCov.import(path) end)
    data = File.read!(path)
    {t_merge, {:ok, _, _}} = timed(fn -> LiveCov.Snapshot.merge_encoded([data, data]) end)
    {:ok, %{export: t_export, size: size, import: t_import, merge: t_merge}}
  end

  defp export(_cover, dir) do
    path = Path.join(dir, "all.coverdata")
    {t_export, :ok} = timed(fn -> :cover.export(String.to_charlist(path)) end)
    size = File.stat!(path).size
    copy = Path.join(dir, "copy.coverdata")
    File.cp!(path, copy)
    {t_import, :ok} = timed(fn -> :cover.import(String.to_charlist(path)) end)
    # cover merges by importing on top of what it has.
    {t_merge, :ok} = timed(fn -> :cover.import(String.to_charlist(copy)) end)
    {:ok, %{export: t_export, size: size, import: t_import, merge: t_merge}}
  end

  ## Memory: counters and metadata per bump site (binaries and code apart)

  defp memory("plain"), do: %{meta: 0, counters: 0, binaries: 0, sites: 0}

  defp memory("live_cov" <> _) do
    word = :erlang.system_info(:wordsize)
    infos = LiveCov.Instrumented.modules()
    sites = infos |> Enum.map(&LiveCov.ModuleInfo.size/1) |> Enum.sum()

    ets =
      for t <- :ets.all(),
          name = :ets.info(t, :name),
          is_atom(name),
          String.starts_with?(Atom.to_string(name), "live_cov"),
          reduce: 0 do
        acc -> acc + :ets.info(t, :memory) * word
      end

    counters = LiveCov.Table.info().bytes

    # The packed sites and clauses (LiveCov.ModuleInfo) are binaries: over 64 bytes they
    # live off the ETS heap, where :ets.info(_, :memory) does not see them. Counted here.
    packed =
      for i <- infos, b <- [i.site_data, i.clause_data], byte_size(b) > 64, reduce: 0 do
        acc -> acc + byte_size(b)
      end

    binaries =
      infos
      |> Enum.map(&(byte_size(&1.original || "") + byte_size(&1.instrumented || "")))
      |> Enum.sum()

    %{
      meta: counters + ets + packed,
      counters: counters,
      ets: ets,
      packed: packed,
      binaries: binaries,
      sites: sites
    }
  end

  defp memory("cover" <> _) do
    word = :erlang.system_info(:wordsize)

    tables = [
      :cover_internal_mapping_table,
      :cover_internal_clause_table,
      :cover_binary_code_table,
      :cover_collected_remote_data_table,
      :cover_collected_remote_clause_table
    ]

    ets =
      for t <- tables, :ets.info(t) != :undefined, reduce: 0 do
        acc -> acc + :ets.info(t, :memory) * word
      end

    # {#bump{}, Index} per site; {{counters, M}, Cref} per module.
    bump_key = {:bump, :_, :_, :_, :_, :_}
    sites = :ets.select_count(:cover_internal_mapping_table, [{{bump_key, :_}, [], [true]}])

    crefs = :ets.select(:cover_internal_mapping_table, [{{{:counters, :_}, :"$1"}, [], [:"$1"]}])

    counters = crefs |> Enum.map(&:counters.info(&1).memory) |> Enum.sum()

    # (OTP 29's cover also keeps `false` for modules it holds no binary of.)
    binaries =
      for({_, b} when is_binary(b) <- :ets.tab2list(:cover_binary_code_table), do: byte_size(b))
      |> Enum.sum()

    %{meta: counters + ets, counters: counters, ets: ets, binaries: binaries, sites: sites}
  end

  ## Hot path

  defp run_hot(:one, mod, n, _s) do
    parent = self()

    {_pid, ref} =
      spawn_monitor(fn ->
        send(parent, {:t, timed(fn -> mod.loop(n, 0) end)})
      end)

    receive do
      {:t, {t, :ok}} ->
        receive do
          {:DOWN, ^ref, _, _, _} -> t
        end
    end
  end

  defp run_hot(:all, mod, n, s) do
    procs =
      for _ <- 1..s do
        spawn_monitor(fn ->
          receive do
            :go -> mod.loop(n, 0)
          end
        end)
      end

    {t, _} =
      timed(fn ->
        Enum.each(procs, fn {pid, _} -> send(pid, :go) end)

        for {_, ref} <- procs do
          receive do
            {:DOWN, ^ref, :process, _, :normal} -> :ok
          end
        end
      end)

    t
  end

  # The first line of body/1 runs once per loop iteration.
  defp hot_check(tool, calls) do
    {:ok, lines} =
      if tool == "live_cov",
        do: LiveCov.Cover.analyse(@hot_instr, :calls, :line),
        else: :cover.analyse(@hot_instr, :calls, :line)

    {:ok, forms} =
      :epp.parse_file(String.to_charlist(Path.join(Scale.support(), "hot_path_bench.erl")), [])

    [line] =
      for {:function, _, :body, 1, [{:clause, _, _, _, [first | _]}]} <- forms,
          do: :erl_anno.line(elem(first, 1))

    got = for {{_, ^line}, n} <- lines, do: n

    if got == [calls],
      do: "hot path: counts exact (#{calls} calls of the first line of body/1)",
      else: "hot path: **WRONG** counts #{inspect(got)}, expected #{calls}"
  end

  ## Timing: {wall ns, CPU ns of the whole BEAM}

  defp timed(fun) do
    c0 = cpu_ns()
    t0 = System.monotonic_time(:nanosecond)
    r = fun.()
    t1 = System.monotonic_time(:nanosecond)
    {{t1 - t0, cpu_ns() - c0}, r}
  end

  defp tm({wall, cpu}), do: %{wall: wall, cpu: cpu}

  defp cpu_source do
    case File.ls("/proc/self/task") do
      {:ok, tasks} ->
        # A thread that exited while the BEAM booted (OTP 27+ starts and ends some) has no
        # schedstat left: the threads still there are the ones that will run.
        files =
          for t <- tasks,
              file = String.to_charlist("/proc/self/task/#{t}/schedstat"),
              is_integer(schedstat(file)),
              do: file

        if files != [], do: Process.put(:cpu_files, files)

      _ ->
        :ok
    end
  end

  # Threads do not come and go in a running BEAM (schedulers, dirty schedulers, async pool),
  # so the list read at start covers them all.
  defp cpu_ns do
    case Process.get(:cpu_files) do
      nil ->
        {ms, _} = :erlang.statistics(:runtime)
        ms * 1_000_000

      files ->
        Enum.reduce(files, 0, &(&2 + (schedstat(&1) || 0)))
    end
  end

  defp schedstat(file) do
    with {:ok, text} <- :file.read_file(file),
         [ns | _] <- String.split(text),
         {ns, ""} <- Integer.parse(ns) do
      ns
    else
      _ -> nil
    end
  end
end

LiveCov.Bench.Scale.main(System.argv())
