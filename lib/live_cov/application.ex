defmodule LiveCov.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    children = [LiveCov.Pipeline, LiveCov.Imported, LiveCov.Prune, LiveCov.Nodes, LiveCov.Dumps]

    # The agent's supervisor (empty until the agent runs) comes last.
    children = children ++ [LiveCov.Agent.Supervisor]

    # The seams: counts beyond this node's table, who follows the pipeline. (The counter
    # backends, `LiveCov.Counter`, need no wiring: covered nodes use them without the app.)
    :ok = LiveCov.Counts.put_sources([LiveCov.Nodes, LiveCov.Imported])
    :ok = LiveCov.Pipeline.put_listeners([LiveCov.Nodes])

    with {:ok, pid} <-
           Supervisor.start_link(children, strategy: :one_for_one, name: LiveCov.Supervisor) do
      # Starts the HTTP agent when `config :live_cov, :agent` asks for it (never fatal).
      :ok = LiveCov.Agent.boot()
      {:ok, pid}
    end
  end
end
