# Hot-path benchmark: what one executed line costs under :cover (default and local_only)
# and under LiveCov, net of an uninstrumented twin of the same code.
#
#     mix live_cov.bench [--quick]                 # all bench programs, this one included
#     mix run bench/hot_path.exs [--quick]         # this program only
#
# Options: --quick, --schedulers S, --iterations N (loop iterations per process),
# --reps R (timed repetitions, the median is reported).
#
# The program itself only orchestrates. Each tool runs in its own BEAM (`:cover.local_only/0`
# is global to a node), a child OS process started with `elixir --erl "+S S" -pa <live_cov
# ebin> bench/hot_path.exs --child TOOL`. In the child, bench/support/hot_path_bench.erl is
# compiled twice with debug_info under two names, one copy is instrumented, and both copies
# run the same loop: one process, then S processes at once (one per scheduler, wall clock
# until the last one finishes). Every iteration executes 11 lines, so it does 11 bumps.
# After the timed runs the child checks that the tool counted every call exactly.

defmodule LiveCov.Bench.HotPath do
  @moduledoc false

  @fixture Path.expand("support/hot_path_bench.erl", __DIR__)
  @result_tag "#LIVE_COV_BENCH_RESULT# "

  # {child tool, rows it measures}
  @children [
    {"cover_default", [:cover_default]},
    {"cover_local_only", [:cover_local_only]},
    {"live_cov", [:live_cov, :live_cov_rustler, :live_cov_floor]}
  ]

  @labels %{
    plain: "uninstrumented twin (absolute ns per line)",
    cover_default: "`:cover` default",
    cover_local_only: "`:cover` local_only",
    live_cov: "**LiveCov raw bump**",
    live_cov_rustler: "LiveCov via rustler `#[nif]`",
    live_cov_floor: "NIF call floor (LiveCov bump, unregistered slot)"
  }

  def main(argv) do
    case argv do
      ["--child", tool | rest] -> LiveCov.Bench.HotPath.Child.main(tool, opts(rest))
      _ -> orchestrate(opts(argv))
    end
  end

  defp opts(argv) do
    {opts, _rest, invalid} =
      OptionParser.parse(argv,
        strict: [quick: :boolean, schedulers: :integer, iterations: :integer, reps: :integer]
      )

    if invalid != [] do
      IO.puts(:stderr, "hot_path.exs: unknown options #{inspect(invalid)}")
      System.halt(2)
    end

    quick = Keyword.get(opts, :quick, false)

    %{
      quick: quick,
      schedulers: Keyword.get(opts, :schedulers, default_schedulers()),
      iterations: Keyword.get(opts, :iterations, if(quick, do: 150_000, else: 400_000)),
      reps: Keyword.get(opts, :reps, if(quick, do: 5, else: 15))
    }
  end

  defp default_schedulers do
    :erlang.system_info(:logical_processors_available)
    |> case do
      n when is_integer(n) -> n
      _ -> :erlang.system_info(:logical_processors)
    end
    |> min(8)
    |> max(1)
  end

  ## Parent: run one child per tool, print the tables

  defp orchestrate(opts) do
    started = System.monotonic_time(:millisecond)
    ebin = live_cov_ebin()
    elixir = System.find_executable("elixir") || raise "elixir is not on PATH"

    IO.puts("""
    ## Hot path: ns per bump, net of an uninstrumented twin

    #{system_line(opts)}
    Loop: #{fmt_int(opts.iterations)} iterations × 11 lines per process, \
    #{opts.reps} timed reps per measurement (median), after a warm-up.
    """)

    results =
      for {tool, _rows} <- @children, into: %{} do
        t0 = System.monotonic_time(:millisecond)
        result = run_child(elixir, ebin, tool, opts)
        secs = (System.monotonic_time(:millisecond) - t0) / 1000
        status = if match?({:ok, _}, result), do: "ok", else: "FAILED"
        IO.puts(:stderr, "  child #{tool}: #{status} in #{:erlang.float_to_binary(secs, decimals: 1)} s")
        {tool, result}
      end

    rows = rows(results)
    IO.puts(table(rows, opts))
    IO.puts(targets(rows))
    IO.puts(checks(results))
    IO.puts(details(results, opts))

    secs = (System.monotonic_time(:millisecond) - started) / 1000
    IO.puts("Total run time: #{:erlang.float_to_binary(secs, decimals: 1)} s")

    if Enum.any?(results, fn {_, r} -> not match?({:ok, _}, r) end) or
         Enum.any?(results, fn {_, {:ok, r}} -> Enum.any?(r.checks, &check_failed?/1); _ -> false end) do
      System.halt(1)
    end
  end

  defp check_failed?({_variant, {:error, _}}), do: true
  defp check_failed?(_), do: false

  defp live_cov_ebin do
    case :code.which(LiveCov.Native) do
      path when is_list(path) ->
        path |> List.to_string() |> Path.dirname()

      _ ->
        IO.puts(:stderr, """
        hot_path.exs: LiveCov is not on the code path. Run it through mix, e.g.
          MIX_BUILD_PATH=/tmp/build_bench mix live_cov.bench
        or `elixir -pa <build>/lib/live_cov/ebin bench/hot_path.exs`.
        """)

        System.halt(2)
    end
  end

  defp run_child(elixir, ebin, tool, opts) do
    args =
      ["--erl", "+S #{opts.schedulers}", "-pa", ebin, __ENV__.file, "--child", tool] ++
        ["--schedulers", "#{opts.schedulers}", "--iterations", "#{opts.iterations}"] ++
        ["--reps", "#{opts.reps}"]

    {out, status} = System.cmd(elixir, args)

    {tagged, other} =
      out |> String.split("\n", trim: true) |> Enum.split_with(&String.starts_with?(&1, @result_tag))

    Enum.each(other, &IO.puts(:stderr, "  [#{tool}] " <> &1))

    case {status, tagged} do
      {0, [line | _]} ->
        {:ok,
         line
         |> String.replace_prefix(@result_tag, "")
         |> Base.decode64!()
         |> :erlang.binary_to_term()}

      _ ->
        {:error, "child #{tool} exited with status #{status}"}
    end
  end

  defp system_line(opts) do
    cpu =
      case File.read("/proc/cpuinfo") do
        {:ok, text} ->
          case Regex.run(~r/model name\s*:\s*(.+)/, text) do
            [_, model] -> String.trim(model)
            _ -> "unknown CPU"
          end

        _ ->
          "unknown CPU"
      end

    "Machine: #{cpu}, #{default_schedulers()} logical CPUs available. " <>
      "OTP #{:erlang.system_info(:otp_release)} (erts #{:erlang.system_info(:version)}, " <>
      "#{:erlang.system_info(:emu_flavor)}), Elixir #{System.version()}. " <>
      "Each tool in its own BEAM with `+S #{opts.schedulers}`."
  end

  # %{variant => %{one: ns, all: ns}} plus :plain (absolute, median over the children).
  defp rows(results) do
    ok = for {_tool, {:ok, r}} <- results, do: r

    net =
      for r <- ok, {variant, modes} <- r.variants, into: %{} do
        {variant,
         %{
           one: (median(modes.one.instr) - median(modes.one.plain)) / r.bumps.one,
           all: (median(modes.all.instr) - median(modes.all.plain)) / r.bumps.all
         }}
      end

    plain =
      if ok == [] do
        %{}
      else
        %{
          plain: %{
            one: ok |> Enum.map(&(median(twin(&1, :one)) / &1.bumps.one)) |> median(),
            all: ok |> Enum.map(&(median(twin(&1, :all)) / &1.bumps.all)) |> median()
          }
        }
      end

    Map.merge(net, plain)
  end

  # Every plain timing of a child, whatever variant it was paired with.
  defp twin(r, mode), do: Enum.flat_map(r.variants, fn {_, m} -> m[mode].plain end)

  defp table(rows, opts) do
    s = opts.schedulers
    base = rows[:cover_default]
    local = rows[:cover_local_only]

    header = """
    | tool | ns/bump, 1 process | ns/bump, #{s} processes (1 per scheduler) | × `:cover` default (1 / #{s} proc) | × local_only (1 / #{s} proc) |
    |---|--:|--:|--:|--:|
    """

    lines =
      for variant <- [:plain, :cover_default, :cover_local_only, :live_cov, :live_cov_rustler, :live_cov_floor] do
        case rows[variant] do
          nil ->
            "| #{@labels[variant]} | failed | failed | | |"

          %{one: one, all: all} ->
            ratios =
              if variant == :plain,
                do: "— | —",
                else: "#{ratio(rows[variant], base)} | #{ratio(rows[variant], local)}"

            "| #{@labels[variant]} | #{ns(one)} | #{ns(all)} | #{ratios} |"
        end
      end

    header <>
      Enum.join(lines, "\n") <>
      """


      ns/bump = (median t_instrumented − median t_twin) / bumps, where the twin is the same
      code uncompiled by the tool, timed in the same BEAM. #{s}-process column: wall clock until
      all #{s} processes finish, divided by the bumps of all of them (perfect scaling gives the
      1-process figure ÷ #{s}). The twin row is the twin's own time per executed line, for scale.
      """
  end

  defp ratio(_row, nil), do: "n/a"

  defp ratio(%{one: a1, all: a2}, %{one: b1, all: b2}),
    do: "#{fmt(a1 / b1, 2)} / #{fmt(a2 / b2, 2)}"

  defp targets(rows) do
    case {rows[:live_cov], rows[:cover_default], rows[:cover_local_only]} do
      {%{} = lc, %{} = d, %{} = l} ->
        """
        Targets: LiveCov ≤ 0.5× `:cover` default and ≤ 1.0× `:cover` local_only.

        * LiveCov / `:cover` default: #{verdict(lc.one / d.one, 0.5)} (1 process), \
        #{verdict(lc.all / d.all, 0.5)} (per-scheduler processes)
        * LiveCov / `:cover` local_only: #{verdict(lc.one / l.one, 1.0)} (1 process), \
        #{verdict(lc.all / l.all, 1.0)} (per-scheduler processes)
        """

      _ ->
        "Targets: not evaluated (a child failed).\n"
    end
  end

  defp verdict(r, limit), do: "#{fmt(r, 2)}× #{if r <= limit, do: "MET", else: "MISSED"}"

  defp checks(results) do
    lines =
      for {tool, _} <- @children do
        case results[tool] do
          {:ok, r} ->
            Enum.map(r.checks, fn
              {variant, {:ok, msg}} -> "* #{@labels[variant]}: OK — #{msg}"
              {variant, {:error, msg}} -> "* #{@labels[variant]}: **WRONG** — #{msg}"
            end)

          {:error, msg} ->
            ["* #{tool}: not checked (#{msg})"]
        end
      end

    "Count check (analyse after all timed runs, against the calls the bench made):\n\n" <>
      (lines |> List.flatten() |> Enum.join("\n")) <> "\n"
  end

  defp details(results, opts) do
    rows =
      for {tool, _} <- @children,
          {:ok, r} <- [results[tool]],
          {variant, modes} <- Enum.sort(r.variants),
          mode <- [:one, :all] do
        m = modes[mode]
        procs = if mode == :one, do: "1", else: "#{opts.schedulers}"

        "| #{@labels[variant]} | #{procs} | #{fmt_int(r.bumps[mode])} | #{ms(median(m.plain))} | " <>
          "#{ms(median(m.instr))} | #{ms(Enum.min(m.instr))}–#{ms(Enum.max(m.instr))} |"
      end

    """
    <details><summary>Raw timings (ms)</summary>

    | tool | procs | bumps per run | twin median | instrumented median | instrumented min–max |
    |---|--:|--:|--:|--:|--:|
    #{Enum.join(rows, "\n")}

    </details>
    """
  end

  def median([]), do: 0

  def median(list) do
    sorted = Enum.sort(list)
    n = length(sorted)
    mid = div(n, 2)
    if rem(n, 2) == 1, do: Enum.at(sorted, mid), else: (Enum.at(sorted, mid - 1) + Enum.at(sorted, mid)) / 2
  end

  defp ns(x), do: fmt(x, 2)
  defp ms(ns), do: fmt(ns / 1.0e6, 1)
  defp fmt(x, d), do: :erlang.float_to_binary(x / 1, decimals: d)

  defp fmt_int(n),
    do: n |> Integer.to_string() |> String.replace(~r/\B(?=(\d{3})+(?!\d))/, ",")

  def fixture, do: @fixture
  def result_tag, do: @result_tag
