defmodule LiveCov.Agent.Supervisor do
  @moduledoc false
  # Where the agent runs: a `DynamicSupervisor` under LiveCov's supervisor, empty until the
  # agent is configured or started. An agent that keeps crashing is given up after a few
  # restarts (this supervisor then restarts empty), so it can never take LiveCov or the node
  # down with it.
  use DynamicSupervisor

  @doc false
  def start_link(_),
    do: DynamicSupervisor.start_link(__MODULE__, nil, name: __MODULE__)

  @impl true
  def init(nil),
    do: DynamicSupervisor.init(strategy: :one_for_one, max_restarts: 3, max_seconds: 30)
end
