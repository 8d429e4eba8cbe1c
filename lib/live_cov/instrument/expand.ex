defmodule LiveCov.Instrument.Expand do
  @moduledoc false
  # Rewrites short-circuit boolean operators in bodies into `case` expressions,
  # the way OTP 25's `cover` does before it inserts counters.
  #
  # `A andalso B` becomes
  #
  #     case A of
  #       true -> B;
  #       false -> false;
  #       _N -> erlang:error({badarg, _N})   % clause marked generated
  #     end
  #
  # and `A orelse B` the mirror image. Only body expressions are rewritten:
  # guards, and comprehension filters that are guard tests, are left alone so
  # their failure semantics do not change. After the rewrite every operand sits
  # in a clause body of its own, which is what gives `B` its own executable line.
  #
  # The auxiliary variable is named `_1`, `_2`, ... (one number per rewritten
  # operator in the form, skipping names already used as variables anywhere in
  # the form). Unlike OTP 25-27's `cover`, a skipped name also moves the numbering on,
  # so two operators never share a temporary: with a variable `_1` in the function, cover
  # gives both of two operators `_2` and the module fails to compile ("variable '_2'
  # unsafe"). The names do not change which lines are executable.
  #
  # On runtimes whose `cover` uses `sys_coverage` (OTP 27+), this rewrite runs first and
  # the runtime's own transform then finds no operator left to expand, so its naming bug
  # cannot bite (`LiveCov.Instrument.SysCoverage`).
  #
  # Pure: no side effects.

  alias LiveCov.Instrument.Walk

  @doc "Expands every `andalso`/`orelse` in the body expressions of one form."
  @spec form(tuple()) :: tuple()
  def form(form) do
    # Most forms have no operator to rewrite (Elixir emits `andalso`/`orelse` in guards
    # only): a read-only scan spares rebuilding every tuple of the form.
    if rewrites?(form) do
      used = collect_vars(form, MapSet.new())
      {expanded, _next} = expand(form, used, 1)
      expanded
    else
      form
    end
  end

  # Whether expand/3 would change anything: an operator outside guards. Mirrors its walk.
  defp rewrites?(term), do: Walk.any?(term, &rewrite_node/1)

  defp rewrite_node({:clause, _anno, _patterns, _guards, body}), do: rewrites?(body)

  defp rewrite_node({kind, _anno, template, qualifiers}) when kind in [:lc, :bc, :mc] do
    rewrites?(template) or
      Enum.any?(qualifiers, &(not :erl_lint.is_guard_test(&1) and rewrites?(&1)))
  end

  defp rewrite_node({:op, _anno, op, _left, _right}) when op in [:andalso, :orelse], do: true
  defp rewrite_node(_node), do: :descend

  # Function, fun, case, ... clauses: the guards must keep their operators.
  defp expand({:clause, anno, patterns, guards, body}, used, n) do
    {body, n} = expand(body, used, n)
    {{:clause, anno, patterns, guards, body}, n}
  end

  defp expand({kind, anno, template, qualifiers}, used, n) when kind in [:lc, :bc, :mc] do
    {template, n} = expand(template, used, n)
    {qualifiers, n} = expand_qualifiers(qualifiers, used, n)
    {{kind, anno, template, qualifiers}, n}
  end

  defp expand({:op, _anno, :andalso, left, right}, used, n) do
    {left, n} = expand(left, used, n)
    {right, n} = expand(right, used, n)
    to_case(left, right, {:atom, elem(left, 1), false}, used, n)
  end

  defp expand({:op, _anno, :orelse, left, right}, used, n) do
    {left, n} = expand(left, used, n)
    {right, n} = expand(right, used, n)
    to_case(left, {:atom, elem(left, 1), true}, right, used, n)
  end

  defp expand(tuple, used, n) when is_tuple(tuple) do
    {elements, n} = expand(Tuple.to_list(tuple), used, n)
    {List.to_tuple(elements), n}
  end

  defp expand([head | tail], used, n) do
    {head, n} = expand(head, used, n)
    {tail, n} = expand(tail, used, n)
    {[head | tail], n}
  end

  defp expand(other, _used, n), do: {other, n}

  # A filter that is a guard test is compiled as a guard; rewriting its
  # operators would turn a silently failing test into a raising expression.
  defp expand_qualifiers([qualifier | rest], used, n) do
    {qualifier, n} =
      if :erl_lint.is_guard_test(qualifier),
        do: {qualifier, n},
        else: expand(qualifier, used, n)

    {rest, n} = expand_qualifiers(rest, used, n)
    {[qualifier | rest], n}
  end

  defp expand_qualifiers([], _used, n), do: {[], n}

  # The case and the next free number.
  defp to_case(subject, if_true, if_false, used, n) do
    anno = elem(subject, 1)
    {name, taken} = fresh_var(used, n)
    aux = {:var, anno, name}
    error = {:remote, anno, {:atom, anno, :erlang}, {:atom, anno, :error}}

    case_expr =
      {:case, anno, subject,
       [
         {:clause, anno, [{:atom, anno, true}], [], [if_true]},
         {:clause, anno, [{:atom, anno, false}], [], [if_false]},
         {:clause, :erl_anno.set_generated(true, anno), [aux], [],
          [{:call, anno, error, [{:tuple, anno, [{:atom, anno, :badarg}, aux]}]}]}
       ]}

    {case_expr, taken + 1}
  end

  defp fresh_var(used, n) do
    name = String.to_atom("_" <> Integer.to_string(n))
    if MapSet.member?(used, name), do: fresh_var(used, n + 1), else: {name, n}
  end

  defp collect_vars({:var, _anno, name}, acc) when name != :_, do: MapSet.put(acc, name)

  defp collect_vars(tuple, acc) when is_tuple(tuple),
    do: collect_vars(Tuple.to_list(tuple), acc)

  defp collect_vars([head | tail], acc), do: collect_vars(tail, collect_vars(head, acc))
  defp collect_vars(_other, acc), do: acc
end