end

defmodule LiveCov.Bench.HotPath.Child do
  @moduledoc false
  # Runs inside the child BEAM of one tool.

  alias LiveCov.Bench.HotPath

  @plain :hot_path_plain

  def main(tool, opts) do
    dir = Path.join(System.tmp_dir!(), "live_cov_bench_#{System.pid()}")
    File.mkdir_p!(dir)

    try do
      {:ok, forms} = :epp.parse_file(String.to_charlist(HotPath.fixture()), [])
      {variants, verify, stop} = setup(tool, forms, dir)
      result = measure(variants, lines_per_iteration(forms), opts)
      checks = Enum.map(variants, fn {variant, mod} -> {variant, verify.(variant, mod)} end)
      stop.()

      result = Map.merge(result, %{tool: tool, checks: checks})
      IO.puts(HotPath.result_tag() <> Base.encode64(:erlang.term_to_binary(result)))
    after
      File.rm_rf!(dir)
    end
  end

  ## Setup: twins on disk, instrumentation by the tool

  defp setup("cover_default", forms, dir) do
    load_twins(forms, dir, [@plain, :hot_path_cover])
    {:ok, _} = :cover.start()
    {:ok, :hot_path_cover} = :cover.compile_beam(:hot_path_cover)
    {[cover_default: :hot_path_cover], &verify_cover(forms, &1, &2), &cover_stop/0}
  end

  defp setup("cover_local_only", forms, dir) do
    load_twins(forms, dir, [@plain, :hot_path_cover])
    {:ok, _} = :cover.start()
    :ok = :cover.local_only()
    {:ok, :hot_path_cover} = :cover.compile_beam(:hot_path_cover)
    {[cover_local_only: :hot_path_cover], &verify_cover(forms, &1, &2), &cover_stop/0}
  end

  defp setup("live_cov", forms, dir) do
    load_twins(forms, dir, [@plain, :hot_path_live_cov, :hot_path_rustler, :hot_path_floor])
    _ = LiveCov.Cover.start()
    {:ok, :hot_path_live_cov} = LiveCov.Cover.compile_beam(:hot_path_live_cov)
    {:ok, rustler_slot, rustler_sites} = instrument_by_hand(:hot_path_rustler, :bump_rustler, nil)
    # An id no module will ever get: bump/2 returns after the slot lookup misses.
    {:ok, _, _} = instrument_by_hand(:hot_path_floor, :bump, Bitwise.bsl(1, 40))

    verify = fn
      :live_cov, mod -> verify_live_cov(forms, mod)
      :live_cov_rustler, _mod -> verify_slot(forms, rustler_slot, rustler_sites)
      :live_cov_floor, _mod -> {:ok, "no-op by design (unregistered slot), nothing to count"}
    end

    variants = [live_cov: :hot_path_live_cov, live_cov_rustler: :hot_path_rustler, live_cov_floor: :hot_path_floor]
    {variants, verify, fn -> LiveCov.Cover.stop() end}
  end

  defp cover_stop do
    :cover.stop()
    :ok
  end

  defp load_twins(forms, dir, names) do
    for name <- names do
      renamed =
        Enum.map(forms, fn
          {:attribute, a, :module, _} -> {:attribute, a, :module, name}
          form -> form
        end)

      binary =
        case :compile.forms(renamed, [:debug_info, :binary, :return_errors]) do
          {:ok, ^name, binary} -> binary
          {:ok, ^name, binary, _warnings} -> binary
          other -> raise "compiling the fixture as #{name} failed: #{inspect(other)}"
        end

      File.write!(Path.join(dir, "#{name}.beam"), binary)
    end

    true = :code.add_patha(String.to_charlist(dir))
    for name <- names, do: {:module, ^name} = :code.load_file(name)
    :ok
  end

  # LiveCov's own pipeline up to the placeholders, then bump calls to `fun` of
  # LiveCov.Native (no shim in between), compiled and loaded by hand.
  defp instrument_by_hand(mod, fun, slot) do
    alias LiveCov.Instrument.{Forms, Munge}
    {:ok, forms} = Forms.fetch(mod)
    {:ok, munged, sites, _clauses} = Munge.transform(forms.forms, mod)
    slot = slot || elem(LiveCov.Table.register(length(sites)), 1)

    patched =
      Munge.patch(munged, fn index ->
        a = :erl_anno.new(0)
        call = {:remote, a, {:atom, a, LiveCov.Native}, {:atom, a, fun}}
        {:call, a, call, [{:integer, a, slot}, {:integer, a, index}]}
      end)

    source = if forms.source, do: [{:source, forms.source}], else: []
    options = source ++ forms.compile_options ++ [:binary, :return_errors]
    {:ok, ^mod, binary} = :compile.forms(patched, options)
    {:module, ^mod} = :code.load_binary(mod, forms.beam_path, binary)
    {:ok, slot, sites}
  end

  ## Timing

  defp measure(variants, lines_per_iter, opts) do
    n = opts.iterations
    s = opts.schedulers
    warm = max(div(n, 4), 1000)

    for {_, mod} <- variants, m <- [@plain, mod], mode <- [:one, :all], do: run(mode, m, warm, s)

    samples =
      for rep <- 1..opts.reps, {variant, mod} <- variants, mode <- [:one, :all] do
        # Alternate the order so a slow drift does not favour one side.
        {tp, ti} =
          if rem(rep, 2) == 0 do
            tp = run(mode, @plain, n, s)
            {tp, run(mode, mod, n, s)}
          else
            ti = run(mode, mod, n, s)
            {run(mode, @plain, n, s), ti}
          end

        {variant, mode, tp, ti}
      end

    variants_out =
      for {variant, _} <- variants, into: %{} do
        modes =
          for mode <- [:one, :all], into: %{} do
            mine = for {^variant, ^mode, tp, ti} <- samples, do: {tp, ti}
            {mode, %{plain: Enum.map(mine, &elem(&1, 0)), instr: Enum.map(mine, &elem(&1, 1))}}
          end

        {variant, modes}
      end

    %{
      variants: variants_out,
      bumps: %{one: n * lines_per_iter + 1, all: s * (n * lines_per_iter + 1)},
      schedulers: s,
      iterations: n,
      reps: opts.reps
    }
  end

  defp run(:one, mod, n, _s) do
    {_pid, ref} = spawn_monitor(fn -> exit({:done, timed(mod, n)}) end)

    receive do
      {:DOWN, ^ref, :process, _, {:done, t}} -> count(mod, n, 1, t)
      {:DOWN, ^ref, :process, _, other} -> raise "bench process died: #{inspect(other)}"
    end
  end

  defp run(:all, mod, n, s) do
    procs =
      for _ <- 1..s do
        spawn_monitor(fn ->
          receive do
            :go -> mod.loop(n, 0)
          end
        end)
      end

    t0 = :erlang.monotonic_time(:nanosecond)
    Enum.each(procs, fn {pid, _} -> send(pid, :go) end)

    for {_, ref} <- procs do
      receive do
        {:DOWN, ^ref, :process, _, :normal} -> :ok
        {:DOWN, ^ref, :process, _, other} -> raise "bench process died: #{inspect(other)}"
      end
    end

    count(mod, n * s, s, :erlang.monotonic_time(:nanosecond) - t0)
  end

  defp timed(mod, n) do
    t0 = :erlang.monotonic_time(:nanosecond)
    :ok = mod.loop(n, 0)
    :erlang.monotonic_time(:nanosecond) - t0
  end

  # Records the calls of body/1 and loop/2 the bench made per module (for the count check)
  # and returns the time.
  defp count(mod, calls, invocations, time) do
    {c, i} = Process.get({:calls, mod}, {0, 0})
    Process.put({:calls, mod}, {c + calls, i + invocations})
    time
  end

  ## Count check

  # Expected calls per line: every line of body/1 and of the recursive clause of loop/2 runs
  # once per body call, the base clause of loop/2 once per loop invocation.
  defp expected(forms, mod) do
    {calls, invocations} = Process.get({:calls, mod}, {0, 0})
    expected(forms, calls, invocations)
  end

  # Executed lines (= bumps) per iteration of loop/2.
  defp lines_per_iteration(forms), do: forms |> expected(1, 0) |> Map.values() |> Enum.sum()

  defp expected(forms, calls, invocations) do
    Enum.reduce(forms, %{}, fn
      {:function, _, :body, 1, [{:clause, _, _, _, body}]}, acc ->
        add_lines(acc, body, calls)

      {:function, _, :loop, 2, [{:clause, _, _, _, base}, {:clause, _, _, _, rec}]}, acc ->
        acc |> add_lines(base, invocations) |> add_lines(rec, calls)

      _, acc ->
        acc
    end)
  end

  defp add_lines(acc, exprs, n) do
    exprs
    |> Enum.map(&:erl_anno.line(elem(&1, 1)))
    |> Enum.uniq()
    |> Enum.reduce(acc, &Map.update(&2, &1, n, fn old -> old + n end))
  end

  defp verify_cover(forms, _variant, mod) do
    compare(forms, mod, :cover.analyse(mod, :calls, :line), ":cover.analyse/3")
  end

  defp verify_live_cov(forms, mod) do
    compare(forms, mod, LiveCov.Cover.analyse(mod, :calls, :line), "LiveCov.Cover.analyse/3")
  end

  defp verify_slot(forms, slot, sites) do
    {:ok, counts} = LiveCov.Table.read(slot)

    lines =
      sites
      |> Enum.zip(counts)
      |> Enum.map(fn {{_f, _a, _c, line}, n} -> {{:hot_path_rustler, line}, n} end)

    compare(forms, :hot_path_rustler, {:ok, lines}, "LiveCov.Table.read/1")
  end

  defp compare(forms, mod, {:ok, lines}, how) do
    got = Enum.reduce(lines, %{}, fn {{_, line}, n}, acc -> Map.update(acc, line, n, &(&1 + n)) end)
    want = expected(forms, mod)
    total = want |> Map.values() |> Enum.sum()

    if got == want do
      {:ok, "#{how}: #{map_size(want)} lines, #{total} calls in all, every line exact"}
    else
      diff = for {line, n} <- want, got[line] != n, do: {line, [want: n, got: got[line]]}
      {:error, "#{how}: expected #{inspect(want)}, differences #{inspect(diff)}"}
    end
  end

  defp compare(_forms, _mod, other, how), do: {:error, "#{how} returned #{inspect(other)}"}
end

LiveCov.Bench.HotPath.main(System.argv())
