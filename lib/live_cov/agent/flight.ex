defmodule LiveCov.Agent.Flight do
  @moduledoc false
  # Runs the agent's read-only computations (reports, coverage, metrics, status) so that many
  # concurrent requests cost little and never starve the application:
  #
  #   * **Coalescing, never stale** - requests for the same `key` that arrive while a
  #     computation for it cannot start at once wait together for the next one and share its
  #     result (so 200 concurrent `GET /report/lcov` render the report a few times, not 200
  #     times). A request never gets the result of a computation that started before it
  #     arrived: after `POST /reset`, a report reflects the reset.
  #   * **Bounded** - at most `max_concurrent` computations run at once; others wait in order.
  #   * **Low priority** - computations run in their own processes at `:low` priority, so the
  #     application's normal-priority processes get the schedulers first.
  #   * **Isolated** - a computation that raises or crashes answers its waiters
  #     `{:error, {:internal_error, message}}`; nothing else is affected.
  #
  # Results should be binaries (large binaries are shared between waiters, not copied).
  use GenServer
  require Logger

  @type result :: {:ok, term} | {:error, {atom, String.t()}}

  @doc false
  def start_link(opts) do
    name = Keyword.get(opts, :name, __MODULE__)
    GenServer.start_link(__MODULE__, Keyword.get(opts, :max_concurrent, 1), name: name)
  end

  @doc """
  Runs `fun` (returning `{:ok, value}` or `{:error, {kind, message}}`) under `key`: at once
  when a slot is free, else with the other requests for `key` in the next computation. Waits
  at most `timeout` ms: `{:error, {:timeout, message}}` after that (the computation goes on
  for the others).
  """
  @spec run(GenServer.server(), term, (() -> result), timeout) :: result
  def run(server \\ __MODULE__, key, fun, timeout) when is_function(fun, 0) do
    GenServer.call(server, {:run, key, fun}, timeout)
  catch
    :exit, {:timeout, _} ->
      {:error,
       {:timeout,
        "the computation did not finish within #{timeout} ms (node busy); retry later or " <>
          "raise the agent's request_timeout"}}

    :exit, {reason, _} when reason in [:noproc, :shutdown, :normal] ->
      {:error, {:agent_stopping, "the LiveCov agent is stopping; retry later"}}

    :exit, {{:shutdown, _}, _} ->
      {:error, {:agent_stopping, "the LiveCov agent is stopping; retry later"}}
  end

  @doc "Running and queued computations (for tests and diagnostics)."
  def info(server \\ __MODULE__), do: GenServer.call(server, :info)

  @impl true
  def init(max) do
    # running: ref => waiters; next: key => {fun, waiters} for the next run of key;
    # queue: keys of `next` in arrival order.
    {:ok, %{max: max, running: %{}, next: %{}, queue: :queue.new()}}
  end

  @impl true
  def handle_call({:run, key, fun}, from, state) do
    cond do
      Map.has_key?(state.next, key) ->
        {:noreply, update_in(state.next[key], fn {f, ws} -> {f, [from | ws]} end)}

      map_size(state.running) < state.max ->
        {:noreply, spawn_worker(state, fun, [from])}

      true ->
        state = %{state | queue: :queue.in(key, state.queue)}
        {:noreply, put_in(state.next[key], {fun, [from]})}
    end
  end

  def handle_call(:info, _from, state) do
    {:reply, %{running: map_size(state.running), queued: :queue.len(state.queue)}, state}
  end

  @impl true
  def handle_info({:DOWN, ref, :process, _pid, reason}, state) do
    case Map.pop(state.running, ref) do
      {nil, _} ->
        {:noreply, state}

      {waiters, running} ->
        result = result_of(reason)
        Enum.each(waiters, &GenServer.reply(&1, result))
        {:noreply, start_queued(%{state | running: running})}
    end
  end

  def handle_info(_other, state), do: {:noreply, state}

  defp spawn_worker(state, fun, waiters) do
    {_pid, ref} =
      spawn_monitor(fn ->
        Process.flag(:priority, :low)
        exit({:shutdown, {:flight_result, safe(fun)}})
      end)

    %{state | running: Map.put(state.running, ref, waiters)}
  end

  defp start_queued(state) do
    if map_size(state.running) < state.max do
      case :queue.out(state.queue) do
        {{:value, key}, queue} ->
          {{fun, waiters}, next} = Map.pop(state.next, key)

          %{state | queue: queue, next: next}
          |> spawn_worker(fun, waiters)
          |> start_queued()

        {:empty, _} ->
          state
      end
    else
      state
    end
  end

  defp safe(fun) do
    case fun.() do
      {:ok, _} = ok -> ok
      {:error, {kind, msg}} = err when is_atom(kind) and is_binary(msg) -> err
      other -> {:error, {:internal_error, "unexpected result: #{inspect(other, limit: 5)}"}}
    end
  rescue
    e ->
      message = Exception.message(e)
      Logger.warning("LiveCov agent: a computation raised: #{message}")
      {:error, {:internal_error, "the computation raised: #{message}"}}
  catch
    kind, reason ->
      Logger.warning("LiveCov agent: a computation failed: #{inspect({kind, reason})}")
      {:error, {:internal_error, "the computation failed: #{inspect({kind, reason}, limit: 5)}"}}
  end

  defp result_of({:shutdown, {:flight_result, result}}), do: result

  defp result_of(reason) do
    Logger.warning("LiveCov agent: a computation died: #{inspect(reason)}")
    {:error, {:internal_error, "the computation died: #{inspect(reason, limit: 5)}"}}
  end
end
