defmodule LiveCov.Counts.Source do
  @moduledoc false
  # A source of counts beyond this node's table that `LiveCov.Counts` adds to every
  # analysis (today: `LiveCov.Nodes`, covered nodes; `LiveCov.Imported`, imported data of
  # the same build). Sources are wired by the application (`LiveCov.Application`).

  @doc "Counts of the given modules it knows: `%{module => [count]}` in site order."
  @callback counts([LiveCov.ModuleInfo.t()]) :: %{module => [non_neg_integer]}
end
