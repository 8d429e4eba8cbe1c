defmodule LiveCov.Instrument.Walk do
  @moduledoc false
  # A read-only search through abstract code that allocates nothing: `any?/2` visits the
  # nodes of a term (tuples element by element, lists), asking `visit` about each.
  #
  # `visit.(node)` returns `true` (found: stop), `false` (nothing below this node: skip it)
  # or `:descend` (look at its elements). Literal leaves (`var`, `atom`, `integer`, `char`,
  # `float`, `string`) are skipped without asking.
  #
  # `replace_markers/3` rewrites the markers a coverage rewrite leaves in the forms (LiveCov's
  # `{:BUMP, anno, index}`, sys_coverage's `{:executable_line, line, index}`).

  @leaves [:var, :atom, :integer, :char, :float, :string]

  @doc "Whether `visit` finds a node in `term` (see the module documentation)."
  @spec any?(term, (term -> boolean | :descend)) :: boolean
  def any?({leaf, _anno, _value}, _visit) when leaf in @leaves, do: false

  def any?(tuple, visit) when is_tuple(tuple) do
    case visit.(tuple) do
      :descend -> elements?(tuple, tuple_size(tuple), visit)
      found -> found
    end
  end

  def any?([head | tail], visit), do: any?(head, visit) or any?(tail, visit)
  def any?(_other, _visit), do: false

  defp elements?(_tuple, 0, _visit), do: false

  defp elements?(tuple, i, visit),
    do: any?(elem(tuple, i - 1), visit) or elements?(tuple, i - 1, visit)

  @doc """
  Replaces every `{tag, anno, index}` (integer `index`) in `forms` by `fun.(anno, index)`;
  attributes are left untouched.
  """
  @spec replace_markers(term, atom, (term, integer -> term)) :: term
  def replace_markers({tag, anno, index}, tag, fun) when is_integer(index), do: fun.(anno, index)
  def replace_markers({:attribute, _, _, _} = attribute, _tag, _fun), do: attribute

  def replace_markers([head | tail], tag, fun),
    do: [replace_markers(head, tag, fun) | replace_markers(tail, tag, fun)]

  def replace_markers(tuple, tag, fun) when is_tuple(tuple) and tuple_size(tuple) >= 2,
    do: tuple |> Tuple.to_list() |> replace_markers(tag, fun) |> List.to_tuple()

  def replace_markers(other, _tag, _fun), do: other
end
