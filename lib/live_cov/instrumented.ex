defmodule LiveCov.Instrumented do
  @moduledoc false
  # The instrumented modules of this node: one `LiveCov.ModuleInfo` per module, in a
  # protected ETS table read by anyone without waiting for a process. Only the pipeline
  # (`LiveCov.Pipeline`, the table's owner) writes it.

  alias LiveCov.ModuleInfo

  @table :live_cov_modules

  @doc "Instrumented modules' metadata, sorted by module."
  @spec modules() :: [ModuleInfo.t()]
  def modules do
    @table |> :ets.tab2list() |> Enum.map(&elem(&1, 1)) |> Enum.sort_by(& &1.module)
  rescue
    ArgumentError -> []
  end

  @doc """
  Which counter backend counts the instrumented modules: `:native`, `:nif`, `:mixed` (some
  each) or `:none` (nothing instrumented).
  """
  @spec backend() :: :native | :nif | :mixed | :none
  def backend, do: backend_of(modules())

  @doc "As `backend/0`, for the given modules' metadata."
  @spec backend_of([ModuleInfo.t()]) :: :native | :nif | :mixed | :none
  def backend_of(infos) do
    case infos |> Enum.map(& &1.backend) |> Enum.uniq() do
      [] -> :none
      [one] -> one
      _ -> :mixed
    end
  end

  @doc "Metadata of one instrumented module, or nil."
  @spec lookup(module) :: ModuleInfo.t() | nil
  def lookup(module) do
    case :ets.lookup(@table, module) do
      [{_, info}] -> info
      [] -> nil
    end
  rescue
    ArgumentError -> nil
  end

  @doc false
  # By the pipeline's process, which then owns the table.
  def create do
    :ets.new(@table, [:named_table, :protected, :set, read_concurrency: true])
    :ok
  end

  @doc false
  def put(%ModuleInfo{module: module} = info), do: :ets.insert(@table, {module, info})

  @doc false
  def delete(module), do: :ets.delete(@table, module)
end
