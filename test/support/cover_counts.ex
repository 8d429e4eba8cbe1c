defmodule LiveCov.Test.CoverCounts do
  @moduledoc """
  The counters of a module cover-compiled by the running OTP's `:cover`, read the way that
  `:cover` reads them: its `counters` array (OTP 25, or an OTP 27+ emulator without the
  JIT) or the VM's native line counters (`code:get_coverage(cover_id_line, M)`, duplicated
  ids summed). Index `i` (from 1) of cover is element `i - 1` of the list.
  """

  @doc "Counts 1..n of `module`'s cover counters."
  def counts(module, n) do
    case :persistent_term.get({:cover, module}, nil) do
      nil ->
        native = apply(:code, :get_coverage, [:cover_id_line, module])
        sums = Enum.reduce(native, %{}, fn {id, c}, acc -> Map.update(acc, id, c, &(&1 + c)) end)
        for i <- 1..n, do: Map.get(sums, i, 0)

      cref ->
        for i <- 1..n, do: :counters.get(cref, i)
    end
  end
end
