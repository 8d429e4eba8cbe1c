defmodule LiveCov.Counter.Harvester do
  @moduledoc false
  # Moves the growth of the runtime's line counters into the slots they feed (the `:native`
  # backend, `LiveCov.Counter.LineCounters`).
  #
  # One process per VM does every harvest, attach and detach, so a harvest's read of the
  # runtime's counters (`code:get_coverage(cover_id_line, M)`) and its update of the slot's
  # baseline (in the NIF) are never interleaved with another harvest or with a reload: a
  # counter below its baseline then means somebody else reset it (`code:reset_coverage/1`,
  # a `:cover` also running), which is counted and reported, never lost or subtracted.
  #
  # Which slots follow which module is kept in the NIF's table, not here, so the process
  # holds no state that matters: it is started on first use (also on covered nodes, which
  # run no `:live_cov` application) and a restart loses nothing but its report.
  use GenServer

  alias LiveCov.Native

  # OTP 27+; only slots attached on such a runtime are ever harvested.
  @compile {:no_warn_undefined, {:code, :get_coverage, 2}}

  @doc "Harvests `:all` natively counted slots, or the given ones (others are skipped)."
  @spec harvest(:all | [non_neg_integer]) :: :ok
  def harvest(which) do
    wanted =
      if which == :all,
        do: Native.native_slots(),
        else: for(slot <- which, entry = Native.native_source(slot), do: entry)

    if wanted == [], do: :ok, else: call({:harvest, wanted})
  end

  @doc "A last harvest of `slot`, then it stops following the runtime (no-op if it did not)."
  @spec detach(non_neg_integer) :: :ok
  def detach(slot) do
    case Native.native_source(slot) do
      nil -> :ok
      entry -> call({:detach, entry})
    end
  end

  @doc "`slot` follows `module`'s line counters from zero (`:load`) or from their values now."
  @spec attach(non_neg_integer, module, :load | :now) :: :ok | {:error, {atom, String.t()}}
  def attach(slot, module, since) when since in [:load, :now],
    do: call({:attach, slot, module, since})

  @doc """
  What the harvests saw: `harvests`, `last_ms` (the last one's duration), `reset_elsewhere`
  (`%{module => sites}` whose runtime counters went down: reset by another tool) and `lost`
  (`%{module => why}`: the code feeding a slot was replaced by somebody else).
  """
  @spec report() :: map
  def report do
    case Process.whereis(__MODULE__) do
      nil -> %{harvests: 0, last_ms: nil, reset_elsewhere: %{}, lost: %{}}
      pid -> GenServer.call(pid, :report, :infinity)
    end
  end

  defp call(message) do
    GenServer.call(ensure_started(), message, :infinity)
  end

  defp ensure_started do
    case Process.whereis(__MODULE__) do
      nil ->
        case GenServer.start(__MODULE__, nil, name: __MODULE__) do
          {:ok, pid} -> pid
          {:error, {:already_started, pid}} -> pid
        end

      pid ->
        pid
    end
  end

  @impl true
  def init(nil), do: {:ok, %{harvests: 0, last_ms: nil, reset_elsewhere: %{}, lost: %{}}}

  @impl true
  def handle_call({:harvest, slots}, _from, state) do
    t0 = System.monotonic_time()
    state = Enum.reduce(slots, state, &harvest_one/2)
    ms = System.convert_time_unit(System.monotonic_time() - t0, :native, :microsecond) / 1000
    {:reply, :ok, %{state | harvests: state.harvests + 1, last_ms: ms}}
  end

  def handle_call({:detach, {slot, _name, _md5} = entry}, _from, state) do
    state = harvest_one(entry, state)
    _ = Native.native_detach(slot)
    {:reply, :ok, state}
  end

  def handle_call({:attach, slot, module, since}, _from, state) do
    reply =
      with {:ok, md5} <- loaded_md5(module),
           {:ok, seen} <- if(since == :now, do: coverage(module), else: {:ok, []}),
           do: Native.native_attach(slot, Atom.to_string(module), md5, seen)

    {:reply, reply, %{state | lost: Map.delete(state.lost, module)}}
  end

  def handle_call(:report, _from, state), do: {:reply, state, state}

  defp harvest_one({slot, name, md5}, state) do
    # The atom exists: the module was loaded when the slot was attached.
    module = String.to_atom(name)

    with :ok <- same_code(module, md5, slot),
         {:ok, pairs} <- coverage(module),
         {:ok, {_added, went_back}} <- Native.native_harvest(slot, pairs) do
      if went_back > 0,
        do:
          update_in(
            state.reset_elsewhere,
            &Map.update(&1, module, went_back, fn n -> n + went_back end)
          ),
        else: state
    else
      {:error, {kind, message}} ->
        # Unknown slot: unregistered meanwhile, nothing to keep.
        if kind == :unknown_slot, do: state, else: put_in(state.lost[module], message)
    end
  end

  # The loaded code must be the version LiveCov attached: code loaded by somebody else (a
  # hot upgrade, `:cover` compiling the module) has counters of its own, which are not ours
  # to count. The slot then stops following it; its counts so far stay.
  defp same_code(module, md5, slot) do
    case loaded_md5(module) do
      {:ok, ^md5} ->
        :ok

      _ ->
        _ = Native.native_detach(slot)

        {:error,
         {:native_counters_gone,
          "#{inspect(module)} no longer runs the code LiveCov instrumented (reloaded, " <>
            "unloaded or cover-compiled by somebody else): its counts up to then are kept; " <>
            "instrument it again to go on counting"}}
    end
  end

  defp loaded_md5(module) do
    {:ok, :erlang.get_module_info(module, :md5)}
  rescue
    ArgumentError ->
      {:error, {:native_counters_gone, "#{inspect(module)} is not loaded: instrument it again"}}
  end

  defp coverage(module) do
    {:ok, :code.get_coverage(:cover_id_line, module)}
  catch
    :error, :badarg ->
      {:error,
       {:native_counters_gone,
        "the runtime has no line counters for #{inspect(module)}: its instrumented code was " <>
          "replaced or unloaded by somebody else; instrument it again"}}
  end
end
