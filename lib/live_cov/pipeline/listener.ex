defmodule LiveCov.Pipeline.Listener do
  @moduledoc false
  # Told by `LiveCov.Pipeline` what it instrumented and restored, after each change, so other
  # parts can follow (today: `LiveCov.Nodes`, which loads and restores the same modules on
  # the covered nodes). Listeners are wired by the application (`LiveCov.Application`).

  @doc "Modules newly instrumented here, their module info."
  @callback instrumented([LiveCov.ModuleInfo.t()]) :: :ok | {:error, term}

  @doc "Modules whose original code was restored here."
  @callback restored([module]) :: :ok | {:error, term}
end
