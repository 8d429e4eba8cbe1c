defmodule LiveCov.Nodes.Calls do
  @moduledoc false
  # Calls from the main node to covered nodes, always bounded by a timeout; a failure is
  # `{:error, {kind, message}}` naming the node and the fix, never an exit.

  alias LiveCov.Nodes.Remote

  def parallel(nodes, fun) do
    nodes
    |> Task.async_stream(&{&1, fun.(&1)},
      timeout: :infinity,
      max_concurrency: max(length(nodes), 1)
    )
    |> Enum.map(fn {:ok, result} -> result end)
  end

  def remote_call(n, request, t) do
    GenServer.call({Remote, n}, request, t)
  catch
    :exit, reason -> {:error, exit_reason(n, reason, t)}
  end

  def erpc(n, m, f, a, t) do
    :erpc.call(n, m, f, a, t)
  catch
    :error, {:erpc, reason} ->
      {:error, exit_reason(n, reason, t)}

    kind, reason ->
      {:error, {:remote_failed, "node #{n}: #{Exception.format_banner(kind, reason)}"}}
  end

  defp exit_reason(n, {:timeout, _}, t), do: exit_reason(n, :timeout, t)

  defp exit_reason(n, :timeout, t),
    do: {:timeout, "node #{n} did not answer within #{t} ms (see the :node_timeout setting)"}

  defp exit_reason(n, {{:nodedown, _}, _}, t), do: exit_reason(n, :noconnection, t)

  defp exit_reason(n, :noconnection, _),
    do: {:nodedown, "node #{n} is not reachable: check that it runs, its name and its cookie"}

  defp exit_reason(n, {:noproc, _}, _),
    do: {:remote_failed, "LiveCov is not running on node #{n}"}

  defp exit_reason(n, reason, _), do: {:remote_failed, "node #{n}: #{inspect(reason)}"}
end
