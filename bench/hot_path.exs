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
# is global to a node), a child OS process started as a port on `elixir --erl "+S S ..." -pa
# <live_cov ebin> bench/hot_path.exs --child TOOL`. In the child, bench/support/
# hot_path_bench.erl is compiled twice with debug_info under two names, one copy is
# instrumented, and both copies run the same loop: one process, then S processes at once
# (one per scheduler, until the last one finishes). Every iteration executes 11 lines, so it
# does 11 bumps. Each run is timed by the wall clock and by the CPU time of the scheduler
# threads (the steadier figure on a shared machine). The parent asks the children for one
# rep at a time, in turn, so the tools are measured over the same stretch of time. At the end
# each child checks that its tool counted every call exactly (analyse vs the calls made).
# In the live_cov child two more copies are instrumented by hand from LiveCov's own munged
# forms: one calling LiveCov.Native.bump_rustler/2 (the rustler #[nif] wrapper) and one
# calling bump/2 with an unregistered slot (a NIF call that finds no slot: the floor).

Code.require_file("support/bench_helpers.exs", __DIR__)

defmodule LiveCov.Bench.HotPath do
  @moduledoc false

  import Bitwise
  import LiveCov.Bench.Helpers, only: [cpu_model: 0, fmt_int: 1]

  @fixture Path.expand("support/hot_path_bench.erl", __DIR__)
  @tag "#LIVE_COV_BENCH#"
  # Executed lines per loop iteration in the fixture (the child derives it from the forms).
  @lines_per_iteration 11

  # One child BEAM each. The live_cov child measures the raw bump, the rustler-wrapped bump
  # and the NIF call floor (see Child.setup/3).
  @children ["cover_default", "cover_local_only", "live_cov"]

  @labels %{
    plain: "uninstrumented twin (absolute ns per line)",
    cover_default: "`:cover` default",
    cover_local_only: "`:cover` local_only",
    live_cov: "**LiveCov default**",
    live_cov_nif: "LiveCov `backend: :nif` (raw NIF bump)",
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
      # Where the runtime counts lines natively a bump costs ~2 ns: 10× the loop keeps each
      # timed run well above the clocks' resolution.
      iterations:
        Keyword.get(opts, :iterations, if(quick, do: 60_000, else: 100_000) * loop_scale()),
      reps: Keyword.get(opts, :reps, if(quick, do: 11, else: 31))
    }
  end

  defp loop_scale, do: if(LiveCov.Runtime.native_coverage?(), do: 10, else: 1)

  defp default_schedulers do
    :erlang.system_info(:logical_processors_available)
    |> case do
      n when is_integer(n) -> n
      _ -> :erlang.system_info(:logical_processors)
    end
    |> min(8)
    |> max(1)
  end

  ## Parent: one child BEAM per tool, driven rep by rep, then the tables

  defp orchestrate(opts) do
    started = System.monotonic_time(:millisecond)
    ebin = live_cov_ebin()
    elixir = System.find_executable("elixir") || raise "elixir is not on PATH"
    load_before = load_average()

    IO.puts("""
    ## Hot path: ns per bump, net of an uninstrumented twin

    #{system_line(opts)}
    Loop: #{fmt_int(opts.iterations)} iterations × #{@lines_per_iteration} lines per process; \
    #{opts.reps} timed reps per measurement (median), after a warm-up. The tools' BEAMs run \
    one at a time but take turns rep by rep, so a burst of load elsewhere hits them alike.
    """)

    # Started one after the other so that their warm-ups do not overlap.
    children =
      for tool <- @children do
        {tool, start_child(elixir, ebin, tool, opts)}
      end

    IO.write(:stderr, "  rounds: ")
    samples = run_rounds(children, opts.reps)

    results =
      for {tool, child} <- children, into: %{} do
        {tool, finish_child(child, samples[tool] || [])}
      end

    load_after = load_average()
    wall = rows(results, :wall)
    cpu = rows(results, :cpu)
    s = opts.schedulers

    IO.puts("### Wall clock\n\n" <> table(wall, opts, :wall))

    IO.puts("""
    ns/bump = (median t_instrumented − median t_twin) / bumps. The twin is the same code, not
    instrumented, timed in the same BEAM; its row is its own time per executed line, for scale.
    #{s}-process column: wall clock from the start signal until all #{s} processes finish,
    divided by the bumps of all of them (perfect scaling gives the 1-process figure ÷ #{s}).
    """)

    IO.puts("### CPU time\n\n" <> table(cpu, opts, :cpu))

    IO.puts("""
    The same runs, timed by the CPU time of the child BEAM instead of the wall clock:
    #{cpu_source(results)}; idle schedulers do not spin (`+sbwt none`).
    Time that other OS processes take from the BEAM does not count, so on a shared machine
    this view is the steadier one. #{s}-process column: CPU of all schedulers ÷ all bumps
    (perfect scaling gives the 1-process figure; contention makes it larger).
    """)

    IO.puts(targets(wall: wall, cpu: cpu))
    IO.puts(checks(results))
    IO.puts(details(results, opts))

    secs = (System.monotonic_time(:millisecond) - started) / 1000

    IO.puts(
      "Total run time: #{fmt(secs, 1)} s. Load average (1 min) before / after: " <>
        "#{load_before} / #{load_after}."
    )

    failed? =
      Enum.any?(results, fn
        {_, {:ok, r}} -> Enum.any?(r.checks, &match?({_, {:error, _}}, &1))
        {_, {:error, _}} -> true
      end)

    if failed?, do: System.halt(1)
  end

  defp live_cov_ebin do
    case :code.which(LiveCov.Native) do
      path when is_list(path) ->
        path |> List.to_string() |> Path.dirname()

      _ ->
        IO.puts(:stderr, """
        hot_path.exs: LiveCov is not on the code path. Run it through mix:
          mix live_cov.bench hot_path     (or: mix run bench/hot_path.exs)
        or give the path: elixir -pa <build>/lib/live_cov/ebin bench/hot_path.exs
        """)

        System.halt(2)
    end
  end

  defp load_average do
    case File.read("/proc/loadavg") do
      {:ok, text} -> text |> String.split() |> hd()
      _ -> "n/a"
    end
  end

  # A child is a port on `elixir ... bench/hot_path.exs --child TOOL`: it sets up, warms up
  # and says ready, then runs one rep per `rep` line and finishes on `finish`.
  defp start_child(elixir, ebin, tool, opts) do
    args =
      ["--erl", "+S #{opts.schedulers} +sbwt none +sbwtdcpu none +sbwtdio none"] ++
        ["-pa", ebin, __ENV__.file, "--child", tool] ++
        ["--schedulers", "#{opts.schedulers}", "--iterations", "#{opts.iterations}"]

    port =
      Port.open({:spawn_executable, elixir}, [
        :binary,
        :exit_status,
        {:line, 1 <<< 20},
        args: args
      ])

    child = %{tool: tool, port: port}

    case await(child, "ready") do
      {:ok, _} -> child
      {:error, _} = error -> Map.put(child, :error, error)
    end
  end

  # %{tool => [sample]}, or {:error, reason} for a child that died on the way.
  defp run_rounds(children, reps) do
    live = for {tool, child} <- children, not Map.has_key?(child, :error), do: {tool, child}

    Enum.reduce(1..reps, %{}, fn round, acc ->
      # Rotate the order every round: no tool always runs right after another one.
      {front, back} = Enum.split(live, rem(round, max(length(live), 1)))
      acc = Enum.reduce(back ++ front, acc, &ask_rep/2)
      IO.write(:stderr, if(round == reps, do: "#{round}\n", else: "#{round} "))
      acc
    end)
  end

  defp ask_rep({tool, child}, acc) do
    case acc[tool] do
      {:error, _} ->
        acc

      previous ->
        Port.command(child.port, "rep\n")

        case await(child, "rep") do
          {:ok, samples} -> Map.put(acc, tool, (previous || []) ++ samples)
          {:error, _} = error -> Map.put(acc, tool, error)
        end
    end
  end

  defp finish_child(%{error: error}, _samples), do: error

  defp finish_child(child, {:error, _} = error) do
    if Port.info(child.port), do: Port.close(child.port)
    error
  end

  defp finish_child(child, samples) do
    Port.command(child.port, "finish\n")

    with {:ok, result} <- await(child, "result") do
      {:ok, Map.put(result, :variants, group(samples))}
    end
  end

  # [{variant, mode, {wall, cpu} plain, {wall, cpu} instrumented}] ->
  # %{variant => %{mode => %{clock => %{plain: [ns], instr: [ns]}}}}
  defp group(samples) do
    samples
    |> Enum.group_by(&elem(&1, 0))
    |> Map.new(fn {variant, list} ->
      modes =
        for mode <- [:one, :all], into: %{} do
          mine = for {_, ^mode, tp, ti} <- list, do: {tp, ti}

          clocks =
            for {clock, i} <- [wall: 0, cpu: 1], into: %{} do
              {clock,
               %{
                 plain: Enum.map(mine, &elem(elem(&1, 0), i)),
                 instr: Enum.map(mine, &elem(elem(&1, 1), i))
               }}
            end

          {mode, clocks}
        end

      {variant, modes}
    end)
  end

  # Waits for the child's `#LIVE_COV_BENCH# tag payload` line; other output is passed on.
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

  defp system_line(opts) do
    "Machine: #{cpu_model()}, #{default_schedulers()} logical CPUs available. " <>
      "OTP #{:erlang.system_info(:otp_release)} (erts #{:erlang.system_info(:version)}, " <>
      "#{:erlang.system_info(:emu_flavor)}), Elixir #{System.version()}. " <>
      "Each tool in its own BEAM with `+S #{opts.schedulers} +sbwt none +sbwtdcpu none +sbwtdio none`."
  end

  @rows [
    :plain,
    :cover_default,
    :cover_local_only,
    :live_cov,
    :live_cov_nif,
    :live_cov_rustler,
    :live_cov_floor
  ]

  # %{variant => %{one: ns, all: ns}} for one clock, plus :plain (the twin's absolute time
  # per executed line, median over the children).
  defp rows(results, clock) do
    ok = for {_tool, {:ok, r}} <- results, do: r
    per_bump = fn r, mode, list -> median(list) / r.bumps[mode] end

    net =
      for r <- ok, {variant, modes} <- r.variants, into: %{} do
        {variant,
         Map.new([:one, :all], fn mode ->
           %{plain: plain, instr: instr} = modes[mode][clock]
           {mode, per_bump.(r, mode, instr) - per_bump.(r, mode, plain)}
         end)}
      end

    if ok == [] do
      net
    else
      twin =
        Map.new([:one, :all], fn mode ->
          {mode, ok |> Enum.map(&per_bump.(&1, mode, twin(&1, mode, clock))) |> median()}
        end)

      Map.put(net, :plain, twin)
    end
  end

  # Every plain timing of a child, whatever variant it was paired with.
  defp twin(r, mode, clock), do: Enum.flat_map(r.variants, fn {_, m} -> m[mode][clock].plain end)

  defp table(rows, opts, clock) do
    s = opts.schedulers
    base = rows[:cover_default]
    local = rows[:cover_local_only]
    unit = if clock == :wall, do: "ns/bump", else: "CPU ns/bump"

    header = """
    | tool | #{unit}, 1 process | #{unit}, #{s} processes (1 per scheduler) | × `:cover` default (1 / #{s} proc) | × local_only (1 / #{s} proc) |
    |---|--:|--:|--:|--:|
    """

    lines =
      for variant <- @rows do
        case rows[variant] do
          nil when variant == :live_cov_nif ->
            "| #{@labels[variant]} | = default here | | | |"

          nil ->
            "| #{@labels[variant]} | failed | failed | | |"

          %{one: one, all: all} ->
            ratios =
              if variant == :plain,
                do: "— | —",
                else: "#{ratio(rows[variant], base)} | #{ratio(rows[variant], local)}"

            "| #{label(variant)} | #{ns(one)} | #{ns(all)} | #{ratios} |"
        end
      end

    header <> Enum.join(lines, "\n") <> "\n"
  end

  defp label(:live_cov), do: "**LiveCov default (`backend: :#{default_backend()}`)**"
  defp label(variant), do: @labels[variant]

  defp default_backend do
    {:ok, name} = LiveCov.Counter.resolve()
    name
  end

  defp ratio(_row, nil), do: "n/a"

  defp ratio(%{one: a1, all: a2}, %{one: b1, all: b2}),
    do: "#{fmt(a1 / b1, 2)} / #{fmt(a2 / b2, 2)}"

  defp targets(by_clock) do
    native = default_backend() == :native

    lines =
      for {clock, rows} <- by_clock do
        case {rows[:live_cov], rows[:cover_default], rows[:cover_local_only]} do
          {%{} = lc, %{} = d, _l} when native ->
            "* #{clock_name(clock)}: LiveCov / `:cover` default " <>
              "#{verdict(lc.one / d.one, 1.0)} (1 process), " <>
              "#{verdict(lc.all / d.all, 1.0)} (per-scheduler processes)"

          {%{} = lc, %{} = d, %{} = l} ->
            "* #{clock_name(clock)}: LiveCov / `:cover` default " <>
              "#{verdict(lc.one / d.one, 0.5)} (1 process), " <>
              "#{verdict(lc.all / d.all, 0.5)} (per-scheduler processes); " <>
              "LiveCov / local_only #{verdict(lc.one / l.one, 1.0)} (1 process), " <>
              "#{verdict(lc.all / l.all, 1.0)} (per-scheduler processes)"

          _ ->
            "* #{clock_name(clock)}: not evaluated (a child failed)"
        end
      end

    "Targets: LiveCov's default ≤ 0.5× `:cover` default and ≤ 1.0× `:cover` local_only " <>
      "where `:cover` calls `counters:add` (OTP 25/26); ≤ 1.0× `:cover` default where both " <>
      "use the VM's line counters (OTP 27+ with the JIT).\n\n" <>
      Enum.join(lines, "\n") <> "\n"
  end

  defp cpu_source(results) do
    sources = for {_, {:ok, r}} <- results, uniq: true, do: r.cpu_source

    case sources do
      [:schedstat] -> "scheduler threads, from `/proc/self/task/*/schedstat`, ns resolution"
      [:runtime] -> "whole BEAM, `:erlang.statistics(:runtime)`, ms resolution"
      _ -> "schedstat or `:erlang.statistics(:runtime)` depending on the child"
    end
  end

  defp clock_name(:wall), do: "wall clock"
  defp clock_name(:cpu), do: "CPU time"

  defp verdict(r, limit), do: "#{fmt(r, 3)}× #{if r <= limit, do: "MET", else: "MISSED"}"

  defp checks(results) do
    lines =
      for tool <- @children do
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
      for tool <- @children,
          {:ok, r} <- [results[tool]],
          variant <- @rows,
          modes = r.variants[variant],
          modes != nil,
          mode <- [:one, :all] do
        procs = if mode == :one, do: "1", else: "#{opts.schedulers}"

        cells =
          for clock <- [:wall, :cpu] do
            %{plain: plain, instr: instr} = modes[mode][clock]

            "#{ms(median(plain))} | #{ms(median(instr))} | #{ms(Enum.min(instr))}–#{ms(Enum.max(instr))}"
          end

        "| #{@labels[variant]} | #{procs} | #{fmt_int(r.bumps[mode])} | #{Enum.join(cells, " | ")} |"
      end

    """
    <details><summary>Raw timings (ms, medians and ranges over the reps)</summary>

    | tool | procs | bumps per run | wall: twin | wall: instrumented | wall: range | CPU: twin | CPU: instrumented | CPU: range |
    |---|--:|--:|--:|--:|--:|--:|--:|--:|
    #{Enum.join(rows, "\n")}

    </details>
    """
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

  defp ns(x), do: fmt(x, 2)
  defp ms(ns), do: fmt(ns / 1.0e6, 1)
  defp fmt(x, d), do: :erlang.float_to_binary(x / 1, decimals: d)

  def fixture, do: @fixture

  @doc false
  def reply(tag, term),
    do: IO.puts("#{@tag} #{tag} " <> Base.encode64(:erlang.term_to_binary(term)))
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
      # Everything is loaded and instrumented: the beams on disk are no longer needed (and
      # nothing is left behind if the parent goes away and this BEAM halts).
      File.rm_rf!(dir)
      cpu_source = cpu_source()
      warm_up(variants, opts)
      HotPath.reply("ready", :ok)
      serve(variants, opts, 1)

      checks = Enum.map(variants, fn {variant, mod} -> {variant, verify.(variant, mod)} end)
      stop.()
      n = opts.iterations * lines_per_iteration(forms) + 1

      HotPath.reply("result", %{
        tool: tool,
        checks: checks,
        bumps: %{one: n, all: n * opts.schedulers},
        cpu_source: cpu_source
      })
    after
      File.rm_rf!(dir)
    end
  end

  # One rep per `rep` line on stdin, until `finish` (or the parent goes away).
  defp serve(variants, opts, rep) do
    case IO.gets("") do
      "rep\n" ->
        HotPath.reply("rep", one_rep(variants, opts, rep))
        serve(variants, opts, rep + 1)

      "finish\n" ->
        :ok

      _eof ->
        System.halt(3)
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
    twins = [@plain, :hot_path_live_cov, :hot_path_nif, :hot_path_rustler, :hot_path_floor]
    load_twins(forms, dir, twins)
    _ = LiveCov.Cover.start()
    # The default backend (`:auto`: the runtime's line counters where it has them), and the
    # NIF backend beside it where that is not the default.
    {:ok, :hot_path_live_cov} = LiveCov.Cover.compile_beam(:hot_path_live_cov)
    native? = LiveCov.Counter.resolve() == {:ok, :native}

    if native?,
      do: {:ok, :hot_path_nif} = LiveCov.Cover.compile_beam(:hot_path_nif, backend: :nif)

    {:ok, rustler_slot, rustler_sites} = instrument_by_hand(:hot_path_rustler, :bump_rustler, nil)
    # An id no module will ever get: bump/2 returns after the slot lookup misses.
    {:ok, _, _} = instrument_by_hand(:hot_path_floor, :bump, Bitwise.bsl(1, 40))

    verify = fn
      :live_cov, mod -> verify_live_cov(forms, mod)
      :live_cov_nif, mod -> verify_live_cov(forms, mod)
      :live_cov_rustler, _mod -> verify_slot(forms, rustler_slot, rustler_sites)
      :live_cov_floor, _mod -> {:ok, "no-op by design (unregistered slot), nothing to count"}
    end

    variants =
      [live_cov: :hot_path_live_cov] ++
        if(native?, do: [live_cov_nif: :hot_path_nif], else: []) ++
        [live_cov_rustler: :hot_path_rustler, live_cov_floor: :hot_path_floor]

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

  defp warm_up(variants, opts) do
    warm = max(div(opts.iterations, 4), 1000)

    for {_, mod} <- variants,
        m <- [@plain, mod],
        mode <- [:one, :all],
        do: run(mode, m, warm, opts.schedulers)
  end

  # [{variant, mode, {wall, cpu} of the twin, {wall, cpu} instrumented}], in ns.
  defp one_rep(variants, opts, rep) do
    n = opts.iterations
    s = opts.schedulers

    for {variant, mod} <- variants, mode <- [:one, :all] do
      # Alternate the order so that a slow drift does not favour one side.
      if rem(rep, 2) == 0 do
        tp = run(mode, @plain, n, s)
        {variant, mode, tp, run(mode, mod, n, s)}
      else
        ti = run(mode, mod, n, s)
        {variant, mode, run(mode, @plain, n, s), ti}
      end
    end
  end

  # One process runs loop(n, 0): {wall ns measured inside it, CPU ns of the whole BEAM}.
  defp run(:one, mod, n, _s) do
    cpu0 = cpu_ns()

    {_pid, ref} =
      spawn_monitor(fn ->
        t0 = :erlang.monotonic_time(:nanosecond)
        :ok = mod.loop(n, 0)
        exit({:done, :erlang.monotonic_time(:nanosecond) - t0})
      end)

    receive do
      {:DOWN, ^ref, :process, _, {:done, wall}} -> count(mod, n, 1, {wall, cpu_ns() - cpu0})
      {:DOWN, ^ref, :process, _, other} -> raise "bench process died: #{inspect(other)}"
    end
  end

  # `s` processes run loop(n, 0) together: wall ns from the start signal until the last one
  # is done, and CPU ns of the whole BEAM.
  defp run(:all, mod, n, s) do
    procs =
      for _ <- 1..s do
        spawn_monitor(fn ->
          receive do
            :go -> mod.loop(n, 0)
          end
        end)
      end

    cpu0 = cpu_ns()
    t0 = :erlang.monotonic_time(:nanosecond)
    Enum.each(procs, fn {pid, _} -> send(pid, :go) end)

    for {_, ref} <- procs do
      receive do
        {:DOWN, ^ref, :process, _, :normal} -> :ok
        {:DOWN, ^ref, :process, _, other} -> raise "bench process died: #{inspect(other)}"
      end
    end

    wall = :erlang.monotonic_time(:nanosecond) - t0
    count(mod, n * s, s, {wall, cpu_ns() - cpu0})
  end

  # CPU time of the BEAM's scheduler threads (where Erlang code and the bump NIF run), in ns:
  # from Linux's per-thread schedstat when it is there (ns resolution), else the whole
  # BEAM's `:erlang.statistics(:runtime)` (ms resolution).
  defp cpu_ns do
    case Process.get(:schedstat_files) do
      nil -> runtime_ns()
      files -> Enum.reduce(files, 0, &(&2 + schedstat_ns(&1)))
    end
  end

  defp cpu_source do
    files = scheduler_schedstat_files()

    if files != [] and Enum.all?(files, &is_integer(schedstat_ns(&1))) do
      Process.put(:schedstat_files, files)
      :schedstat
    else
      :runtime
    end
  end

  # ERTS names its normal scheduler threads "1_scheduler", "2_scheduler", ... (OTP 25),
  # "erts_sched_1", "erts_sched_2", ... (OTP 27+).
  defp scheduler_schedstat_files do
    case File.ls("/proc/self/task") do
      {:ok, tasks} ->
        for task <- tasks,
            dir = "/proc/self/task/#{task}",
            {:ok, comm} <- [File.read(dir <> "/comm")],
            String.match?(comm, ~r/^(\d+_scheduler|erts_sched_\d+)$/),
            do: String.to_charlist(dir <> "/schedstat")

      _ ->
        []
    end
  end

  defp runtime_ns do
    {ms, _} = :erlang.statistics(:runtime)
    ms * 1_000_000
  end

  defp schedstat_ns(file) do
    with {:ok, text} <- :file.read_file(file),
         [ns | _] <- String.split(text),
         {ns, ""} <- Integer.parse(ns) do
      ns
    else
      _ -> nil
    end
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
    got =
      Enum.reduce(lines, %{}, fn {{_, line}, n}, acc -> Map.update(acc, line, n, &(&1 + n)) end)

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
