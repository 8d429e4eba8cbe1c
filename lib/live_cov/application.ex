defmodule LiveCov.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    children = [LiveCov.Registry]
    Supervisor.start_link(children, strategy: :one_for_one, name: LiveCov.Supervisor)
  end
end
