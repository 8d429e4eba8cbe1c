defmodule LiveCov.Counts do
  @moduledoc false
  # The one place analysis gets its counts from: for each instrumented module, the sum of
  #
  #   * this node's counter table (one snapshot for all modules),
  #   * other nodes' tables, when coverage runs on several nodes (`LiveCov.Nodes`),
  #   * imported data of the same build (`LiveCov.Imported`).
  #
  # Counts of a module are a list in site order (see `LiveCov.ModuleInfo`).

  alias LiveCov.{Counter, ModuleInfo, Table}

  @doc "Counts of every given module: `%{module => [count]}`."
  @spec collect([ModuleInfo.t()]) :: %{module => [non_neg_integer]}
  def collect(infos) do
    snapshot = Counter.snapshot()
    extra = Enum.map(sources(), & &1.counts(infos))

    Map.new(infos, fn info ->
      local =
        case Map.fetch(snapshot, info.slot) do
          {:ok, bin} -> Table.decode(bin)
          :error -> List.duplicate(0, ModuleInfo.size(info))
        end

      {info.module, Enum.reduce(extra, local, &add(&2, Map.get(&1, info.module)))}
    end)
  end

  @doc "Counts of one module."
  @spec of(ModuleInfo.t()) :: [non_neg_integer]
  def of(info), do: collect([info]) |> Map.fetch!(info.module)

  @doc """
  Sets the sources (`LiveCov.Counts.Source` modules) whose counts are added to this node's
  table. The application wires them at start.
  """
  @spec put_sources([module]) :: :ok
  def put_sources(modules) when is_list(modules),
    do: :persistent_term.put({__MODULE__, :sources}, modules)

  defp sources, do: :persistent_term.get({__MODULE__, :sources}, [])

  @doc "Element-wise sum of two count lists (`nil` adds nothing)."
  @spec add([non_neg_integer], [non_neg_integer] | nil) :: [non_neg_integer]
  def add(a, nil), do: a
  def add(a, b), do: :lists.zipwith(&+/2, a, b)
end
