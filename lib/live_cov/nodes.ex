defmodule LiveCov.Nodes do
  @moduledoc false
  # Coverage across a cluster: the main node's list of covered nodes and their counts.
  #
  # The main node is where modules are instrumented and analysed. Each covered node runs a
  # `LiveCov.Nodes.Remote` process that loads the main node's instrumented binaries and bumps
  # its own counter table under the main node's slot ids. Analysis (`LiveCov.Counts.collect/1`)
  # adds every node's counts to the main node's own.
  #
  # Counts are pulled, never pushed: every analysis and every `flush/1` reads each reachable
  # node's counters (without zeroing them) and caches them per node, module and instrumentation
  # (slot). So:
  #
  #   * a node that goes down keeps contributing what was last collected from it;
  #   * when it comes back it is synchronised: if it kept running (a network split) its
  #     counters simply go on; if it restarted, the modules are instrumented there again, its
  #     counters start from zero and the counts collected before are kept and added;
  #   * a node that does not answer within `:node_timeout` ms (application env, default
  #     5000) is reported (a warning, and `hung: true` in `status/0`) and its cached
  #     counts are used; collection never waits longer for it.
  #
  # Counts bumped on a node after the last collection and before it dies are lost, as with
  # `:cover`: `flush/1` collects on demand.
  use GenServer

  @behaviour LiveCov.Counts.Source
  @behaviour LiveCov.Pipeline.Listener

  require Logger

  alias LiveCov.{Counts, Instrumented, ModuleInfo, Table}
  alias LiveCov.Nodes.{Calls, Remote}

  # Modules sent to a node per call: bounds the size of one distribution message.
  @chunk 10

  @type node_error :: {atom, String.t()}

  @doc false
  def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @doc "The main node: this node, unless it is covered by another node."
  defdelegate main_node(), to: LiveCov.MainNode

  ## Node management

  @doc """
  Starts coverage on `nodes`: every instrumented module is loaded there and counted from now
  on. This node and nodes already covered are left out. Returns `{started, failed}`; a failed
  node is reported with a message naming it and the fix (and logged as a warning).
  """
  @spec start_nodes(node | [node]) :: {[node], [{node, node_error}]}
  def start_nodes(nodes), do: call({:start, List.wrap(nodes)}, {[], []})

  @doc """
  Stops coverage on `nodes` (`:all`: every node): their counts are collected one last time
  and kept, their original code is restored, and they are no longer covered.
  """
  @spec stop_nodes(node | [node] | :all) :: :ok
  def stop_nodes(nodes), do: call({:stop, nodes_arg(nodes)}, :ok)

  @doc "Collects the current counts of `nodes` now, so they are kept should the nodes die."
  @spec flush(node | [node]) :: :ok
  def flush(nodes), do: call({:flush, List.wrap(nodes)}, :ok)

  @doc """
  Covered nodes that are up, in `:cover`'s order (started nodes are added in reverse order
  after the known ones; a node that comes back is put first).
  """
  @spec which_nodes() :: [node]
  def which_nodes, do: call(:which_nodes, [])

  @doc """
  Every known node: `%{node => %{status: :up | :lost, hung: boolean, error: nil | {kind,
  message}, modules: [module]}}` where `modules` are those with counts cached from the node.
  """
  @spec status() :: %{node => map}
  def status, do: call(:status, %{})

  ## Hooks for LiveCov.Counts, LiveCov.Pipeline and the facades

  @doc "Counts of the given modules on all covered nodes, pulled now: `%{module => [count]}`."
  @impl LiveCov.Counts.Source
  @spec counts([ModuleInfo.t()]) :: %{module => [non_neg_integer]}
  def counts([]), do: %{}
  def counts(infos), do: call({:counts, slots(infos)}, %{})

  @impl LiveCov.Pipeline.Listener
  def instrumented(infos), do: distribute(infos)

  @impl LiveCov.Pipeline.Listener
  def restored(modules), do: remove(modules)

  @doc "Loads newly instrumented modules on every covered node."
  @spec distribute([ModuleInfo.t()]) :: :ok
  def distribute([]), do: :ok
  def distribute(infos), do: call({:distribute, infos}, :ok)

  @doc "Restores the original code of `modules` on every covered node and forgets their counts."
  @spec remove([module]) :: :ok
  def remove([]), do: :ok
  def remove(modules), do: call({:remove, modules}, :ok)

  @doc """
  Zeroes the counters of `modules` (`:all`: every module) on every covered node and forgets
  their cached counts. A node that cannot be reached now is reset when it next answers.
  """
  @spec reset([module] | :all) :: :ok
  def reset([]), do: :ok
  def reset(which), do: call({:reset, which}, :ok)

  defp call(request, default) do
    case GenServer.whereis(__MODULE__) do
      nil -> default
      pid -> GenServer.call(pid, request, :infinity)
    end
  catch
    :exit, _ -> default
  end

  defp nodes_arg(:all), do: :all
  defp nodes_arg(nodes), do: List.wrap(nodes)

  defp slots(infos), do: Enum.map(infos, &{&1.module, &1.slot})

  defp timeout, do: Application.get_env(:live_cov, :node_timeout, 5_000)
  defp load_timeout, do: Application.get_env(:live_cov, :node_load_timeout, 60_000)

  ## Server

  # State:
  #   nodes:  node => node entry (see new_entry/0)
  #   order:  the covered nodes that are up, in which_nodes/0 order
  #   banked: counts kept from stopped nodes and from earlier lives of restarted nodes,
  #           module => {slot, counts}
  # A node entry:
  #   last:     module => {slot, counts}, the counts last collected from the node's current life
  #   refused:  module => slot, modules the node failed to load (not retried until resync)
  #   pending_reset: nil | :all | [module], a reset the node has not applied yet
  #   unsynced: true when the node missed a load or a removal (synchronised when it answers)
  @impl true
  def init(nil) do
    {:ok, monitor_nodes(%{nodes: %{}, order: [], banked: %{}, net_kernel: nil})}
  end

  defp new_entry do
    %{
      status: :lost,
      pid: nil,
      ref: nil,
      last: %{},
      refused: %{},
      pending_reset: nil,
      unsynced: false,
      hung: false,
      error: nil
    }
  end

  @impl true
  def handle_call({:start, nodes}, _from, state) do
    state = monitor_nodes(state)

    {started, failed, state} =
      nodes
      |> Enum.uniq()
      |> Enum.reduce({[], [], state}, fn n, {ok, failed, state} ->
        cond do
          n == node() ->
            {ok, failed, state}

          not is_atom(n) ->
            reason =
              {:bad_node, "#{inspect(n)} is not a node name: give an atom like :\"a@host\""}

            {ok, [{n, reason} | failed], state}

          match?(%{status: :up}, state.nodes[n]) ->
            {ok, failed, state}

          true ->
            case connect(n, state) do
              {:ok, state} ->
                {[n | ok], failed, state}

              {:error, {_, message} = reason, state} ->
                Logger.warning("LiveCov: could not start coverage on node #{n}: #{message}")
                {ok, [{n, reason} | failed], state}
            end
        end
      end)

    # As :cover: the started nodes, last first, after the known ones.
    {:reply, {started, Enum.reverse(failed)}, %{state | order: state.order ++ started}}
  end

  def handle_call({:stop, which}, _from, state) do
    nodes = if which == :all, do: Map.keys(state.nodes), else: which
    state = pull(state, nodes, slots(Instrumented.modules()))

    state =
      Enum.reduce(nodes, state, fn n, state ->
        case state.nodes[n] do
          nil ->
            state

          entry ->
            if entry.ref, do: Process.demonitor(entry.ref, [:flush])

            with :up <- entry.status,
                 {:error, {_, message}} <- Calls.remote_call(n, :stop, timeout()) do
              Logger.warning("LiveCov: node #{n} could not restore its code: #{message}")
            end

            state = bank(state, n, Map.keys(entry.last))
            %{state | nodes: Map.delete(state.nodes, n), order: List.delete(state.order, n)}
        end
      end)

    {:reply, :ok, state}
  end

  def handle_call({:flush, nodes}, _from, state) do
    {:reply, :ok, pull(state, nodes, slots(Instrumented.modules()))}
  end

  def handle_call(:which_nodes, _from, state), do: {:reply, state.order, state}

  def handle_call(:status, _from, state) do
    status =
      Map.new(state.nodes, fn {n, e} ->
        {n, %{status: e.status, hung: e.hung, error: e.error, modules: Map.keys(e.last)}}
      end)

    {:reply, status, state}
  end

  def handle_call({:counts, slots}, _from, state) do
    state = pull(state, state.order, slots)
    {:reply, sum(state, slots), state}
  end

  def handle_call({:distribute, infos}, _from, state) do
    state = prune(state, infos)
    {:reply, :ok, load(state, state.order, infos)}
  end

  def handle_call({:remove, modules}, _from, state) do
    state =
      state.order
      |> Calls.parallel(&Calls.remote_call(&1, {:remove, modules}, timeout()))
      |> Enum.reduce(state, fn
        {_n, :ok}, state -> state
        {n, {:error, reason}}, state -> failed(unsynced(state, n), n, reason)
      end)

    forget = fn e ->
      %{e | last: Map.drop(e.last, modules), refused: Map.drop(e.refused, modules)}
    end

    nodes = Map.new(state.nodes, fn {n, e} -> {n, forget.(e)} end)
    {:reply, :ok, %{state | nodes: nodes, banked: Map.drop(state.banked, modules)}}
  end

  def handle_call({:reset, which}, _from, state) do
    forget = fn map -> if which == :all, do: %{}, else: Map.drop(map, which) end

    nodes =
      Map.new(state.nodes, fn {n, e} ->
        {n, %{e | last: forget.(e.last), pending_reset: merge_reset(e.pending_reset, which)}}
      end)

    state = %{state | nodes: nodes, banked: forget.(state.banked)}

    state =
      state.order
      |> Calls.parallel(
        &Calls.remote_call(&1, {:reset, state.nodes[&1].pending_reset}, timeout())
      )
      |> Enum.reduce(state, fn
        {n, :ok}, state -> update(state, n, &%{&1 | pending_reset: nil, hung: false})
        {n, {:error, reason}}, state -> failed(state, n, reason)
      end)

    {:reply, :ok, state}
  end

  @impl true
  def handle_info({:nodedown, n}, state), do: {:noreply, lost(state, n)}

  def handle_info({:nodeup, n}, state), do: {:noreply, resync(state, n, 3)}
  def handle_info({:retry, n, tries}, state), do: {:noreply, resync(state, n, tries)}

  def handle_info({:DOWN, ref, :process, _pid, reason}, state) do
    case Enum.find(state.nodes, fn {_, e} -> e.ref == ref end) do
      nil ->
        {:noreply, state}

      {n, _} ->
        state = lost(update(state, n, &%{&1 | ref: nil}), n)
        # LiveCov stopped on a node that is still connected: no nodeup will come.
        if reason != :noconnection, do: send(self(), {:retry, n, 1})
        {:noreply, state}
    end
  end

  def handle_info(_message, state), do: {:noreply, state}

  ## Connecting and synchronising

  defp monitor_nodes(state) do
    case Process.whereis(:net_kernel) do
      nil ->
        state

      pid when pid == state.net_kernel ->
        state

      pid ->
        :ok = :net_kernel.monitor_nodes(true)
        %{state | net_kernel: pid}
    end
  end

  # Starts (or finds) the remote side on `n` and brings it in line with the instrumented
  # modules. A node that was not known before is forgotten again when this fails.
  defp connect(n, state) do
    known? = Map.has_key?(state.nodes, n)
    state = if known?, do: state, else: put_in(state.nodes[n], new_entry())

    with :ok <- check_distributed(),
         :ok <- check_code(n),
         {:ok, pid} <-
           Calls.erpc(n, Remote, :start, [node(), self(), Remote.protocol()], timeout()) do
      old = state.nodes[n].ref
      if old, do: Process.demonitor(old, [:flush])
      ref = Process.monitor(pid)

      state =
        update(state, n, &%{&1 | status: :up, pid: pid, ref: ref, refused: %{}, hung: false})

      # Covered from now on; what sync/2 could not do is done when the node next answers.
      {:ok, sync(state, n)}
    else
      {:error, reason} ->
        state =
          if known?,
            do: update(state, n, &%{&1 | error: reason}),
            else: %{state | nodes: Map.delete(state.nodes, n)}

        {:error, reason, state}
    end
  end

  # Only nodes that went down while covered come back by themselves.
  defp resync(state, n, tries) do
    case state.nodes[n] do
      %{status: :lost} -> do_resync(state, n, tries)
      _ -> state
    end
  end

  defp do_resync(state, n, tries) do
    case connect(n, state) do
      {:ok, state} ->
        Logger.info("LiveCov: node #{n} is back and synchronised")
        %{state | order: [n | List.delete(state.order, n)]}

      {:error, {kind, message}, state} ->
        if tries > 1 and kind in [:timeout, :nodedown, :remote_failed] do
          Process.send_after(self(), {:retry, n, tries - 1}, 500)
        else
          Logger.warning("LiveCov: node #{n} is back but could not be synchronised: #{message}")
        end

        lost(state, n)
    end
  end

  # Applies a pending reset, restores modules no longer instrumented, and loads the ones the
  # node lacks (a node that restarted lacks them all).
  defp sync(state, n) do
    infos = Enum.filter(Instrumented.modules(), & &1.instrumented)
    wanted = Enum.map(infos, &{&1.module, &1.slot, ModuleInfo.size(&1), md5(&1)})

    case Calls.remote_call(n, {:sync, state.nodes[n].pending_reset, wanted}, timeout()) do
      {:ok, need} ->
        state = update(state, n, &%{&1 | pending_reset: nil, unsynced: false})
        load(state, [n], Enum.filter(infos, &(&1.module in need)))

      {:error, reason} ->
        failed(unsynced(state, n), n, reason)
    end
  end

  defp check_distributed do
    if Node.alive?(),
      do: :ok,
      else:
        {:error,
         {:not_distributed,
          "this node is not distributed: start it with --sname or --name (or Node.start/2) " <>
            "to cover other nodes"}}
  end

  defp check_code(n) do
    case Calls.erpc(n, :code, :ensure_loaded, [Remote], timeout()) do
      {:module, Remote} ->
        :ok

      {:error, {_, _}} = error ->
        error

      {:error, _} ->
        ebin = :code.which(Remote) |> to_string() |> Path.dirname()

        {:error,
         {:live_cov_not_on_path,
          "node #{n} cannot load LiveCov (#{inspect(Remote)} is not on its code path): " <>
            "start it with `-pa #{ebin}` (or add :live_cov to its release), or run " <>
            ":code.add_patha(#{inspect(String.to_charlist(ebin))}) there, then retry"}}
    end
  end

  # Loads `infos` on `nodes`, in parallel. A module whose counters start over on a node has
  # what was collected from it before kept (banked). Hung nodes are skipped and synchronised
  # when they answer again.
  defp load(state, [], _infos), do: state

  defp load(state, nodes, infos) do
    infos = Enum.filter(infos, & &1.instrumented)
    {hung, nodes} = Enum.split_with(nodes, &state.nodes[&1].hung)
    state = Enum.reduce(hung, state, &unsynced(&2, &1))
    chunks = infos |> Enum.map(&entry/1) |> Enum.chunk_every(@chunk)
    slots = Map.new(infos, &{&1.module, &1.slot})

    if chunks == [] or nodes == [] do
      state
    else
      nodes
      |> Calls.parallel(&load_chunks(&1, chunks, []))
      |> Enum.reduce(state, fn {n, {results, error}}, state ->
        state = Enum.reduce(results, state, &loaded(&2, n, &1, slots))
        if error, do: failed(unsynced(state, n), n, error), else: state
      end)
    end
  end

  defp load_chunks(_n, [], acc), do: {acc, nil}

  defp load_chunks(n, [entries | rest], acc) do
    case Calls.remote_call(n, {:load, entries}, load_timeout()) do
      {:ok, results} -> load_chunks(n, rest, acc ++ results)
      {:error, reason} -> {acc, reason}
    end
  end

  defp entry(%ModuleInfo{} = info) do
    %{
      module: info.module,
      slot: info.slot,
      nsites: ModuleInfo.size(info),
      md5: md5(info),
      binary: info.instrumented,
      beam_path: info.beam_path,
      # The original beam (a fully pruned module) counts nothing.
      backend: if(info.instrumented == info.original, do: :nif, else: info.backend)
    }
  end

  # The md5 the instrumented module reports as module_info(:md5) once loaded.
  defp md5(%ModuleInfo{instrumented: binary}) do
    {:ok, {_, md5}} = :beam_lib.md5(binary)
    md5
  end

  defp loaded(state, n, {module, :kept}, _slots) do
    update(state, n, &%{&1 | refused: Map.delete(&1.refused, module)})
  end

  defp loaded(state, n, {module, :fresh}, _slots) do
    state = update(state, n, &%{&1 | refused: Map.delete(&1.refused, module)})
    bank(state, n, [module])
  end

  defp loaded(state, n, {module, {:error, {_, message}}}, slots) do
    Logger.warning(
      "LiveCov: #{inspect(module)} could not be instrumented on node #{n}: #{message}"
    )

    update(state, n, &%{&1 | refused: Map.put(&1.refused, module, slots[module])})
  end

  ## Collecting

  # Reads the counters of `slots` ({module, slot}) on those of `nodes` that are up, in
  # parallel, each within the timeout. A node that answers and missed something is synchronised.
  defp pull(state, nodes, slots) do
    up = for n <- nodes, match?(%{status: :up}, state.nodes[n]), do: n
    t = timeout()

    up
    |> Calls.parallel(&Calls.remote_call(&1, {:read, state.nodes[&1].pending_reset, slots}, t))
    |> Enum.reduce(state, fn
      {n, {:ok, counts}}, state ->
        state = merge(state, n, slots, counts)
        if state.nodes[n].unsynced, do: sync(state, n), else: state

      {n, {:error, reason}}, state ->
        failed(state, n, reason)
    end)
  end

  defp merge(state, n, slots, counts) do
    state = update(state, n, &%{&1 | pending_reset: nil, hung: false, error: nil})

    Enum.reduce(slots, state, fn {module, slot}, state ->
      case Map.get(counts, module) do
        bin when is_binary(bin) ->
          update(state, n, fn e ->
            %{e | last: Map.put(e.last, module, {slot, Table.decode(bin)})}
          end)

        _missing ->
          # The node does not have these counters (any more): keep what was collected, and
          # load the module there again unless it refused it.
          state = bank(state, n, [module])

          if state.nodes[n].refused[module] == slot,
            do: state,
            else: unsynced(state, n)
      end
    end)
  end

  # Moves node `n`'s cached counts of `modules` into the kept-for-good part. Slots only grow,
  # so of two different instrumentations the later one wins.
  defp bank(state, n, modules) do
    e = state.nodes[n]

    banked =
      Enum.reduce(modules, state.banked, fn m, banked ->
        case {e.last[m], banked[m]} do
          {nil, _} -> banked
          {{slot, c}, {slot, b}} -> Map.put(banked, m, {slot, Counts.add(b, c)})
          {{slot, _}, {other, _}} when other > slot -> banked
          {last, _} -> Map.put(banked, m, last)
        end
      end)

    nodes = Map.put(state.nodes, n, %{e | last: Map.drop(e.last, modules)})
    %{state | banked: banked, nodes: nodes}
  end

  # Forgets cached counts of earlier instrumentations of these modules.
  defp prune(state, infos) do
    current = Map.new(infos, &{&1.module, &1.slot})
    stale? = fn {m, {slot, _}} -> Map.get(current, m, slot) != slot end
    nodes = Map.new(state.nodes, fn {n, e} -> {n, %{e | last: Map.reject(e.last, stale?)}} end)
    %{state | nodes: nodes, banked: Map.reject(state.banked, stale?)}
  end

  defp sum(state, slots) do
    Enum.reduce(slots, %{}, fn {m, slot}, acc ->
      parts = [state.banked[m] | Enum.map(state.nodes, fn {_, e} -> e.last[m] end)]

      case for({^slot, counts} <- parts, do: counts) do
        [] -> acc
        [first | rest] -> Map.put(acc, m, Enum.reduce(rest, first, &Counts.add/2))
      end
    end)
  end

  ## Node state

  defp lost(state, n) do
    case state.nodes[n] do
      %{status: :up} ->
        Logger.warning("LiveCov: node #{n} is down; keeping the counts collected from it")
        state = update(state, n, &%{&1 | status: :lost, hung: false})
        %{state | order: List.delete(state.order, n)}

      nil ->
        state

      _ ->
        %{state | order: List.delete(state.order, n)}
    end
  end

  defp failed(state, n, {kind, message} = reason) do
    Logger.warning("LiveCov: node #{n}: #{message}; using the counts last collected from it")
    update(state, n, &%{&1 | error: reason, hung: kind == :timeout})
  end

  defp unsynced(state, n), do: update(state, n, &%{&1 | unsynced: true})

  defp update(state, n, fun), do: %{state | nodes: Map.update!(state.nodes, n, fun)}

  defp merge_reset(_, :all), do: :all
  defp merge_reset(:all, _), do: :all
  defp merge_reset(nil, modules), do: modules
  defp merge_reset(old, modules), do: Enum.uniq(old ++ modules)
end
