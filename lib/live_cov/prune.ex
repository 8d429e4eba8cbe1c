defmodule LiveCov.Prune do
  @moduledoc false
  # Adaptive coverage: drops bump sites once they have run, so the overhead of coverage decays
  # toward zero.
  #
  # Modules instrumented with `LiveCov.start(target, mode: :coverage)` are watched by this
  # process. A *pass* (on an interval, or now with `LiveCov.prune/0`) reads every watched
  # module's counts, and for each module with newly hit sites reloads a version without them:
  #
  #   * the remaining sites keep their slot and indices, so site identities (reports, exports,
  #     sums over nodes) never change; the counters of removed sites simply stop moving, their
  #     counts are frozen;
  #   * a module whose sites have all run goes back to its original beam (`:code.which/1` and
  #     `module_info(:md5)` are the original's again), unless `keep_instrumented: true`.
  #
  # ## Safety
  #
  # A module is swapped only when the version before the current one can be soft-purged: no
  # process still runs it. Otherwise the module is *deferred* (listed in `status/0` with the
  # pids) and retried at a later pass. No process is ever killed.
  #
  # ## Cost
  #
  # Recompiling runs in separate processes at low priority: the measured code never waits for
  # a pass, it only picks up the new version at its next fully qualified call. A pass handles at
  # most `max_per_pass` modules (the others wait for the next pass) and compiles at most
  # `concurrency` of them at once (`LiveCov.Instrument.instrument_many/2`). Recompiling starts
  # from the rewritten abstract code kept since instrumentation (`LiveCov.ModuleInfo` `cache`),
  # so no beam is read and nothing is re-analysed.
  #
  # ## Options
  #
  # Given as `LiveCov.start(target, mode: :coverage, prune: [...])`, with `configure/1`, or in
  # the application environment (`config :live_cov, :prune, interval: 10_000`):
  #
  #   * `:interval` - milliseconds between passes, or `nil` for passes only on request
  #     (default `5_000`).
  #   * `:retry` - milliseconds before a deferred module is tried again when that comes
  #     sooner than the next interval (default `1_000`).
  #   * `:max_per_pass` - modules recompiled per pass at most (default `50`).
  #   * `:concurrency` - modules compiled at once (default: half the schedulers, at least 1).
  #   * `:keep_instrumented` - `true` keeps fully hit modules on an instrumented version
  #     with no bump left instead of the original beam (default `false`).
  #   * `:history` - recompilations remembered by `status/0` (default `200`).
  #
  # ## Counts in this mode
  #
  # Counts are not exact: a removed site's count stays where it was when the site was removed
  # (it is at least 1, "hit"). `LiveCov.reset/0` zeroes the sites that are still instrumented
  # and leaves removed sites as they are: their code is gone, zeroing them would report lines
  # that ran as missed. (`LiveCov.dump_and_reset/1` zeroes them too: the dump holds their
  # counts, so summing dumps still gives every hit.)
  #
  # ## Nodes and snapshots
  #
  # A pass reads this node's counters and the covered nodes' (`LiveCov.Nodes`), so a site hit
  # only on another node is removed too (`LiveCov.reset/0` then keeps it at 1 on this node, so
  # it stays hit). Imported data (`LiveCov.import/1`) never removes a bump: it did not run here. Every swapped version is sent to the covered nodes
  # (`LiveCov.Nodes.distribute/1`, same slot, so their counters go on); a node that cannot
  # swap yet keeps its previous version, which only counts more. A snapshot's metadata is the
  # build's (original md5 and sites), which pruning never changes, so snapshots of any version
  # merge.
  use GenServer

  require Logger

  alias LiveCov.{Counter, Counts, Instrument, Instrumented, ModuleInfo, Pipeline, Table}
  alias LiveCov.Prune.Options

  @type pass_summary :: %{
          pruned: [%{module: module, newly_pruned: non_neg_integer, remaining: non_neg_integer}],
          restored: [module],
          deferred: [%{module: module, pids: [pid]}],
          failed: [%{module: module, kind: atom, message: String.t()}],
          waiting: [module],
          ms: non_neg_integer
        }

  ## API

  @doc false
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc """
  Runs a pass now and returns what it did. If a pass is running, waits for it and runs
  another one (so every site hit before the call is considered).

  `%{pruned: [...], restored: [...], deferred: [...], failed: [...], waiting: [...], ms: n}`:
  `restored` modules run their original beam again; `deferred` ones could not be swapped
  because the named processes still run an older version (retried later); `waiting` ones
  were left for the next pass by `max_per_pass`.
  """
  @spec run(timeout) :: pass_summary | {:error, {atom, String.t()}}
  def run(timeout \\ :infinity) do
    case Process.whereis(__MODULE__) do
      nil -> not_started()
      _ -> GenServer.call(__MODULE__, :run, timeout)
    end
  end

  @doc """
  Changes options (see the module documentation) and (re)arms the timer. Returns `:ok` or
  `{:error, {:invalid_option, message}}`.
  """
  @spec configure(keyword) :: :ok | {:error, {atom, String.t()}}
  def configure(opts) do
    with {:ok, opts} <- Options.validate(opts) do
      case Process.whereis(__MODULE__) do
        nil -> not_started()
        _ -> GenServer.call(__MODULE__, {:configure, opts})
      end
    end
  end

  @doc """
  What adaptive coverage did: options, passes, every watched module (`code` is
  `:instrumented`, `:pruned` or `:original`), deferred modules with the pids holding them,
  and the recompilation history (latest first).
  """
  @spec status() :: map | {:error, {atom, String.t()}}
  def status do
    case Process.whereis(__MODULE__) do
      nil -> not_started()
      _ -> GenServer.call(__MODULE__, :status)
    end
  end

  @doc """
  Zeroes every counter except those of removed sites (see "Counts in this mode"). In
  `:counts` mode this is exactly `LiveCov.Table.reset_all/0`.
  """
  @spec reset() :: :ok
  def reset do
    keep = frozen_counts()
    :ok = Counter.reset_all()
    put_back(keep)
  end

  @doc """
  The counts of removed sites on this node, `[{slot, counts}]` (other sites as 0; a removed
  site is at least 1). With `put_back/1`, whatever zeroes the table (a reset, a
  read-and-zero dump) leaves removed sites hit:

      keep = LiveCov.Prune.frozen_counts()
      ... zero the counters ...
      LiveCov.Prune.put_back(keep)

  Removed counters no longer move, so nothing is lost between the two calls.
  """
  @spec frozen_counts() :: [{Table.slot(), [non_neg_integer]}]
  def frozen_counts do
    for %ModuleInfo{pruned: pruned} = info <- Instrumented.modules(),
        MapSet.size(pruned) > 0,
        {:ok, counts} <- [Counter.read(info.slot)],
        do: {info.slot, frozen(counts, pruned)}
  end

  @doc "Adds counts saved by `frozen_counts/0` back to the table."
  @spec put_back([{Table.slot(), [non_neg_integer]}]) :: :ok
  def put_back(kept) do
    Enum.each(kept, fn {slot, counts} -> Counter.add(slot, counts) end)
  end

  @doc """
  Lines of `info` whose every site was removed (they ran; reports can say "hit" for them).
  """
  @spec pruned_lines(ModuleInfo.t()) :: [pos_integer]
  def pruned_lines(%ModuleInfo{pruned: pruned} = info) do
    if MapSet.size(pruned) == 0 do
      []
    else
      info
      |> ModuleInfo.site_list()
      |> Enum.with_index()
      |> Enum.reject(fn {{_, _, _, line}, _} -> line == 0 end)
      |> Enum.group_by(fn {{_, _, _, line}, _} -> line end, &elem(&1, 1))
      |> Enum.filter(fn {_line, idx} -> Enum.all?(idx, &MapSet.member?(pruned, &1)) end)
      |> Enum.map(&elem(&1, 0))
      |> Enum.sort()
    end
  end

  @doc false
  defdelegate validate(opts), to: Options

  @doc "See `LiveCov.Prune.Version.compile/3`."
  defdelegate compile(info, pruned, keep_instrumented \\ false), to: LiveCov.Prune.Version

  ## Server

  @impl true
  def init(opts) do
    env = Application.get_env(:live_cov, :prune, [])

    config =
      with {:ok, env} <- Options.validate(env),
           {:ok, opts} <- Options.validate(opts) do
        Options.defaults() |> Map.merge(Map.new(env)) |> Map.merge(Map.new(opts))
      else
        {:error, {_, message}} ->
          Logger.warning("LiveCov: config :live_cov, :prune ignored: #{message}")
          Options.defaults()
      end

    {:ok,
     %{
       config: config,
       timer: nil,
       next_at: nil,
       pass: nil,
       running: [],
       waiting: [],
       passes: 0,
       last_pass: nil,
       deferred: %{},
       history: [],
       recompiled: 0
     }}
  end

  @impl true
  def handle_call(:run, from, state) do
    {:noreply, maybe_start(%{state | waiting: [from | state.waiting]})}
  end

  def handle_call({:configure, opts}, _from, state) do
    state = %{state | config: Map.merge(state.config, Map.new(opts))}
    {:reply, :ok, arm(state, state.config.interval)}
  end

  def handle_call(:status, _from, state), do: {:reply, build_status(state), state}

  @impl true
  def handle_info(:tick, state) do
    state = %{state | timer: nil, next_at: nil}

    if watched() == [] and state.deferred == %{},
      do: {:noreply, state},
      else: {:noreply, maybe_start(state)}
  end

  def handle_info({:DOWN, ref, :process, _pid, reason}, %{pass: {_, ref, started}} = state) do
    ms = System.monotonic_time(:millisecond) - started

    summary =
      case reason do
        {:pass_done, summary} ->
          %{summary | ms: ms}

        other ->
          message = "the prune pass crashed: #{inspect(other)}"
          %{empty_summary() | failed: [%{module: nil, kind: :crashed, message: message}], ms: ms}
      end

    Enum.each(state.running, &GenServer.reply(&1, Map.delete(summary, :entries)))
    state = record(%{state | pass: nil, running: []}, summary)

    state =
      cond do
        state.waiting != [] -> maybe_start(state)
        summary.deferred != [] or summary.waiting != [] -> arm(state, retry_in(state.config))
        true -> arm(state, state.config.interval)
      end

    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  ## Passes

  # Starts a pass unless one runs; the pass answers the callers waiting so far.
  defp maybe_start(%{pass: nil} = state) do
    config = state.config
    {pid, ref} = spawn_monitor(fn -> exit({:pass_done, pass(config)}) end)
    state = cancel(state)

    %{
      state
      | pass: {pid, ref, System.monotonic_time(:millisecond)},
        running: state.waiting,
        waiting: []
    }
  end

  defp maybe_start(state), do: state

  # Runs in its own process: nothing here blocks the server or the measured code.
  defp pass(config) do
    infos = watched()
    counts = live_counts(infos)

    candidates =
      for info <- infos,
          newly = newly_hit(info, Map.fetch!(counts, info.module)),
          newly != [] or needs_original?(info, config),
          do: {info, newly}

    {batch, later} = Enum.split(candidates, config.max_per_pass)
    {ready, busy} = Enum.split_with(batch, fn {info, _} -> :code.soft_purge(info.module) end)

    deferred =
      for {info, _} <- busy,
          do: %{module: info.module, pids: Instrument.old_code_pids(info.module)}

    outcomes =
      ready
      |> Enum.chunk_every(config.concurrency)
      |> Enum.flat_map(fn chunk ->
        chunk
        |> Instrument.instrument_many(&build(&1, config))
        |> Enum.zip(chunk)
        |> Enum.map(&swap(&1, config))
      end)

    swapped = for {:done, _, _, _, _, _, info} <- outcomes, do: info
    keep_hit(swapped)
    distribute(swapped)
    summarise(outcomes, deferred, later)
  end

  # What ran in this system: this node's table plus the covered nodes' (`LiveCov.Nodes`).
  # Imported data (another run, another time) never removes a bump.
  defp live_counts([]), do: %{}

  defp live_counts(infos) do
    table = Counter.snapshot()
    nodes = LiveCov.Nodes

    remote =
      if Code.ensure_loaded?(nodes) and function_exported?(nodes, :counts, 1),
        do: nodes.counts(infos),
        else: %{}

    Map.new(infos, fn info ->
      local =
        case Map.fetch(table, info.slot) do
          {:ok, bin} -> Table.decode(bin)
          :error -> List.duplicate(0, ModuleInfo.size(info))
        end

      {info.module, Counts.add(local, Map.get(remote, info.module))}
    end)
  end

  defp watched, do: Enum.filter(Instrumented.modules(), &(&1.mode == :coverage))

  defp newly_hit(%ModuleInfo{pruned: pruned}, counts) do
    for {n, i} <- Enum.with_index(counts), n > 0, not MapSet.member?(pruned, i), do: i
  end

  # A fully pruned module kept instrumented whose user now wants the original.
  defp needs_original?(info, config) do
    not config.keep_instrumented and MapSet.size(info.pruned) == ModuleInfo.size(info) and
      info.instrumented != info.original
  end

  # In a worker: compile the new version, giving way to the code being measured.
  defp build({info, newly}, config) do
    Process.flag(:priority, :low)
    pruned = MapSet.union(info.pruned, MapSet.new(newly))
    t0 = System.monotonic_time(:millisecond)

    with {:ok, binary} <- compile(info, pruned, config.keep_instrumented) do
      {:ok, pruned, binary, System.monotonic_time(:millisecond) - t0}
    end
  end

  # Back in the pass process: swap the code through the registry, one module at a time.
  defp swap({{:ok, pruned, binary, compile_ms}, {info, newly}}, _config) do
    case Pipeline.prune(info.module, info.slot, pruned, binary) do
      {:ok, new_info} ->
        action = if binary == :original, do: :original, else: :pruned
        remaining = ModuleInfo.size(new_info) - MapSet.size(pruned)
        {:done, info.module, action, length(newly), remaining, compile_ms, new_info}

      {:error, {:old_code_in_use, _}} ->
        {:deferred, info.module, Instrument.old_code_pids(info.module)}

      {:error, {:not_instrumented, _}} ->
        # Stopped or instrumented again meanwhile: nothing to do.
        :gone

      {:error, {kind, message}} ->
        {:failed, info.module, kind, message}
    end
  end

  defp swap({{:error, {kind, message}}, {info, _}}, _config),
    do: {:failed, info.module, kind, message}

  # A removed site must stay hit: its code is gone. If a reset raced with this pass (counts
  # read, then zeroed, then the site removed), it is counted once more on this node.
  defp keep_hit([]), do: :ok

  defp keep_hit(infos) do
    counts = live_counts(infos)

    for info <- infos,
        zeros = for({n, i} <- Enum.with_index(counts[info.module]), n == 0, do: i),
        lost = Enum.filter(zeros, &MapSet.member?(info.pruned, &1)),
        lost != [] do
      lost = MapSet.new(lost)
      Counter.add(info.slot, for(i <- 0..(ModuleInfo.size(info) - 1)//1, do: one_if(i in lost)))
    end

    :ok
  end

  defp one_if(true), do: 1
  defp one_if(false), do: 0

  # Multi-node: every covered node loads the same version, under the same slot, so its
  # counters go on (`LiveCov.Nodes.distribute/1`). A node that cannot swap yet keeps its
  # previous version, which only counts more; the next pass (or its resync) sends it again.
  defp distribute([]), do: :ok

  defp distribute(infos) do
    LiveCov.Nodes.distribute(infos)
  catch
    _, _ -> :ok
  end

  defp summarise(outcomes, deferred, later) do
    acc = %{empty_summary() | deferred: deferred, waiting: Enum.map(later, &elem(&1, 0).module)}
    now = DateTime.utc_now()

    acc =
      Enum.reduce(outcomes, acc, fn
        {:done, m, :original, newly, _remaining, ms, _info}, acc ->
          entry = history_entry(now, m, :original, newly, 0, ms)
          %{acc | restored: [m | acc.restored], entries: [entry | acc.entries]}

        {:done, m, :pruned, newly, remaining, ms, _info}, acc ->
          entry = history_entry(now, m, :pruned, newly, remaining, ms)
          done = %{module: m, newly_pruned: newly, remaining: remaining}
          %{acc | pruned: [done | acc.pruned], entries: [entry | acc.entries]}

        {:deferred, m, pids}, acc ->
          %{acc | deferred: [%{module: m, pids: pids} | acc.deferred]}

        {:failed, m, kind, message}, acc ->
          %{acc | failed: [%{module: m, kind: kind, message: message} | acc.failed]}

        :gone, acc ->
          acc
      end)

    %{
      acc
      | pruned: Enum.reverse(acc.pruned),
        restored: Enum.reverse(acc.restored),
        deferred: Enum.sort_by(acc.deferred, & &1.module),
        failed: Enum.reverse(acc.failed)
    }
  end

  defp history_entry(at, module, action, newly, remaining, ms),
    do: %{
      at: at,
      module: module,
      action: action,
      newly_pruned: newly,
      remaining: remaining,
      compile_ms: ms
    }

  defp empty_summary,
    do: %{pruned: [], restored: [], deferred: [], failed: [], waiting: [], entries: [], ms: 0}

  ## State helpers

  defp record(state, summary) do
    now = DateTime.utc_now()
    done = MapSet.new(Enum.map(summary.pruned, & &1.module) ++ summary.restored)

    deferred =
      state.deferred
      |> Map.drop(MapSet.to_list(done))
      |> then(fn d ->
        Enum.reduce(summary.deferred, d, fn %{module: m, pids: pids}, d ->
          Map.update(d, m, %{pids: pids, since: now, attempts: 1}, fn old ->
            %{old | pids: pids, attempts: old.attempts + 1}
          end)
        end)
      end)
      |> Map.filter(fn {m, _} -> Instrumented.lookup(m) != nil end)

    history = Enum.take(summary.entries ++ state.history, state.config.history)

    %{
      state
      | passes: state.passes + 1,
        last_pass: summary |> Map.delete(:entries) |> Map.put(:at, now),
        deferred: deferred,
        history: history,
        recompiled: state.recompiled + length(summary.entries)
    }
  end

  defp retry_in(%{interval: nil, retry: retry}), do: retry
  defp retry_in(%{interval: interval, retry: retry}), do: min(interval, retry)

  defp arm(state, nil), do: cancel(state)

  defp arm(state, ms) do
    state = cancel(state)

    if watched() == [] do
      state
    else
      %{
        state
        | timer: Process.send_after(self(), :tick, ms),
          next_at: System.monotonic_time(:millisecond) + ms
      }
    end
  end

  defp cancel(%{timer: nil} = state), do: state

  defp cancel(state) do
    Process.cancel_timer(state.timer)

    receive do
      :tick -> :ok
    after
      0 -> :ok
    end

    %{state | timer: nil, next_at: nil}
  end

  defp build_status(state) do
    modules =
      for info <- watched() do
        total = ModuleInfo.size(info)
        pruned = MapSet.size(info.pruned)

        code =
          cond do
            info.instrumented == info.original -> :original
            pruned > 0 -> :pruned
            true -> :instrumented
          end

        %{
          module: info.module,
          sites: total,
          pruned: pruned,
          remaining: total - pruned,
          code: code,
          versions: info.prunes,
          pruned_at: info.pruned_at
        }
      end

    next_in = if state.next_at, do: max(state.next_at - System.monotonic_time(:millisecond), 0)

    %{
      mode: :coverage,
      exact_counts: false,
      options: state.config,
      running: state.pass != nil,
      passes: state.passes,
      recompiled: state.recompiled,
      next_pass_in: next_in,
      last_pass: state.last_pass,
      modules: modules,
      deferred:
        state.deferred
        |> Enum.map(fn {m, d} -> Map.put(d, :module, m) end)
        |> Enum.sort_by(& &1.module),
      history: state.history
    }
  end

  defp frozen(counts, pruned) do
    counts
    |> Enum.with_index()
    |> Enum.map(fn {n, i} -> if MapSet.member?(pruned, i), do: max(n, 1), else: 0 end)
  end

  defp not_started do
    {:error,
     {:not_started,
      "LiveCov.Prune is not running; start the :live_cov application (LiveCov.start/2 does)"}}
  end
end
