defmodule LiveCov.Counter.Nif do
  @moduledoc false
  # The NIF backend: each site calls `LiveCov.Native.bump(slot, index)` with literal small
  # integers, one relaxed atomic add on the calling scheduler's shard of the slot. Works on
  # every runtime LiveCov supports.

  @behaviour LiveCov.Counter.Backend

  @impl true
  def name, do: :nif

  @impl true
  def check, do: LiveCov.Table.check()

  @impl true
  def site_expr(slot, index, _line), do: bump_call(LiveCov.Native, slot, index)

  @impl true
  def compile_options, do: []

  @doc false
  # The same call to `module.bump/2` (tests count with a module of their own).
  def bump_call(module, slot, index) do
    a = :erl_anno.new(0)
    fun = {:remote, a, {:atom, a, module}, {:atom, a, :bump}}
    {:call, a, fun, [{:integer, a, slot}, {:integer, a, index}]}
  end
end
