defmodule LiveCov.Pipeline do
  @moduledoc false
  # The instrumentation pipeline and the only writer of the instrumented-module state
  # (`LiveCov.Instrumented`): for each target, fetch its forms, rewrite, compile (or take the
  # cached binary), load, record. Mutations (instrument, restore, prune swaps) are serialised
  # through this process; the work inside them runs in parallel across schedulers. After
  # each change the `LiveCov.Pipeline.Listener` modules the application wires are told.
  use GenServer

  alias LiveCov.{Counter, Instrument, Instrumented, ModuleInfo}
  alias LiveCov.Instrument.{Forms, Rewrite}

  @doc false
  def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @doc """
  Instruments each target (module atom or beam path), counted by the `backend:` option's
  backend (`LiveCov.Counter.resolve/1`). Returns one result per target, in order:
  `{:ok, module}` or `{:error, target, {kind, message}}`. A module that is instrumented again
  starts over from its original beam with fresh counters.
  """
  @spec instrument([module | Path.t()], keyword) :: [
          {:ok, module} | {:error, term, {atom, String.t()}}
        ]
  def instrument(targets, opts \\ []) do
    with {:ok, backend} <- Counter.resolve(opts[:backend], Keyword.get(opts, :mode, :counts)),
         opts = Keyword.put(opts, :backend, backend),
         :ok <- check_options(opts) do
      GenServer.call(__MODULE__, {:instrument, targets, opts}, :infinity)
    else
      {:error, reason} -> Enum.map(targets, &{:error, &1, reason})
    end
  end

  @doc "`:ok`, or `{:error, {:invalid_option, message}}` for an unknown compile profile."
  @spec check_options(keyword) :: :ok | {:error, {:invalid_option, String.t()}}
  def check_options(opts) do
    _ = Instrument.compile_options(opts)
    :ok
  rescue
    e in ArgumentError -> {:error, {:invalid_option, Exception.message(e)}}
  end

  @doc """
  Restores the original code of the given modules (all when `:all`) and frees their counters.

  Returns `%{restored: modules, still_running: [{module, pids}], failed: [{module, reason}]}`:
  `still_running` names processes that still execute the instrumented version (now old code);
  they are never killed and move on at their next fully qualified call. A module whose
  original cannot be loaded without killing a process (an even older version is still in
  use) stays instrumented and is listed under `failed`; stopping again retries it.
  """
  @spec restore([module] | :all) :: %{
          restored: [module],
          still_running: [{module, [pid]}],
          failed: [{module, {atom, String.t()}}]
        }
  def restore(modules), do: GenServer.call(__MODULE__, {:restore, modules}, :infinity)

  @doc """
  Swaps the loaded version of a coverage-mode `module` (still on `slot`) for `binary`, a
  version without the sites in `pruned`, or for its original beam when `binary` is
  `:original`, and records `pruned` (see `LiveCov.Prune`).

  The swap happens only when the version before the current one can be soft-purged (no
  process runs it): otherwise `{:error, {:old_code_in_use, message}}` and nothing changes.
  Returns `{:ok, info}` with the updated metadata, or `{:error, {:not_instrumented, _}}` when
  the module was stopped or instrumented again (new slot) meanwhile.
  """
  @spec prune(module, non_neg_integer, MapSet.t(), binary | :original) ::
          {:ok, ModuleInfo.t()} | {:error, {atom, String.t()}}
  def prune(module, slot, pruned, binary),
    do: GenServer.call(__MODULE__, {:prune, module, slot, pruned, binary}, :infinity)

  @doc "Marks the facade as started (for `:cover`-compatible `start/0` replies)."
  def mark_started, do: GenServer.call(__MODULE__, :mark_started)

  @doc "Clears the started mark (`:cover`-compatible `stop/0`)."
  def mark_stopped, do: GenServer.call(__MODULE__, :mark_stopped)

  @impl true
  def init(nil) do
    :ok = Instrumented.create()
    {:ok, %{started: false}}
  end

  @impl true
  def handle_call(:mark_started, _from, state) do
    reply = if state.started, do: {:error, {:already_started, self()}}, else: {:ok, self()}
    {:reply, reply, %{state | started: true}}
  end

  def handle_call(:mark_stopped, _from, state), do: {:reply, :ok, %{state | started: false}}

  # Three steps: in parallel, each module is found in the cache or compiled (not loaded);
  # then all are loaded in chunks (Instrument.load_many/1: one code-server commit per chunk);
  # then, in parallel again, each is recorded in the cache or its slot given back.
  def handle_call({:instrument, targets, opts}, _from, state) do
    prepared = Instrument.instrument_many(targets, &prepare_one(&1, opts))
    items = for {:load, _, i, _} <- prepared, do: i
    # A module instrumented again: its old slot's last counts are harvested before the swap.
    for %{module: m} <- items,
        %ModuleInfo{slot: old} <- [Instrumented.lookup(m)],
        do: Counter.detach(old)

    loads = Instrument.load_many(Enum.map(items, &load_item/1))

    for {info, :ok} <- Enum.zip(items, loads),
        do: Counter.attach(info.slot, info.module, info.backend)

    results =
      prepared
      |> attach(loads)
      |> Enum.zip(targets)
      |> Instrument.instrument_many(fn {item, target} -> finish_one(item, target, opts) end)
      |> tap(fn _ -> LiveCov.Cache.checkpoint(opts) end)
      |> Enum.zip(targets)
      |> Enum.map(fn
        {{:ok, %ModuleInfo{} = info}, _target} -> commit(info)
        {{:error, reason}, target} -> {:error, target, reason}
      end)

    # Listeners (covered remote nodes) follow.
    notify(:instrumented, for({:ok, module} <- results, do: Instrumented.lookup(module)))
    {:reply, results, %{state | started: true}}
  end

  def handle_call({:prune, module, slot, pruned, binary}, _from, state) do
    reply =
      case Instrumented.lookup(module) do
        %ModuleInfo{slot: ^slot} = info ->
          binary = if binary == :original, do: info.original, else: binary

          with :ok <- swap(info, binary) do
            # Frees the replaced version at once when nobody runs it (never kills).
            _ = :code.soft_purge(module)
            now = System.system_time(:millisecond)

            info = %{
              info
              | pruned: pruned,
                instrumented: binary,
                prunes: info.prunes + 1,
                pruned_at: now
            }

            Instrumented.put(info)
            {:ok, info}
          end

        _ ->
          {:error,
           {:not_instrumented,
            "#{inspect(module)} is not instrumented on slot #{slot} (stopped or instrumented " <>
              "again); nothing to prune"}}
      end

    {:reply, reply, state}
  end

  def handle_call({:restore, which}, _from, state) do
    infos =
      case which do
        :all -> Instrumented.modules()
        list -> list |> Enum.map(&Instrumented.lookup/1) |> Enum.reject(&is_nil/1)
      end

    result =
      Enum.reduce(infos, %{restored: [], still_running: [], failed: []}, fn info, acc ->
        :ok = Counter.detach(info.slot)

        case Instrument.restore(info.module, info.original, info.beam_path) do
          {:ok, pids} ->
            _ = Counter.unregister(info.slot)
            Instrumented.delete(info.module)
            acc = %{acc | restored: [info.module | acc.restored]}

            if pids == [],
              do: acc,
              else: %{acc | still_running: [{info.module, pids} | acc.still_running]}

          {:error, reason} ->
            # The module stays instrumented (and counted); a later stop tries again.
            _ = Counter.attach(info.slot, info.module, info.backend, :now)
            %{acc | failed: [{info.module, reason} | acc.failed]}
        end
      end)

    notify(:restored, result.restored)
    {:reply, Map.new(result, fn {k, v} -> {k, Enum.reverse(v)} end), state}
  end

  # A prune swap on the same slot: the runtime's counters of the old code are harvested
  # first, the new code's are followed from zero (or the old ones from now if nothing loaded).
  # Code still on the original beam (`binary` is the original) bumps nothing.
  defp swap(info, binary) do
    :ok = Counter.detach(info.slot)

    case Instrument.load(info.module, binary, info.beam_path) do
      :ok ->
        if binary != info.original, do: Counter.attach(info.slot, info.module, info.backend)
        :ok

      error ->
        _ = Counter.attach(info.slot, info.module, info.backend, :now)
        error
    end
  end

  # In a worker: a cache hit (slot claimed) or a compiled module, not loaded yet.
  defp prepare_one(target, opts) do
    with :ok <- not_counted_elsewhere(target) do
      case LiveCov.Cache.lookup(target, opts) do
        {:hit, info, entry} ->
          {:load, :hit, info, entry}

        {:miss, entry} ->
          with {:ok, info} <- compile_one(target, opts, &LiveCov.Cache.register(entry, &1)),
               do: {:load, :miss, info, entry}
      end
    end
  end

  # A module whose loaded code the runtime already counts lines of (compiled with
  # `line_coverage` by its owner, read by some other tool) is left alone: replacing it would
  # take that tool's counters away. (`:cover`-compiled modules are refused by
  # `LiveCov.Instrument.Forms`.)
  @compile {:no_warn_undefined, {:code, :get_coverage, 2}}
  defp not_counted_elsewhere(target) do
    module = if is_atom(target), do: target, else: beam_module_name(target)

    with true <- LiveCov.Runtime.native_coverage?(),
         true <- :erlang.module_loaded(module),
         nil <- Instrumented.lookup(module),
         true <- line_counted?(module) do
      {:error,
       {:native_coverage_in_use,
        "#{inspect(module)} is loaded with line coverage of its own (compiled with " <>
          "line_coverage, its counters read by another tool): LiveCov leaves it alone; load " <>
          "it without line_coverage, or stop that tool, to instrument it"}}
    else
      _ -> :ok
    end
  end

  defp line_counted?(module) do
    _ = :code.get_coverage(:line, module)
    true
  catch
    :error, :badarg -> false
  end

  defp beam_module_name(path) do
    path |> to_string() |> Path.basename(".beam") |> String.to_existing_atom()
  rescue
    ArgumentError -> nil
  end

  defp load_item(info), do: {info.module, info.instrumented, info.beam_path}

  # Pairs each prepared module with the result of its load.
  defp attach([{:load, _, _, _} = item | rest], [load | loads]),
    do: [{item, load} | attach(rest, loads)]

  defp attach([error | rest], loads), do: [{error, nil} | attach(rest, loads)]
  defp attach([], []), do: []

  # In a worker: the cache learns what happened; a failed load gives its slot back. A cached
  # binary that would not load (not because old code is in use) is compiled afresh.
  defp finish_one({{:load, :miss, info, entry}, :ok}, _target, _opts) do
    :ok = LiveCov.Cache.store(entry, info)
    {:ok, info}
  end

  defp finish_one({{:load, :hit, info, entry}, :ok}, _target, _opts) do
    :ok = LiveCov.Cache.loaded(entry, :ok)
    {:ok, info}
  end

  defp finish_one({{:load, kind, info, entry}, {:error, reason} = error}, target, opts) do
    _ = Counter.unregister(info.slot)

    case {kind, reason} do
      {:hit, {why, _}} when why != :old_code_in_use ->
        :ok = LiveCov.Cache.loaded(entry, error)

        with {:ok, info} <- compile_one(target, opts, &LiveCov.Cache.register(entry, &1)) do
          load = Instrument.load(info.module, info.instrumented, info.beam_path)
          if load == :ok, do: Counter.attach(info.slot, info.module, info.backend)
          finish_one({{:load, :miss, info, entry}, load}, target, opts)
        end

      _ ->
        error
    end
  end

  defp finish_one({error, nil}, _target, _opts), do: error

  defp compile_one(target, opts, register) do
    with {:ok, forms} <- Forms.fetch(target),
         {:ok, munged, sites, clauses} <- Rewrite.transform(forms.forms, forms.module),
         {:ok, slot} <- register.(length(sites)) do
      mode = Keyword.get(opts, :mode, :counts)

      with {:ok, binary} <- Instrument.compile(forms, munged, slot, opts) do
        {:ok,
         module_info(forms, {sites, clauses}, slot, binary,
           instrumented_at: System.system_time(:millisecond),
           mode: mode,
           backend: Keyword.fetch!(opts, :backend),
           cache: if(mode == :coverage, do: LiveCov.Instrument.Recipe.encode(forms, munged, opts))
         )}
      else
        error ->
          _ = Counter.unregister(slot)
          error
      end
    end
  end

  @doc false
  # The metadata of `forms` instrumented on `slot` as `binary` (plus `extra` fields).
  def module_info(%Forms{} = forms, {sites, clauses}, slot, binary, extra \\ []) do
    ModuleInfo.new(
      [
        module: forms.module,
        slot: slot,
        sites: sites,
        clauses: clauses,
        md5: forms.md5,
        beam_path: forms.beam_path,
        source: forms.source && to_string(forms.source),
        main_file: forms.main_file,
        original: forms.binary,
        instrumented: binary
      ] ++ extra
    )
  end

  # In this process: record the module, retiring the counters of a previous instrumentation.
  defp commit(%ModuleInfo{module: module} = info) do
    case Instrumented.lookup(module) do
      %ModuleInfo{slot: old} -> _ = Counter.unregister(old)
      nil -> :ok
    end

    Instrumented.put(info)
    {:ok, module}
  end

  @doc """
  Sets the `LiveCov.Pipeline.Listener` modules told about every change. The application
  wires them at start.
  """
  @spec put_listeners([module]) :: :ok
  def put_listeners(modules) when is_list(modules),
    do: :persistent_term.put({__MODULE__, :listeners}, modules)

  defp notify(_event, []), do: :ok

  defp notify(event, items) do
    for listener <- :persistent_term.get({__MODULE__, :listeners}, []),
        do: apply(listener, event, [items])

    :ok
  end
end
