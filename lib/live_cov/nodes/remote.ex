defmodule LiveCov.Nodes.Remote do
  @moduledoc false
  # The covered-node side of multi-node coverage (see `LiveCov.Nodes`).
  #
  # The main node starts one such process on every node it covers, over distribution. The
  # process registers the main node's slot ids in this node's counter table
  # (`LiveCov.Table.register_at/2`: the ids are baked into the instrumented binaries), loads the
  # main node's instrumented binaries, and answers the main node's reads, resets and restores.
  # It needs LiveCov's code and NIF on this node, not the `:live_cov` application.
  #
  # While it runs, `{:live_cov, :main_node}` (a persistent term) names the main node, and this
  # node refuses the main-node-only calls of `LiveCov` and `LiveCov.Cover`.
  use GenServer

  alias LiveCov.{Counter, Instrument, Table}

  # Bumped when the messages between the main node and this process change.
  @protocol 2
  @main_key {:live_cov, :main_node}

  @doc false
  def protocol, do: @protocol

  @doc "The main node this node is covered by, or `nil`."
  @spec main_node() :: node | nil
  def main_node, do: :persistent_term.get(@main_key, nil)

  @doc false
  # Called by the main node through :erpc. Returns {:ok, pid} or {:error, {kind, message}}.
  def start(main_node, main_pid, protocol) do
    cond do
      protocol != @protocol ->
        {:error,
         {:version_mismatch,
          "node #{node()} runs another LiveCov version (protocol #{@protocol}, " <>
            "main node #{main_node} uses #{protocol}): put the same LiveCov build on both"}}

      Table.check() != :ok ->
        {:error, {_, message}} = Table.check()
        {:error, {:nif_not_loaded, "on node #{node()}: " <> message}}

      LiveCov.Instrumented.modules() != [] ->
        {:error,
         {:node_busy,
          "node #{node()} has modules instrumented by its own LiveCov: run LiveCov.stop() " <>
            "there before covering it from #{main_node}"}}

      true ->
        start_or_adopt(main_node, main_pid)
    end
  end

  defp start_or_adopt(main_node, main_pid) do
    case GenServer.start(__MODULE__, {main_node, main_pid}, name: __MODULE__) do
      {:ok, pid} -> {:ok, pid}
      {:error, {:already_started, pid}} -> GenServer.call(pid, {:adopt, main_node, main_pid})
      {:error, reason} -> {:error, {:remote_failed, "on node #{node()}: #{inspect(reason)}"}}
    end
  end

  @impl true
  def init({main_node, main_pid}) do
    # Started from an :erpc process of the main node: keep I/O on this node.
    if user = Process.whereis(:user), do: Process.group_leader(self(), user)
    :persistent_term.put(@main_key, main_node)
    {:ok, %{main_node: main_node, main_pid: main_pid, modules: %{}}}
  end

  @impl true
  def handle_call({:adopt, main_node, main_pid}, _from, state) do
    cond do
      main_pid == state.main_pid ->
        {:reply, {:ok, self()}, state}

      main_node == state.main_node or not alive?(state.main_pid) ->
        # A new main (restarted, or the old one is gone): its slot ids mean something else.
        state = drop(Map.keys(state.modules), state)
        :persistent_term.put(@main_key, main_node)
        {:reply, {:ok, self()}, %{state | main_node: main_node, main_pid: main_pid}}

      true ->
        {:reply,
         {:error,
          {:other_main,
           "node #{node()} is covered by main node #{state.main_node}: run " <>
             "LiveCov.Cover.stop([#{inspect(node())}]) on #{state.main_node} first"}}, state}
    end
  end

  # Loads instrumented modules. Each: :kept (its counters go on), :fresh (counters start at
  # zero: first load, or the slot was lost, e.g. the node restarted) or {:error, reason}.
  def handle_call({:load, entries}, _from, state) do
    {results, state} = Enum.map_reduce(entries, state, &load/2)
    {:reply, {:ok, results}, state}
  end

  # Applies a pending reset, restores the modules the main node no longer covers and answers
  # which of the wanted {module, slot, nsites, md5} must be (re)loaded.
  def handle_call({:sync, reset, wanted}, _from, state) do
    state = do_reset(reset, state)
    state = drop(Map.keys(state.modules) -- Enum.map(wanted, &elem(&1, 0)), state)

    need =
      for {module, slot, n, md5} <- wanted,
          not (match?(%{slot: ^slot}, state.modules[module]) and slot_size(slot) == n and
                 loaded_md5(module) == md5),
          do: module

    {:reply, {:ok, need}, state}
  end

  # Counts of the given {module, slot}s as packed binaries, :missing when the slot is not here.
  def handle_call({:read, reset, slots}, _from, state) do
    state = do_reset(reset, state)

    counts =
      Map.new(slots, fn {module, slot} ->
        with %{slot: ^slot} <- state.modules[module],
             {:ok, bin} <- Counter.read_binary(slot) do
          {module, bin}
        else
          _ -> {module, :missing}
        end
      end)

    {:reply, {:ok, counts}, state}
  end

  def handle_call({:reset, which}, _from, state), do: {:reply, :ok, do_reset(which, state)}

  def handle_call({:remove, modules}, _from, state), do: {:reply, :ok, drop(modules, state)}

  def handle_call(:stop, _from, state) do
    state = drop(Map.keys(state.modules), state)
    {:stop, :normal, :ok, state}
  end

  def handle_call(:info, _from, state) do
    {:reply, %{main_node: state.main_node, modules: Map.keys(state.modules)}, state}
  end

  @impl true
  def terminate(_reason, _state) do
    :persistent_term.erase(@main_key)
    :ok
  end

  defp load(%{module: module, slot: slot, nsites: n} = entry, state) do
    old = state.modules[module]
    kept? = match?(%{slot: ^slot}, old) and slot_size(slot) == n

    cond do
      kept? and loaded_md5(module) == entry.md5 ->
        {{module, :kept}, state}

      kept? ->
        # Same counters, but the code was replaced here (e.g. reloaded, or a prune swap):
        # load this version.
        :ok = Counter.detach(slot)

        case Instrument.load(module, entry.binary, filename(old, entry)) do
          :ok ->
            :ok = Counter.attach(slot, module, backend(entry))
            {{module, :kept}, state}

          error ->
            _ = Counter.attach(slot, module, backend(entry), :now)
            {{module, error}, state}
        end

      true ->
        load_fresh(entry, old, state)
    end
  end

  defp load_fresh(%{module: module, slot: slot, nsites: n} = entry, old, state) do
    original = if old, do: old.original, else: original_code(module)
    record = %{slot: slot, original: original}

    if old, do: Counter.detach(old.slot)

    with {:ok, _} <- Counter.register_at(slot, n),
         :ok <- Instrument.load(module, entry.binary, filename(record, entry)) do
      # Loaded means recorded (so a stop restores it), whether or not the runtime's
      # counters could be followed.
      _ = Counter.attach(slot, module, backend(entry))
      if old && old.slot != slot, do: Counter.unregister(old.slot)
      {{module, :fresh}, put_in(state.modules[module], record)}
    else
      error ->
        if !old || old.slot != slot, do: Counter.unregister(slot)
        {{module, error}, state}
    end
  end

  # Restores this node's own code of the modules (when it has one) and frees their counters.
  defp drop(modules, state) do
    Enum.reduce(modules, state, fn module, state ->
      case Map.pop(state.modules, module) do
        {nil, _} ->
          state

        {record, rest} ->
          :ok = Counter.detach(record.slot)
          restore(module, record.original)
          _ = Counter.unregister(record.slot)
          %{state | modules: rest}
      end
    end)
  end

  defp restore(module, {binary, file}), do: Instrument.restore(module, binary, file)

  defp restore(module, nil) do
    # Not on this node's code path: leave nothing instrumented behind, kill nobody.
    _ = :code.soft_purge(module)
    _ = :code.delete(module)
  end

  defp do_reset(nil, state), do: state

  defp do_reset(which, state) do
    modules = if which == :all, do: Map.keys(state.modules), else: which

    for module <- modules, %{slot: slot} <- [state.modules[module]] do
      Counter.reset(slot)
    end

    state
  end

  defp original_code(module) do
    case :code.get_object_code(module) do
      {^module, binary, file} -> {binary, file}
      :error -> nil
    end
  end

  defp backend(entry), do: Map.get(entry, :backend, :nif)

  defp filename(%{original: {_, file}}, _entry), do: file
  defp filename(_, entry), do: entry.beam_path

  # The size only: no harvest needed (`LiveCov.Counter` reads harvest first).
  defp slot_size(slot) do
    case Table.read_binary(slot) do
      {:ok, bin} -> div(byte_size(bin), 8)
      _ -> nil
    end
  end

  defp loaded_md5(module) do
    if :erlang.module_loaded(module), do: module.module_info(:md5)
  end

  defp alive?(pid) when node(pid) == node(), do: Process.alive?(pid)

  defp alive?(pid) do
    node(pid) in Node.list() and :erpc.call(node(pid), Process, :alive?, [pid], 2_000)
  catch
    _, _ -> false
  end
end
