defmodule LiveCov.Gateway.Server do
  @moduledoc false
  # The gateway's core: pulls every source on the interval (in parallel, each within the
  # timeout; a failing source is retried after an exponential backoff and its last good data
  # is kept), keeps each source's data (`LiveCov.Gateway.Source`), starts and finishes runs
  # (`LiveCov.Gateway.Runs`), persists everything after each pull that changed something
  # (`LiveCov.Gateway.Store`) and publishes a read-only view in ETS (`LiveCov.Gateway.View`).
  use GenServer
  require Logger

  alias LiveCov.Gateway.{Config, Pull, Runs, Source, Store, View, ViewState}

  @call_timeout 600_000

  @doc false
  def start_link(%Config{} = config),
    do: GenServer.start_link(__MODULE__, config, name: __MODULE__)

  @doc "Pulls every source now (ignoring backoff): `%{name => :ok | {:error, {kind, msg}}}`."
  def pull, do: GenServer.call(__MODULE__, :pull, @call_timeout)

  @doc "Starts a run (`params` as `LiveCov.Gateway.Runs.params/2` gives)."
  def start_run(params), do: GenServer.call(__MODULE__, {:start_run, params}, @call_timeout)

  @doc "Takes the final pull of a run and records its results: `{:ok, run, %{service => snapshot}}`."
  def finish_run(id), do: GenServer.call(__MODULE__, {:finish_run, id}, @call_timeout)

  @doc "Records what publishing a finished run did."
  def record_publish(id, results),
    do: GenServer.call(__MODULE__, {:publish, id, results}, @call_timeout)

  @impl true
  def init(config) do
    table = :ets.new(View.table(), [:named_table, :public, :set, read_concurrency: true])
    {:ok, stored} = Store.load(config.data_dir)
    stored_sources = Map.get(stored, :sources, %{})

    sources =
      Map.new(config.sources, fn entry ->
        s = Source.new(entry)

        case Map.fetch(stored_sources, s.name) do
          {:ok, data} -> {s.name, restore(s, data)}
          :error -> {s.name, s}
        end
      end)

    state = %{
      config: config,
      table: table,
      sources: sources,
      # Data of sources no longer configured: kept (and persisted), not shown.
      orphans: Map.drop(stored_sources, Map.keys(sources)),
      runs: Map.get(stored, :runs, %{}),
      seq: Map.get(stored, :seq, 0),
      started_at: now(),
      version: 0
    }

    :ets.insert(
      table,
      {:config,
       %{config | token: nil, sources: Enum.map(config.sources, &Map.delete(&1, :token))}}
    )

    send(self(), :tick)
    {:ok, publish(state, Map.keys(sources))}
  end

  defp restore(s, data) do
    case Source.restore(s, data) do
      {:ok, s} ->
        s

      {:error, {_, msg}} ->
        Logger.error(
          "LiveCov gateway: stored data of #{s.name} is unreadable (#{msg}); starting it empty"
        )

        s
    end
  end

  @impl true
  def handle_info(:tick, state) do
    state = pull_sources(state, Map.keys(state.sources), force: false)
    Process.send_after(self(), :tick, state.config.interval)
    {:noreply, state}
  end

  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def handle_call(:pull, _from, state) do
    state = pull_sources(state, Map.keys(state.sources), force: true)
    {:reply, Map.new(state.sources, fn {n, s} -> {n, pull_result(s)} end), state}
  end

  def handle_call({:start_run, params}, _from, state) do
    names = for {n, s} <- state.sources, s.service in params.services, do: n
    state = pull_sources(state, names, force: true, reset: params.reset)
    seq = state.seq + 1
    id = Runs.new_id(seq)
    sources = Enum.map(names, &state.sources[&1])

    warnings =
      for s <- sources,
          s.status != :up,
          do: "#{s.name}: #{s.last_error || "no data yet"} (baseline: its last good data)"

    run = Runs.new(id, params, sources, now(), warnings)
    state = %{state | seq: seq, runs: Map.put(state.runs, id, run)}
    state = state |> persist() |> publish([])
    {:reply, {:ok, Runs.public(run)}, state}
  end

  def handle_call({:finish_run, id}, _from, state) do
    case Map.fetch(state.runs, id) do
      {:ok, %{status: "running"} = run} ->
        state = pull_sources(state, run.sources, force: true)

        warnings =
          for n <- run.sources,
              s = state.sources[n],
              s != nil,
              s.status != :up,
              do: "#{n}: #{s.last_error} (its last good data is used)"

        with {:ok, measured} <- Runs.measure(run, state.sources),
             :ok <- save_results(state.config.data_dir, id, measured),
             {:ok, summaries} <- summaries(measured, state.config) do
          run = Runs.finish(run, summaries, now(), warnings)
          state = %{state | runs: Map.put(state.runs, id, run)} |> persist() |> publish([])
          {:reply, {:ok, Runs.public(run), measured}, state}
        else
          {:error, _} = error -> {:reply, error, state}
        end

      {:ok, run} ->
        {:reply, {:error, {:conflict, "run #{id} already finished at #{run.finished_at}"}}, state}

      :error ->
        {:reply, {:error, {:not_found, "no run #{inspect(id)}"}}, state}
    end
  end

  def handle_call({:publish, id, results}, _from, state) do
    case Map.fetch(state.runs, id) do
      {:ok, run} ->
        run = %{run | publish: run.publish ++ results}
        state = %{state | runs: Map.put(state.runs, id, run)} |> persist() |> publish([])
        {:reply, :ok, state}

      :error ->
        {:reply, {:error, {:not_found, "no run #{inspect(id)}"}}, state}
    end
  end

  defp pull_result(%Source{status: :up}), do: :ok
  defp pull_result(s), do: {:error, s.last_error || "not pulled yet"}

  defp save_results(dir, id, measured) do
    Enum.reduce_while(measured, :ok, fn {service, snap}, :ok ->
      case Store.save_run(dir, id, service, snap) do
        :ok -> {:cont, :ok}
        error -> {:halt, error}
      end
    end)
  end

  defp summaries(measured, config) do
    Enum.reduce_while(measured, {:ok, %{}}, fn {service, snap}, {:ok, acc} ->
      case View.stats(snap, config) do
        {:ok, stats} -> {:cont, {:ok, Map.put(acc, service, View.summary(stats))}}
        error -> {:halt, error}
      end
    end)
  end

  ## Pulling

  defp pull_sources(state, names, opts) do
    {sources, changed} = Pull.run(state.sources, names, state.config, opts)
    state = %{state | sources: sources}
    state = if changed != [], do: persist(state), else: state
    publish(state, changed)
  end

  ## Persisting and publishing

  defp persist(state) do
    data = %{
      sources:
        Map.merge(state.orphans, Map.new(state.sources, fn {n, s} -> {n, Source.dump(s)} end)),
      runs: state.runs,
      seq: state.seq,
      saved_at: now()
    }

    case Store.save(state.config.data_dir, data) do
      :ok -> :ok
      {:error, {_, msg}} -> Logger.error("LiveCov gateway: could not persist the state: #{msg}")
    end

    state
  end

  defp publish(state, changed_names) do
    version = state.version + 1
    ViewState.put(state.table, state, changed_names, version)
    %{state | version: version}
  end

  defp now, do: System.os_time(:millisecond)
end
