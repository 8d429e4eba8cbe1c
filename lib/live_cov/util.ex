defmodule LiveCov.Util do
  @moduledoc false
  # Small helpers shared by several LiveCov modules: mapping a list while every step
  # succeeds, and reading ETS tables that may not exist.

  @doc """
  Maps `fun` over `list` as long as it returns `{:ok, value}`: `{:ok, values}` (in order),
  or the first other return of `fun`, at which the mapping stops.

      iex> LiveCov.Util.map_ok([1, 2], &{:ok, &1 * 2})
      {:ok, [2, 4]}
      iex> LiveCov.Util.map_ok([1, :x, :y], fn
      ...>   i when is_integer(i) -> {:ok, i}
      ...>   other -> {:error, other}
      ...> end)
      {:error, :x}
  """
  @spec map_ok(Enumerable.t(), (term -> {:ok, term} | other)) :: {:ok, list} | other
        when other: term
  def map_ok(list, fun) do
    list
    |> Enum.reduce_while({:ok, []}, fn x, {:ok, acc} ->
      case fun.(x) do
        {:ok, v} -> {:cont, {:ok, [v | acc]}}
        other -> {:halt, other}
      end
    end)
    |> case do
      {:ok, acc} -> {:ok, Enum.reverse(acc)}
      other -> other
    end
  end

  @doc "`:ets.lookup/2`, or `[]` when the table does not exist (its owner is not running)."
  @spec ets_lookup(:ets.tab(), term) :: [tuple]
  def ets_lookup(table, key), do: or_empty(fn -> :ets.lookup(table, key) end)

  @doc "`:ets.match_object/2`, or `[]` when the table does not exist."
  @spec ets_match_object(:ets.tab(), term) :: [tuple]
  def ets_match_object(table, pattern), do: or_empty(fn -> :ets.match_object(table, pattern) end)

  @doc "`:ets.tab2list/1`, or `[]` when the table does not exist."
  @spec ets_tab2list(:ets.tab()) :: [tuple]
  def ets_tab2list(table), do: or_empty(fn -> :ets.tab2list(table) end)

  # A missing table is an ArgumentError (so is a bad argument: not expected here).
  defp or_empty(read) do
    read.()
  rescue
    ArgumentError -> []
  end
end
